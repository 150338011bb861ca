"""metaxify on ``@asset`` and ``AssetSpec``: call forms, keys, deps, versions, tags, attributes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import latest_metadata, root_rows, step_order

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.errors import FeatureNotInGraphError
from metaxy.ext.dagster.errors import MetaxyDagsterError

Features = dict[str, type[mx.BaseFeature]]
UP = dg.AssetKey(["test", "upstream"])
DOWN = dg.AssetKey(["test", "downstream"])


def _spec(asset: dg.AssetsDefinition) -> dg.AssetSpec:
    (spec,) = asset.specs
    return spec


def _upstream_asset(**metaxify_kwargs: Any) -> dg.AssetsDefinition:
    @mxd.metaxify(**metaxify_kwargs)
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def upstream() -> None: ...

    return upstream


# --- call forms --------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["bare", "parens", "class", "key_string", "feature_key", "spec_metadata"])
def test_every_call_form_links_the_feature(features: Features, form: str) -> None:
    metadata = {"metaxy/feature": "test/upstream"} if form in ("bare", "parens", "spec_metadata") else {}

    @dg.asset(metadata=metadata)
    def plain() -> None: ...

    enriched: Any
    if form == "bare":
        enriched = mxd.metaxify(plain)
    elif form == "parens":
        enriched = mxd.metaxify()(plain)
    elif form == "class":
        enriched = mxd.metaxify(feature=features["upstream"])(plain)
    elif form == "key_string":
        enriched = mxd.metaxify(feature="test/upstream")(plain)
    elif form == "feature_key":
        enriched = mxd.metaxify(feature=mx.FeatureKey("test/upstream"))(plain)
    else:
        enriched = mx.metaxify(plain)  # the lazy alias on the metaxy package
    assert enriched.key == UP
    assert _spec(enriched).metadata["metaxy/feature"] == "test/upstream"
    assert "metaxy" in _spec(enriched).kinds


def test_feature_argument_must_agree_with_metadata(features: Features) -> None:
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def asset() -> None: ...

    assert mxd.metaxify(feature=features["upstream"])(asset).key == UP  # agreeing is fine
    with pytest.raises(MetaxyDagsterError, match=r"contradicts.*test/upstream.*Hint"):
        mxd.metaxify(feature="test/downstream")(asset)


def test_unknown_feature_raises_the_graph_lookup_error(features: Features) -> None:
    with pytest.raises(FeatureNotInGraphError, match="test/nope"):
        _ = mxd.metaxify(dg.AssetSpec("x", metadata={"metaxy/feature": "test/nope"}))


def test_unsupported_object_and_option_errors(features: Features) -> None:
    with pytest.raises(TypeError, match="cannot enrich a str"):
        mxd.metaxify("not an asset")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="Cannot specify both `key`"):
        mxd.metaxify(key="a", key_prefix="b")


def test_asset_without_feature_is_unchanged(features: Features) -> None:
    @dg.asset(tags={"team": "x"})
    def plain() -> None: ...

    enriched = mxd.metaxify(plain)
    assert enriched.key == dg.AssetKey("plain")
    assert _spec(enriched).kinds == set()
    assert _spec(enriched).tags == {"team": "x"}
    assert mxd.metaxify(key_prefix="pre")(plain).key == dg.AssetKey(["pre", "plain"])


# --- keys --------------------------------------------------------------------------------------


def test_key_resolution(graph: mx.FeatureGraph, features: Features) -> None:
    assert _upstream_asset().key == UP
    assert _upstream_asset(key="custom").key == dg.AssetKey("custom")
    assert _upstream_asset(key=["a", "b"]).key == dg.AssetKey(["a", "b"])
    assert _upstream_asset(key_prefix=["p", "q"]).key == dg.AssetKey(["p", "q", "test", "upstream"])

    class Named(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="test/named", id_columns=["id"], metadata={"dagster/attributes": {"asset_key": "a/b"}}),
    ):
        id: str

    assert mxd.metaxify(dg.AssetSpec("x", metadata={"metaxy/feature": "test/named"})).key == dg.AssetKey(["a/b"])


def test_key_prefix_applies_to_deps_on_features_not_yet_metaxified(features: Features) -> None:
    @mxd.metaxify(key_prefix="prefix")
    @dg.asset(metadata={"metaxy/feature": "test/downstream"})
    def downstream() -> None: ...

    assert downstream.key == dg.AssetKey(["prefix", "test", "downstream"])
    assert [d.asset_key for d in _spec(downstream).deps] == [dg.AssetKey(["prefix", "test", "upstream"])]


@pytest.mark.parametrize(
    ("upstream_kwargs", "expected"),
    [({"key_prefix": "lake"}, ["lake", "test", "upstream"]), ({"key": "renamed_up"}, ["renamed_up"])],
)
def test_deps_and_lineage_follow_a_renamed_upstream(
    features: Features, upstream_kwargs: dict[str, Any], expected: list[str]
) -> None:
    """G10: deps and column lineage point at the key the upstream asset really has."""
    upstream = _upstream_asset(**upstream_kwargs)

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/downstream"})
    def downstream() -> None: ...

    assert upstream.key == dg.AssetKey(expected)
    spec = _spec(downstream)
    assert [d.asset_key for d in spec.deps] == [upstream.key]
    lineage = spec.metadata["dagster/column_lineage"]
    assert {dep.asset_key for deps in lineage.deps_by_column.values() for dep in deps} == {upstream.key}


# --- deps and execution order (G20) -------------------------------------------------------------


def test_feature_deps_added_user_deps_kept_and_winning(features: Features) -> None:
    mapping = dg.LastPartitionMapping()

    @mxd.metaxify
    @dg.asset(
        metadata={"metaxy/feature": "test/downstream"},
        deps=[dg.AssetDep("regular"), dg.AssetDep(UP, partition_mapping=mapping)],
    )
    def downstream() -> None: ...

    deps = {d.asset_key: d for d in _spec(downstream).deps}
    assert list(deps) == [UP, dg.AssetKey("regular")]  # generated deps first
    assert deps[UP].partition_mapping == mapping  # the user's dep replaces the generated one


def test_feature_deps_order_steps_within_one_run(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    """G20: the downstream step (sorting first by name) waits for the upstream one."""

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"})
    def z_upstream() -> mxd.MetaxyOutput:
        return root_rows(["a", "b", "c"])

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/downstream"})
    def a_downstream(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        with store:
            new = store.resolve_update(features["downstream"]).new.to_polars()
        return new.with_columns(doubled=pl.col("value") * 2)

    assert set(a_downstream.keys_by_input_name.values()) == {UP}
    result = dg.materialize([a_downstream, z_upstream], resources=resources, instance=instance)
    assert step_order(result) == ["z_upstream", "a_downstream"]
    assert latest_metadata(instance, DOWN)["dagster/row_count"] == 3


def test_metaxified_asset_with_ins_and_a_plain_downstream(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @dg.asset(io_manager_key="memory")
    def raw_number() -> int:
        return 42

    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"}, ins={"number": dg.AssetIn("raw_number")})
    def upstream(number: int) -> mxd.MetaxyOutput:
        return root_rows(["a", "b"], value=[number, number + 1])

    @dg.asset(deps=[upstream], io_manager_key="memory")
    def report() -> str:
        return "done"

    assert next(iter(_spec(upstream).deps)).asset_key == dg.AssetKey("raw_number")
    assert [d.asset_key for d in _spec(report).deps] == [UP]
    result = dg.materialize(
        [report, upstream, raw_number],
        resources={**resources, "memory": dg.InMemoryIOManager()},
        instance=instance,
    )
    assert step_order(result) == ["raw_number", "upstream", "report"]
    assert latest_metadata(instance, UP)["dagster/row_count"] == 2


# --- code version, description, kinds, tags, info ---------------------------------------------


def test_code_version_is_the_feature_version(features: Features) -> None:
    cv = features["upstream"].feature_version()  # folds in upstream field versions (Unsynced follows metaxy)
    downstream = dg.AssetSpec("downstream", metadata={"metaxy/feature": "test/downstream"})
    assert mxd.metaxify(downstream).code_version == f"metaxy:{features['downstream'].feature_version()}"
    assert _spec(_upstream_asset()).code_version == f"metaxy:{cv}"
    assert _spec(_upstream_asset(inject_code_version=False)).code_version is None

    @dg.asset(code_version="v1.0.0", metadata={"metaxy/feature": "test/upstream"})
    def versioned() -> None: ...

    once = mxd.metaxify(versioned)
    assert _spec(once).code_version == f"v1.0.0,metaxy:{cv}"
    assert _spec(mxd.metaxify(once)).code_version == f"v1.0.0,metaxy:{cv}"  # idempotent
    assert _spec(mxd.metaxify(inject_code_version=False)(versioned)).code_version == "v1.0.0"


def test_description(graph: mx.FeatureGraph, features: Features) -> None:
    assert _spec(_upstream_asset()).description == "Upstream feature with a value per sample."
    assert _spec(_upstream_asset(set_description=False)).description is None

    @dg.asset(description="mine", metadata={"metaxy/feature": "test/upstream"})
    def described() -> None: ...

    assert _spec(mxd.metaxify(described)).description == "mine"

    class Undocumented(mx.BaseFeature, spec=mx.FeatureSpec(key="test/undocumented", id_columns=["id"])):
        id: str

    assert mxd.metaxify(dg.AssetSpec("u", metadata={"metaxy/feature": "test/undocumented"})).description is None


def test_kinds_tags_and_info(features: Features) -> None:
    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "test/upstream"}, kinds={"python", "duckdb"}, tags={"team": "audio"})
    def upstream() -> None: ...

    spec = _spec(upstream)
    assert spec.kinds == {"python", "duckdb", "metaxy"}
    assert spec.tags["team"] == "audio"
    assert spec.tags["metaxy/feature"] == "test__upstream"
    assert spec.tags["metaxy/project"] == features["upstream"].metaxy_project()
    assert "metaxy" not in _spec(_upstream_asset(inject_metaxy_kind=False)).kinds
    metaxy_entries = {k: v for k, v in spec.metadata.items() if k.startswith("metaxy/")}
    assert metaxy_entries == {  # short, typed entries instead of the published `metaxy/info` blob
        "metaxy/feature": "test/upstream",
        "metaxy/feature_version": features["upstream"].feature_version(),
        "metaxy/code_version": features["upstream"].spec().code_version,
        "metaxy/project": features["upstream"].metaxy_project(),
    }
    assert mxd.build_feature_info_metadata("test/upstream")["feature"]["spec"]["key"] == "test/upstream"  # still there


# --- dagster/attributes (G6) --------------------------------------------------------------------


def test_feature_attributes_override_scalars_and_merge_collections(graph: mx.FeatureGraph) -> None:
    attributes = {
        "group_name": "my_group",
        "owners": ["team:audio"],
        "tags": {"team": "x"},
        "metadata": {"source": "feature"},
        "kinds": ["parquet"],
        "deps": ["extra_dep"],
        "code_version": "attr1",
    }

    class Attributed(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="test/attributed", id_columns=["id"], metadata={"dagster/attributes": attributes}),
    ):
        id: str

    @mxd.metaxify
    @dg.asset(
        metadata={"metaxy/feature": "test/attributed", "mine": 1},
        group_name="original_group",
        tags={"own": "y"},
        deps=["own_dep"],
    )
    def attributed() -> None: ...

    spec = _spec(attributed)
    assert spec.group_name == "my_group"
    assert spec.owners == ["team:audio"]
    assert spec.tags["team"] == "x" and spec.tags["own"] == "y"
    assert spec.tags["metaxy/feature"] == "test__attributed"  # not clobbered by the feature's tags
    assert spec.metadata["source"] == "feature" and spec.metadata["mine"] == 1
    assert spec.metadata["metaxy/feature"] == "test/attributed"
    assert spec.kinds == {"parquet", "metaxy"}
    assert {d.asset_key for d in spec.deps} == {dg.AssetKey("own_dep"), dg.AssetKey("extra_dep")}
    assert spec.code_version == f"attr1,metaxy:{Attributed.feature_version()}"


def test_bad_attributes_are_reported(graph: mx.FeatureGraph) -> None:
    class NotADict(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="test/bad", id_columns=["id"], metadata={"dagster/attributes": ["group"]}),
    ):
        id: str

    class Unknown(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="test/unknown", id_columns=["id"], metadata={"dagster/attributes": {"colour": 1}}),
    ):
        id: str

    with pytest.raises(ValueError, match=r"test/bad.*expected dict"):
        mxd.metaxify(dg.AssetSpec("b", metadata={"metaxy/feature": "test/bad"}))
    with pytest.raises(ValueError, match=r"unknown attributes \['colour'\].*Hint"):
        mxd.metaxify(dg.AssetSpec("u", metadata={"metaxy/feature": "test/unknown"}))


# --- AssetSpec ---------------------------------------------------------------------------------


def test_bare_asset_spec(features: Features) -> None:
    spec = mxd.metaxify(dg.AssetSpec("whatever", metadata={"metaxy/feature": "test/downstream"}, tags={"a": "b"}))
    assert isinstance(spec, dg.AssetSpec)
    assert spec.key == DOWN
    assert [d.asset_key for d in spec.deps] == [UP]
    assert spec.tags["a"] == "b" and "metaxy" in spec.kinds
    plain = dg.AssetSpec("plain")
    assert mxd.metaxify(plain) == plain
    specs = mxd.metaxify([dg.AssetSpec("u", metadata={"metaxy/feature": "test/upstream"}), plain])
    assert [s.key for s in specs] == [UP, plain.key]


def test_external_spec_is_read_through_the_io_manager(
    features: Features, resources: dict[str, Any], instance: dg.DagsterInstance, store: mx.MetadataStore
) -> None:
    with store.open("w"):
        store.write(features["upstream"], root_rows(["a", "b"]))
    external = mxd.metaxify(dg.AssetSpec("ext", metadata={"metaxy/feature": "test/upstream"}))
    external = external.with_io_manager_key("metaxy_io")

    @dg.asset(ins={"up": dg.AssetIn(key=external.key)}, io_manager_key="memory")
    def count_rows(up: Any) -> int:
        return len(up.collect())

    result = dg.materialize(
        [external, count_rows],
        resources={"metaxy_io": resources["io_manager"], "memory": dg.InMemoryIOManager()},
        instance=instance,
        selection=[count_rows.key],
    )
    assert result.output_for_node("count_rows") == 2


# --- public Dagster API only (G17) --------------------------------------------------------------


def test_integration_uses_no_private_dagster_constructors() -> None:
    source = Path(mxd.__file__).parent
    text = "\n".join(p.read_text() for p in source.glob("*.py"))
    assert "dagster_internal_init" not in text
    assert "get_attributes_dict" not in text
    assert "from dagster._" not in text and "import dagster._" not in text
