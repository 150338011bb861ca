"""FeatureGraph registration, planning errors, traversal and snapshots (spec §2.7, §2.10)."""

from __future__ import annotations

import pytest

import metaxy as mx
from metaxy.errors import (
    DuplicateFeatureError,
    FeatureGraphCycleError,
    FeatureNotInGraphError,
    FieldDependencyError,
    MetaxyMissingFeatureDependency,
    NoUpstreamFieldsError,
)
from metaxy.models.keys import FieldKey, FQFieldKey


def add(
    g: mx.FeatureGraph,
    key: str,
    deps: list[object] | None = None,
    fields: list[object] | None = None,
    project: str = "p",
) -> mx.FeatureDefinition:
    d = mx.FeatureDefinition.from_spec(
        mx.FeatureSpec(key=key, id_columns=["id"], deps=deps or [], fields=fields or ["default"]),
        {"id": str},
        project=project,
    )
    g.add_feature_definition(d)
    return d


def test_class_registers_in_active_graph_only(graph: mx.FeatureGraph) -> None:
    class A(mx.BaseFeature, spec=mx.FeatureSpec(key="reg/a", id_columns=["id"])):
        id: str

    assert graph.get_feature_class("reg/a") is A and A.graph is graph
    assert "reg/a" in graph and "reg/a" not in mx.graph
    assert mx.current_graph() is graph and mx.get_feature_by_key("reg/a").key == mx.FeatureKey("reg/a")


def test_use_restores_previous_graph() -> None:
    g1, g2 = mx.FeatureGraph(), mx.FeatureGraph()
    with g1.use():
        with g2.use():
            assert mx.current_graph() is g2
        assert mx.current_graph() is g1
    assert mx.current_graph() is mx.graph


def test_duplicate_key_different_class(graph: mx.FeatureGraph) -> None:
    class A(mx.BaseFeature, spec=mx.FeatureSpec(key="dup/a", id_columns=["id"])):
        id: str

    with pytest.raises(DuplicateFeatureError, match="already registered"):

        class B(mx.BaseFeature, spec=mx.FeatureSpec(key="dup/a", id_columns=["id"])):
            id: str

    assert graph.get_feature_class("dup/a") is A


def test_same_class_path_replaces_silently(graph: mx.FeatureGraph) -> None:
    for code in ("1", "2"):

        class A(
            mx.BaseFeature,
            spec=mx.FeatureSpec(key="re/a", id_columns=["id"], fields=[mx.FieldSpec(key="default", code_version=code)]),
        ):
            id: str

    assert graph.get_feature_definition("re/a").spec.fields[0].code_version == "2"


def test_external_rules(graph: mx.FeatureGraph) -> None:
    spec = mx.FeatureSpec(key="ext/x", id_columns=["id"])
    ext = mx.FeatureDefinition.external(spec=spec, project="other")
    graph.add_feature_definition(ext)
    assert graph.get_feature_definition("ext/x").is_external and graph.has_external_features
    real = add(graph, "ext/x", project="other")  # normal replaces external
    assert graph.get_feature_definition("ext/x") is real
    graph.add_feature_definition(ext)  # external vs existing normal: ignored
    assert graph.get_feature_definition("ext/x") is real
    with pytest.raises(DuplicateFeatureError, match="External feature"):
        g2 = mx.FeatureGraph()
        g2.add_feature_definition(ext)
        g2.add_feature_definition(mx.FeatureDefinition.external(spec=spec, project="third"))


def test_on_conflict_ignore(graph: mx.FeatureGraph) -> None:
    first = add(graph, "c/a")
    other = mx.FeatureDefinition.from_spec(mx.FeatureSpec(key="c/a", id_columns=["k"]), {}, project="q")
    graph.add_feature_definition(other, on_conflict="ignore")
    assert graph.get_feature_definition("c/a") is first
    with pytest.raises(DuplicateFeatureError):
        graph.add_feature_definition(other)


def test_unknown_key_lists_available(graph: mx.FeatureGraph) -> None:
    add(graph, "k/a")
    with pytest.raises(KeyError, match="k/a") as exc:
        graph.get_feature_definition("k/missing")
    assert isinstance(exc.value, FeatureNotInGraphError) and "Hint" in str(exc.value)
    with pytest.raises(FeatureNotInGraphError):
        graph.remove_feature("k/missing")


def test_missing_dependency_is_late_bound(graph: mx.FeatureGraph) -> None:
    add(graph, "late/down", deps=["late/up"])  # registering is fine
    with pytest.raises(MetaxyMissingFeatureDependency) as exc:
        graph.get_feature_version("late/down")
    assert "late/down" in str(exc.value) and "late/up" in str(exc.value)
    add(graph, "late/up")
    assert graph.get_feature_version("late/down")


def test_cycle_is_rejected_with_its_path(graph: mx.FeatureGraph) -> None:
    add(graph, "cy/a", deps=["cy/c"])
    add(graph, "cy/b", deps=["cy/a"])
    add(graph, "cy/c", deps=["cy/b"])
    with pytest.raises(FeatureGraphCycleError) as exc:
        graph.get_feature_version("cy/b")
    assert {str(k) for k in exc.value.cycle} == {"cy/a", "cy/b", "cy/c"}
    assert "->" in str(exc.value)
    with pytest.raises(FeatureGraphCycleError):
        graph.topological_sort_features()
    with pytest.raises(FeatureGraphCycleError):
        graph.validate()


