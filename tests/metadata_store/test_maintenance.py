"""``MetadataStore.vacuum``, the contract's optional maintenance primitive: refused where not declared."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import StoreCapabilityError, StoreNotOpenError
from metaxy.ext.polars.handlers.delta import DeltaMetadataStore
from metaxy.models.constants import PROVENANCE_BY_FIELD


def test_a_store_without_maintenance_refuses_vacuum_with_a_typed_error() -> None:
    store = mx.InMemoryMetadataStore()
    assert not store.capabilities.maintenance
    with store.open("w"), pytest.raises(StoreCapabilityError, match="no maintenance operation"):
        store.vacuum()


def test_vacuum_needs_a_write_open_store_unless_it_is_a_dry_run(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="m/raw", id_columns=["sid"], fields=["a"])):
        sid: str

    store = DeltaMetadataStore(tmp_path / "lake")
    assert store.capabilities.maintenance
    with pytest.raises(StoreNotOpenError):
        store.vacuum()
    with store.open("w"):
        store.write(Raw, pl.DataFrame({"sid": ["x"], PROVENANCE_BY_FIELD: [{"a": "h"}]}))
        store.delete(Raw, "sid = 'x'", soft=False)  # the hard delete replaces the data file
    with store.open("r"):
        assert store.vacuum(Raw, retention_hours=0, dry_run=True) != []
        with pytest.raises(StoreNotOpenError, match="read mode"):
            store.vacuum(Raw, retention_hours=0)
    with store.open("w"):
        removed = store.vacuum(retention_hours=0)
        assert removed and store.vacuum(retention_hours=0, dry_run=True) == []
        assert store.read(Raw).collect().shape[0] == 0


def test_lancedb_vacuum_removes_the_files_no_version_needs_and_keeps_the_rows(
    tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    from metaxy.ext.lancedb import LanceDBMetadataStore

    class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="m/clip", id_columns=["sid"], fields=["a"])):
        sid: str

    store = LanceDBMetadataStore(tmp_path / "lance", auto_create_tables=True)
    assert store.capabilities.maintenance
    rows = pl.DataFrame({"sid": [f"s{i}" for i in range(6)], PROVENANCE_BY_FIELD: [{"a": f"h{i}"} for i in range(6)]})
    with store.open("w"):
        for k in range(3):  # three appends: three data files
            store.write(Clip, rows.slice(2 * k, 2))
        store.delete(Clip, "sid IN ('s0', 's1', 's2')", soft=False)
        with pytest.raises(StoreCapabilityError, match="no dry run"):
            store.vacuum(Clip, retention_hours=0, dry_run=True)
        assert store.vacuum(Clip, retention_hours=24) == []  # every version is younger than a day
        removed = store.vacuum(Clip, retention_hours=0)
        assert removed and all(f.endswith(".lance") for f in removed)
        assert store.vacuum(Clip, retention_hours=0) == []
        assert sorted(store.read(Clip).collect().to_polars()["sid"]) == ["s3", "s4", "s5"]
    with store.open("r"), pytest.raises(StoreNotOpenError, match="read mode"):
        store.vacuum(Clip, retention_hours=0)
