"""Golden test: the SQL executor (DuckDB) and the Polars executor produce identical increments.

Hypothesis draws a graph (1-3 upstreams: optional deps, renames, selects, filters, aggregation
lineage, several fields, explicit field deps), a history of upstream writes, overrides, soft
deletes and downstream writes, then resolves the downstream with ``versioning_engine="native"``
(one SQL statement) and ``"polars"`` on the same DuckDB store and with the in-memory store, and
asserts the three results are equal: columns, order, dtypes and values.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import metaxy as mx
from metaxy.ext.duckdb import DuckDBMetadataStore
from metaxy.metadata_store import InMemoryMetadataStore

IDS = ["a", "b", "c", "d", "e"]
GROUPS = ["g1", "g2"]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n_up = draw(st.integers(1, 3))
    lineage = draw(st.sampled_from(["identity", "identity", "aggregation"]))
    ups = []
    for i in range(n_up):
        fields = draw(st.lists(st.sampled_from(["audio", "frames", "text"]), min_size=1, max_size=3, unique=True))
        ups.append(
            {
                "key": f"up{i}",
                "fields": fields,
                "optional": draw(st.booleans()),
                "rename": draw(st.booleans()),
                "select": draw(st.sampled_from([None, (), ("val",)])),
                "filter": draw(st.sampled_from([None, "val > 1", "val IS NOT NULL"])),
                "lineage": lineage,
            }
        )
    down_fields = draw(st.lists(st.sampled_from(["audio", "frames", "summary"]), min_size=1, max_size=3, unique=True))
    events = draw(
        st.lists(
            st.one_of(
                st.tuples(
                    st.just("write"),
                    st.integers(0, n_up - 1),
                    st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True),
                    st.integers(0, 3),
                    st.booleans(),
                ),
                st.tuples(st.just("delete"), st.integers(0, n_up - 1), st.sampled_from(IDS)),
                st.tuples(st.just("downstream"), st.floats(0, 1)),
            ),
            min_size=1,
            max_size=8,
        )
    )
    predicate = draw(st.sampled_from([None, "note = 'redo'"]))
    map_mode = draw(st.booleans())
    return {"ups": ups, "down_fields": down_fields, "events": events, "predicate": predicate, "map": map_mode}


def build_graph(sc: dict[str, Any]) -> tuple[list[type[mx.BaseFeature]], type[mx.BaseFeature]]:
    ups: list[type[mx.BaseFeature]] = []
    for u in sc["ups"]:
        spec = mx.FeatureSpec(key=u["key"], id_columns=["sid"], fields=u["fields"])
        ups.append(type(u["key"], (mx.BaseFeature,), {"__annotations__": {"sid": str}}, spec=spec))
    deps = []
    for i, u in enumerate(sc["ups"]):
        agg = u["lineage"] == "aggregation"
        # later upstreams rename their user columns to avoid collisions (aggregations also their ids)
        rename = {"val": f"val_{i}", "grp": f"grp_{i}"} if (u["rename"] or i > 0) else None
        if rename and agg:
            rename = {"val": f"val_{i}", "sid": f"sid_{i}"}
        select = u["select"]
        if select == ("val",):
            select = ((rename or {}).get("val", "val"),)
        filt = u["filter"]
        if filt and rename:
            filt = filt.replace("val", rename["val"])
        lineage = mx.LineageRelationship.aggregation(on=["grp"]) if agg else mx.LineageRelationship.identity()
        deps.append(
            mx.FeatureDep(
                feature=u["key"],
                rename=rename,
                select=select if lineage.is_identity else None,
                filters=[filt] if filt else None,
                optional=u["optional"],
                lineage=lineage,
            )
        )
    agg = any(u["lineage"] == "aggregation" for u in sc["ups"])
    fields: list[Any] = []
    for f in sc["down_fields"]:
        if f == "summary":
            fields.append(mx.FieldSpec(key=f, code_version="2", deps=mx.SpecialFieldDep.ALL))
        else:
            fields.append(mx.FieldSpec(key=f, code_version="1"))
    ids = ["grp"] if agg else ["sid"]
    spec = mx.FeatureSpec(key="down", id_columns=ids, deps=deps, fields=fields)
    down = type("down", (mx.BaseFeature,), {"__annotations__": {c: str for c in ids}}, spec=spec)
    return ups, down


def upstream_frame(u: dict[str, Any], ids: list[str], salt: int, override: bool) -> pl.DataFrame:
    prov = [{f: ("" if (salt == 3 and f == "text") else f"{f}-{i}-{salt}") for f in u["fields"]} for i in ids]
    data: dict[str, Any] = {
        "sid": ids,
        "grp": [GROUPS[IDS.index(i) % 2] for i in ids],
        "val": [None if salt == 0 else IDS.index(i) + salt for i in ids],
        "metaxy_provenance_by_field": prov,
    }
    if override:
        data["metaxy_data_version_by_field"] = [
            {f: (f"dv-{i}" if j % 2 else None) for f in u["fields"]} for j, i in enumerate(ids)
        ]
    return pl.DataFrame(data, schema_overrides={"val": pl.Int64})


def play(store: Any, sc: dict[str, Any], ups: list[type[mx.BaseFeature]], down: type[mx.BaseFeature]) -> None:
    with store.open("w"):
        for u, cls in zip(sc["ups"], ups, strict=True):
            store.write(cls, upstream_frame(u, IDS[:2], 1, False))
        for ev in sc["events"]:
            if ev[0] == "write":
                _, i, ids, salt, override = ev
                store.write(ups[i], upstream_frame(sc["ups"][i], ids, salt, override))
            elif ev[0] == "delete":
                _, i, sid = ev
                store.delete(ups[i], f"sid = '{sid}'")
            else:
                inc = store.resolve_update(down, versioning_engine="polars")
                new = inc.new.to_polars()
                new = new.sort(
                    [c for c, t in new.schema.items() if not isinstance(t, pl.Struct | pl.Map)], nulls_last=True
                )
                # one row per downstream id, as a user reduces an aggregation's rows before writing
                new = new.unique(subset=list(down.spec().id_columns), keep="first", maintain_order=True)
                keep = new.head(round(ev[1] * new.height))
                keep = keep.with_columns(pl.lit("redo").alias("note"))
                if keep.height:
                    store.write(down, keep)


def resolve(store: Any, down: type[mx.BaseFeature], engine: str, predicate: str | None) -> dict[str, pl.DataFrame]:
    with store.open("r"):
        inc = store.resolve_update(down, versioning_engine=engine, staleness_predicates=predicate)
        frames = {"new": inc.new.to_polars(), "stale": inc.stale.to_polars(), "orphaned": inc.orphaned.to_polars()}
    if mx.MetaxyConfig.current_or_default().enable_map_datatype:
        assert all(isinstance(f.schema["metaxy_provenance_by_field"], pl.Map) for f in frames.values() if f.width)
    return {
        k: v.sort(by=[c for c, t in v.schema.items() if not isinstance(t, pl.Struct)], nulls_last=True)
        for k, v in frames.items()
    }


def without_timestamps(df: pl.DataFrame) -> pl.DataFrame:
    return df.drop([c for c in df.columns if c in ("metaxy_created_at", "metaxy_updated_at", "metaxy_deleted_at")])


EXAMPLES = int(os.environ.get("GOLDEN_EXAMPLES", "1000"))
PARTS = 4  # split so pytest-xdist spreads the examples over workers


def check_scenario(sc: dict[str, Any]) -> None:
    warnings.simplefilter("ignore")
    with mx.FeatureGraph().use(), mx.MetaxyConfig(enable_map_datatype=sc["map"]).use():
        ups, down = build_graph(sc)
        duck = DuckDBMetadataStore(":memory:", auto_create_tables=True)
        play(duck, sc, ups, down)
        native = resolve(duck, down, "native", sc["predicate"])
        polars = resolve(duck, down, "polars", sc["predicate"])
        mem = InMemoryMetadataStore()
        play(mem, sc, ups, down)
        reference = resolve(mem, down, "polars", sc["predicate"])
    for kind in ("new", "stale", "orphaned"):
        assert_frame_equal(native[kind], polars[kind], check_row_order=True)
        # a second store replays the same history: equal up to its own timestamps
        assert_frame_equal(without_timestamps(native[kind]), without_timestamps(reference[kind]))


def _golden(part: int) -> Any:
    @pytest.mark.filterwarnings("ignore")
    @settings(
        max_examples=max(1, EXAMPLES // PARTS),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @seed(20261121 + part)
    @given(sc=scenarios())
    def test(sc: dict[str, Any]) -> None:
        check_scenario(sc)

    test.__name__ = f"test_sql_and_polars_executors_agree_part_{part}"
    return test


# Each part has its own fixed seed, hence its own reproducible example stream.
test_sql_and_polars_executors_agree_part_0 = _golden(0)
test_sql_and_polars_executors_agree_part_1 = _golden(1)
test_sql_and_polars_executors_agree_part_2 = _golden(2)
test_sql_and_polars_executors_agree_part_3 = _golden(3)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=max(1, EXAMPLES // 10), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@seed(20261122)
@given(sc=scenarios())
def test_delta_store_matches_the_in_memory_store(sc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    """The Delta store (files on disk, Polars executor) gives the in-memory store's increments."""
    from metaxy.ext.polars.handlers.delta import DeltaMetadataStore

    warnings.simplefilter("ignore")
    with mx.FeatureGraph().use(), mx.MetaxyConfig(enable_map_datatype=sc["map"]).use():
        ups, down = build_graph(sc)
        delta = DeltaMetadataStore(tmp_path_factory.mktemp("lake"))
        play(delta, sc, ups, down)
        got = resolve(delta, down, "polars", sc["predicate"])
        mem = InMemoryMetadataStore()
        play(mem, sc, ups, down)
        reference = resolve(mem, down, "polars", sc["predicate"])
    for kind in ("new", "stale", "orphaned"):
        assert_frame_equal(without_timestamps(got[kind]), without_timestamps(reference[kind]))


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=max(1, EXAMPLES // 50), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@seed(20261123)
@given(sc=scenarios())
def test_delta_store_on_s3_matches_the_in_memory_store(sc: dict[str, Any], s3_server: Any) -> None:
    """The Delta store on S3 (moto's server on 127.0.0.1) gives the in-memory store's increments."""
    from metaxy.ext.polars.handlers.delta import DeltaMetadataStore

    warnings.simplefilter("ignore")
    with mx.FeatureGraph().use(), mx.MetaxyConfig(enable_map_datatype=sc["map"]).use():
        ups, down = build_graph(sc)
        delta = DeltaMetadataStore(s3_server.url(), storage_options=s3_server.storage_options)
        play(delta, sc, ups, down)
        got = resolve(delta, down, "polars", sc["predicate"])
        mem = InMemoryMetadataStore()
        play(mem, sc, ups, down)
        reference = resolve(mem, down, "polars", sc["predicate"])
    for kind in ("new", "stale", "orphaned"):
        assert_frame_equal(without_timestamps(got[kind]), without_timestamps(reference[kind]))
