"""The demo's Dagster assets: one ``metaxify``-ed asset per feature.

Every asset follows the same three steps:

1. ``store.resolve_update(Feature)`` — which samples are new, stale or orphaned (the root asset
   passes ``samples=``: the clips on disk with a content hash per field);
2. do the work for new + stale samples only, writing files whose paths carry the sample's data
   version (``out/<feature>/<feature_version>/<video_id>/<data_version>.json``), and soft-delete orphaned samples
   (rows and files);
3. return the new metadata rows; ``MetaxyIOManager`` writes them to the store.

Each materialization records ``multimodal/new``, ``multimodal/stale``, ``multimodal/orphaned``
and ``multimodal/files_written`` (samples: clips, except ``channel/report``: channels).
"""

# No `from __future__ import annotations`: Dagster inspects the asset parameters' annotations at runtime.

import json
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy._demo.analysis import decode_audio, detect_faces, loudness_dbfs, split_chunks, transcribe
from metaxy._demo.features import MultimodalFeatures
from metaxy._demo.media import FRAMES, MediaLibrary, read_png, read_wav, scan, write_wav
from metaxy.errors import PolarsMaterializationWarning

__all__ = ["DemoMedia", "ProgressReporter", "build_assets", "build_definitions", "build_resources"]

_SYSTEM = ["metaxy_provenance_by_field", "metaxy_provenance", "metaxy_data_version_by_field", "metaxy_data_version"]
GROUP = "multimodal"
_CHUNK_COLUMNS = {
    "video_id": pl.String,
    "chunk": pl.Int64,
    "start_s": pl.Float64,
    "rms_dbfs": pl.Float64,
    "path": pl.String,
}
_TRANSCRIPT_COLUMNS = {
    "video_id": pl.String,
    "channel": pl.String,
    "text": pl.String,
    "words": pl.Int64,
    "loudness_dbfs": pl.Float64,
    "path": pl.String,
}
_FACES_COLUMNS = {"video_id": pl.String, "face_frames": pl.Int64, "path": pl.String}
_SUMMARY_COLUMNS = {
    "video_id": pl.String,
    "channel": pl.String,
    "words": pl.Int64,
    "face_frames": pl.Int64,
    "path": pl.String,
}
_REPORT_COLUMNS = {
    "channel": pl.String,
    "clips": pl.Int64,
    "words": pl.Int64,
    "face_ratio": pl.Float64,
    "path": pl.String,
}


class ProgressReporter:
    """Receives per-sample progress from the assets (the default does nothing; ``mx demo`` draws bars)."""

    def start(self, feature: str, total: int) -> None:
        """``feature`` is about to process ``total`` samples."""

    def advance(self, feature: str) -> None:
        """One more sample of ``feature`` is done."""


class DemoMedia(dg.ConfigurableResource):
    """Where the clips are (``<workdir>/media``) and where derived files go (``<workdir>/out``).

    Attributes:
        workdir: the demo working directory.
        clips: how many clips to generate when ``media`` is empty (``dagster dev`` on a fresh workdir).
        seed: the random seed of generated clips.
    """

    workdir: str
    clips: int = 300
    seed: int = 0

    @property
    def media_dir(self) -> Path:
        return Path(self.workdir) / "media"

    @property
    def out_dir(self) -> Path:
        return Path(self.workdir) / "out"

    def folder(self, feature: type[mx.BaseFeature]) -> Path:
        """``out/<feature name>/<feature version>``: where a feature's files of the current version go.

        The feature version is part of the path because a sample's data version only hashes its
        upstream data versions and the field's own code version: when an *upstream* code version
        changes, the feature version changes and every sample is recomputed, with the same data
        version as before (see docs/concepts.md).
        """
        return self.out_dir / feature.spec().key.parts[-1] / feature.feature_version()


# --- helpers shared by the assets --------------------------------------------------------------
def _todo(increment: Any) -> pl.DataFrame:
    return pl.concat([increment.new.to_polars(), increment.stale.to_polars()], how="vertical")


def _count(frame: Any, ids: list[str]) -> int:
    return frame.to_polars().select(ids).n_unique() if len(frame) else 0


def _forget(store: mx.MetadataStore, feature: type[mx.BaseFeature], column: str, values: list[str]) -> int:
    """Soft-delete the stored rows whose ``column`` is in ``values`` (orphaned samples)."""
    if not values:
        return 0
    with store.open("w"):
        return store.delete(feature, pl.col(column).is_in(values))


