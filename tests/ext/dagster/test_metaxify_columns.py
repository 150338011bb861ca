"""Column schema and column lineage that metaxify derives from features (spec §12.1-§12.2)."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest
from pydantic import Field

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.models.definition import FeatureDefinition


def _enrich(feature: str, **kwargs: Any) -> dg.AssetSpec:
    spec: dg.AssetSpec = mxd.metaxify(**kwargs)(dg.AssetSpec("x", metadata={"metaxy/feature": feature}))
    return spec


def _schema(spec: dg.AssetSpec) -> dict[str, dg.TableColumn]:
    return {c.name: c for c in spec.metadata["dagster/column_schema"].columns}


def _lineage(spec: dg.AssetSpec) -> dict[str, list[tuple[str, str]]]:
    lineage = spec.metadata["dagster/column_lineage"]
    return {
        col: [(d.asset_key.to_user_string(), d.column_name) for d in deps]
        for col, deps in lineage.deps_by_column.items()
    }


@pytest.fixture
def typed(graph: mx.FeatureGraph) -> dict[str, type[mx.BaseFeature]]:
    class Up(mx.BaseFeature, spec=mx.FeatureSpec(key="col/up", id_columns=["id"])):
        id: str
        text: str = Field(description="The transcript text.")
        score: float
        labels: list[str]
        extra: dict[str, Any]
        maybe: int | None = None
        old_name: str

    class Down(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="col/down", id_columns=["id"], deps=[mx.FeatureDep(feature=Up, rename={"old_name": "new_name"})]
        ),
    ):
        id: str
        text: str
        new_name: str
        computed: int

    return {"up": Up, "down": Down}


def test_column_schema_types_descriptions_and_order(typed: dict[str, Any]) -> None:
    columns = _schema(_enrich("col/up"))
    names = list(columns)
    first_system = next(i for i, n in enumerate(names) if n.startswith("metaxy_"))
    assert names[0] == "id", "id columns first"
    assert all(n.startswith("metaxy_") for n in names[first_system:]), "system columns last"
    assert names[1:first_system] == ["text", "score", "labels", "extra", "maybe", "old_name"], "declaration order"
    types = {name: col.type for name, col in columns.items() if not name.startswith("metaxy_")}
    assert types == {
        "id": "str",
        "text": "str",
        "score": "float",
        "labels": "list[str]",
        "extra": "dict[str, Any]",
        "maybe": "int",
        "old_name": "str",
    }
    assert columns["text"].description == "The transcript text."
    assert columns["score"].description is None
    assert columns["metaxy_provenance_by_field"].type == "dict[str, str]"
    assert "provenance" in (columns["metaxy_provenance_by_field"].description or "")
    assert columns["metaxy_created_at"].type == "datetime (UTC)"
    assert columns["metaxy_materialization_id"].type == "str"
    assert "dagster/column_schema" not in _enrich("col/up", inject_column_schema=False).metadata


def test_user_schema_columns_win(typed: dict[str, Any]) -> None:
    user = dg.TableSchema(columns=[dg.TableColumn("text", "markdown", description="mine"), dg.TableColumn("zz")])
    spec = mxd.metaxify(dg.AssetSpec("x", metadata={"metaxy/feature": "col/up", "dagster/column_schema": user}))
    columns = _schema(spec)
    assert (columns["text"].type, columns["text"].description) == ("markdown", "mine")
    assert "zz" in columns and "score" in columns
    assert list(columns).index("zz") < list(columns).index("metaxy_provenance"), "user columns before system ones"


def test_lineage_of_ids_renames_and_pass_through(typed: dict[str, Any]) -> None:
    lineage = _lineage(_enrich("col/down"))
    assert lineage["id"] == [("col/up", "id")]
    assert lineage["text"] == [("col/up", "text")]
    assert lineage["new_name"] == [("col/up", "old_name")]
    assert "computed" not in lineage
    for system in ("metaxy_provenance", "metaxy_provenance_by_field", "metaxy_data_version"):
        assert lineage[system] == [("col/up", system)]
    assert list(lineage) == sorted(lineage)
    assert "dagster/column_lineage" not in _enrich("col/up").metadata  # a root feature has none
    assert "dagster/column_lineage" not in _enrich("col/down", inject_column_lineage=False).metadata


def test_user_lineage_is_appended(typed: dict[str, Any]) -> None:
    user = dg.TableColumnLineage(deps_by_column={"computed": [dg.TableColumnDep(dg.AssetKey("side"), "n")]})
    spec = mxd.metaxify(dg.AssetSpec("x", metadata={"metaxy/feature": "col/down", "dagster/column_lineage": user}))
    assert _lineage(spec)["computed"] == [("side", "n")]
    assert _lineage(spec)["id"] == [("col/up", "id")]


def test_lineage_of_aggregation_and_expansion(graph: mx.FeatureGraph) -> None:
    class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="agg/events", id_columns=["event_id"])):
        event_id: str
        user_id: str

    class PerUser(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="agg/per_user",
            id_columns=["user_id"],
            deps=[mx.FeatureDep(feature=Events, lineage=mx.LineageRelationship.aggregation(on=["user_id"]))],
        ),
    ):
        user_id: str
        events: int

    class Video(mx.BaseFeature, spec=mx.FeatureSpec(key="exp/video", id_columns=["video_id"])):
        video_id: str

    class Chunk(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="exp/chunk",
            id_columns=["video_id", "chunk_id"],
            deps=[mx.FeatureDep(feature=Video, lineage=mx.LineageRelationship.expansion(on=["video_id"]))],
        ),
    ):
        video_id: str
        chunk_id: str

    assert _lineage(_enrich("agg/per_user"))["user_id"] == [("agg/events", "user_id")]
    assert "events" not in _lineage(_enrich("agg/per_user"))
    chunk = _lineage(_enrich("exp/chunk"))
    assert chunk["video_id"] == [("exp/video", "video_id")]
    assert "chunk_id" not in chunk


def test_lineage_with_two_upstreams(graph: mx.FeatureGraph) -> None:
    class A(mx.BaseFeature, spec=mx.FeatureSpec(key="two/a", id_columns=["id"])):
        id: str
        value_a: int

    class B(mx.BaseFeature, spec=mx.FeatureSpec(key="two/b", id_columns=["id"])):
        id: str
        value_b: int

    class C(mx.BaseFeature, spec=mx.FeatureSpec(key="two/c", id_columns=["id"], deps=[A, B])):
        id: str
        value_a: int
        value_b: int

    lineage = _lineage(_enrich("two/c"))
    assert lineage["id"] == [("two/a", "id"), ("two/b", "id")]
    assert lineage["value_a"] == [("two/a", "value_a")]
    assert lineage["value_b"] == [("two/b", "value_b")]
    assert len(lineage["metaxy_provenance"]) == 2


def test_classless_and_external_features(graph: mx.FeatureGraph) -> None:
    spec = mx.FeatureSpec(key="cl/plain", id_columns=["id"])
    graph.add_feature_definition(FeatureDefinition.from_spec(spec, {"id": str, "n": int}, project="test"))
    columns = _schema(_enrich("cl/plain"))
    assert (columns["id"].type, columns["n"].type) == ("str", "int")
    assert columns["metaxy_provenance"].type == "str"

    external = FeatureDefinition.external(spec=mx.FeatureSpec(key="cl/external", id_columns=["id"]), project="other")
    graph.add_feature_definition(external)
    enriched = _enrich("cl/external")
    assert "dagster/column_schema" not in enriched.metadata
    assert enriched.tags["metaxy/project"] == "other"
    with pytest.raises(ImportError, match="external feature 'cl/external'"):
        mxd.build_column_schema("cl/external")
