"""BaseFeature classes and class-less features (spec §2.2, §2.9)."""

from __future__ import annotations

import sys
import types

import pytest
from pydantic import ValidationError

import metaxy as mx
from metaxy.errors import FeatureDefinitionError
from metaxy.models.feature import detect_project


def test_instances_validate_id_columns(graph: mx.FeatureGraph) -> None:
    class Good(mx.BaseFeature, spec=mx.FeatureSpec(key="f/good", id_columns=["sid"])):
        sid: str

    class Bad(mx.BaseFeature, spec=mx.FeatureSpec(key="f/bad", id_columns=["sid", "other"])):
        sid: str
        path: str

    assert Good(sid="x").sid == "x"
    with pytest.raises(ValidationError, match=r"ID columns \['other'\].*Available fields: \['path', 'sid'\]"):
        Bad(sid="x", path="p")
    with pytest.raises(ValidationError):  # frozen + extra forbid by default
        Good(sid="x", unknown=1)  # type: ignore[call-arg]


def test_abstract_base_and_inheritance(graph: mx.FeatureGraph) -> None:
    class Base(mx.BaseFeature):
        sid: str

    class Child(Base, spec=mx.FeatureSpec(key="f/child", id_columns=["sid"])):
        path: str

    assert Base.is_abstract() and not Child.is_abstract()
    with pytest.raises(FeatureDefinitionError, match="abstract"):
        Base.spec()
    assert list(graph.features_by_key) == [mx.FeatureKey("f/child")]
    assert set(Child.model_fields) >= {"sid", "path", "metaxy_provenance_by_field", "metaxy_created_at"}
    assert Child.table_name() == "f__child"
    assert Child.feature_spec_version() == Child.spec().feature_spec_version


def test_spec_must_be_a_feature_spec(graph: mx.FeatureGraph) -> None:
    with pytest.raises(FeatureDefinitionError, match="FeatureSpec"):

        class Wrong(mx.BaseFeature, spec={"key": "x"}):
            pass


def test_project_detection(graph: mx.FeatureGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    class Explicit(mx.BaseFeature, spec=mx.FeatureSpec(key="f/explicit", id_columns=["id"])):
        __metaxy_project__ = "custom"
        id: str

    assert Explicit.metaxy_project() == "custom"
    pkg = types.ModuleType("mypkg_for_test")
    monkeypatch.setitem(sys.modules, "mypkg_for_test", pkg)
    assert detect_project("mypkg_for_test.features") == "mypkg_for_test"
    pkg.__metaxy_project__ = "declared"  # type: ignore[attr-defined]
    assert detect_project("mypkg_for_test.features") == "declared"
    pkg.__metaxy_project__ = 3  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="must be a string"):
        detect_project("mypkg_for_test.features")


def test_definition_from_class_fills_description(graph: mx.FeatureGraph) -> None:
    class Documented(mx.BaseFeature, spec=mx.FeatureSpec(key="f/doc", id_columns=["id"])):
        """A documented feature.

        With details.
        """

        id: str

    defn = graph.get_feature_definition("f/doc")
    assert defn.spec.description == "A documented feature.\n\nWith details."
    assert defn.feature_class_path is not None and defn.feature_class_path.endswith("Documented")
    assert defn.columns == ["id"] and defn.id_columns == ("id",) and defn.table_name == "f__doc"
    assert not defn.is_external
    with pytest.raises(ValueError, match="not external"):
        defn.has_provenance_override  # noqa: B018


def test_classless_feature_participates_like_a_class(graph: mx.FeatureGraph) -> None:
    import polars as pl

    class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="cl/raw", id_columns=["id"], fields=["audio"])):
        id: str

    d = mx.FeatureDefinition.from_spec(
        mx.FeatureSpec(key="cl/derived", id_columns=["id"], deps=[Raw], fields=["audio"]),
        {"id": pl.String, "score": pl.Float64, "n": int},
        project="p",
    )
    graph.add_feature_definition(d)
    assert sorted(d.columns) == ["id", "n", "score"]
    assert d.feature_schema["properties"]["score"]["type"] == "number"
    assert graph.get_feature_version("cl/derived")
    assert graph.get_downstream_features([Raw]) == [mx.FeatureKey("cl/derived")]


def test_from_stored_data_accepts_json_strings() -> None:
    spec = mx.FeatureSpec(key="st/a", id_columns=["id"])
    d = mx.FeatureDefinition.from_stored_data(
        spec.model_dump_json(), '{"properties": {"id": {"type": "string"}}}', "mod.A", "proj", source="store"
    )
    assert d.spec == spec and d.columns == ["id"] and d.source == "store"
    with pytest.raises(ValidationError, match="project"):
        mx.FeatureDefinition.from_stored_data(spec, {}, None, "")


def test_external_definition_records_call_site() -> None:
    d = mx.FeatureDefinition.external(spec=mx.FeatureSpec(key="ex/a", id_columns=["id"]), project="o")
    assert d.is_external and not d.has_provenance_override and d.on_version_mismatch == "warn"
    assert d.source is not None and "test_feature.py" in d.source
