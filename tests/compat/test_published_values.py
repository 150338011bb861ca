"""Definitions serialise and hash exactly as the published Metaxy library does, and the documented
behaviours of a few helpers (keys, ``FeatureDefinition.source``, ``FeatureDep.filters``,
``compute_provenance``, ``get_store_metadata``, ``PushResult``) hold.

The expected values come from the published Metaxy 0.1.11 (``FeatureSpec.model_dump(mode="json")``
and the static versions at truncation 8), copied here by value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import narwhals as nw
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import metaxy as mx
from metaxy.errors import FeatureNotFoundError
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.metadata_store import InMemoryMetadataStore, SystemTableStorage

_DEFAULT_MAPPING = {"mapping": {"type": "default", "match_suffix": False, "exclude_fields": []}}
_IDENTITY = {"relationship": {"type": "1:1"}}


def _dep(feature: str, **overrides: Any) -> dict[str, Any]:
    return {
        "feature": feature,
        "select": None,
        "rename": None,
        "fields_mapping": _DEFAULT_MAPPING,
        "sql_filters": None,
        "lineage": _IDENTITY,
        "optional": False,
        **overrides,
    }


def _spec(key: str, deps: list[dict[str, Any]], fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "key": key,
        "id_columns": ["video_id"],
        "deps": deps,
        "fields": fields,
        "metadata": {},
        "description": None,
    }


# key -> (feature_version, feature_spec_version, code_version, spec_json), as published
PUBLISHED: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "vec/raw": (
        "8fc8a4c0",
        "36b4fad9",
        "7441a985",
        _spec(
            "vec/raw",
            [],
            [{"key": "audio", "code_version": "1", "deps": []}, {"key": "frames", "code_version": "2", "deps": []}],
        ),
    ),
    "vec/transcript": (
        "dd5d01b6",
        "ace402f0",
        "e80a628c",
        _spec(
            "vec/transcript",
            [_dep("vec/raw")],
            [{"key": "text", "code_version": "3", "deps": [{"feature": "vec/raw", "fields": ["audio"]}]}],
        ),
    ),
    "vec/faces": (
        "4e82bb3c",
        "2e83a445",
        "8bc2725e",
        _spec(
            "vec/faces",
            [_dep("vec/raw", select=["raw_path"], rename={"path": "raw_path"}, sql_filters=["raw_path IS NOT NULL"])],
            [{"key": "boxes", "code_version": "1", "deps": []}],
        ),
    ),
    "vec/summary": (
        "b5718b55",
        "cf594989",
        "fd359803",
        _spec(
            "vec/summary",
            [_dep("vec/transcript"), _dep("vec/faces", optional=True)],
            [{"key": "default", "code_version": "__metaxy_initial__", "deps": []}],
        ),
    ),
}


def _published_graph() -> dict[str, type[mx.BaseFeature]]:
    class Raw(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="vec/raw",
            id_columns=["video_id"],
            fields=[mx.FieldSpec(key="audio", code_version="1"), mx.FieldSpec(key="frames", code_version="2")],
        ),
    ):
        """Raw videos."""

        video_id: str
        path: str

    class Transcript(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="vec/transcript",
            id_columns=["video_id"],
            deps=[Raw],
            fields=[mx.FieldSpec(key="text", code_version="3", deps=[mx.FieldDep(feature=Raw, fields=["audio"])])],
        ),
    ):
        video_id: str
        text: str

    class Faces(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="vec/faces",
            id_columns=["video_id"],
            deps=[
                mx.FeatureDep(
                    feature=Raw, select=("raw_path",), rename={"path": "raw_path"}, filters=["raw_path IS NOT NULL"]
                )
            ],
            fields=[mx.FieldSpec(key="boxes", code_version="1")],
        ),
    ):
        video_id: str

    class Summary(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="vec/summary",
            id_columns=["video_id"],
            deps=[mx.FeatureDep(feature=Transcript), mx.FeatureDep(feature=Faces, optional=True)],
            fields=["default"],
        ),
    ):
        video_id: str

    return {cls.spec().key.to_string(): cls for cls in (Raw, Transcript, Faces, Summary)}


@pytest.mark.parametrize("key", sorted(PUBLISHED))
def test_spec_dump_and_versions_equal_the_published_ones(graph: mx.FeatureGraph, key: str) -> None:
    feature = _published_graph()[key]
    feature_version, spec_version, code_version, spec_json = PUBLISHED[key]
    spec = feature.spec()
    assert spec.model_dump(mode="json") == spec_json
    assert (feature.feature_version(), spec.feature_spec_version, spec.code_version) == (
        feature_version,
        spec_version,
        code_version,
    )


def test_stored_spec_round_trips(graph: mx.FeatureGraph) -> None:
    """A spec read back from its JSON (as stores and metaxy.lock hold it) is the same spec."""
    for cls in _published_graph().values():
        spec = cls.spec()
        again = mx.FeatureSpec.model_validate(json.loads(json.dumps(spec.model_dump(mode="json"))))
        assert again == spec and again.feature_spec_version == spec.feature_spec_version


def test_flat_lineage_stored_by_older_versions_still_loads() -> None:
    dep = mx.FeatureDep.model_validate({"feature": "a/b", "lineage": {"type": "N:1", "on": ["g"]}})
    assert dep.lineage == mx.LineageRelationship.aggregation(on=["g"])
    assert dep.model_dump(mode="json")["lineage"] == {"relationship": {"type": "N:1", "on": ["g"]}}


def test_keys_dump_as_slash_strings_inside_models() -> None:
    dep = mx.FieldDep(feature=mx.FeatureKey(["a", "b", "c"]), fields=[mx.FieldKey("x/y")])
    assert dep.model_dump() == {"feature": "a/b/c", "fields": ["x/y"]}
    assert json.loads(dep.model_dump_json()) == {"feature": "a/b/c", "fields": ["x/y"]}
    assert mx.FeatureKey("a/b/c").model_dump() == "a/b/c"


def test_feature_dep_filters_are_parsed_expressions() -> None:
    dep = mx.FeatureDep(feature="a/b", filters=["score > 1", "name IS NOT NULL"])
    assert dep.sql_filters == ("score > 1", "name IS NOT NULL")
    assert all(isinstance(f, nw.Expr) for f in dep.filters) and len(dep.filters) == 2
    frame = nw.from_native(pl.DataFrame({"score": [0, 2, 3], "name": ["x", None, "z"]}))
    for expr in dep.filters:
        frame = frame.filter(expr)
    assert frame.to_native()["score"].to_list() == [3]
    assert mx.FeatureDep(feature="a/b", sql_filters=["score > 1"]).sql_filters == ("score > 1",)


def test_definition_source_falls_back_to_class_path_then_question_mark(graph: mx.FeatureGraph) -> None:
    raw = _published_graph()["vec/raw"]
    defn = mx.FeatureDefinition.from_feature_class(raw)
    assert defn.source == defn.feature_class_path and defn.source.endswith("Raw")
    stored = mx.FeatureDefinition.from_stored_data(raw.spec(), {}, None, project="p")
    assert stored.source == "?"
    assert mx.FeatureDefinition.from_stored_data(raw.spec(), {}, None, project="p", source="store dev").source == (
        "store dev"
    )
    external = mx.FeatureDefinition.external(spec=raw.spec(), project="other")
    assert external.source.endswith(f"{Path(__file__).name}:{_line_of('external = mx.FeatureDefinition.external')}")


def _line_of(text: str) -> int:
    return next(i for i, line in enumerate(Path(__file__).read_text().splitlines(), 1) if text in line)


def _two_features() -> tuple[type[mx.BaseFeature], type[mx.BaseFeature]]:
    class Up(mx.BaseFeature, spec=mx.FeatureSpec(key="cp/up", id_columns=["sid"], fields=["audio"])):
        sid: str

    class Down(mx.BaseFeature, spec=mx.FeatureSpec(key="cp/down", id_columns=["sid"], deps=[Up], fields=["audio"])):
        sid: str

    return Up, Down


def _joined(store: InMemoryMetadataStore, up: type[mx.BaseFeature]) -> pl.DataFrame:
    return (
        store.read(up)
        .collect()
        .to_polars()
        .select("sid", pl.col("metaxy_data_version_by_field").alias("metaxy_data_version_by_field__cp_up"))
        .sort("sid")
    )


@pytest.mark.parametrize(
    ("wrap", "expected_type"),
    [
        (lambda df: df, pl.DataFrame),
        (lambda df: df.lazy(), pl.LazyFrame),
        (lambda df: nw.from_native(df, eager_only=True), nw.DataFrame),
        (lambda df: nw.from_native(df.lazy()), nw.LazyFrame),
        (lambda df: df.to_pandas(), pd.DataFrame),
        (lambda df: df.to_arrow(), pa.Table),
    ],
    ids=["polars", "polars-lazy", "narwhals", "narwhals-lazy", "pandas", "arrow"],
)
def test_compute_provenance_returns_the_frame_type_given(
    graph: mx.FeatureGraph, wrap: Any, expected_type: type
) -> None:
    up, down = _two_features()
    store = InMemoryMetadataStore()
    with store.open("w"):
        samples = {"sid": ["a", "b"], "metaxy_provenance_by_field": [{"audio": "1"}, {"audio": "2"}]}
        store.write(up, pl.DataFrame(samples))
        expected = store.resolve_update(down).new.to_polars().sort("sid")
        result = store.compute_provenance(down, wrap(_joined(store, up)))
    assert type(result) is expected_type
    from metaxy.utils import collect_to_polars

    computed = collect_to_polars(result).sort("sid")
    assert computed["metaxy_provenance"].to_list() == expected["metaxy_provenance"].to_list()


def test_get_store_metadata_describes_the_store_queried_and_where_it_resolved(
    tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    up, _ = _two_features()
    lake = DuckDBMetadataStore(tmp_path / "lake.duckdb", auto_create_tables=True, name="lake")
    with lake.open("w"):
        lake.write(up, pl.DataFrame({"sid": ["a"], "metaxy_provenance_by_field": [{"audio": "1"}]}))
    main = InMemoryMetadataStore(name="main", fallback_stores=[lake])
    with main.open("r"):
        meta = main.get_store_metadata(up)
        with pytest.raises(FeatureNotFoundError, match="cp/down"):
            main.get_store_metadata("cp/down")
    assert meta["name"] == "main" and meta["display"] == main.display()
    resolved = meta["resolved_from"]
    assert isinstance(resolved, dict)
    assert resolved["name"] == "lake" and resolved["type"] == "metaxy.metadata_store.duckdb.DuckDBMetadataStore"
    assert resolved["display"] == lake.display()


def test_push_result_unpacks_like_a_tuple(tmp_path: Path, graph: mx.FeatureGraph) -> None:
    _two_features()
    store = DuckDBMetadataStore(tmp_path / "m.duckdb", auto_create_tables=True)
    with store.open("w"):
        project_version, already_pushed, updated = SystemTableStorage(store).push_graph_snapshot()
        again = SystemTableStorage(store).push_graph_snapshot()
    assert (already_pushed, updated) == (False, [])
    assert tuple(again) == (project_version, True, []) and again.project_version == project_version
