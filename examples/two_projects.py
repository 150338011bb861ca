"""Two projects, one store: project B depends on project A's feature without importing A's code.

Run: ``python examples/two_projects.py [DIRECTORY]`` (default: a temporary directory).

1. Project A defines ``audio/raw`` and pushes its definitions and rows to a shared DuckDB file.
2. Project B pins A's feature in ``metaxy.lock`` (what ``mx lock`` writes).
3. A fresh process of B loads the lock (``mx.init`` does), defines ``audio/transcript`` on top of
   ``audio/raw`` *by key*, and resolves its increment: the store sync replaces the locked stub
   with A's pushed definition, and the versions agree.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import polars as pl

import metaxy as mx
from metaxy.config import MetaxyConfig
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.external_features import load_lock_file, write_lock_file
from metaxy.metadata_store import SystemTableStorage


def project_a(store: DuckDBMetadataStore) -> None:
    with mx.FeatureGraph().use(), MetaxyConfig(project="team_a").use():

        class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="audio/raw", id_columns=["clip_id"], fields=["waveform"])):
            __metaxy_project__ = "team_a"
            clip_id: str

        with store.open("w"):
            SystemTableStorage(store).push_graph_snapshot()
            ids = ["c1", "c2", "c3"]
            samples = pl.DataFrame({"clip_id": ids, "metaxy_provenance_by_field": [{"waveform": i} for i in ids]})
            store.write(Raw, samples)


def define_b() -> type[mx.BaseFeature]:
    class Transcript(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="audio/transcript", id_columns=["clip_id"], deps=["audio/raw"], fields=["text"]),
    ):
        __metaxy_project__ = "team_b"
        clip_id: str

    return Transcript


def main(workdir: Path) -> dict[str, int]:
    store = DuckDBMetadataStore(workdir / "shared.duckdb", auto_create_tables=True, name="shared")
    config_b = MetaxyConfig(project="team_b", metaxy_lock_path=str(workdir / "team_b" / "metaxy.lock"))
    project_a(store)

    with mx.FeatureGraph().use(), config_b.use():  # B, once: `mx lock`
        define_b()
        print("locked:", write_lock_file(store).added)

    with mx.FeatureGraph().use() as graph, config_b.use():  # B, a fresh process
        load_lock_file()
        transcript = define_b()
        with store.open("w"):
            increment = store.resolve_update(transcript)
            store.write(transcript, increment.new)
            counts = {"new": len(increment.new), "after_write": len(store.resolve_update(transcript).new)}
        print("audio/raw from", graph.get_feature_definition("audio/raw").source, counts)
        return counts


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
