"""``IcebergMetadataStore`` specifics: catalog and warehouse, Iceberg types, schema evolution,
lazy scans, hard deletes as Iceberg row filters, config, pickling, concurrent writer processes
and killed writers. Shared store semantics live in ``tests/conformance``."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from test_delta_store import _big_feature, _counter_feature, _endless_frame

import metaxy as mx
from metaxy.config import MetaxyConfig
from metaxy.errors import MetadataSchemaError, StoreCapabilityError
from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore, IcebergMetadataStoreConfig
from metaxy.frames import collect_to_polars
from metaxy.metadata_store.system import SystemTableStorage
from metaxy.models.constants import DELETED_AT, FEATURE_VERSION, PROVENANCE_BY_FIELD, UPDATED_AT
from metaxy.models.filter_expression import FilterExpression
from metaxy.testing.conformance_support import define_video_features, id_set, rows, samples
from metaxy.testing.processes import run_together

ICEBERG_TYPE = "metaxy.ext.polars.handlers.iceberg.IcebergMetadataStore"


def _clip() -> type[mx.BaseFeature]:
    class Clip(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="media/clips/raw", id_columns=["sample_id"], fields=["default"]),
    ):
        sample_id: str

    return Clip


# --- catalog and warehouse -------------------------------------------------------------------------


def test_a_local_warehouse_gets_a_sqlite_catalog_and_one_table_per_feature(
    tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    clip = _clip()
    store = IcebergMetadataStore(tmp_path / "wh")
    with store.open("w"):
        store.write(clip, samples(["a"]))
        SystemTableStorage(store).push_graph_snapshot()
        assert store.list_features() == [mx.FeatureKey("media/clips/raw")]
        assert store.table_identifier(clip) == "metaxy.media__clips__raw"
        location = store.location_uri(clip)
    assert (tmp_path / "wh" / "catalog.db").is_file()
    assert location is not None and location.endswith("media__clips__raw")
    assert list((tmp_path / "wh").rglob("*.parquet"))
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("metaxy", uri=f"sqlite:///{tmp_path / 'wh' / 'catalog.db'}")
    assert sorted(catalog.list_tables("metaxy")) == [
        ("metaxy", "media__clips__raw"),
        ("metaxy", "metaxy_system__feature_versions"),
    ]


def test_namespace_and_catalog_properties_are_used(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    props = {"uri": f"sqlite:///{tmp_path / 'elsewhere.db'}"}
    store = IcebergMetadataStore(tmp_path / "wh", namespace="team", catalog_properties=props)
    with store.open("w"):
        store.write(clip, samples(["a", "b"]))
    assert (tmp_path / "elsewhere.db").is_file()
    assert not (tmp_path / "wh" / "catalog.db").exists()
    with store:
        assert id_set(store.read(clip)) == {"a", "b"}
        assert store.table_identifier(clip) == "team.media__clips__raw"


def test_reading_a_fresh_warehouse_lists_nothing(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    store = IcebergMetadataStore(tmp_path / "fresh", auto_create_namespace=False)
    with store:
        assert store.list_features() == []
        assert not store.has_feature(_clip())


def test_bad_settings_are_rejected_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"needs a catalog.*Hint:"):
        IcebergMetadataStore("s3://bucket/prefix")
    with pytest.raises(ValueError, match=r"Invalid Iceberg namespace.*Hint:"):
        IcebergMetadataStore(tmp_path, namespace="a..b")


def test_an_unreachable_catalog_is_a_backend_error(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    from metaxy.errors import BackendError

    store = IcebergMetadataStore(tmp_path, catalog_properties={"uri": "sqlite:////no/such/dir/catalog.db"})
    with pytest.raises(BackendError, match=r"(?s)catalog.*Hint:"), store.open("w"):
        pass


# --- types and schema ----------------------------------------------------------------------------


def test_struct_map_and_timestamp_columns_round_trip(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    vf = define_video_features()
    store = IcebergMetadataStore(tmp_path)
    tags = pl.Series([[("k", "v")], []], dtype=pl.List(pl.Struct({"key": pl.String, "value": pl.String})))
    with store.open("w"):
        store.write(
            vf.video,
            samples(["a", "b"], ["audio", "frames"]).with_columns(tags=tags.cast(pl.Map(pl.String, pl.String))),
        )
        df = collect_to_polars(store.read(vf.video)).sort("sample_id")
    assert df.schema[PROVENANCE_BY_FIELD] == pl.Struct({"audio": pl.String, "frames": pl.String})
    assert df.schema["tags"] == pl.Map(pl.String, pl.String)
    assert df.schema[UPDATED_AT] == pl.Datetime("us", "UTC")
    assert df.schema[DELETED_AT] == pl.Datetime("us", "UTC")
    assert df[PROVENANCE_BY_FIELD].to_list()[0] == {"audio": "audio:a:v1", "frames": "frames:a:v1"}
    assert df["tags"].to_list()[0] == [{"key": "k", "value": "v"}] or df["tags"].to_list()[0] == {"k": "v"}


def test_types_iceberg_lacks_are_stored_as_their_closest_type_and_can_be_written_again(
    tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    clip = _clip()
    store = IcebergMetadataStore(tmp_path)
    frame = samples(["a", "b"]).with_columns(
        label=pl.Series(["x", "y"], dtype=pl.Categorical),
        small=pl.Series([1, 2], dtype=pl.Int8),
        count=pl.Series([1, 2], dtype=pl.UInt32),
        seen=pl.Series([datetime(2024, 1, 1, tzinfo=UTC)] * 2, dtype=pl.Datetime("ns", "Europe/Berlin")),
        note=pl.lit(None),
    )
    with store.open("w"):
        store.write(clip, frame)
        store.write(clip, frame.with_columns(note=pl.lit(None)))  # still Null-typed: takes the stored type
        df = collect_to_polars(store.read(clip, with_sample_history=True))
    assert df.height == 4
    assert (df.schema["label"], df.schema["small"], df.schema["count"]) == (pl.String, pl.Int32, pl.Int64)
    assert (df.schema["seen"], df.schema["note"]) == (pl.Datetime("us", "UTC"), pl.String)
    assert set(df["seen"].to_list()) == {datetime(2024, 1, 1, tzinfo=UTC)}


def test_a_type_iceberg_cannot_store_is_rejected_before_writing(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = IcebergMetadataStore(tmp_path)
    with store.open("w"):
        with pytest.raises(MetadataSchemaError, match=r"'took'.*Hint:"):
            store.write(clip, samples(["a"]).with_columns(took=pl.duration(seconds=1)))
        assert not store.has_feature(clip)


def test_a_later_write_with_new_columns_evolves_the_schema(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = IcebergMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, samples(["a"]))
        store.write(clip, samples(["b"], score=[0.5]))
        store.write(clip, samples(["c"]))  # without the new column again
        got = {r["sample_id"]: r["score"] for r in rows(store.read(clip), ["sample_id", "score"])}
        schemas = store._load(store._table(clip.spec().key)).schemas()
    assert got == {"a": None, "b": 0.5, "c": None}
    assert len(schemas) == 2  # one schema change, committed by Iceberg


def test_reads_are_lazy_scans_with_the_version_filter_pushed_down(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = IcebergMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, samples(["a"]))
        native = store.read(clip).to_native()
    assert isinstance(native, pl.LazyFrame)
    plan = native.explain()
    scan = plan[plan.index("SCAN") :]
    assert "SELECTION" in scan
    assert f'col("{FEATURE_VERSION}")' in scan[scan.index("SELECTION") :]


# --- hard deletes --------------------------------------------------------------------------------


def test_hard_delete_removes_the_rows_and_counts_them(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = IcebergMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, samples(["a", "b", "c"]))
        store.write(clip, samples(["d"]))
        assert store.delete(clip, "sample_id = 'b'", soft=False) == 1
        assert store.delete(clip, "sample_id = 'zzz'", soft=False) == 0
        assert store.delete(clip, "sample_id = 'd'", soft=False) == 1  # a whole data file
        assert id_set(store.read(clip, with_sample_history=True, include_soft_deleted=True)) == {"a", "c"}
        assert store.delete(clip, None, soft=False) == 2
        assert store.has_feature(clip)
        assert collect_to_polars(store.read(clip)).height == 0
        store.write(clip, samples(["e"]))
        assert id_set(store.read(clip)) == {"e"}


_NULLS = [
    "score > 1",
    "NOT (score > 1)",
    "score IS NULL OR sample_id = 'b'",
    "NOT (score IN (1, 2))",
    "score NOT IN (1, NULL)",
    "score BETWEEN 1 AND 2",
    "NOT (score BETWEEN 1 AND 2) AND sample_id LIKE 'a%'",
    "sample_id NOT LIKE 'b%'",
    "flag",
    "NOT flag",
    "TRUE",
    "NOT (flag OR score = 3)",
]


@pytest.mark.parametrize("condition", _NULLS)
def test_hard_delete_follows_sql_null_logic_like_the_polars_reference(
    tmp_path: Path, graph: mx.FeatureGraph, condition: str
) -> None:
    clip = _clip()
    frame = samples(["a", "a2", "b", "c", "d"]).with_columns(
        score=pl.Series([1, None, 2, 3, None], dtype=pl.Int64),
        flag=pl.Series([True, None, False, True, None]),
    )
    store = IcebergMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, frame)
        expected = set(frame.filter(~FilterExpression(condition).to_polars().fill_null(False))["sample_id"])
        deleted = store.delete(clip, condition, soft=False, with_feature_history=True)
        assert id_set(store.read(clip, with_sample_history=True)) == expected
    assert deleted == frame.height - len(expected)


def test_a_filter_without_an_iceberg_form_is_a_capability_error(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = IcebergMetadataStore(tmp_path)
    with store.open("w"):
        store.write(clip, samples(["a"], score=[1.0]))
        for condition in ("score * 2 > 1", "sample_id LIKE '%a'", "sample_id ILIKE 'A%'"):
            with pytest.raises(StoreCapabilityError, match=r"Iceberg row-filter form.*Hint:"):
                store.delete(clip, condition, soft=False)
        assert id_set(store.read(clip)) == {"a"}


# --- pickling and configuration ------------------------------------------------------------------


def test_a_pickled_store_reads_the_same_data(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    store = IcebergMetadataStore(tmp_path, namespace="lake", name="lake")
    with store.open("w"):
        store.write(clip, samples(["a", "b"]))
        copy = pickle.loads(pickle.dumps(store))
    assert (copy.warehouse, copy.namespace, copy.name) == (store.warehouse, "lake", "lake")
    with copy:
        assert id_set(copy.read(clip)) == {"a", "b"}


def test_store_is_built_from_metaxy_toml(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    clip = _clip()
    config_file = tmp_path / "metaxy.toml"
    config_file.write_text(
        f"""