def _write_json(path: Path, payload: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    return str(path)


def _record(context: dg.AssetExecutionContext, increment: Any, ids: list[str], files: int) -> None:
    context.add_output_metadata(
        {
            "multimodal/new": _count(increment.new, ids),
            "multimodal/stale": _count(increment.stale, ids),
            "multimodal/orphaned": _count(increment.orphaned, ids),
            "multimodal/files_written": files,
        }
    )


@contextmanager
def _quiet_resolve() -> Iterator[None]:
    # Root samples are a local Polars frame, so the DuckDB store resolves them with Polars and says
    # so with a PolarsMaterializationWarning (spec §5.4); for a few hundred clips that is expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PolarsMaterializationWarning)
        yield


# --- assets ------------------------------------------------------------------------------------
def build_assets(features: MultimodalFeatures) -> list[dg.AssetsDefinition]:
    """The six assets of the demo, metaxified in ``features.graph``."""
    f = features
    with f.graph.use():
        assets = [
            _raw_asset(f),
            _chunks_asset(f),
            _transcript_asset(f),
            _faces_asset(f),
            _summary_asset(f),
            _report_asset(f),
        ]
    return assets


def _raw_asset(f: MultimodalFeatures) -> dg.AssetsDefinition:
    @mxd.metaxify(feature=f.raw)
    @dg.asset(group_name=GROUP)
    def raw_clips(
        context: dg.AssetExecutionContext,
        store: dg.ResourceParam[mx.MetadataStore],
        media: DemoMedia,
        progress: dg.ResourceParam[ProgressReporter],
    ) -> mxd.MetaxyOutput:
        """Scan the clips on disk; each field's provenance is the content hash of its file."""
        if not any(media.media_dir.glob("*/*/audio.wav")):
            context.log.info(f"No clips in {media.media_dir}: generating {media.clips} (seed {media.seed}).")
            MediaLibrary.open(media.media_dir, seed=media.seed).add(media.clips)
        samples = scan(media.media_dir)
        with _quiet_resolve(), store:
            increment = store.resolve_update(f.raw, samples=samples)
        todo = _todo(increment)
        progress.start("video/raw", len(todo))
        for _ in range(len(todo)):
            progress.advance("video/raw")
        _forget(store, f.raw, "video_id", increment.orphaned["video_id"].to_list())
        _record(context, increment, ["video_id"], 0)
        return todo

    return raw_clips


def _chunks_asset(f: MultimodalFeatures) -> dg.AssetsDefinition:
    @mxd.metaxify(feature=f.chunks)
    @dg.asset(group_name=GROUP)
    def audio_chunks(
        context: dg.AssetExecutionContext,
        store: dg.ResourceParam[mx.MetadataStore],
        media: DemoMedia,
        progress: dg.ResourceParam[ProgressReporter],
    ) -> mxd.MetaxyOutput:
        """Cut each clip's audio into half-second WAV chunks with their loudness (1 clip -> N chunks)."""
        with store:
            increment = store.resolve_update(f.chunks)
            todo = _todo(increment).join(
                store.read(f.raw, columns=["video_id", "audio_path"]).collect().to_polars(), on="video_id"
            )
        rows, files = [], 0
        progress.start("video/chunks", len(todo))
        for sample in todo.iter_rows(named=True):
            pcm, rate = read_wav(Path(sample["audio_path"]))
            signal = decode_audio(pcm, f.audio_code_version)
            folder = media.folder(f.chunks) / sample["video_id"] / sample["metaxy_data_version"]
            for n, (start, chunk) in enumerate(split_chunks(signal, rate)):
                path = folder / f"{n:03d}.wav"
                write_wav(path, (np.clip(chunk, -1, 1) * 32767).astype(np.int16), rate)
                files += 1
                rows.append(
                    {
                        "video_id": sample["video_id"],
                        "chunk": n,
                        "start_s": start,
                        "rms_dbfs": loudness_dbfs(chunk),
                        "path": str(path),
                        **{c: sample[c] for c in _SYSTEM},  # every child carries its parent's provenance
                    }
                )
            progress.advance("video/chunks")
        orphaned = increment.orphaned["video_id"].to_list()
        _forget(store, f.chunks, "video_id", orphaned)
        for vid in orphaned:
            shutil.rmtree(media.folder(f.chunks) / vid, ignore_errors=True)
        _record(context, increment, ["video_id"], files)
        return _frame(rows, todo, _CHUNK_COLUMNS)

    return audio_chunks


def _transcript_asset(f: MultimodalFeatures) -> dg.AssetsDefinition:
    @mxd.metaxify(feature=f.transcript)
    @dg.asset(group_name=GROUP)
    def transcripts(
        context: dg.AssetExecutionContext,
        store: dg.ResourceParam[mx.MetadataStore],
        media: DemoMedia,
        progress: dg.ResourceParam[ProgressReporter],
    ) -> mxd.MetaxyOutput:
        """Transcribe each clip's audio: voiced segments named by their pitch ("do re mi")."""
        with store:
            increment = store.resolve_update(f.transcript)
            todo = _todo(increment).join(
                store.read(f.raw, columns=["video_id", "audio_path"]).collect().to_polars(), on="video_id"
            )
        rows = []
        progress.start("video/transcript", len(todo))
        for sample in todo.iter_rows(named=True):
            pcm, rate = read_wav(Path(sample["audio_path"]))
            result = transcribe(decode_audio(pcm, f.audio_code_version), rate)
            path = media.folder(f.transcript) / sample["video_id"] / f"{sample['metaxy_data_version']}.json"
            rows.append(
                {
                    "video_id": sample["video_id"],
                    "channel": sample["channel"],
                    "text": result["text"],
                    "words": len(result["segments"]),
                    "loudness_dbfs": result["loudness_dbfs"],
                    "path": _write_json(path, {"video_id": sample["video_id"], **result}),
                    **{c: sample[c] for c in _SYSTEM},
                }
            )
            progress.advance("video/transcript")
        _drop_orphans(store, f.transcript, media.folder(f.transcript), increment)
        _record(context, increment, ["video_id"], len(rows))
        return _frame(rows, todo, _TRANSCRIPT_COLUMNS)

    return transcripts


def _faces_asset(f: MultimodalFeatures) -> dg.AssetsDefinition:
    @mxd.metaxify(feature=f.faces)
    @dg.asset(group_name=GROUP)
    def faces(
        context: dg.AssetExecutionContext,
        store: dg.ResourceParam[mx.MetadataStore],
        media: DemoMedia,
        progress: dg.ResourceParam[ProgressReporter],
    ) -> mxd.MetaxyOutput:
        """Per frame: brightness, contrast and the box of a bright "face" (frames only)."""
        with store:
            increment = store.resolve_update(f.faces)
            todo = _todo(increment).join(
                store.read(f.raw, columns=["video_id", "frames_path"]).collect().to_polars(), on="video_id"
            )
        rows = []
        progress.start("video/faces", len(todo))
        for sample in todo.iter_rows(named=True):
            frames = detect_faces(read_png(Path(sample["frames_path"])))
            path = media.folder(f.faces) / sample["video_id"] / f"{sample['metaxy_data_version']}.json"
            rows.append(
                {
                    "video_id": sample["video_id"],
                    "face_frames": sum(fr["face"] is not None for fr in frames),
                    "path": _write_json(path, {"video_id": sample["video_id"], "frames": frames}),
                    **{c: sample[c] for c in _SYSTEM},
                }
            )
            progress.advance("video/faces")
        _drop_orphans(store, f.faces, media.folder(f.faces), increment)
        _record(context, increment, ["video_id"], len(rows))
        return _frame(rows, todo, _FACES_COLUMNS)

    return faces


def _summary_asset(f: MultimodalFeatures) -> dg.AssetsDefinition:
    @mxd.metaxify(feature=f.summary)
    @dg.asset(group_name=GROUP)
    def summaries(
        context: dg.AssetExecutionContext,
        store: dg.ResourceParam[mx.MetadataStore],
        media: DemoMedia,
        progress: dg.ResourceParam[ProgressReporter],
    ) -> mxd.MetaxyOutput:
        """Combine each clip's transcript and faces into one record."""
        with store:
            increment = store.resolve_update(f.summary)
            todo = _todo(increment)
            ids = pl.col("video_id").is_in(todo["video_id"].to_list())
            texts = store.read(f.transcript, filters=[ids], columns=["video_id", "path"]).collect().to_polars()
            boxes = store.read(f.faces, filters=[ids], columns=["video_id", "path"]).collect().to_polars()
        todo = todo.join(texts.rename({"path": "transcript_path"}), on="video_id").join(
            boxes.rename({"path": "faces_path"}), on="video_id"
        )
        rows = []
        progress.start("video/summary", len(todo))
        for sample in todo.iter_rows(named=True):
            transcript = json.loads(Path(sample["transcript_path"]).read_text())
            frames = json.loads(Path(sample["faces_path"]).read_text())["frames"]
            face_frames = sum(fr["face"] is not None for fr in frames)
            summary = {
                "video_id": sample["video_id"],
                "channel": sample["channel"],
                "text": transcript["text"],
                "words": len(transcript["segments"]),
                "face_frames": face_frames,
                "on_screen": face_frames / len(frames),
                "loudness_dbfs": transcript["loudness_dbfs"],
            }
            path = media.folder(f.summary) / sample["video_id"] / f"{sample['metaxy_data_version']}.json"
            rows.append(
                {
                    "video_id": sample["video_id"],
                    "channel": sample["channel"],
                    "words": summary["words"],
                    "face_frames": face_frames,
                    "path": _write_json(path, summary),
                    **{c: sample[c] for c in _SYSTEM},
                }
            )
            progress.advance("video/summary")
        _drop_orphans(store, f.summary, media.folder(f.summary), increment)
        _record(context, increment, ["video_id"], len(rows))
        return _frame(rows, todo, _SUMMARY_COLUMNS)

    return summaries


def _report_asset(f: MultimodalFeatures) -> dg.AssetsDefinition:
    @mxd.metaxify(feature=f.report)
    @dg.asset(group_name=GROUP)
    def channel_reports(
        context: dg.AssetExecutionContext,
        store: dg.ResourceParam[mx.MetadataStore],
        media: DemoMedia,
        progress: dg.ResourceParam[ProgressReporter],
    ) -> mxd.MetaxyOutput:
        """Aggregate the summaries of each channel whose clips changed (N clips -> 1 report)."""
        with store:
            increment = store.resolve_update(f.report)
            # Aggregation lineage: one increment row per upstream clip, identical provenance per channel.
            todo = _todo(increment).unique("channel", keep="first").sort("channel")
            members = (
                store.read(f.summary, filters=[pl.col("channel").is_in(todo["channel"].to_list())])
                .collect()
                .to_polars()
            )
        rows = []
        progress.start("channel/report", len(todo))
        for sample in todo.iter_rows(named=True):
            group = members.filter(pl.col("channel") == sample["channel"])
            report = {
                "channel": sample["channel"],
                "clips": group.height,
                "words": int(group["words"].sum()),
                "face_ratio": round(float(group["face_frames"].sum()) / (FRAMES * max(group.height, 1)), 4),
                "clip_ids": sorted(group["video_id"].to_list()),
            }
            path = media.folder(f.report) / sample["channel"] / f"{sample['metaxy_data_version']}.json"
            rows.append(
                {
                    **{k: report[k] for k in ("channel", "clips", "words", "face_ratio")},
                    "path": _write_json(path, report),
                    **{c: sample[c] for c in _SYSTEM},
                }
            )
            progress.advance("channel/report")
        orphaned = increment.orphaned["channel"].unique().to_list() if len(increment.orphaned) else []
        _forget(store, f.report, "channel", orphaned)
        _record(context, increment, ["channel"], len(rows))
        return _frame(rows, todo, _REPORT_COLUMNS)

    return channel_reports


def _drop_orphans(store: mx.MetadataStore, feature: type[mx.BaseFeature], folder: Path, increment: Any) -> None:
    orphaned = increment.orphaned["video_id"].to_list()
    _forget(store, feature, "video_id", orphaned)
    for vid in orphaned:
        shutil.rmtree(folder / vid, ignore_errors=True)


def _frame(rows: list[dict[str, Any]], todo: pl.DataFrame, columns: dict[str, Any]) -> pl.DataFrame:
    """The output rows with an explicit schema, so that "nothing to recompute" is a well-typed empty frame."""
    return pl.DataFrame(rows, schema={**columns, **{c: todo.schema[c] for c in _SYSTEM}})


def build_resources(
    workdir: str | Path, *, clips: int = 300, seed: int = 0, progress: ProgressReporter | None = None
) -> dict[str, Any]:
    """The resources the assets need: the configured default store, the Metaxy IO manager, the media."""
    store = mxd.MetaxyStoreFromConfigResource()
    return {
        "store": store,
        "io_manager": mxd.MetaxyIOManager(store=store),
        "media": DemoMedia(workdir=str(workdir), clips=clips, seed=seed),
        "progress": dg.ResourceDefinition.hardcoded_resource(progress or ProgressReporter()),
    }


def build_definitions(
    features: MultimodalFeatures, workdir: str | Path, *, clips: int = 300, seed: int = 0
) -> dg.Definitions:
    """A Dagster code location for the demo: the six assets and their resources.

    The store is the default store of the active metaxy configuration
    (``MetaxyStoreFromConfigResource``).
    """
    return dg.Definitions(assets=build_assets(features), resources=build_resources(workdir, clips=clips, seed=seed))
