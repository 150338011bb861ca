"""The backend contract: layers point down, backends implement primitives and override no public
method, capabilities are data, and filters reach the delete primitive as the parsed AST."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import StoreCapabilityError
from metaxy.ext.clickhouse import ClickHouseMetadataStore
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.ext.lancedb import LanceDBMetadataStore
from metaxy.ext.polars.handlers.delta import DeltaMetadataStore
from metaxy.ext.polars.handlers.iceberg import IcebergMetadataStore
from metaxy.metadata_store.base import MetadataStore
from metaxy.metadata_store.contract import StoreBackend, StoreCapabilities
from metaxy.metadata_store.filters import narwhals_to_filter
from metaxy.models.filter_expression import FilterExpression

SRC = Path(mx.__file__).resolve().parent
BACKENDS = [
    mx.InMemoryMetadataStore,
    DuckDBMetadataStore,
    DeltaMetadataStore,
    ClickHouseMetadataStore,
    IcebergMetadataStore,
    LanceDBMetadataStore,
]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, lazily or not (``from . import x`` resolved to absolute names)."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    out: set[str] = set()
    tree = ast.parse(path.read_text())
    typing_only = {  # ``if TYPE_CHECKING:`` blocks import nothing at run time
        id(n) for block in ast.walk(tree) if _is_type_checking(block) for n in ast.walk(block)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            out.add(module)
            out |= {f"{module}.{alias.name}" for alias in node.names}
    return out


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _violations(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((SRC / folder).rglob("*.py")):
        bad = sorted(m for m in _imports(path) if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            found[str(path.relative_to(SRC))] = bad
    return found


@pytest.mark.parametrize("folder", ["models", "versioning"])
def test_models_and_versioning_import_no_higher_layer_nor_the_global_config(folder: str) -> None:
    forbidden = ("metaxy.metadata_store", "metaxy.cli", "metaxy.ext", "metaxy.config", "metaxy.external_features")
    assert _violations(folder, forbidden) == {}


def test_metadata_store_imports_neither_the_cli_nor_integrations() -> None:
    forbidden = ("metaxy.cli", "metaxy.ext.dagster", "metaxy.ext.ray", "metaxy.external_features")
    assert _violations("metadata_store", forbidden) == {}


def test_system_tables_and_contract_do_not_import_the_public_store_layer() -> None:
    for name in ("system.py", "contract.py", "_store_core.py"):
        imported = _imports(SRC / "metadata_store" / name)
        assert "metaxy.metadata_store.base" not in imported, name


@pytest.mark.parametrize("module", ["metaxy.metadata_store.system", "metaxy.metadata_store.contract"])
def test_a_layer_module_imports_alone(module: str) -> None:
    """Imported first, in a fresh interpreter: no import cycle to trip over."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def _lines(relative: str) -> int:
    return len((SRC / relative).read_text().splitlines())


def test_no_module_is_over_600_lines() -> None:
    sizes = {str(p.relative_to(SRC)): _lines(str(p.relative_to(SRC))) for p in SRC.rglob("*.py")}
    over = {p: n for p, n in sizes.items() if n > 600}
    assert over == {}


def _public_store_names() -> set[str]:
    names: set[str] = set()
    for cls in MetadataStore.__mro__:
        if cls.__module__.startswith("metaxy.metadata_store"):
            names |= {n for n in vars(cls) if not n.startswith("_")}
    return names - {"capabilities", "config_class"}  # declarations a backend is meant to set


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.__name__)
def test_no_backend_overrides_a_public_store_method(backend: type[MetadataStore]) -> None:
    public = _public_store_names()
    assert {"read", "write", "resolve_update", "delete", "list_features", "read_only"} <= public
    overridden = {
        f"{cls.__name__}.{name}"
        for cls in backend.__mro__
        if issubclass(cls, MetadataStore) and cls not in MetadataStore.__mro__
        for name in vars(cls)
        if name in public
    }
    assert overridden == set()


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.__name__)
def test_backends_implement_every_primitive_and_declare_capabilities(backend: type[MetadataStore]) -> None:
    required = {n for n in vars(StoreBackend) if getattr(getattr(StoreBackend, n), "__isabstractmethod__", False)}
    assert required == {
        "_open_backend",
        "_close_backend",
        "_list_tables",
        "_table_exists",
        "_drop",
        "_scan",
        "_append",
        "_delete_where",
    }
    assert not backend.__abstractmethods__
    caps = backend.capabilities
    assert isinstance(caps, StoreCapabilities)
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.native_resolve = True  # type: ignore[misc]


