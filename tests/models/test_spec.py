"""FeatureSpec, FeatureDep, FieldSpec, FieldDep, FieldsMapping, LineageRelationship (spec §2.3-§2.8)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import metaxy as mx
from metaxy import errors as mx_errors
from metaxy.errors import FilterParseError
from metaxy.models.keys import FieldKey


def test_id_columns_required_and_non_empty() -> None:
    with pytest.raises(ValidationError, match="id_columns"):
        mx.FeatureSpec(key="a")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="id_columns must be non-empty"):
        mx.FeatureSpec(key="a", id_columns=[])


def test_duplicate_field_keys() -> None:
    with pytest.raises(ValidationError, match="Duplicate field key found: x"):
        mx.FeatureSpec(key="a", id_columns=["id"], fields=["x", mx.FieldSpec(key="x", code_version="2")])


@pytest.mark.parametrize(
    "model",
    [
        lambda: mx.FeatureSpec(key="a", id_columns=["id"], nope=1),  # type: ignore[call-arg]  # deliberately invalid
        lambda: mx.FeatureDep(feature="a", nope=1),
        lambda: mx.FieldSpec(key="a", nope=1),  # type: ignore[call-arg]  # deliberately invalid
        lambda: mx.FieldDep(feature="a", nope=1),  # type: ignore[call-arg]  # deliberately invalid
    ],
)
def test_extra_inputs_forbidden(model: object) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model()  # type: ignore[operator]


def test_defaults_and_coercions() -> None:
    spec = mx.FeatureSpec(
        key="a/b",
        id_columns="id",
        deps=["u/one", mx.FeatureDep(feature="u/two")],
        fields=["x", {"key": "y", "code_version": 2}],
    )
    assert spec.id_columns == ("id",)
    assert [d.feature for d in spec.deps] == [mx.FeatureKey("u/one"), mx.FeatureKey("u/two")]
    assert [f.key for f in spec.fields] == [FieldKey("x"), FieldKey("y")]
    assert spec.fields_by_key[FieldKey("y")].code_version == "2"
    assert spec.fields_by_key[FieldKey("x")].code_version == "__metaxy_initial__"
    assert mx.FeatureSpec(key="a", id_columns=["id"]).fields == [mx.FieldSpec(key="default")]
    assert set(spec.deps_by_key) == {mx.FeatureKey("u/one"), mx.FeatureKey("u/two")}
    assert spec.table_name() == "a__b"
    dep = spec.deps[0]
    assert dep.select is None and dep.rename is None and dep.sql_filters is None and not dep.optional
    assert dep.filters == ()
    assert dep.lineage == mx.LineageRelationship.identity()
    assert dep.fields_mapping == mx.FieldsMapping.default()


def test_spec_is_frozen() -> None:
    spec = mx.FeatureSpec(key="a", id_columns=["id"])
    with pytest.raises(ValidationError):
        spec.key = mx.FeatureKey("b")  # type: ignore[misc]


def test_self_and_duplicate_deps_rejected() -> None:
    with pytest.raises(ValidationError, match="depends on itself"):
        mx.FeatureSpec(key="a", id_columns=["id"], deps=["a"])
    with pytest.raises(ValidationError, match="more than once"):
        mx.FeatureSpec(key="a", id_columns=["id"], deps=["b", "b"])


def test_feature_dep_select_rename_filters() -> None:
    dep = mx.FeatureDep(feature="u", select=["new"], rename={"old": "new"}, sql_filters=["new > 1"])
    assert dep.select == ("new",) and dep.sql_filters == ("new > 1",)
    assert dep.filter_expressions[0].columns == frozenset({"new"})
    assert mx.FeatureDep(feature="u", select=()).select == ()
    with pytest.raises(ValidationError, match="renames away"):
        mx.FeatureDep(feature="u", select=["old"], rename={"old": "new"})
    with pytest.raises((ValidationError, FilterParseError)):
        mx.FeatureDep(feature="u", filters=["x = 1; DROP TABLE t"])


def test_field_dep_all_and_bare_string() -> None:
    assert mx.FieldDep(feature="u").fields is mx.SpecialFieldDep.ALL
    assert mx.FieldDep(feature="u", fields="__METAXY_ALL_DEP__").fields is mx.SpecialFieldDep.ALL
    assert mx.FieldDep(feature="u", fields=["a", "b/c"]).fields == [FieldKey("a"), FieldKey("b/c")]
    with pytest.raises(ValidationError, match="bare string"):
        mx.FieldDep(feature="u", fields="audio")
    assert mx.FieldSpec(key="x", deps=mx.SpecialFieldDep.ALL).deps is mx.SpecialFieldDep.ALL


def test_fields_mapping_variants() -> None:
    up = [FieldKey("audio"), FieldKey("frames"), FieldKey("video/audio")]
    default = mx.FieldsMapping.default()
    assert default.resolve(FieldKey("audio"), up) == [FieldKey("audio")]
    assert default.resolve(FieldKey("nothing"), up) == up  # falls back to all
    suffix = mx.FieldsMapping.default(match_suffix=True)
    assert suffix.resolve(FieldKey("audio"), up) == [FieldKey("audio"), FieldKey("video/audio")]
    excl = mx.FieldsMapping.default(exclude_fields=["frames"])
    assert excl.resolve(FieldKey("nothing"), up) == [FieldKey("audio"), FieldKey("video/audio")]
    specific = mx.FieldsMapping.specific({"text": {"audio", "missing"}})
    assert specific.resolve(FieldKey("text"), up) == [FieldKey("audio")]
    assert specific.resolve(FieldKey("other"), up) == []
    assert mx.FieldsMapping.all().resolve(FieldKey("x"), up) == up
    assert mx.FieldsMapping.none().resolve(FieldKey("x"), up) == []
    assert specific.type is mx.FieldsMappingType.SPECIFIC


def test_lineage_constructors() -> None:
    assert mx.LineageRelationship.identity().type == "1:1"
    agg = mx.LineageRelationship.aggregation(on=["group"])
    assert agg.type == "N:1" and agg.on == ("group",) and agg.is_aggregation
    assert mx.LineageRelationship.aggregation().on is None
    exp = mx.LineageRelationship.expansion(on="video_id", id_generation_pattern="{video_id}_{i}")
    assert exp.is_expansion and exp.on == ("video_id",)
    with pytest.raises(ValidationError, match="needs `on`"):
        mx.LineageRelationship(type="1:N")  # type: ignore[call-arg]  # deliberately invalid


def _dep_strategy() -> st.SearchStrategy[mx.FeatureDep]:
    name = st.sampled_from(["a", "b", "c", "col_1"])
    return st.builds(
        mx.FeatureDep,
        feature=st.sampled_from(["up/one", "up/two"]),
        select=st.none() | st.lists(st.sampled_from(["x", "y"]), unique=True).map(tuple),
        filters=st.none() | st.lists(st.sampled_from(["x > 1", "y IS NULL", "a IN (1, 2)"]), max_size=2).map(tuple),
        fields_mapping=st.sampled_from(
            [
                mx.FieldsMapping.default(),
                mx.FieldsMapping.all(),
                mx.FieldsMapping.none(),
                mx.FieldsMapping.default(match_suffix=True, exclude_fields=["q"]),
                mx.FieldsMapping.specific({"f": ["g", "h"]}),
            ]
        ),
        lineage=st.sampled_from(
            [
                mx.LineageRelationship.identity(),
                mx.LineageRelationship.aggregation(on=["a"]),
                mx.LineageRelationship.expansion(on=["a"]),
            ]
        ),
        optional=st.booleans(),
        rename=st.none() | st.dictionaries(name, st.sampled_from(["r1", "r2"]), max_size=1),
    )


@settings(deadline=None)
@given(
    deps=st.lists(_dep_strategy(), max_size=2, unique_by=lambda d: d.feature),
    fields=st.lists(
        st.tuples(st.sampled_from(["f", "g", "a/b"]), st.sampled_from(["1", "2", "x"])),
        min_size=1,
        max_size=3,
        unique_by=lambda t: t[0],
    ),
    ids=st.lists(st.sampled_from(["id", "k2"]), min_size=1, unique=True),
)
def test_spec_serialisation_roundtrip(deps: list[mx.FeatureDep], fields: list[tuple[str, str]], ids: list[str]) -> None:
    spec = mx.FeatureSpec(
        key="down/f",
        id_columns=ids,
        deps=deps,
        fields=[mx.FieldSpec(key=k, code_version=c) for k, c in fields],
        metadata={"m": [1, "x"]},
    )
    again = mx.FeatureSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert again.feature_spec_version == spec.feature_spec_version
    assert mx.FeatureSpec.model_validate(spec.model_dump(mode="json")) == spec
    # the same spec gives the same versions in a graph rebuilt from its dump
    g1, g2 = mx.FeatureGraph(), mx.FeatureGraph()
    for g, s in ((g1, spec), (g2, again)):
        for up in ("up/one", "up/two"):
            g.add_feature_definition(
                mx.FeatureDefinition.from_spec(
                    mx.FeatureSpec(key=up, id_columns=["id"], fields=["f", "g", "h"]), {}, project="p"
                )
            )
        g.add_feature_definition(mx.FeatureDefinition.from_spec(s, {}, project="p"))
    try:
        v1 = g1.get_feature_version("down/f")
    except mx_errors.NoUpstreamFieldsError:
        with pytest.raises(mx_errors.NoUpstreamFieldsError):
            g2.get_feature_version("down/f")
        return
    assert g2.get_feature_version("down/f") == v1
