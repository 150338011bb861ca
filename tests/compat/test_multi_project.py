"""Multi-project graphs: project A pushes its features to a shared DuckDB store; project B depends
on A's feature by key, without importing A's code, and resolves its increments."""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl
import pytest

import metaxy as mx
from metaxy.config import MetaxyConfig
from metaxy.errors import (
    ExternalFeatureVersionMismatchError,
    ExternalFeatureVersionMismatchWarning,
    FeatureNotFoundError,
    InvalidConfigError,
    InvalidStoredFeatureWarning,
    MetaxyMissingFeatureDependency,
    UnresolvedExternalFeatureWarning,
)
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.external_features import LOCK_FILE_HEADER, load_lock_file, write_lock_file
from metaxy.metadata_store import SystemTableStorage

pytestmark = pytest.mark.filterwarnings("ignore:Creating table")


def _push_project_a(store: DuckDBMetadataStore, code_version: str = "1", ids: tuple[str, ...] = ("s1", "s2")) -> str:
    """Project A: ``a/raw`` (root) and ``a/emb`` (depends on it); pushes definitions and rows."""
    graph = mx.FeatureGraph()
    with graph.use(), MetaxyConfig(project="proj_a").use():

        class Raw(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="a/raw", id_columns=["sid"], fields=[mx.FieldSpec(key="audio", code_version=code_version)]
            ),
        ):
            __metaxy_project__ = "proj_a"
            sid: str

        class Emb(mx.BaseFeature, spec=mx.FeatureSpec(key="a/emb", id_columns=["sid"], deps=[Raw], fields=["audio"])):
            __metaxy_project__ = "proj_a"
            sid: str

        with store.open("w"):
            SystemTableStorage(store).push_graph_snapshot()
            samples = pl.DataFrame({"sid": list(ids), "metaxy_provenance_by_field": [{"audio": f"h-{i}"} for i in ids]})
            store.write(Raw, samples)
            store.write(Emb, store.resolve_update(Emb).new)
        return graph.get_feature_version("a/raw")


def _define_project_b(upstream: str = "a/raw") -> type[mx.BaseFeature]:
    class Clips(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="b/clips", id_columns=["sid"], deps=[mx.FeatureDep(feature=upstream)], fields=["audio"]
        ),
    ):
        __metaxy_project__ = "proj_b"
        sid: str

    return Clips


@pytest.fixture
def store(tmp_path: Path) -> DuckDBMetadataStore:
    return DuckDBMetadataStore(tmp_path / "shared.duckdb", auto_create_tables=True, name="shared")


@pytest.fixture
def config_b(tmp_path: Path) -> MetaxyConfig:
    return MetaxyConfig(project="proj_b", metaxy_lock_path=str(tmp_path / "b" / "metaxy.lock"))


def test_b_resolves_increments_of_a_feature_it_never_imported(
    store: DuckDBMetadataStore, config_b: MetaxyConfig, graph: mx.FeatureGraph
) -> None:
    a_version = _push_project_a(store)
    clips = _define_project_b()
    with config_b.use(), store.open("w"):
        increment = store.resolve_update(clips)  # syncs a/raw from the store first
        assert sorted(increment.new.to_polars()["sid"].to_list()) == ["s1", "s2"]
        store.write(clips, increment.new)
        assert store.resolve_update(clips).is_empty
    loaded = graph.get_feature_definition("a/raw")
    assert (loaded.project, loaded.is_external, loaded.source) == ("proj_a", False, "store shared")
    assert graph.get_feature_version("a/raw") == a_version
    _push_project_a(store, ids=("s1", "s2", "s3"))  # A adds a sample: B sees it as new
    with config_b.use(), store.open("r"):
        assert store.resolve_update(clips).new.to_polars()["sid"].to_list() == ["s3"]


def test_with_sync_off_the_missing_upstream_is_an_error(
    store: DuckDBMetadataStore, config_b: MetaxyConfig, graph: mx.FeatureGraph
) -> None:
    _push_project_a(store)
    clips = _define_project_b()
    with (
        config_b.model_copy(update={"sync": False}).use(),
        store.open("r"),
        pytest.raises(MetaxyMissingFeatureDependency, match="a/raw"),
    ):
        store.resolve_update(clips)
    assert "a/raw" not in graph