def test_capabilities_tell_the_backends_apart() -> None:
    duck, delta, memory = (
        DuckDBMetadataStore.capabilities,
        DeltaMetadataStore.capabilities,
        (mx.InMemoryMetadataStore.capabilities),
    )
    assert (duck.native_resolve, delta.native_resolve, memory.native_resolve) == (True, False, False)
    assert (duck.concurrency, delta.concurrency) == ("single_writer", "many_writers")
    assert (duck.content_digest, delta.content_digest, memory.content_digest) == (True, False, False)
    assert (duck.location, delta.location, memory.location) == (True, True, False)


def test_location_uri_is_asked_of_the_store(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    db = tmp_path / "m.duckdb"
    assert DuckDBMetadataStore(db).location_uri("video/raw") == str(db)
    delta = DeltaMetadataStore(tmp_path / "lake")
    assert delta.location_uri("video/raw") == str(tmp_path / "lake" / "video" / "raw.delta")
    assert mx.InMemoryMetadataStore().location_uri("video/raw") is None
    assert DuckDBMetadataStore(":memory:").location_uri("video/raw") is None


def test_narwhals_filters_parse_into_the_filter_ast() -> None:
    schema = pl.Schema({"sample_id": pl.String, "x": pl.Int64})
    cases = {
        "sample_id = 'a'": nw.col("sample_id") == "a",
        "x > 1 AND sample_id IN ('a', 'b')": (nw.col("x") > 1) & nw.col("sample_id").is_in(["a", "b"]),
        "NOT x IS NULL": ~nw.col("x").is_null(),
        "x >= 1 AND x <= 3": nw.col("x").is_between(1, 3),
    }
    for sql, expr in cases.items():
        assert narwhals_to_filter(expr, schema) == FilterExpression.parse(sql)


class _Recording(mx.InMemoryMetadataStore):
    """The in-memory store, recording what reaches its delete primitive."""

    seen: list[FilterExpression | None]

    def _delete_where(self, table: str, where: FilterExpression | None) -> int:
        self.seen = [*getattr(self, "seen", []), where]
        return super()._delete_where(table, where)


def _clip_store(graph: mx.FeatureGraph) -> tuple[_Recording, type[mx.BaseFeature]]:
    class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="contract/clip", id_columns=["sample_id"], fields=["audio"])):
        sample_id: str

    store = _Recording()
    rows = pl.DataFrame(
        {"sample_id": ["a", "b", "c"], "metaxy_provenance_by_field": [{"audio": v} for v in ("1", "2", "3")]}
    )
    with store.open("w"):
        store.write(Clip, rows)
    return store, Clip


def test_hard_delete_hands_the_primitive_one_parsed_filter(graph: mx.FeatureGraph) -> None:
    store, clip = _clip_store(graph)
    version = graph.get_feature_version(clip.spec().key)
    with store.open("w"):
        assert store.delete(clip, [nw.col("sample_id") == "a", "sample_id != 'zzz'"], soft=False) == 1
        assert store.delete(clip, None, soft=False, with_feature_history=True) == 2
    expected = FilterExpression.parse(
        f"sample_id = 'a' AND sample_id != 'zzz' AND metaxy_feature_version = '{version}'"
    )
    assert store.seen == [expected, None]


def test_hard_delete_refuses_a_filter_with_no_sql_form(graph: mx.FeatureGraph) -> None:
    store, clip = _clip_store(graph)
    with store.open("w"), pytest.raises(StoreCapabilityError, match=r"no SQL form.*Hint"):
        store.delete(clip, pl.col("sample_id") == "a", soft=False)
    with store:
        assert len(store.read(clip).collect()) == 3  # nothing was deleted
