"""The golden test against the Polars reference, as a harness any backend can run.

Hypothesis draws a *scenario*: a graph (1-3 upstreams with optional deps, renames, selects,
filters, identity or aggregation lineage, several fields, explicit field deps), a history of
upstream writes, data-version overrides, hard deletes and downstream writes, a staleness predicate
and the Map or Struct representation. :func:`check_against_reference` plays each scenario of
a *batch* (several per hypothesis example) into a store of its own, resolves its downstream with
each engine the store offers (``"native"``, one statement inside the engine, and ``"polars"``)
and asserts the increments equal those of the in-memory store (the Polars reference): columns,
order, dtypes and values; the store's own timestamps aside.

A backend author proves a store with it in a few lines::

    from hypothesis import given, settings

    from metaxy.testing import golden

    @settings(max_examples=40, deadline=None, database=None)
    @given(batch=golden.batches(25))
    def test_my_store_matches_the_reference(batch):
        golden.check_against_reference(lambda: MyStore(...), batch)

It needs ``hypothesis`` and ``pytest`` (test dependencies, not runtime ones of metaxy).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import metaxy as mx
from metaxy.metadata_store import InMemoryMetadataStore, MetadataStore

__all__ = [
    "IDS",
    "Scenario",
    "batches",
    "build_graph",
    "check_against_reference",
    "play",
    "resolve",
    "scenarios",
    "upstream_frame",
    "without_timestamps",
]

Scenario = dict[str, Any]
IDS = ["a", "b", "c", "d", "e"]
GROUPS = ["g1", "g2"]
TIMESTAMPS = ("metaxy_created_at", "metaxy_updated_at", "metaxy_deleted_at")


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """One drawn graph and history (a plain dict, printed as is when a check fails)."""
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


def batches(size: int) -> st.SearchStrategy[list[Scenario]]:
    """``size`` scenarios per hypothesis example (``check_against_reference`` checks them in turn)."""
    return st.lists(scenarios(), min_size=size, max_size=size)


def settings_for(scenarios: int, batch: int) -> settings:
    """Hypothesis settings that draw at least ``scenarios`` scenarios in batches of ``batch``: no
    deadline, no health checks, no example database (runs are reproducible from ``@seed``)."""
    return settings(
        max_examples=max(1, -(-scenarios // batch)),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )


def build_graph(sc: Scenario, prefix: str = "") -> tuple[list[type[mx.BaseFeature]], type[mx.BaseFeature]]:
    """The scenario's upstream features and its downstream feature, keyed under ``prefix``
    (e.g. ``"s3/"``) in the active feature graph."""
    name = prefix.replace("/", "_")
    ups: list[type[mx.BaseFeature]] = []
    for u in sc["ups"]:
        spec = mx.FeatureSpec(key=prefix + u["key"], id_columns=["sid"], fields=u["fields"])
        ups.append(type(name + u["key"], (mx.BaseFeature,), {"__annotations__": {"sid": str}}, spec=spec))
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
                feature=prefix + u["key"],
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
    spec = mx.FeatureSpec(key=prefix + "down", id_columns=ids, deps=deps, fields=fields)
    down = type(name + "down", (mx.BaseFeature,), {"__annotations__": {c: str for c in ids}}, spec=spec)
    return ups, down


def upstream_frame(u: dict[str, Any], ids: list[str], salt: int, override: bool) -> pl.DataFrame:
    """Rows of one upstream write: provenance per field (``salt`` 3 gives ``text`` an empty
    value), a nullable ``val`` and, with ``override``, user-given data versions (half null)."""
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


def play_events(
    store: MetadataStore, sc: Scenario, ups: list[type[mx.BaseFeature]], down: type[mx.BaseFeature]
) -> None:
    """Replay the scenario's history into an open store."""
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
            new = new.sort([c for c, t in new.schema.items() if not isinstance(t, pl.Struct | pl.Map)], nulls_last=True)
            # one row per downstream id, as a user reduces an aggregation's rows before writing
            new = new.unique(subset=list(down.spec().id_columns), keep="first", maintain_order=True)
            keep = new.head(round(ev[1] * new.height))
            keep = keep.with_columns(pl.lit("redo").alias("note"))
            if keep.height:
                store.write(down, keep)