def test_upstreams_of_a_synced_feature_come_along(
    store: DuckDBMetadataStore, config_b: MetaxyConfig, graph: mx.FeatureGraph
) -> None:
    _push_project_a(store)
    clips = _define_project_b("a/emb")
    with config_b.use():
        loaded = mx.sync_external_features(store)
        with store.open("r"):
            assert len(store.resolve_update(clips).new) == 2
    assert sorted(str(d.key) for d in loaded) == ["a/emb", "a/raw"]


def test_lock_file_pins_versions_and_locked_mode_refuses_a_newer_push(
    store: DuckDBMetadataStore, config_b: MetaxyConfig, graph: mx.FeatureGraph
) -> None:
    a_version = _push_project_a(store)
    _define_project_b()
    with config_b.use():
        first = write_lock_file(store)
        again = write_lock_file(store)
    assert (first.added, first.changed, again.changed, again.added) == (["a/raw"], True, False, [])
    text = config_b.lock_file.read_text()
    assert text.startswith(LOCK_FILE_HEADER) and a_version in text

    # a fresh process of B: the lock registers a/raw as an external stub with the locked version
    fresh = mx.FeatureGraph()
    with fresh.use(), config_b.use():
        assert load_lock_file() == [mx.FeatureKey("a/raw")]
        stub = fresh.get_feature_definition("a/raw")
        assert stub.is_external and stub.source == "metaxy.lock" and fresh.get_feature_version("a/raw") == a_version
        clips = _define_project_b()
        b_version = fresh.get_feature_version("b/clips")

        _push_project_a(store, code_version="2")  # A changes its code and pushes
        locked = config_b.model_copy(update={"locked": True})
        with locked.use(), store.open("r"), pytest.raises(ExternalFeatureVersionMismatchError, match="a/raw"):
            store.resolve_update(clips)
        assert fresh.get_feature_definition("a/raw").is_external  # nothing half-loaded
        assert fresh.get_feature_version("b/clips") == b_version

        with store.open("r"), pytest.warns(ExternalFeatureVersionMismatchWarning, match="expected " + a_version):
            store.resolve_update(clips)
        assert not fresh.get_feature_definition("a/raw").is_external
        assert fresh.get_feature_version("b/clips") != b_version

    with config_b.use():
        updated = write_lock_file(store, graph=fresh)
    assert (updated.updated, updated.changed) == ([("a/raw", False)], True)


def test_external_stub_on_version_mismatch_error(
    store: DuckDBMetadataStore, config_b: MetaxyConfig, graph: mx.FeatureGraph
) -> None:
    _push_project_a(store)
    spec = mx.FeatureSpec(key="a/raw", id_columns=["sid"], fields=["audio"])
    graph.add_feature_definition(
        mx.FeatureDefinition.external(
            spec=spec, project="proj_a", provenance_by_field={"audio": "00000000"}, on_version_mismatch="error"
        )
    )
    with config_b.use(), pytest.raises(ExternalFeatureVersionMismatchError, match="Version mismatch"):
        mx.sync_external_features(store)
    with config_b.use(), pytest.warns(ExternalFeatureVersionMismatchWarning):
        mx.sync_external_features(store, on_version_mismatch="warn")
    assert not graph.get_feature_definition("a/raw").is_external


def test_an_external_feature_nobody_pushed_warns(
    store: DuckDBMetadataStore, config_b: MetaxyConfig, graph: mx.FeatureGraph
) -> None:
    _push_project_a(store)
    spec = mx.FeatureSpec(key="z/nowhere", id_columns=["sid"])
    graph.add_feature_definition(mx.FeatureDefinition.external(spec=spec, project="proj_z"))
    with config_b.use(), pytest.warns(UnresolvedExternalFeatureWarning, match="z/nowhere"):
        assert mx.sync_external_features(store) == []