def test_field_dep_errors(graph: mx.FeatureGraph) -> None:
    add(graph, "fd/up", fields=["audio"])
    add(graph, "fd/other")
    add(graph, "fd/not_a_dep", deps=["fd/up"], fields=[mx.FieldSpec(key="x", deps=[mx.FieldDep(feature="fd/other")])])
    add(
        graph,
        "fd/no_field",
        deps=["fd/up"],
        fields=[mx.FieldSpec(key="x", deps=[mx.FieldDep(feature="fd/up", fields=["video"])])],
    )
    with pytest.raises(FieldDependencyError, match="not a dependency"):
        graph.get_feature_plan("fd/not_a_dep")
    with pytest.raises(FieldDependencyError, match="video"):
        graph.get_feature_plan("fd/no_field")


def test_field_parent_resolution(graph: mx.FeatureGraph) -> None:
    add(graph, "v/raw", fields=["audio", "frames"])
    add(graph, "v/meta", fields=["audio", "size"])
    add(
        graph,
        "v/down",
        deps=["v/raw", "v/meta"],
        fields=[
            "audio",  # default mapping: the 'audio' field of both upstreams
            "other",  # no match anywhere: falls back to all fields of both
            mx.FieldSpec(key="explicit", deps=[mx.FieldDep(feature="v/raw", fields=["frames"])]),
            mx.FieldSpec(key="everything", deps=mx.SpecialFieldDep.ALL),
        ],
    )
    plan = graph.get_feature_plan("v/down")
    parents = {f.key.to_string(): [p.to_string() for p in f.parents] for f in plan.fields}
    assert parents["audio"] == ["v/meta.audio", "v/raw.audio"]
    assert parents["other"] == ["v/meta.audio", "v/meta.size", "v/raw.audio", "v/raw.frames"]
    assert parents["explicit"] == ["v/raw.frames"]
    assert parents["everything"] == parents["other"]
    assert [f.key.to_string() for f in plan.fields] == sorted(parents)
    assert [u.key.to_string() for u in plan.upstream] == ["v/raw", "v/meta"]


def test_no_upstream_fields(graph: mx.FeatureGraph) -> None:
    add(graph, "n/up")
    add(graph, "n/down", deps=[mx.FeatureDep(feature="n/up", fields_mapping=mx.FieldsMapping.none())])
    with pytest.raises(NoUpstreamFieldsError, match=r"n/down\.default"):
        graph.get_feature_version("n/down")


def test_topological_sort_is_deterministic(graph: mx.FeatureGraph) -> None:
    add(graph, "t/d", deps=["t/b", "t/c"])
    add(graph, "t/c", deps=["t/a"])
    add(graph, "t/b", deps=["t/a"])
    add(graph, "t/a")
    add(graph, "s/x")
    order = [k.to_string() for k in graph.topological_sort_features()]
    assert order == ["s/x", "t/a", "t/b", "t/c", "t/d"]
    assert graph.topological_sort_features(descending=True) == graph.topological_sort_features()[::-1]
    assert [k.to_string() for k in graph.topological_sort_features(["t/d", "t/b"])] == ["t/b", "t/d"]
    assert [k.to_string() for k in graph.get_downstream_features(["t/b"])] == ["t/d"]
    assert [k.to_string() for k in graph.get_downstream_features(["t/a"])] == ["t/b", "t/c", "t/d"]


def test_list_features_by_project(graph: mx.FeatureGraph) -> None:
    add(graph, "lp/a", project="one")
    add(graph, "lp/b", project="two")
    assert [k.to_string() for k in graph.list_features()] == ["lp/a", "lp/b"]
    assert [k.to_string() for k in graph.list_features("two")] == ["lp/b"]
    with mx.MetaxyConfig(project="one").use():
        assert [k.to_string() for k in graph.list_features()] == ["lp/a"]
        assert len(graph.list_features(only_current_project=False)) == 2
        assert graph.project == "one"
    with pytest.raises(RuntimeError, match="project"):
        graph.project  # noqa: B018


def test_snapshot_roundtrip(graph: mx.FeatureGraph) -> None:
    class Up(mx.BaseFeature, spec=mx.FeatureSpec(key="s/up", id_columns=["id"], fields=["audio", "frames"])):
        """Upstream doc."""

        id: str
        path: str

    class Down(mx.BaseFeature, spec=mx.FeatureSpec(key="s/down", id_columns=["id"], deps=[Up], fields=["audio"])):
        id: str

    snap = graph.to_snapshot()
    assert list(snap) == ["s/up", "s/down"]
    assert snap["s/up"]["feature_spec"]["description"] == "Upstream doc."
    rebuilt = mx.FeatureGraph.from_snapshot(snap)
    for key in ("s/up", "s/down"):
        assert rebuilt.get_feature_version(key) == graph.get_feature_version(key)
        assert rebuilt.get_definition_version(key) == graph.get_definition_version(key)
        assert rebuilt.get_feature_class(key) is None
    assert rebuilt.project_version == graph.project_version
    assert rebuilt.get_feature_definition("s/up").columns == ["id", "path"]
    assert graph.get_field_version(FQFieldKey("s/down", "audio")) == rebuilt.get_field_version(
        FQFieldKey("s/down", FieldKey("audio"))
    )