def play(store: MetadataStore, sc: Scenario, ups: list[type[mx.BaseFeature]], down: type[mx.BaseFeature]) -> None:
    """Open the store for writing and replay the scenario's history."""
    with store.open("w"):
        play_events(store, sc, ups, down)


def resolve_open(
    store: MetadataStore, down: type[mx.BaseFeature], engine: str, predicate: str | None
) -> dict[str, pl.DataFrame]:
    """``new`` / ``stale`` / ``orphaned`` of an open store, sorted on every non-nested column."""
    inc = store.resolve_update(down, versioning_engine=engine, staleness_predicates=predicate)  # type: ignore[call-overload]
    frames = {"new": inc.new.to_polars(), "stale": inc.stale.to_polars(), "orphaned": inc.orphaned.to_polars()}
    if mx.MetaxyConfig.current_or_default().enable_map_datatype:
        assert all(isinstance(f.schema["metaxy_provenance_by_field"], pl.Map) for f in frames.values() if f.width)
    return {
        k: v.sort(by=[c for c, t in v.schema.items() if not isinstance(t, pl.Struct)], nulls_last=True)
        for k, v in frames.items()
    }


def resolve(
    store: MetadataStore, down: type[mx.BaseFeature], engine: str, predicate: str | None
) -> dict[str, pl.DataFrame]:
    """Open the store for reading and resolve (see :func:`resolve_open`)."""
    with store.open("r"):
        return resolve_open(store, down, engine, predicate)


def without_timestamps(df: pl.DataFrame) -> pl.DataFrame:
    return df.drop([c for c in df.columns if c in TIMESTAMPS])


def _results(
    store: MetadataStore,
    sc: Scenario,
    graph: tuple[list[type[mx.BaseFeature]], type[mx.BaseFeature]],
    engines: Sequence[str],
) -> dict[str, dict[str, pl.DataFrame]]:
    ups, down = graph
    with store.open("w"):
        play_events(store, sc, ups, down)
        return {engine: resolve_open(store, down, engine, sc["predicate"]) for engine in engines}


def check_against_reference(
    make_store: Callable[[], MetadataStore],
    batch: Sequence[Scenario],
    *,
    engines: Sequence[str] | None = None,
    hash_algorithm: str | None = None,
) -> int:
    """Play each scenario of ``batch`` into a new ``make_store()`` and into the in-memory store, and
    assert their increments are equal. Returns the number of scenarios checked.

    ``engines`` defaults to ``("native", "polars")`` for a store with ``native_resolve`` and
    ``("polars",)`` otherwise; ``"native"`` must also equal ``"polars"`` on the same store row for
    row (same timestamps). Scenarios drawn with the Map representation run with Structs on a
    store without ``map_type``. ``hash_algorithm``: the reference hashes with it (give the same to
    ``make_store``; default: the reference's default). A store per scenario: measured on DuckDB and
    PostgreSQL, one store session holding a whole batch's tables was slower per scenario, not faster.
    """
    warnings.simplefilter("ignore")
    caps = make_store().capabilities
    engines = tuple(engines or (("native", "polars") if caps.native_resolve else ("polars",)))
    for k, sc in enumerate(batch):
        map_mode = bool(sc["map"] and caps.map_type)
        with mx.FeatureGraph().use(), mx.MetaxyConfig(enable_map_datatype=map_mode).use():
            graph = build_graph(sc)
            mine = _results(make_store(), sc, graph, engines)
            ref = _results(InMemoryMetadataStore(hash_algorithm=hash_algorithm), sc, graph, ("polars",))
        for kind in ("new", "stale", "orphaned"):
            try:
                if "native" in mine and "polars" in mine:
                    assert_frame_equal(mine["native"][kind], mine["polars"][kind], check_row_order=True)
                for frames in mine.values():
                    assert_frame_equal(without_timestamps(frames[kind]), without_timestamps(ref["polars"][kind]))
            except AssertionError as exc:
                raise AssertionError(f"scenario s{k} ({kind}) differs from the reference: {sc!r}\n{exc}") from exc
    return len(batch)