def test_extra_features_setting_loads_unreferenced_features(
    store: DuckDBMetadataStore, config_b: MetaxyConfig, graph: mx.FeatureGraph
) -> None:
    _push_project_a(store)
    with config_b.model_copy(update={"extra_features": [{"projects": ["proj_a"]}]}).use(), warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = mx.sync_external_features(store)
    assert sorted(str(d.key) for d in loaded) == ["a/emb", "a/raw"]
    with (
        config_b.model_copy(update={"extra_features": [{"nonsense": 1}]}).use(),
        pytest.raises(InvalidConfigError, match="extra_features"),
    ):
        mx.sync_external_features(store)


def test_lock_errors(store: DuckDBMetadataStore, config_b: MetaxyConfig, graph: mx.FeatureGraph) -> None:
    _push_project_a(store)
    _define_project_b("a/never_pushed")
    with MetaxyConfig().use(), pytest.raises(InvalidConfigError, match="no project is configured"):
        write_lock_file(store)
    with config_b.use(), pytest.raises(FeatureNotFoundError, match="a/never_pushed") as caught:
        write_lock_file(store)
    assert caught.value.keys == [mx.FeatureKey("a/never_pushed")]
    assert not config_b.lock_file.exists()


def test_malformed_lock_file(tmp_path: Path, config_b: MetaxyConfig, graph: mx.FeatureGraph) -> None:
    config_b.lock_file.parent.mkdir(parents=True)
    config_b.lock_file.write_text("features = [")
    with pytest.raises(InvalidConfigError, match="not valid TOML"):
        load_lock_file(config_b)
    config_b.lock_file.write_text('[features."a/raw".info]\nversion = "x"\n')
    with pytest.raises(InvalidConfigError, match="entry 'a/raw' is malformed"):
        load_lock_file(config_b)
    assert "a/raw" not in graph


def test_init_loads_the_lock_file(
    tmp_path: Path, store: DuckDBMetadataStore, config_b: MetaxyConfig, graph: mx.FeatureGraph
) -> None:
    a_version = _push_project_a(store)
    _define_project_b()
    with config_b.use():
        write_lock_file(store)
    (tmp_path / "b" / "metaxy.toml").write_text('project = "proj_b"\n')
    fresh = mx.FeatureGraph()
    with fresh.use():
        mx.init(tmp_path / "b" / "metaxy.toml")
        assert fresh.get_feature_definition("a/raw").is_external
        assert fresh.get_feature_version("a/raw") == a_version


def test_two_projects_example_runs(tmp_path: Path) -> None:
    import runpy

    example = Path(__file__).resolve().parents[2] / "examples" / "two_projects.py"
    main = runpy.run_path(str(example))["main"]
    assert main(tmp_path) == {"new": 3, "after_write": 0}
    assert (tmp_path / "team_b" / "metaxy.lock").read_text().startswith(LOCK_FILE_HEADER)


def test_an_unreadable_pushed_definition_is_skipped_with_a_warning(
    store: DuckDBMetadataStore, config_b: MetaxyConfig, graph: mx.FeatureGraph
) -> None:
    import duckdb

    _push_project_a(store)
    with duckdb.connect(str(store.database)) as conn:  # a row written by a broken (or future) pusher
        (table,) = [name for (name,) in conn.sql("SHOW TABLES").fetchall() if name.endswith("feature_versions")]
        conn.execute(f"UPDATE \"{table}\" SET feature_spec = '{{\"key\": 5' WHERE feature_key = 'a/emb'")
    selection = {"extra_features": [{"projects": ["proj_a"]}]}
    with config_b.model_copy(update=selection).use(), pytest.warns(InvalidStoredFeatureWarning) as caught:
        loaded = mx.sync_external_features(store)
    assert [str(d.key) for d in loaded] == ["a/raw"]
    (message,) = [str(w.message) for w in caught if w.category is InvalidStoredFeatureWarning]
    assert "'a/emb'" in message and "proj_a" in message and message.endswith("with this metaxy version.")
