"""The SQL executor: compiles a :class:`ResolvePlan` into **one** SQL statement.

The statement de-duplicates every upstream to its latest rows, prepares it exactly as the Polars
executor does (drops, renames, filters, select, aggregation), joins, hashes the ``|``-joined
provenance strings with ``concat_ws``, and FULL OUTER JOINs the result with the stored rows, so
``new``, ``stale`` and ``orphaned`` come out of a single pass, tagged by a kind column.

Everything backend-specific (quoting, hashing, struct building, latest-row selection) lives in a
small :class:`SqlDialect`; the executor itself never names a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from metaxy.errors import HashAlgorithmNotSupportedError
from metaxy.models import constants as c
from metaxy.versioning.hashing import HashAlgorithm
from metaxy.versioning.plan import UPSTREAM_DROPPED, DepPlan, ResolvePlan

__all__ = ["KIND", "ROW", "CompiledResolve", "SqlDialect", "SqlSource", "compile_resolve", "latest_sql"]

KIND = "__metaxy_kind"
ROW = "__metaxy_row"
ROWID = "__metaxy_rowid"
_E_MARK = "__metaxy_e"
_C_MARK = "__metaxy_c"
_STORED_PROV = "__metaxy_stored_provenance"
_PRED = "__metaxy_predicate"


class SqlDialect:
    """The few SQL fragments that differ between databases. Subclass per backend."""

    name = "ansi"
    hash_functions: dict[HashAlgorithm, str] = {}

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def literal(self, value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def hash(self, expr: str, algorithm: HashAlgorithm, length: int) -> str:
        fn = self.hash_functions.get(algorithm)
        if fn is None:
            raise HashAlgorithmNotSupportedError(
                f"The {self.name} SQL engine cannot compute '{algorithm.value}'. "
                f"Hint: use one of {sorted(a.value for a in self.hash_functions)}."
            )
        return f"left({fn}({expr}), {length})"

    def struct_pack(self, items: Sequence[tuple[str, str]]) -> str:
        return "struct_pack(" + ", ".join(f"{self.quote(k)} := {v}" for k, v in items) + ")"

    def struct_field(self, expr: str, key: str) -> str:
        """A field of a ``*_by_field`` column: works for Struct and Map representations."""
        return f"{expr}[{self.literal(key)}]"

    def map_pack(self, items: Sequence[tuple[str, str]]) -> str:
        return "MAP {" + ", ".join(f"{self.literal(k)}: {v}" for k, v in items) + "}"

    def latest(
        self,
        table: str,
        columns: Sequence[str],
        id_columns: Sequence[str],
        where: str | None,
        *,
        keep_deleted: bool,
        rowid: bool = False,
    ) -> str:
        """The latest row per id (greatest ``(coalesce(deleted_at, updated_at), data_version,
        provenance)``), dropping soft-deleted ones unless ``keep_deleted``; with ``rowid`` also the
        physical row id of that row, as the ``ROWID`` column."""
        raise NotImplementedError


@dataclass(frozen=True)
class SqlSource:
    """A stored feature table as seen by the executor."""

    table: str
    columns: tuple[str, ...]  # stored column order
    filters: tuple[str, ...] = ()  # SQL conditions on stored names, applied after de-duplication
    referenced: tuple[str, ...] = ()  # columns the filters (and staleness predicates) use


def latest_sql(
    d: SqlDialect,
    src: SqlSource,
    id_columns: Sequence[str],
    feature_version: str | None,
    *,
    sample_history: bool = False,
    keep_deleted: bool = False,
    output: Sequence[str] | None = None,
    rowid: bool = False,
) -> str:
    """The read pipeline as SQL: version filter → latest per id → hide deleted → filters.

    ``output`` limits the columns produced (default: all stored columns); filters may only use
    output columns.
    """
    where = f"{d.quote(c.FEATURE_VERSION)} = {d.literal(feature_version)}" if feature_version is not None else None
    if sample_history:
        conds = [w for w in (where, None if keep_deleted else f"{d.quote(c.DELETED_AT)} IS NULL") if w]
        sql = f"SELECT * FROM {d.quote(src.table)}" + (f" WHERE {' AND '.join(conds)}" if conds else "")
    else:
        sql = d.latest(src.table, output or src.columns, id_columns, where, keep_deleted=keep_deleted, rowid=rowid)
    for f in src.filters:
        sql = f"SELECT * FROM ({sql}) WHERE {f}"
    return sql


@dataclass(frozen=True)
class CompiledResolve:
    """The SQL of one resolve and how to split its result."""

    expected_sql: str  # the joined upstream with provenance (the increment's `input`)
    expected_columns: tuple[str, ...]
    increment_sql: str | None  # None when there is nothing stored to compare with
    stored_columns: tuple[str, ...]


def compile_resolve(
    d: SqlDialect,
    plan: ResolvePlan,
    upstream: Sequence[SqlSource],
    current: SqlSource | None,
    *,
    algorithm: HashAlgorithm,
    length: int,
    predicates: Sequence[str] = (),
    map_mode: bool = False,
) -> CompiledResolve:
    """Compile the whole resolve of ``plan`` into SQL (see the module docs).

    ``map_mode`` builds the ``*_by_field`` output columns as ``MAP(VARCHAR, VARCHAR)``.
    """
    prepared = [_prepare(d, dep, src, algorithm, length) for dep, src in zip(plan.deps, upstream, strict=True)]
    joined_sql, joined_cols = _join(d, plan, prepared)
    expected_sql, expected_cols = _with_provenance(d, plan, joined_sql, joined_cols, algorithm, length, map_mode)
    if current is None:
        return CompiledResolve(expected_sql, expected_cols, None, ())
    return CompiledResolve(
        expected_sql,
        expected_cols,
        _increment(d, plan, expected_sql, expected_cols, current, predicates),
        current.columns,
    )


# --- preparation -----------------------------------------------------------------------------


def _cols(d: SqlDialect, names: Sequence[str], alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + d.quote(n) for n in names)


def _prepare(
    d: SqlDialect, dep: DepPlan, src: SqlSource, algorithm: HashAlgorithm, length: int
) -> tuple[str, tuple[str, ...]]:
    dep.check_stored_columns(src.columns)
    kept = [col for col in src.columns if col not in UPSTREAM_DROPPED]
    # Only the data-version struct feeds the hashes: the other versioning columns of an upstream are
    # never read after the join, so they are not even de-duplicated (aggregation rebuilds them).
    unused = {c.PROVENANCE_BY_FIELD, c.PROVENANCE, c.DATA_VERSION}
    kept = [col for col in kept if col not in unused or col in dep.rename]
    base = latest_sql(d, src, _original_ids(dep), dep.feature_version, output=kept)
    renames = dep.all_renames
    cols = tuple(renames.get(col, col) for col in kept)
    sql = (
        "SELECT "
        + ", ".join(f"{d.quote(col)} AS {d.quote(renames[col])}" if col in renames else d.quote(col) for col in kept)
        + f" FROM ({base})"
    )
    for f in dep.filters:
        sql = f"SELECT * FROM ({sql}) WHERE {f.to_sql(d.name)}"
    if dep.select is not None:
        wanted = [col for col in dep.select if col in cols or col not in dep.versioning_columns]
        dep.check_selected(wanted, cols)
        cols = tuple(wanted)
        sql = f"SELECT {_cols(d, cols)} FROM ({sql})"
    if dep.lineage.is_aggregation:
        return _aggregate(d, dep, sql, cols, algorithm, length)
    return sql, cols


def _original_ids(dep: DepPlan) -> list[str]:
    back = {v: k for k, v in dep.rename.items()}
    return [back.get(i, i) for i in dep.id_columns]


def _aggregate(
    d: SqlDialect, dep: DepPlan, sql: str, cols: tuple[str, ...], algorithm: HashAlgorithm, length: int
) -> tuple[str, tuple[str, ...]]:
    group = list(dep.join_columns)
    order = ", ".join(d.quote(i) for i in dep.id_columns)
    dv = d.quote(dep.data_version_by_field)
    per_field = [
        (k, d.hash(f"coalesce(string_agg({d.struct_field(dv, k)}, '|' ORDER BY {order}), '')", algorithm, length))
        for k in dep.field_struct_keys
    ]
    agg_inner = (
        f"SELECT {_cols(d, group)}, "
        + ", ".join(f"{expr} AS {d.quote(k)}" for k, expr in per_field)
        + f" FROM ({sql}) GROUP BY {_cols(d, group)}"
    )
    keys = dep.field_struct_keys
    struct = d.struct_pack([(k, f"a.{d.quote(k)}") for k in keys])
    sample = d.hash("concat_ws('|', " + ", ".join(f"a.{d.quote(k)}" for k in keys) + ")", algorithm, length)
    rest = [col for col in cols if col not in dep.versioning_columns]
    on = " AND ".join(f"p.{d.quote(g)} IS NOT DISTINCT FROM a.{d.quote(g)}" for g in group)
    out_cols = (*rest, dep.data_version_by_field, dep.data_version, dep.provenance_by_field, dep.provenance)
    sql = (
        f"SELECT {_cols(d, rest, 'p')}, {struct} AS {d.quote(dep.data_version_by_field)}, "
        f"{sample} AS {d.quote(dep.data_version)}, {struct} AS {d.quote(dep.provenance_by_field)}, "
        f"{sample} AS {d.quote(dep.provenance)} FROM ({sql}) AS p LEFT JOIN ({agg_inner}) AS a ON {on}"
    )
    return sql, out_cols


def _join(d: SqlDialect, plan: ResolvePlan, prepared: list[tuple[str, tuple[str, ...]]]) -> tuple[str, tuple[str, ...]]:
    keys = list(plan.join_keys)
    plan.check_collisions([cols for _, cols in prepared])
    order = sorted(range(len(plan.deps)), key=lambda i: plan.deps[i].optional)
    first = order[0]
    select: list[str] = []
    out: list[str] = []
    for col in prepared[first][1]:
        if col in keys and plan.join_mode == "outer" and len(order) > 1:
            select.append("coalesce(" + ", ".join(f"j{i}.{d.quote(col)}" for i in order) + f") AS {d.quote(col)}")
        else:
            select.append(f"j{first}.{d.quote(col)}")
        out.append(col)
    from_sql = f"({prepared[first][0]}) AS j{first}"
    for i in order[1:]:
        how = "FULL OUTER JOIN" if plan.join_mode == "outer" else ("LEFT JOIN" if plan.deps[i].optional else "JOIN")
        if plan.join_mode == "outer":
            on = " AND ".join(
                "coalesce("
                + ", ".join(f"j{p}.{d.quote(k)}" for p in order[: order.index(i)])
                + f") = j{i}.{d.quote(k)}"
                for k in keys
            )
        else:
            on = " AND ".join(f"j{first}.{d.quote(k)} = j{i}.{d.quote(k)}" for k in keys)
        from_sql += f" {how} ({prepared[i][0]}) AS j{i} ON {on}"
        for col in prepared[i][1]:
            if col not in keys:
                select.append(f"j{i}.{d.quote(col)}")
                out.append(col)
    return f"SELECT {', '.join(select)} FROM {from_sql}", tuple(out)


def _with_provenance(
    d: SqlDialect,
    plan: ResolvePlan,
    sql: str,
    cols: tuple[str, ...],
    algorithm: HashAlgorithm,
    length: int,
    map_mode: bool = False,
) -> tuple[str, tuple[str, ...]]:
    hashes: list[str] = []
    for i, f in enumerate(plan.fields):
        parts = [d.literal(f.field), d.literal(f.code_version)]
        required: list[str] = []
        for p in f.parents:
            dep = plan.deps[p.dep_index]
            value = f"CAST({d.struct_field(d.quote(dep.data_version_by_field), p.struct_key)} AS VARCHAR)"
            if dep.optional:
                value = f"coalesce({value}, '')"
            else:
                required.append(value)
            parts += [d.literal(p.fq), value]
        text = f"concat_ws('|', {', '.join(parts)})"
        if required:
            text = f"CASE WHEN {' OR '.join(f'{r} IS NULL' for r in required)} THEN NULL ELSE {text} END"
        hashes.append(f"{d.hash(text, algorithm, length)} AS {d.quote(f'__metaxy_h{i}')}")
    keep = [col for col in cols if col not in plan.system_upstream_columns]
    hcols = [d.quote(f"__metaxy_h{i}") for i in range(len(plan.fields))]
    pack = d.map_pack if map_mode else d.struct_pack
    struct = pack([(f.struct_key, h) for f, h in zip(plan.fields, hcols, strict=True)])
    sample_text = f"concat_ws('|', {', '.join(hcols)})"
    sample = d.hash(
        f"CASE WHEN {' OR '.join(f'{h} IS NULL' for h in hcols)} THEN NULL ELSE {sample_text} END", algorithm, length
    )
    inner = f"SELECT {_cols(d, keep)}, {', '.join(hashes)} FROM ({sql})"
    out = (
        f"SELECT {_cols(d, keep)}, {struct} AS {d.quote(c.PROVENANCE_BY_FIELD)}, {sample} AS {d.quote(c.PROVENANCE)}"
        f" FROM ({inner})"
    )
    final = (
        f"SELECT *, {d.quote(c.PROVENANCE_BY_FIELD)} AS {d.quote(c.DATA_VERSION_BY_FIELD)}, "
        f"{d.quote(c.PROVENANCE)} AS {d.quote(c.DATA_VERSION)} FROM ({out})"
    )
    return final, (*keep, *c.VERSIONING_COLUMNS)


# --- comparison --------------------------------------------------------------------------------


def _increment(
    d: SqlDialect,
    plan: ResolvePlan,
    expected_sql: str,
    expected_cols: tuple[str, ...],
    current: SqlSource,
    predicates: Sequence[str],
) -> str:
    """Expected vs stored in one FULL OUTER JOIN. The stored side is de-duplicated on just the
    columns the comparison needs (keys, provenance, what filters and predicates read) plus the row
    id; orphaned rows get their stored columns back through that row id."""
    q = d.quote
    keys = list(plan.join_keys)
    needed = [*plan.id_columns, *keys, c.PROVENANCE, *current.referenced]
    if plan.collapse_stored:
        needed.append(c.UPDATED_AT)
    output = [col for col in dict.fromkeys(needed) if col in current.columns]
    cur = latest_sql(d, current, plan.id_columns, plan.feature_version, output=output, rowid=True)
    if plan.collapse_stored:
        order = ", ".join(
            [f"{q(c.UPDATED_AT)} DESC NULLS LAST", f"{q(c.PROVENANCE)} DESC NULLS LAST"]
            + [f"{q(i)} ASC NULLS LAST" for i in plan.id_columns]
        )
        cur = f"SELECT * FROM ({cur}) QUALIFY row_number() OVER (PARTITION BY {_cols(d, keys)} ORDER BY {order}) = 1"
    pred = "coalesce(" + " OR ".join(f"({p})" for p in predicates) + ", false)" if predicates else "false"
    stored = (
        f"SELECT {_cols(d, keys)}, {q(c.PROVENANCE)} AS {q(_STORED_PROV)}, {pred} AS {q(_PRED)}, "
        f"true AS {q(_C_MARK)}, {q(ROWID)} FROM ({cur})"
    )
    on = " AND ".join(f"e.{q(k)} = s.{q(k)}" for k in keys)
    kind = (
        f"CASE WHEN s.{q(_C_MARK)} IS NULL THEN 'new' WHEN e.{q(_E_MARK)} IS NULL THEN 'orphaned' "
        f"ELSE 'stale' END AS {q(KIND)}"
    )
    sp, ep = f"s.{q(_STORED_PROV)}", f"e.{q(c.PROVENANCE)}"
    where = (
        f"s.{q(_C_MARK)} IS NULL OR e.{q(_E_MARK)} IS NULL OR {sp} IS NULL "
        f"OR {sp} IS DISTINCT FROM {ep} OR s.{q(_PRED)}"
    )
    matched = (
        f"SELECT {_cols(d, expected_cols, 'e')}, s.{q(ROWID)}, {kind} "
        f"FROM (SELECT *, true AS {q(_E_MARK)} FROM ({expected_sql})) AS e "
        f"FULL OUTER JOIN ({stored}) AS s ON {on} WHERE {where}"
    )
    row = d.struct_pack([(col, f"o.{q(col)}") for col in current.columns])
    return (
        f"SELECT {_cols(d, expected_cols, 'm')}, CASE WHEN m.{q(KIND)} = 'orphaned' THEN {row} END AS {q(ROW)}, "
        f"m.{q(KIND)} FROM ({matched}) AS m LEFT JOIN (SELECT rowid AS {q(ROWID)}, * FROM {q(current.table)}) AS o "
        f"ON m.{q(KIND)} = 'orphaned' AND o.{q(ROWID)} = m.{q(ROWID)}"
    )