store = "lake"

[stores.lake]
type = "{ICEBERG_TYPE}"

[stores.lake.config]
warehouse = "{(tmp_path / "lake").as_posix()}"
namespace = "features"
hash_algorithm = "xxhash64"

[stores.lake.config.catalog_properties]
uri = "sqlite:///{(tmp_path / "cat.db").as_posix()}"
"s3.secret-access-key" = "not-shown-anywhere-1"
"""
    )
    config = MetaxyConfig.load(config_file)
    store = config.get_store("lake")
    assert isinstance(store, IcebergMetadataStore)
    assert (store.namespace, store.hash_algorithm.value) == ("features", "xxhash64")
    assert IcebergMetadataStore.config_model() is IcebergMetadataStoreConfig
    assert "not-shown-anywhere-1" not in repr(config) + repr(store) + store.display()
    with store.open("w"):
        store.write(clip, samples(["a"]))
    assert (tmp_path / "cat.db").is_file()


def test_importing_the_store_module_does_not_import_pyiceberg() -> None:
    code = (
        "import sys, metaxy, metaxy.ext.polars, metaxy.ext.polars.handlers.iceberg; "
        "assert 'pyiceberg' not in sys.modules, 'pyiceberg was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_pyiceberg_names_the_extra(
    tmp_path: Path, graph: mx.FeatureGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyiceberg", None)
    store = IcebergMetadataStore(tmp_path)
    with pytest.raises(ImportError, match=r"pip install 'metaxy\[iceberg\]'"), store.open("r"):
        pass


# --- concurrent and killed writers ---------------------------------------------------------------

N_WRITERS = 4
APPENDS_PER_WRITER = 20


def _append_rows(root: str, props: dict[str, str] | None, writer: int, appends: int, start: Any) -> None:
    """One writer process: its own store on the shared warehouse and catalog, one-row appends."""
    with mx.FeatureGraph().use():
        feature = _counter_feature()
        store = IcebergMetadataStore(root, catalog_properties=props)
        start.wait()
        with store.open("w"):
            for seq in range(appends):
                frame = pl.DataFrame({"writer": [writer], "seq": [seq], PROVENANCE_BY_FIELD: [{"default": "h"}]})
                store.write(feature, frame)


def run_concurrent_writers(root: str, props: dict[str, str] | None, writers: int, appends: int) -> pl.DataFrame:
    """``writers`` processes append ``appends`` one-row commits each; returns every stored row."""
    run_together(_append_rows, [(root, props, w, appends) for w in range(writers)])
    with mx.FeatureGraph().use(), IcebergMetadataStore(root, catalog_properties=props) as store:
        return collect_to_polars(store.read(_counter_feature(), with_sample_history=True))


def test_concurrent_writer_processes_lose_no_rows(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    df = run_concurrent_writers(str(tmp_path), None, N_WRITERS, APPENDS_PER_WRITER)
    assert df.height == N_WRITERS * APPENDS_PER_WRITER
    assert df.select("writer", "seq").n_unique() == N_WRITERS * APPENDS_PER_WRITER


def _write_forever(root: str, props: dict[str, str] | None, started: Any) -> None:
    with mx.FeatureGraph().use():
        feature = _big_feature()
        store = IcebergMetadataStore(root, catalog_properties=props)
        with store.open("w"):
            store.write(feature, _endless_frame(started))


def small_data_files(store: IcebergMetadataStore, feature: Any) -> None:
    """Make streamed appends write a data file every ~1 MB (the kill then finds files written)."""
    table = store._load(store._table(store._key(feature)))
    with table.transaction() as txn:
        txn.set_properties({"write.target-file-size-bytes": str(1024 * 1024)})


def kill_a_writer_mid_stream(root: str, props: dict[str, str] | None, data_files: Any) -> None:
    """Start a writer of an endless frame, wait until it has written data files, SIGKILL it."""
    before = data_files()
    ctx = mp.get_context("spawn")
    started = ctx.Event()
    writer = ctx.Process(target=_write_forever, args=(root, props, started))
    writer.start()
    try:
        assert started.wait(timeout=120), "the writer never got going"
        deadline = time.monotonic() + 60
        while not data_files() - before and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        writer.kill()
        writer.join(timeout=30)
    assert writer.exitcode == -9
    assert data_files() - before, "the killed write had put no data files in the warehouse"


def test_a_killed_writer_leaves_no_visible_rows(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    feature = _big_feature()
    store = IcebergMetadataStore(tmp_path)
    seed = pl.DataFrame({"sample_id": [-1, -2], PROVENANCE_BY_FIELD: [{"default": "s"}] * 2})
    with store.open("w"):
        store.write(feature, seed)
        small_data_files(store, feature)
    kill_a_writer_mid_stream(str(tmp_path), None, lambda: set(tmp_path.rglob("*.parquet")))
    with store.open("w"):
        assert id_set(store.read(feature, with_sample_history=True)) == {-1, -2}
        store.write(feature, seed.with_columns(pl.col("sample_id") - 10))  # the table still takes writes
        assert id_set(store.read(feature)) == {-1, -2, -11, -12}
