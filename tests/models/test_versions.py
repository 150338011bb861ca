"""Static versions: the test vectors of spec §3.6 and the rules of §3.2."""

from __future__ import annotations

import hashlib

import pytest

import metaxy as mx
from metaxy.models.keys import FQFieldKey


def _feature(key: str, code: str = "1", deps: list[object] | None = None, **kw: object) -> mx.FeatureDefinition:
    spec = mx.FeatureSpec(
        key=key, id_columns=["id"], deps=deps or [], fields=[mx.FieldSpec(key="default", code_version=code)], **kw
    )
    return mx.FeatureDefinition.from_spec(spec, {"id": str}, project="p")


def test_single_feature_vector(graph: mx.FeatureGraph) -> None:
    graph.add_feature_definition(_feature("test/feature"))
    assert graph.get_field_version(FQFieldKey("test/feature", "default")) == "8bcff601"
    assert graph.get_feature_version("test/feature") == "d26937b1"
    assert graph.get_feature_version_by_field("test/feature") == {"default": "8bcff601"}


def test_vectors_match_plain_hashlib(graph: mx.FeatureGraph) -> None:
    field = hashlib.sha256(b"test/feature.default1").hexdigest()[:8]
    assert field == "8bcff601"
    assert hashlib.sha256(f"default{field}".encode()).hexdigest()[:8] == "d26937b1"


@pytest.mark.parametrize(
    ("key", "code", "expected"),
    [
        ("versioned/feature/test_v1", "1", "0833e931"),
        ("versioned/feature/test_v2", "2", "61dbe7b3"),
    ],
)
def test_versioned_vectors(graph: mx.FeatureGraph, key: str, code: str, expected: str) -> None:
    graph.add_feature_definition(_feature(key, code))
    assert graph.get_feature_version(key) == expected


def test_dependency_vectors(graph: mx.FeatureGraph) -> None:
    graph.add_feature_definition(_feature("test_deps/upstream"))
    graph.add_feature_definition(_feature("test_deps/downstream/with_deps", deps=["test_deps/upstream"]))
    graph.add_feature_definition(_feature("test_deps/downstream/no_deps"))
    assert graph.get_feature_version("test_deps/downstream/with_deps") == "aad886d8"
    assert graph.get_feature_version("test_deps/downstream/no_deps") == "53ba2566"


def test_class_based_features_give_the_same_vectors(graph: mx.FeatureGraph) -> None:
    class Up(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="test_deps/upstream", id_columns=["id"], fields=[mx.FieldSpec(key="default", code_version="1")]
        ),
    ):
        id: str

    class Down(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="test_deps/downstream/with_deps",
            id_columns=["id"],
            deps=[Up],
            fields=[mx.FieldSpec(key="default", code_version="1")],
        ),
    ):
        id: str

    assert Down.feature_version() == "aad886d8"
    assert Up.provenance_by_field() == {"default": graph.get_field_version(FQFieldKey("test_deps/upstream", "default"))}


def test_feature_version_ignores_non_lineage_spec_parts(graph: mx.FeatureGraph) -> None:
    base = _feature("a/b").spec
    other = mx.FeatureGraph()
    variant = base.model_copy(update={"id_columns": ("x", "y"), "metadata": {"m": 1}, "description": "d"})
    with other.use():
        other.add_feature_definition(mx.FeatureDefinition.from_spec(variant, {}, project="p"))
    graph.add_feature_definition(mx.FeatureDefinition.from_spec(base, {}, project="p"))
    assert graph.get_feature_version("a/b") == other.get_feature_version("a/b")
    # ... but the spec version and definition version do change
    assert base.feature_spec_version != variant.feature_spec_version


def test_upstream_code_change_propagates_only_through_field_lineage(graph: mx.FeatureGraph) -> None:
    def build(audio_code: str) -> dict[str, str]:
        g = mx.FeatureGraph()
        raw = mx.FeatureSpec(
            key="video/raw",
            id_columns=["id"],
            fields=[mx.FieldSpec(key="audio", code_version=audio_code), mx.FieldSpec(key="frames", code_version="1")],
        )
        transcript = mx.FeatureSpec(
            key="video/transcript",
            id_columns=["id"],
            deps=["video/raw"],
            fields=[mx.FieldSpec(key="text", deps=[mx.FieldDep(feature="video/raw", fields=["audio"])])],
        )
        faces = mx.FeatureSpec(key="video/faces", id_columns=["id"], deps=["video/raw"], fields=["frames"])
        for s in (raw, transcript, faces):
            g.add_feature_definition(mx.FeatureDefinition.from_spec(s, {}, project="p"))
        return {k: g.get_feature_version(k) for k in ("video/raw", "video/transcript", "video/faces")}

    v1, v2 = build("1"), build("2")
    assert v1["video/raw"] != v2["video/raw"]
    assert v1["video/transcript"] != v2["video/transcript"]
    assert v1["video/faces"] == v2["video/faces"]


def test_truncation_length_from_config(graph: mx.FeatureGraph) -> None:
    graph.add_feature_definition(_feature("test/feature"))
    with mx.MetaxyConfig(hash_truncation_length=16).use():
        assert (
            graph.get_feature_version("test/feature")
            == hashlib.sha256(
                ("default" + hashlib.sha256(b"test/feature.default1").hexdigest()[:16]).encode()
            ).hexdigest()[:16]
        )


def test_code_version_and_project_version(graph: mx.FeatureGraph) -> None:
    spec = mx.FeatureSpec(
        key="a",
        id_columns=["id"],
        fields=[mx.FieldSpec(key="y", code_version="2"), mx.FieldSpec(key="x", code_version="1")],
    )
    assert spec.code_version == hashlib.sha256(b"x1y2").hexdigest()[:8]
    assert graph.get_project_version("p") == "empty"
    d = mx.FeatureDefinition.from_spec(spec, {"id": str}, project="p")
    graph.add_feature_definition(d)
    pv = graph.get_project_version("p")
    assert pv == hashlib.sha256(("a" + d.feature_definition_version).encode()).hexdigest()[:8]
    # external features do not count towards the project version
    graph.add_feature_definition(mx.FeatureDefinition.external(spec=_feature("ext/f").spec, project="p"))
    assert graph.get_project_version("p") == pv
    assert graph.project_version == pv


def test_external_override(graph: mx.FeatureGraph) -> None:
    ext = mx.FeatureDefinition.external(
        spec=_feature("ext/up").spec, project="other", provenance_by_field={"default": "deadbeef"}
    )
    graph.add_feature_definition(ext)
    graph.add_feature_definition(_feature("mine/down", deps=["ext/up"]))
    assert graph.get_feature_version_by_field("ext/up") == {"default": "deadbeef"}
    expected_field = hashlib.sha256(b"mine/down.default1deadbeef").hexdigest()[:8]
    assert graph.get_feature_version_by_field("mine/down") == {"default": expected_field}
