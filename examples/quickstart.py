"""metaxy in one minute: per-field versions decide exactly which samples to recompute.

Run with ``python examples/quickstart.py`` (uses an embedded DuckDB file in a temp dir).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import polars as pl

import metaxy as mx
from metaxy.ext.duckdb import DuckDBMetadataStore

warnings.filterwarnings("ignore", message="Creating table")
# Root samples are a local frame: DuckDB resolves them with Polars and says so (spec §5.4).
warnings.filterwarnings("ignore", category=mx.errors.PolarsMaterializationWarning)


def define(audio_code: str) -> tuple[mx.FeatureGraph, dict[str, type[mx.BaseFeature]]]:
    """The feature graph: raw videos with audio and frames; a transcript from the audio only,
    face detections from the frames only."""
    graph = mx.FeatureGraph()
    with graph.use():

        class Raw(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="video/raw",
                id_columns=["video_id"],
                fields=[
                    mx.FieldSpec(key="audio", code_version=audio_code),
                    mx.FieldSpec(key="frames", code_version="1"),
                ],
            ),
        ):
            video_id: str
            path: str

        class Transcript(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="video/transcript",
                id_columns=["video_id"],
                deps=[Raw],
                fields=[mx.FieldSpec(key="text", deps=[mx.FieldDep(feature=Raw, fields=["audio"])])],
            ),
        ):
            video_id: str

        class Faces(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="video/faces",
                id_columns=["video_id"],
                deps=[Raw],
                fields=[mx.FieldSpec(key="boxes", deps=[mx.FieldDep(feature=Raw, fields=["frames"])])],
            ),
        ):
            video_id: str

    return graph, {"raw": Raw, "transcript": Transcript, "faces": Faces}


def raw_rows(ids: list[str], audio_rev: str = "1") -> pl.DataFrame:
    """Root samples: per-field provenance is whatever identifies the field's content (a hash)."""
    return pl.DataFrame(
        {
            "video_id": ids,
            "path": [f"s3://videos/{i}.mp4" for i in ids],
            "metaxy_provenance_by_field": [{"audio": f"audio-{i}-{audio_rev}", "frames": f"frames-{i}"} for i in ids],
        }
    )


def main() -> dict[str, tuple[int, int, int]]:
    db = Path(tempfile.mkdtemp()) / "metadata.duckdb"
    store = DuckDBMetadataStore(db, auto_create_tables=True)
    graph, f = define(audio_code="1")
    with graph.use(), store.open("w"):
        store.write(f["raw"], raw_rows([f"v{i}" for i in range(100)]))
        for name in ("transcript", "faces"):  # compute everything once
            store.write(f[name], store.resolve_update(f[name]).new)
        # Re-encode the audio of 10 videos: only their transcripts become stale.
        store.write(f["raw"], raw_rows([f"v{i}" for i in range(10)], audio_rev="2"))
        plan = {name: store.resolve_update(f[name]) for name in ("transcript", "faces")}
    counts = {k: (len(v.new), len(v.stale), len(v.orphaned)) for k, v in plan.items()}
    for name, (new, stale, orphaned) in counts.items():
        print(f"{name:<10} new={new:<4} stale={stale:<4} orphaned={orphaned}")
    # Bump the audio code version and re-materialise video/raw under its new feature version:
    # every transcript is new under its new feature version, faces (frames only) are untouched.
    graph2, f2 = define(audio_code="2")
    with graph2.use(), store.open("w"):
        samples = raw_rows([f"v{i}" for i in range(100)])
        store.write(f2["raw"], store.resolve_update(f2["raw"], samples=samples).new)
        for name in ("transcript", "faces"):
            inc = store.resolve_update(f2[name])
            counts[f"{name} after audio code bump"] = (len(inc.new), len(inc.stale), len(inc.orphaned))
            print(f"{name:<10} after audio code bump: new={len(inc.new)} stale={len(inc.stale)}")
    return counts


if __name__ == "__main__":
    main()
