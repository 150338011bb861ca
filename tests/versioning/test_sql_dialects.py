"""The resolve statement rendered for PostgreSQL and ClickHouse.

Every lineage (identity with an optional dep, expansion 1:N, aggregation N:1), with FeatureDep
filters, target filters and staleness predicates, in both ``*_by_field`` representations:

* PostgreSQL and ClickHouse: the rendered SQL parses back with sqlglot in that dialect;
* ClickHouse: the statement runs on chdb (the embedded ClickHouse engine) over the tables the
  in-memory store wrote, and its new / stale / orphaned rows equal the Polars executor's
  byte for byte (ids, provenance, provenance by field, data versions).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlglot

import metaxy as mx
from metaxy.ext.clickhouse._resolve import unpacked
from metaxy.metadata_store import InMemoryMetadataStore
from metaxy.metadata_store._native_resolve import with_copies
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.sql import ClickHouseDialect, PostgresDialect, SqlDialect, SqlSource
from metaxy.sql import statements as st
from metaxy.versioning.hashing import HashAlgorithm
from metaxy.versioning.plan import compile_plan
from metaxy.versioning.sql_executor import KIND, ORPHAN_ROW, CompiledResolve, compile_resolve, orphan_column

LINEAGES = ["identity", "expansion", "aggregation"]
TARGET_FILTER = "note IS NULL OR note != 'skip'"
PREDICATE = "note = 'redo'"


def _feature(key: str, ids: list[str], fields: list[Any], deps: list[mx.FeatureDep] | None = None) -> Any:
    spec = mx.FeatureSpec(key=key, id_columns=ids, fields=fields, deps=deps)
    return type(key.replace("/", "_"), (mx.BaseFeature,), {"__annotations__": dict.fromkeys(ids, str)}, spec=spec)


def _upstream_frame(ids: list[str], salt: str, fields: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sid": ids,
            "grp": ["g9" if i == "g" else f"g{ord(i[0]) % 2}" for i in ids],  # g: a group of its own
            "val": [ord(i[0]) - 96 for i in ids],
            c.PROVENANCE_BY_FIELD: [{f: f"{f}-{i}-{salt}" for f in fields} for i in ids],
        }
    )


def _build(lineage: str) -> tuple[Any, list[Any]]:
    """The graph of one lineage; returns (downstream, upstreams)."""
    up0 = _feature("up/zero", ["sid"], ["audio", "frames"])
    if lineage == "identity":
        up1 = _feature("up/one", ["sid"], ["text"])
        deps = [
            mx.FeatureDep(feature="up/zero", filters=["val > 1"]),
            mx.FeatureDep(feature="up/one", rename={"val": "val_one", "grp": "grp_one"}, optional=True),
        ]
        down = _feature(
            "down",
            ["sid"],
            [mx.FieldSpec(key="audio", code_version="1"), mx.FieldSpec(key="summary", deps=mx.SpecialFieldDep.ALL)],
            deps,
        )
        return down, [up0, up1]
    if lineage == "expansion":
        deps = [mx.FeatureDep(feature="up/zero", lineage=mx.LineageRelationship.expansion(on=["sid"]))]
        down = _feature("down", ["sid", "chunk"], [mx.FieldSpec(key="audio", code_version="2")], deps)
        return down, [up0]
    deps = [mx.FeatureDep(feature="up/zero", lineage=mx.LineageRelationship.aggregation(on=["grp"]))]
    down = _feature("down", ["grp"], [mx.FieldSpec(key="frames", code_version="1")], deps)
    return down, [up0]


def _play(store: InMemoryMetadataStore, lineage: str, down: Any, ups: list[Any]) -> None:
    """A history with every kind of row: new, stale (upstream changed, predicate), orphaned,
    soft-deleted upstream rows, and a row the target filter hides."""
    with store.open("w"):
        store.write(ups[0], _upstream_frame(list("abcdef"), "1", ["audio", "frames"]))
        if len(ups) > 1:
            store.write(ups[1], _upstream_frame(list("abc"), "1", ["text"]))
        new = store.resolve_update(down, versioning_engine="polars").new.to_polars()
        if lineage == "expansion":
            new = pl.concat([new.with_columns(pl.lit(k).alias("chunk")) for k in ("0", "1")])
        # one row per downstream id, as a user reduces an aggregation's rows before writing (rows of
        # one id written together tie on the latest-row order)
        new = new.sort("sid").unique(subset=list(down.spec().id_columns), keep="first", maintain_order=True)
        notes = [("redo" if i == 0 else "skip" if i == 1 else None) for i in range(new.height)]
        store.write(down, new.with_columns(pl.Series("note", notes, dtype=pl.String)))
        store.write(ups[0], _upstream_frame(list("cdg"), "2", ["audio", "frames"]))
        store.delete(ups[0], "sid = 'e'")
        orphan = new.head(1).with_columns(pl.lit("zz").alias("sid"), pl.lit("gz").alias("grp"))
        store.write(down, orphan.drop([col for col in orphan.columns if col.startswith("grp_")], strict=False))


def _raw_tables(store: InMemoryMetadataStore, keys: list[mx.FeatureKey]) -> dict[str, pl.DataFrame]:
    with store.open("r"):
        return {
            key.table_name: store.read(
                key, with_feature_history=True, with_sample_history=True, include_soft_deleted=True
            )
            .collect()
            .to_polars()
            for key in keys
        }


@pytest.fixture(params=[False, True], ids=["struct", "map"])
def map_mode(request: pytest.FixtureRequest) -> Iterator[bool]:
    with mx.MetaxyConfig(enable_map_datatype=request.param).use():
        yield request.param


def _compile(
    d: SqlDialect,
    down: Any,
    tables: dict[str, pl.DataFrame],
    algorithm: HashAlgorithm,
    map_mode: bool,
    *,
    carry: bool = False,
) -> CompiledResolve:
    plan = compile_plan(mx.FeatureGraph.get_active(), down.spec().key)
    ups = [SqlSource(dep.feature.table_name, tuple(tables[dep.feature.table_name].columns)) for dep in plan.deps]
    target = FilterExpression.parse(TARGET_FILTER)
    predicate = FilterExpression.parse(PREDICATE)
    stored = tables[plan.feature.table_name]
    current = SqlSource(plan.feature.table_name, tuple(stored.columns), (target,), tuple(sorted(target.columns)))
    return compile_resolve(
        d, plan, ups, current, algorithm=algorithm, length=8, predicates=[predicate], map_mode=map_mode, carry=carry
    )


def _reference(store: InMemoryMetadataStore, down: Any) -> dict[str, pl.DataFrame]:
    with store.open("r"):
        inc = store.resolve_update(
            down, versioning_engine="polars", target_filters=TARGET_FILTER, staleness_predicates=PREDICATE
        )
        return {"new": inc.new.to_polars(), "stale": inc.stale.to_polars(), "orphaned": inc.orphaned.to_polars()}


def _scenario(lineage: str, algorithm: HashAlgorithm) -> tuple[Any, InMemoryMetadataStore, dict[str, pl.DataFrame]]:
    down, ups = _build(lineage)
    store = InMemoryMetadataStore(hash_algorithm=algorithm)
    _play(store, lineage, down, ups)
    keys = [u.spec().key for u in ups] + [down.spec().key]
    return down, store, _raw_tables(store, keys)


@pytest.mark.parametrize("lineage", LINEAGES)
@pytest.mark.parametrize("dialect", [PostgresDialect(), ClickHouseDialect()], ids=["postgres", "clickhouse"])
def test_the_resolve_statement_parses_back_in_the_dialect(
    lineage: str, dialect: SqlDialect, map_mode: bool, graph: mx.FeatureGraph
) -> None:
    down, _, tables = _scenario(lineage, HashAlgorithm.MD5)
    compiled = _compile(dialect, down, tables, HashAlgorithm.MD5, map_mode)
    for statement in (compiled.expected, compiled.increment, compiled.part("orphaned")):
        assert statement is not None
        sql = dialect.render(statement)
        parsed = sqlglot.parse_one(sql, read=dialect.name)
        assert isinstance(parsed, sqlglot.exp.Select)
        # the user's filters and predicates reach the statement only as quoted trees
        assert '"note"' in dialect.render(compiled.increment)  # type: ignore[arg-type]
        assert "note IS NULL" not in sql


def test_postgres_uses_its_own_latest_row_hashing_and_row_identity(graph: mx.FeatureGraph) -> None:
    down, _, tables = _scenario("identity", HashAlgorithm.SHA256)
    with mx.MetaxyConfig(enable_map_datatype=False).use():
        compiled = _compile(PostgresDialect(), down, tables, HashAlgorithm.SHA256, False)
    sql = PostgresDialect().render(compiled.increment)  # type: ignore[arg-type]
    assert "DISTINCT ON" in sql and "QUALIFY" not in sql
    assert "ENCODE(SHA256(CONVERT_TO(" in sql.upper()
    assert "JSONB_BUILD_OBJECT(" in sql.upper() and "->>" in sql
    assert '"ctid"' not in sql and "CTID AS" in sql.upper()


# --- ClickHouse on chdb ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chdb_session(chdb_engine_path: str) -> Iterator[Any]:
    from chdb import session

    sess = session.Session(chdb_engine_path)  # chdb runs one engine directory per process
    yield sess
    sess.close()


def _load(sess: Any, d: ClickHouseDialect, tables: dict[str, pl.DataFrame], tmp_path: Path) -> None:
    for name, frame in tables.items():
        arrow = frame.to_arrow()
        sess.query(d.render(st.drop_table(name)))
        # MergeTree as the store makes: the dialect's row identity is a row's (_part, _part_offset)
        sess.query(d.render(st.create_table(d, name, arrow.schema)) + " ENGINE = MergeTree ORDER BY tuple()")
        path = tmp_path / f"{name}.parquet"
        frame.write_parquet(path)
        sess.query(f"INSERT INTO {d.identifier(name)} SELECT * FROM file('{path}', Parquet)")


def _normal(value: Any) -> Any:
    """Struct / Map values as a sorted tuple of (key, value) pairs; other values as they are."""
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    if isinstance(value, list) and all(isinstance(v, dict) and set(v) == {"key", "value"} for v in value):
        return tuple(sorted((v["key"], v["value"]) for v in value))
    return value


def _rows(frame: pl.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    return sorted(tuple(_normal(v) for v in row) for row in frame.select(columns).iter_rows())


def _run_on_chdb(sess: Any, compiled: CompiledResolve) -> dict[str, pl.DataFrame]:
    table = unpacked(sess.query(ClickHouseDialect().render(compiled.increment), "ArrowTable"))  # type: ignore[arg-type]
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    kinds = df.get_column(KIND)
    orphans = {orphan_column(i): name for i, name in enumerate(compiled.stored_columns)}
    names = list(compiled.expected_columns)
    return {
        "new": with_copies(df.filter(kinds == "new"), names),
        "stale": with_copies(df.filter(kinds == "stale"), names),
        "orphaned": df.filter(kinds == "orphaned").select(pl.col(o).alias(n) for o, n in orphans.items()),
    }


def _compare(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame], down: Any) -> None:
    ids = list(down.spec().id_columns)
    versions = [c.PROVENANCE, c.PROVENANCE_BY_FIELD, c.DATA_VERSION, c.DATA_VERSION_BY_FIELD]
    for part in ("new", "stale"):
        keys = [i for i in ids if i in want[part].columns]  # expansion: expected rows are per parent
        assert _rows(got[part], [*keys, *versions]) == _rows(want[part], [*keys, *versions]), part
    # every stored column of the orphaned rows (a misplaced field of a carried row would show)
    stored = list(want["orphaned"].columns)
    assert sorted(got["orphaned"].columns) == sorted(stored)
    assert _rows(got["orphaned"], stored) == _rows(want["orphaned"], stored)


class _ColumnsClickHouse(ClickHouseDialect):
    """ClickHouse as a dialect without a row identity or packed rows: orphaned rows carry every
    stored column through the comparison, one column each (the executor's path for such engines)."""

    row_identity = None  # type: ignore[assignment]

    def row_id(self) -> None:  # type: ignore[override]
        return None

    def pack_row(self, values: Any) -> None:
        return None


@pytest.mark.parametrize(
    ("dialect", "carry"),
    [(ClickHouseDialect(), False), (ClickHouseDialect(), True), (_ColumnsClickHouse(), False)],
    ids=["fetched-back", "carried-packed", "carried-columns"],
)
@pytest.mark.parametrize("lineage", LINEAGES)
def test_clickhouse_resolve_on_chdb_equals_the_polars_executor(
    lineage: str,
    dialect: ClickHouseDialect,
    carry: bool,
    map_mode: bool,
    chdb_session: Any,
    tmp_path: Path,
    graph: mx.FeatureGraph,
) -> None:
    """Each way orphaned rows get their stored columns: fetched back by row number, carried through
    the comparison packed in one tuple (the store's choice for small tables), or column by column
    (a dialect with neither a row identity nor packing)."""
    warnings.simplefilter("ignore")
    d = dialect
    down, store, tables = _scenario(lineage, HashAlgorithm.MD5)
    want = _reference(store, down)
    assert all(want[p].height for p in ("new", "stale", "orphaned")), "the history must produce every part"
    _load(chdb_session, d, tables, tmp_path)
    compiled = _compile(d, down, tables, HashAlgorithm.MD5, map_mode, carry=carry)
    sql = d.render(compiled.increment)  # type: ignore[arg-type]
    assert (ORPHAN_ROW in sql) == carry and ("_part_offset" in sql) == (not carry and d.row_identity is not None)
    _compare(_run_on_chdb(chdb_session, compiled), want, down)
    # the orphaned part as its own statement (the part's stored columns picked out of the row)
    orphaned = pl.from_arrow(chdb_session.query(d.render(compiled.part("orphaned")), "ArrowTable"))
    assert isinstance(orphaned, pl.DataFrame)
    _compare({**_run_on_chdb(chdb_session, compiled), "orphaned": orphaned}, want, down)


@pytest.mark.parametrize("algorithm", [HashAlgorithm.SHA256, HashAlgorithm.XXHASH64, HashAlgorithm.XXHASH32])
def test_clickhouse_hashes_match_the_polars_reference(
    algorithm: HashAlgorithm, chdb_session: Any, tmp_path: Path, graph: mx.FeatureGraph
) -> None:
    warnings.simplefilter("ignore")
    d = ClickHouseDialect()
    with mx.MetaxyConfig(enable_map_datatype=False).use():
        down, store, tables = _scenario("identity", algorithm)
        want = _reference(store, down)
        _load(chdb_session, d, tables, tmp_path)
        got = _run_on_chdb(chdb_session, _compile(d, down, tables, algorithm, False))
    _compare(got, want, down)


def test_a_dialect_refuses_a_hash_it_cannot_compute() -> None:
    from metaxy.errors import HashAlgorithmNotSupportedError

    with pytest.raises(HashAlgorithmNotSupportedError, match=r"xxhash64.*Hint: use one of"):
        PostgresDialect().hash(sqlglot.exp.column("x"), HashAlgorithm.XXHASH64, 8)


def test_ddl_types_per_dialect() -> None:
    import pyarrow as pa

    schema = pa.schema(
        [
            ('we"ird', pa.large_string()),
            ("n", pa.int64()),
            ("at", pa.timestamp("us", tz="UTC")),
            ("by_field", pa.struct([("audio", pa.large_string())])),
            ("m", pa.map_(pa.large_string(), pa.large_string())),
        ]
    )
    ch = ClickHouseDialect().render(st.create_table(ClickHouseDialect(), "t", schema))
    assert ch == (
        'CREATE TABLE "t" ("we""ird" Nullable(String), "n" Nullable(Int64), '
        '"at" Nullable(DateTime64(6, \'UTC\')), "by_field" Tuple("audio" Nullable(String)), '
        '"m" Map(String, Nullable(String)))'
    )
    pg = PostgresDialect().render(st.create_table(PostgresDialect(), "t", schema))
    assert pg == 'CREATE TABLE "t" ("we""ird" TEXT, "n" BIGINT, "at" TIMESTAMPTZ, "by_field" JSONB, "m" JSONB)'


# --- folding projection-only levels (sql._build.project) ----------------------------------------


def _picks() -> Any:
    """``SELECT a, b AS c FROM (SELECT * FROM t) AS x WHERE k``: a projection-only level."""
    from metaxy.sql._build import alias, col, select, star, subquery, table

    return select([col("a"), alias(col("b"), "c")], subquery(select([star()], table("t")), "x"), where=col("k"))


def _levels(statement: Any) -> int:
    return len(list(statement.find_all(sqlglot.exp.Select)))


def _on_both(chdb_session: Any, statement: Any) -> list[list[tuple[Any, ...]]]:
    """The statement's rows (sorted) on DuckDB and on chdb, over t(a, b, k)."""
    import duckdb

    rows = "SELECT * FROM (VALUES (1, 10, true), (2, 20, false), (3, 30, true)) AS v(a, b, k)"
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS {rows}")
    chdb_session.query("DROP TABLE IF EXISTS t")
    chdb_session.query("CREATE TABLE t (a Int64, b Int64, k Bool) ENGINE = MergeTree ORDER BY a")
    chdb_session.query("INSERT INTO t VALUES (1, 10, true), (2, 20, false), (3, 30, true)")
    duck = sorted(con.execute(statement.sql("duckdb")).fetchall())
    ch = chdb_session.query(ClickHouseDialect().render(statement), "ArrowTable")
    return [duck, sorted(tuple(r.values()) for r in ch.to_pylist())]


def test_project_folds_a_renaming_level_into_the_select_it_wraps(chdb_session: Any) -> None:
    from sqlglot import exp

    from metaxy.sql._build import alias, col, project, select, subquery

    items = [col("a"), alias(exp.Mul(this=col("c"), expression=exp.Literal.number(2)), "h")]
    folded = project(_picks(), items, "w")
    nested = select([i.copy() for i in items], subquery(_picks(), "w"))
    assert _levels(folded) == _levels(nested) - 1
    assert _on_both(chdb_session, folded) == _on_both(chdb_session, nested) == [[(1, 20), (3, 60)]] * 2


def test_project_keeps_the_level_when_a_new_alias_names_a_column_still_read(chdb_session: Any) -> None:
    from metaxy.sql._build import alias, col, project

    swapped = project(_picks(), [alias(col("c"), "a"), alias(col("a"), "c")], "w")  # b AS a, a AS c
    onto_filter = project(_picks(), [alias(col("c"), "k")], "w")  # WHERE k reads the column k
    assert _levels(swapped) == _levels(onto_filter) == 3  # not folded
    assert _on_both(chdb_session, swapped) == [[(10, 1), (30, 3)]] * 2
    assert _on_both(chdb_session, onto_filter) == [[(10,), (30,)]] * 2


def test_project_keeps_levels_it_cannot_fold() -> None:
    from metaxy.sql._build import alias, col, func, project, select, table

    over_table = select([col("a")], table("t"))  # not a derived table
    computed = _picks()
    computed.set("expressions", [alias(func("abs", col("a")), "a")])  # computes: folding would repeat it
    grouped = _picks()
    grouped.set("group", sqlglot.exp.Group(expressions=[col("a")]))
    for query in (over_table, computed, grouped):
        before = query.sql()
        assert _levels(project(query, [col("a")], "w")) == _levels(query) + 1
        assert query.sql() == before  # the wrapped query is not modified
