"""``resolve_update`` and merge-on-read of the in-memory store against a naive pure-Python oracle.

Hypothesis draws random graphs (1-4 upstreams, optional deps, renamed id and user columns,
``select=()``, explicit / automatic / ALL field lineage, aggregation and expansion) and random
sequences of root writes (with data-version overrides, partial and NULL ones), soft and hard
deletes, downstream materialisations and code-version bumps. After every step the store's
``new`` / ``stale`` / ``orphaned`` (ids *and* provenance values) must equal the oracle's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from oracle import DV, DVBF, PBF, PROV, VERSIONING, OracleFeatureNotFound, OracleStore, Row, resolve

import metaxy as mx
from metaxy.errors import FeatureNotFoundError
from metaxy.metadata_store.memory import InMemoryMetadataStore
from metaxy.versioning.hashing import HashAlgorithm

POOL = ("s0", "s1", "s2", "s3", "s4")
GROUPS = ("g0", "g1")
ROOT_FIELDS = ("audio", "frames", "text")
ALGORITHMS = (HashAlgorithm.MD5, HashAlgorithm.SHA256, HashAlgorithm.XXHASH32, HashAlgorithm.XXHASH64)
DOWN = mx.FeatureKey("oracle/down")

SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def _to_rows(frame: Any) -> list[Row]:
    if hasattr(frame, "collect") and not isinstance(frame, pl.DataFrame):
        frame = frame.collect()
    df = frame.to_polars() if not isinstance(frame, pl.DataFrame) else frame
    return df.to_dicts()


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _summary(rows: list[Row], columns: list[str]) -> list[tuple[Any, ...]]:
    return sorted((tuple(_freeze(r.get(c)) for c in columns) for r in rows), key=repr)


# --- deterministic sanity checks of the oracle itself (spec §3.6) ---------------------------------


def _definition(key: str, fields: list[mx.FieldSpec], deps: list[Any] | None = None) -> mx.FeatureDefinition:
    spec = mx.FeatureSpec(key=key, id_columns=["sample_id"], fields=fields, deps=deps or [])
    return mx.FeatureDefinition.from_spec(spec, {"sample_id": str}, project="oracle")


@pytest.mark.parametrize(
    ("algorithm", "field_hash", "sample_hash"),
    [("md5", "d50d88fd", None), ("sha256", "b350736a", None), ("xxhash64", "96465930", "81606296")],
)
def test_oracle_reproduces_the_spec_vectors(
    graph: mx.FeatureGraph, algorithm: str, field_hash: str, sample_hash: str | None
) -> None:
    graph.add_feature_definition(_definition("video", [mx.FieldSpec(key="frames"), mx.FieldSpec(key="audio")]))
    graph.add_feature_definition(_definition("processed", [mx.FieldSpec(key="default", code_version="1")], ["video"]))
    oracle = OracleStore(HashAlgorithm(algorithm))
    by_field = {"frames": "video_frame_hash_1", "audio": "video_audio_hash_1"}
    oracle.write(graph, "video", [{"sample_id": "s1", PBF: by_field}], ["sample_id", PBF])
    inc = resolve(oracle, graph, "processed")
    (row,) = inc.new
    assert row[PBF] == {"default": field_hash}
    if sample_hash is not None:
        assert row[PROV] == sample_hash
    assert not inc.stale
    assert not inc.orphaned


def test_oracle_models_merge_on_read(graph: mx.FeatureGraph) -> None:
    graph.add_feature_definition(_definition("clip", [mx.FieldSpec(key="default")]))
    oracle = OracleStore(HashAlgorithm.MD5)
    cols = ["sample_id", "x", PBF]
    oracle.write(graph, "clip", [{"sample_id": "a", "x": 1, PBF: {"default": "1"}}], cols)
    oracle.write(graph, "clip", [{"sample_id": "a", "x": 2, PBF: {"default": "2"}}], cols)
    assert [r["x"] for r in oracle.read(graph, "clip")] == [2]
    oracle.soft_delete(graph, "clip", lambda r: r["x"] == 1, with_sample_history=True)
    assert oracle.read(graph, "clip") == []


# --- random graphs ---------------------------------------------------------------------------------

Lineage = Literal["identity", "aggregation", "expansion"]


@dataclass(frozen=True)
class RootDesc:
    id_column: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class DepDesc:
    optional: bool
    columns: Literal["keep", "rename", "drop"]


@dataclass(frozen=True)
class FieldDesc:
    key: str
    mode: Literal["auto", "all", "explicit"]
    explicit: tuple[tuple[int, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class GraphDesc:
    lineage: Lineage
    roots: tuple[RootDesc, ...]
    deps: tuple[DepDesc, ...]
    fields: tuple[FieldDesc, ...]

    def root_key(self, i: int) -> mx.FeatureKey:
        return mx.FeatureKey(["oracle", f"r{i}"])

    @property
    def down_ids(self) -> tuple[str, ...]:
        return {"identity": ("sample_id",), "aggregation": ("group_id",), "expansion": ("sample_id", "child_id")}[
            self.lineage
        ]

    @property
    def key_column(self) -> str:
        """The comparison column K (one column in every generated graph)."""
        return "group_id" if self.lineage == "aggregation" else "sample_id"

    @property
    def payload_columns(self) -> list[str]:
        names = {"keep": "payload", "rename": "payload_{i}", "drop": None}
        return [n.format(i=i) for i, d in enumerate(self.deps) if (n := names[d.columns]) is not None]

    @property
    def compared_columns(self) -> list[str]:
        upstream_id = ["sample_id"] if self.lineage == "aggregation" else []
        return [self.key_column, *upstream_id, *self.payload_columns, *VERSIONING]

    def build(self, root_versions: list[int], field_versions: list[int]) -> mx.FeatureGraph:
        g = mx.FeatureGraph()
        deps = []
        for i, (root, dep) in enumerate(zip(self.roots, self.deps, strict=True)):
            spec = mx.FeatureSpec(
                key=self.root_key(i),
                id_columns=[root.id_column],
                fields=[mx.FieldSpec(key=f, code_version=str(root_versions[i])) for f in root.fields],
            )
            g.add_feature_definition(mx.FeatureDefinition(spec=spec, project="oracle"))
            rename = {root.id_column: "sample_id"} if root.id_column != "sample_id" else {}
            if dep.columns == "rename":
                rename["payload"] = f"payload_{i}"
            lineage = {
                "identity": mx.LineageRelationship.identity(),
                "aggregation": mx.LineageRelationship.aggregation(on=["group_id"]),
                "expansion": mx.LineageRelationship.expansion(on=["sample_id"]),
            }[self.lineage]
            deps.append(
                mx.FeatureDep(
                    feature=self.root_key(i),
                    rename=rename or None,
                    select=() if dep.columns == "drop" else None,
                    optional=dep.optional,
                    lineage=lineage,
                )
            )
        fields = []
        for j, f in enumerate(self.fields):
            field_deps: Any = []
            if f.mode == "all":
                field_deps = mx.SpecialFieldDep.ALL
            elif f.mode == "explicit":
                field_deps = [mx.FieldDep(feature=self.root_key(i), fields=list(fs)) for i, fs in f.explicit]
            fields.append(mx.FieldSpec(key=f.key, code_version=str(field_versions[j]), deps=field_deps))
        spec = mx.FeatureSpec(key=DOWN, id_columns=list(self.down_ids), deps=deps, fields=fields)
        g.add_feature_definition(mx.FeatureDefinition(spec=spec, project="oracle"))
        return g


@st.composite
def graph_descs(draw: st.DrawFn) -> GraphDesc:
    lineage: Lineage = draw(st.sampled_from(["identity", "identity", "aggregation", "expansion"]))
    n = 1 if lineage == "aggregation" else draw(st.integers(1, 4))
    roots = tuple(
        RootDesc(
            id_column=draw(st.sampled_from(["sample_id", f"uid_{i}"])) if lineage == "identity" else "sample_id",
            fields=tuple(draw(st.lists(st.sampled_from(ROOT_FIELDS), min_size=1, max_size=3, unique=True))),
        )
        for i in range(n)
    )
    deps = tuple(
        DepDesc(
            optional=draw(st.booleans()),
            columns=draw(st.sampled_from(["keep", "rename", "drop"] if i == 0 else ["rename", "drop"])),
        )
        for i in range(n)
    )
    keys = draw(st.lists(st.sampled_from((*ROOT_FIELDS, "other")), min_size=1, max_size=3, unique=True))
    fields = []
    for key in keys:
        modes: list[Literal["auto", "all", "explicit"]] = ["auto", "auto", "all", "explicit"]
        mode = draw(st.sampled_from(modes))
        explicit: tuple[tuple[int, tuple[str, ...]], ...] = ()
        if mode == "explicit":
            picked = sorted(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True)))
            explicit = tuple(
                (i, tuple(draw(st.lists(st.sampled_from(roots[i].fields), min_size=1, unique=True)))) for i in picked
            )
        fields.append(FieldDesc(key, mode, explicit))
    return GraphDesc(lineage, roots, deps, tuple(fields))


# --- operations ------------------------------------------------------------------------------------

DataVersionMode = Literal["absent", "null", "same", "alt", "partial"]

_entry = st.tuples(
    st.sampled_from(POOL),
    st.integers(0, 2),  # provenance tag
    st.sampled_from(["absent", "absent", "null", "same", "alt", "partial"]),
    st.sampled_from(GROUPS),
)


def operations(n_roots: int, n_fields: int) -> st.SearchStrategy[tuple[Any, ...]]:
    ids = st.frozensets(st.sampled_from(POOL), min_size=1, max_size=3)
    write = st.tuples(
        st.just("write_root"),
        st.integers(0, n_roots - 1),
        st.lists(_entry, min_size=1, max_size=5, unique_by=lambda e: e[0]),
    )
    return st.one_of(
        write,
        write,
        write,
        st.tuples(st.just("delete_root"), st.integers(0, n_roots - 1), ids, st.booleans()),
        st.tuples(st.just("materialize"), st.none() | st.frozensets(st.sampled_from(POOL + GROUPS), min_size=1)),
        st.tuples(st.just("materialize"), st.none()),
        st.tuples(st.just("delete_down"), ids, st.booleans()),
        st.tuples(st.just("bump_down"), st.integers(0, n_fields - 1)),
        st.tuples(st.just("bump_root"), st.integers(0, n_roots - 1)),
    )


Op = tuple[Any, ...]
Scenario = tuple[GraphDesc, HashAlgorithm, list[Op], list[Op]]


@st.composite
def scenarios(draw: st.DrawFn, max_ops: int) -> Scenario:
    desc = draw(graph_descs())
    algorithm = draw(st.sampled_from(ALGORITHMS))
    # Now and then one root stays unwritten: every resolve must then fail with FeatureNotFoundError.
    unwritten = draw(st.sampled_from([None] * 9 + list(range(len(desc.roots)))))
    first_writes = [
        ("write_root", i, draw(st.lists(_entry, min_size=1, max_size=5, unique_by=lambda e: e[0])))
        for i in range(len(desc.roots))
        if i != unwritten
    ]
    ops = draw(st.lists(operations(len(desc.roots), len(desc.fields)), min_size=2, max_size=max_ops))
    # Materialising early gives the later writes and deletes something to make stale or orphaned.
    return desc, algorithm, first_writes, [("materialize", None), *ops]


def _data_version(mode: str, sid: str, tag: int, fields: tuple[str, ...]) -> dict[str, str | None] | None:
    if mode in ("absent", "null"):
        return None
    if mode == "same":
        return {f: f"content:{f}:{sid}" for f in fields}
    if mode == "alt":
        return {f: f"content:{f}:{sid}:{tag}" for f in fields}
    return {f: (f"content:{f}:{sid}" if k == 0 else None) for k, f in enumerate(fields)}


def _root_frame(desc: GraphDesc, i: int, entries: list[tuple[str, int, str, str]]) -> pl.DataFrame:
    root = desc.roots[i]
    fields = root.fields
    data: dict[str, Any] = {
        root.id_column: [sid for sid, *_ in entries],
        "payload": [f"p:{sid}:{tag}" for sid, tag, *_ in entries],
        PBF: [{f: f"{f}:{sid}:{tag}" for f in fields} for sid, tag, *_ in entries],
    }
    schema: dict[str, Any] = {PBF: pl.Struct(dict.fromkeys(fields, pl.String))}
    if desc.lineage == "aggregation":
        data["group_id"] = [group for *_, group in entries]
    if any(mode != "absent" for _, _, mode, _ in entries):
        data[DVBF] = [_data_version(mode, sid, tag, fields) for sid, tag, mode, _ in entries]
        schema[DVBF] = schema[PBF]
    return pl.DataFrame(data, schema_overrides=schema)


def _in_list(column: str, values: frozenset[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in sorted(values))})"


def _sample_id_in(ids: frozenset[str]) -> Callable[[Row], bool]:
    return lambda r: r["sample_id"] in ids


def _x_equals(x: Any) -> Callable[[Row], bool]:
    return lambda r: bool(r["x"] == x)


class Runner:
    """Applies one scenario to the in-memory store and the oracle, comparing after each step."""

    def __init__(self, desc: GraphDesc, algorithm: HashAlgorithm) -> None:
        self.desc = desc
        self.store = InMemoryMetadataStore(hash_algorithm=algorithm)
        self.oracle = OracleStore(algorithm)
        self.root_versions = [1] * len(desc.roots)
        self.field_versions = [1] * len(desc.fields)
        self.graph = desc.build(self.root_versions, self.field_versions)
        self.checks = 0
        self.last: Any = None  # the store's increment at the last check, while the state is unchanged

    # --- comparison --------------------------------------------------------------------------------
    def check(self, *, lazy: bool = False) -> Any:
        desc = self.desc
        with self.graph.use():
            try:
                expected = resolve(self.oracle, self.graph, DOWN)
            except OracleFeatureNotFound:
                event("upstream table missing")
                with pytest.raises(FeatureNotFoundError):
                    self.store.resolve_update(DOWN)
                return None
            got = self.store.resolve_update(DOWN, lazy=lazy)
            if lazy:
                assert isinstance(got, mx.LazyIncrement)
                assert got.input is not None
                assert _summary(_to_rows(got.input), desc.compared_columns) == _summary(
                    expected.input, desc.compared_columns
                ), "input"
                got = got.collect()
        assert expected.keys == (desc.key_column,)
        columns = desc.compared_columns
        for name in ("new", "stale"):
            assert _summary(_to_rows(getattr(got, name)), columns) == _summary(getattr(expected, name), columns), name
        orphaned = [desc.key_column, PROV]
        assert _summary(_to_rows(got.orphaned), orphaned) == _summary(expected.orphaned, orphaned), "orphaned"
        for name in ("new", "stale", "orphaned"):
            if getattr(expected, name):
                event(f"{desc.lineage}: non-empty {name}")
        self.checks += 1
        self.last = got
        return got

    # --- operations --------------------------------------------------------------------------------
    def apply(self, op: tuple[Any, ...]) -> None:
        last, self.last = self.last, None
        if op[0] == "materialize":
            self._materialize(op[1], last)
        else:
            getattr(self, "_" + op[0])(*op[1:])

    def _write_root(self, i: int, entries: list[tuple[str, int, str, str]]) -> None:
        frame = _root_frame(self.desc, i, entries)
        key = self.desc.root_key(i)
        with self.graph.use():
            self.store.write(key, frame)
            self.oracle.write(self.graph, key, frame.to_dicts(), frame.columns)

    def _delete_root(self, i: int, ids: frozenset[str], soft: bool) -> None:
        key = self.desc.root_key(i)
        column = self.desc.roots[i].id_column
        self._delete(key, column, ids, soft)

    def _delete_down(self, ids: frozenset[str], soft: bool) -> None:
        self._delete(DOWN, "sample_id" if self.desc.lineage != "aggregation" else "group_id", ids, soft)

    def _delete(self, key: mx.FeatureKey, column: str, ids: frozenset[str], soft: bool) -> None:
        if not self.oracle.has_table(key):
            return
        with self.graph.use():
            self.store.delete(key, _in_list(column, ids), soft=soft)
            if soft:
                self.oracle.soft_delete(self.graph, key, lambda r: r[column] in ids)
            else:
                self.oracle.hard_delete(self.graph, key, lambda r: r[column] in ids)

    def _materialize(self, keep: frozenset[str] | None, last: Any) -> None:
        got = last if last is not None else self.check()
        if got is None:
            return
        k = self.desc.key_column
        parts = [pl.DataFrame(_to_rows(got.new)), pl.DataFrame(_to_rows(got.stale))]
        frames = [p.select(k, *VERSIONING) for p in parts if p.height > 0]
        if not frames:
            return
        frame = pl.concat(frames)
        if keep is not None:
            frame = frame.filter(pl.col(k).is_in(sorted(keep)))
        if self.desc.lineage == "aggregation":
            frame = frame.unique(k, keep="first", maintain_order=True)
        if self.desc.lineage == "expansion":
            frame = pl.concat([frame.with_columns(pl.lit(c).alias("child_id")) for c in (0, 1)])
        with self.graph.use():
            self.store.write(DOWN, frame)
            self.oracle.write(self.graph, DOWN, frame.to_dicts(), frame.columns)

    def _bump_down(self, j: int) -> None:
        self.field_versions[j] += 1
        self.graph = self.desc.build(self.root_versions, self.field_versions)

    def _bump_root(self, i: int) -> None:
        self.root_versions[i] += 1
        self.graph = self.desc.build(self.root_versions, self.field_versions)


@settings(SETTINGS, max_examples=500)
@given(scenarios(max_ops=6))
def test_resolve_update_matches_the_oracle(scenario: Scenario) -> None:
    desc, algorithm, first_writes, ops = scenario
    runner = Runner(desc, algorithm)
    with runner.store.open("w"):
        for op in first_writes:
            runner.apply(op)
        for op in ops:
            runner.apply(op)
            runner.check()
        runner.check(lazy=True)


@settings(SETTINGS, max_examples=600)
@given(graph_descs(), st.sampled_from(ALGORITHMS), st.data())
def test_single_resolve_matches_the_oracle(desc: GraphDesc, algorithm: HashAlgorithm, data: st.DataObject) -> None:
    runner = Runner(desc, algorithm)
    with runner.store.open("w"):
        for i in range(len(desc.roots)):
            runner.apply(
                ("write_root", i, data.draw(st.lists(_entry, min_size=1, max_size=5, unique_by=lambda e: e[0])))
            )
        runner.check(lazy=data.draw(st.booleans()))


# --- merge-on-read (§5.2, §9.3, §9.4) --------------------------------------------------------------

CLIP = mx.FeatureKey("oracle/clip")


def _clip_graph(version: int) -> mx.FeatureGraph:
    g = mx.FeatureGraph()
    spec = mx.FeatureSpec(
        key=CLIP,
        id_columns=["sample_id"],
        fields=[mx.FieldSpec(key="audio", code_version=str(version)), mx.FieldSpec(key="frames")],
    )
    g.add_feature_definition(mx.FeatureDefinition(spec=spec, project="oracle"))
    return g


_read_ops = st.one_of(
    # Duplicated ids within one write exercise the tie-break (data version, then provenance).
    st.tuples(st.just("write"), st.lists(st.tuples(st.sampled_from(POOL), st.integers(0, 4)), min_size=1, max_size=6)),
    st.tuples(st.just("write"), st.lists(st.tuples(st.sampled_from(POOL), st.integers(0, 4)), min_size=1, max_size=6)),
    st.tuples(st.just("soft_ids"), st.frozensets(st.sampled_from(POOL), min_size=1, max_size=3)),
    st.tuples(st.just("soft_old"), st.integers(0, 4)),  # soft-delete history rows with x == n
    st.tuples(st.just("hard_ids"), st.frozensets(st.sampled_from(POOL), min_size=1, max_size=3)),
    st.tuples(st.just("version"), st.integers(1, 2)),
)


@settings(SETTINGS, max_examples=900)
@given(st.sampled_from(ALGORITHMS), st.lists(_read_ops, min_size=1, max_size=8), st.integers(0, 4))
def test_read_matches_the_oracle(algorithm: HashAlgorithm, ops: list[tuple[Any, ...]], threshold: int) -> None:
    _check_reads(InMemoryMetadataStore(hash_algorithm=algorithm), algorithm, ops, threshold)


@settings(SETTINGS, max_examples=300)
@given(
    st.sampled_from([HashAlgorithm.MD5, HashAlgorithm.SHA256]),
    st.lists(_read_ops, min_size=1, max_size=8),
    st.integers(0, 4),
)
def test_duckdb_sql_reads_match_the_oracle(
    algorithm: HashAlgorithm, ops: list[tuple[Any, ...]], threshold: int
) -> None:
    """The SQL de-duplication (ties within one write included) against the oracle."""
    from metaxy.ext.duckdb import DuckDBMetadataStore

    _check_reads(
        DuckDBMetadataStore(":memory:", hash_algorithm=algorithm, auto_create_tables=True), algorithm, ops, threshold
    )


def _check_reads(store: Any, algorithm: HashAlgorithm, ops: list[tuple[Any, ...]], threshold: int) -> None:
    oracle = OracleStore(algorithm)
    graph = _clip_graph(1)
    columns = ["sample_id", "x", PROV, DV]
    with store.open("w"):
        for op in ops:
            kind = op[0]
            if kind == "version":
                graph = _clip_graph(op[1])
                continue
            with graph.use():
                if kind == "write":
                    frame = pl.DataFrame(
                        {
                            "sample_id": [sid for sid, _ in op[1]],
                            "x": [x for _, x in op[1]],
                            PBF: [{"audio": f"audio:{sid}:{x}", "frames": f"frames:{sid}"} for sid, x in op[1]],
                        }
                    )
                    store.write(CLIP, frame)
                    oracle.write(graph, CLIP, frame.to_dicts(), frame.columns)
                elif not oracle.has_table(CLIP):
                    continue
                elif kind == "soft_ids":
                    store.delete(CLIP, _in_list("sample_id", op[1]))
                    oracle.soft_delete(graph, CLIP, _sample_id_in(op[1]))
                elif kind == "soft_old":
                    store.delete(CLIP, f"x = {op[1]}", with_sample_history=True)
                    oracle.soft_delete(graph, CLIP, _x_equals(op[1]), with_sample_history=True)
                else:
                    store.delete(CLIP, _in_list("sample_id", op[1]), soft=False)
                    oracle.hard_delete(graph, CLIP, _sample_id_in(op[1]))
        if not oracle.has_table(CLIP):
            return
        with graph.use():
            latest = oracle.read(graph, CLIP)
            assert _summary(_to_rows(store.read(CLIP)), columns) == _summary(latest, columns)
            # Filters apply after deduplication.
            filtered = [r for r in latest if r["x"] >= threshold]
            got = _to_rows(store.read(CLIP, filters=[f"x >= {threshold}"]))
            assert _summary(got, columns) == _summary(filtered, columns)
            with_deleted = [v for v, _ in oracle.latest(graph, CLIP, include_soft_deleted=True)]
            got = _to_rows(store.read(CLIP, include_soft_deleted=True))
            assert _summary(got, columns) == _summary(with_deleted, columns)
            history = [r.values for r in oracle.history(graph, CLIP) if not r.deleted]
            got = _to_rows(store.read(CLIP, with_sample_history=True))
            assert _summary(got, columns) == _summary(history, columns)
