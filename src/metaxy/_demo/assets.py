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

import inspect
import json
import shutil
import warnings
from collections.abc import Callable, Iterator
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
from metaxy.versioning.samples import count_samples

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
        ray: run the per-clip computations as Ray tasks and write their rows through the Ray
            datasink (``mx demo --ray``; a Ray cluster must be initialised).
    """

    workdir: str
    clips: int = 300
    seed: int = 0
    ray: bool = False

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
_Row = dict[str, Any]
_Inputs = dict[str, tuple[type[mx.BaseFeature], str]]


def _todo(increment: Any) -> pl.DataFrame:
    return pl.concat([increment.new.to_polars(), increment.stale.to_polars()], how="vertical")


def _count(frame: Any, ids: list[str]) -> int:
    return count_samples(frame, ids)


def _each(progress: ProgressReporter, feature: str, todo: pl.DataFrame) -> Iterator[_Row]:
    """The samples of ``todo``, reporting to ``progress`` as each one is done."""
    progress.start(feature, len(todo))
    for sample in todo.iter_rows(named=True):
        yield sample
        progress.advance(feature)


def _provenance(sample: _Row) -> _Row:
    """A sample's system columns, which each of its output rows carries."""
    return {c: sample[c] for c in _SYSTEM}


def _write_json(path: Path, payload: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    return str(path)


def _drop_orphans(
    store: mx.MetadataStore, feature: type[mx.BaseFeature], increment: Any, column: str, folder: Path | None = None
) -> None:
    """Soft-delete the orphaned samples: their stored rows, and their files under ``folder/<column value>``."""
    orphaned = increment.orphaned[column].unique().to_list() if len(increment.orphaned) else []
    if not orphaned:
        return
    with store.open("w"):
        store.delete(feature, pl.col(column).is_in(orphaned))
    if folder is not None:
        for value in orphaned:
            shutil.rmtree(folder / value, ignore_errors=True)


def _record(context: dg.AssetExecutionContext, increment: Any, ids: list[str], files: int) -> None:
    context.add_output_metadata(
        {
            "multimodal/new": _count(increment.new, ids),
            "multimodal/stale": _count(increment.stale, ids),
            "multimodal/orphaned": _count(increment.orphaned, ids),
            "multimodal/files_written": files,
        }
    )


def _frame(rows: list[_Row], todo: pl.DataFrame, columns: dict[str, Any]) -> pl.DataFrame:
    """The output rows with an explicit schema, so that "nothing to recompute" is a well-typed empty frame."""
    return pl.DataFrame(rows, schema={**columns, **{c: todo.schema[c] for c in _SYSTEM}})


@contextmanager
def _quiet_resolve() -> Iterator[None]:
    # Root samples are a local Polars frame, so the DuckDB store resolves them with Polars and says
    # so with a PolarsMaterializationWarning (spec §5.4); for a few hundred clips that is expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PolarsMaterializationWarning)
        yield


def _per_clip_asset(
    feature: type[mx.BaseFeature],
    compute: Callable[[_Row, Path], list[_Row]],
    *,
    inputs: _Inputs,
    columns: dict[str, Any],
) -> dg.AssetsDefinition:
    """The asset of a per-clip ``feature``: ``compute`` runs once per new or stale clip.

    ``compute(sample, folder)`` gets the clip's increment row joined with ``inputs``
    (``{name: (upstream feature, column)}``, e.g. the path of the clip's WAV file) and the clip's
    folder ``out/<feature>/<feature version>/<video_id>``; it writes the clip's files and returns its
    output rows (``columns``; each row gets the clip's system columns). Orphaned clips are
    soft-deleted, rows and folder. ``compute``'s name and docstring name and describe the asset.
    """
    key = feature.spec().key.to_string()

    @mxd.metaxify(feature=feature)
    @dg.asset(name=compute.__name__, description=inspect.getdoc(compute), group_name=GROUP)
    def per_clip(
        context: dg.AssetExecutionContext,
        store: dg.ResourceParam[mx.MetadataStore],
        media: DemoMedia,
        progress: dg.ResourceParam[ProgressReporter],
    ) -> mxd.MetaxyOutput:
        with store:
            increment = store.resolve_update(feature)
            todo = _todo(increment)
            these_clips = [pl.col("video_id").is_in(todo["video_id"].to_list())]
            for name, (upstream, column) in inputs.items():
                read = store.read(upstream, filters=these_clips, columns=["video_id", column]).collect().to_polars()
                todo = todo.join(read.rename({column: name}), on="video_id")
        folder = media.folder(feature)
        rows = []
        if media.ray:  # the asset resolved the increment; Ray computes and writes; the asset reports
            from metaxy._demo.ray_work import compute_on_ray

            progress.start(key, len(todo))
            schema = {**columns, **{c: todo.schema[c] for c in _SYSTEM}}
            written = compute_on_ray(store, feature, compute, todo, folder, schema, _SYSTEM)
            for _ in range(len(todo)):
                progress.advance(key)
        else:
            for sample in _each(progress, key, todo):
                # every output row (each of a clip's chunks, too) carries the clip's provenance
                rows += [{**row, **_provenance(sample)} for row in compute(sample, folder / sample["video_id"])]
            written = len(rows)
        _drop_orphans(store, feature, increment, "video_id", folder)
        _record(context, increment, ["video_id"], written)
        return _frame(rows, todo, columns)

    return per_clip


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
        for _ in _each(progress, "video/raw", todo):
            pass  # the scan hashed the files: nothing else to compute
        _drop_orphans(store, f.raw, increment, "video_id")
        _record(context, increment, ["video_id"], 0)
        return todo

    return raw_clips


def _chunks_asset(f: MultimodalFeatures) -> dg.AssetsDefinition:
    code_version = f.audio_code_version  # the closure captures a string, not the feature classes (Ray)

    def audio_chunks(sample: _Row, folder: Path) -> list[_Row]:
        """Cut each clip's audio into half-second WAV chunks with their loudness (1 clip -> N chunks)."""
        pcm, rate = read_wav(Path(sample["audio_path"]))
        signal = decode_audio(pcm, code_version)
        rows = []
        for n, (start, chunk) in enumerate(split_chunks(signal, rate)):
            path = folder / sample["metaxy_data_version"] / f"{n:03d}.wav"
            write_wav(path, (np.clip(chunk, -1, 1) * 32767).astype(np.int16), rate)
            rows.append(
                {
                    "video_id": sample["video_id"],
                    "chunk": n,
                    "start_s": start,
                    "rms_dbfs": loudness_dbfs(chunk),
                    "path": str(path),
                }
            )
        return rows

    return _per_clip_asset(f.chunks, audio_chunks, inputs={"audio_path": (f.raw, "audio_path")}, columns=_CHUNK_COLUMNS)


def _transcript_asset(f: MultimodalFeatures) -> dg.AssetsDefinition:
    code_version = f.audio_code_version  # the closure captures a string, not the feature classes (Ray)

    def transcripts(sample: _Row, folder: Path) -> list[_Row]:
        """Transcribe each clip's audio: voiced segments named by their pitch ("do re mi")."""
        pcm, rate = read_wav(Path(sample["audio_path"]))
        result = transcribe(decode_audio(pcm, code_version), rate)
        # keyed by provenance (what it was computed from): the stored data version is the hash of
        # what is said (data_version_columns), known only once the row is written
        path = folder / f"{sample['metaxy_provenance']}.json"
        return [
            {
                "video_id": sample["video_id"],
                "channel": sample["channel"],
                "text": result["text"],
                "words": len(result["segments"]),
                "loudness_dbfs": result["loudness_dbfs"],
                "path": _write_json(path, {"video_id": sample["video_id"], **result}),
            }
        ]

    return _per_clip_asset(
        f.transcript, transcripts, inputs={"audio_path": (f.raw, "audio_path")}, columns=_TRANSCRIPT_COLUMNS
    )


def _faces_asset(f: MultimodalFeatures) -> dg.AssetsDefinition:
    def faces(sample: _Row, folder: Path) -> list[_Row]:
        """Per frame: brightness, contrast and the box of a bright "face" (frames only)."""
        frames = detect_faces(read_png(Path(sample["frames_path"])))
        path = folder / f"{sample['metaxy_data_version']}.json"
        return [
            {
                "video_id": sample["video_id"],
                "face_frames": sum(fr["face"] is not None for fr in frames),
                "path": _write_json(path, {"video_id": sample["video_id"], "frames": frames}),
            }
        ]

    return _per_clip_asset(f.faces, faces, inputs={"frames_path": (f.raw, "frames_path")}, columns=_FACES_COLUMNS)


def _summary_asset(f: MultimodalFeatures) -> dg.AssetsDefinition:
    def summaries(sample: _Row, folder: Path) -> list[_Row]:
        """Combine each clip's transcript and faces into one record."""
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
        }
        path = folder / f"{sample['metaxy_data_version']}.json"
        return [
            {
                "video_id": sample["video_id"],
                "channel": sample["channel"],
                "words": summary["words"],
                "face_frames": face_frames,
                "path": _write_json(path, summary),
            }
        ]

    inputs: _Inputs = {"transcript_path": (f.transcript, "path"), "faces_path": (f.faces, "path")}
    return _per_clip_asset(f.summary, summaries, inputs=inputs, columns=_SUMMARY_COLUMNS)


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
        for sample in _each(progress, "channel/report", todo):
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
                    **_provenance(sample),
                }
            )
        _drop_orphans(store, f.report, increment, "channel")
        _record(context, increment, ["channel"], len(rows))
        return _frame(rows, todo, _REPORT_COLUMNS)

    return channel_reports


def build_resources(
    workdir: str | Path,
    *,
    clips: int = 300,
    seed: int = 0,
    progress: ProgressReporter | None = None,
    ray: bool = False,
) -> dict[str, Any]:
    """The resources the assets need: the configured default store, the Metaxy IO manager, the media."""
    store = mxd.MetaxyStoreFromConfigResource()
    return {
        "store": store,
        "io_manager": mxd.MetaxyIOManager(store=store),
        "media": DemoMedia(workdir=str(workdir), clips=clips, seed=seed, ray=ray),
        "progress": dg.ResourceDefinition.hardcoded_resource(progress or ProgressReporter()),
    }


def build_definitions(
    features: MultimodalFeatures, workdir: str | Path, *, clips: int = 300, seed: int = 0
) -> dg.Definitions:
    """A Dagster code location for the demo: the six assets, their Metaxy checks and resources.

    The store is the default store of the active metaxy configuration
    (``MetaxyStoreFromConfigResource``).
    """
    assets = build_assets(features)
    with features.graph.use():
        checks = mxd.build_metaxy_asset_checks(assets)
    return dg.Definitions(
        assets=assets, asset_checks=checks, resources=build_resources(workdir, clips=clips, seed=seed)
    )
