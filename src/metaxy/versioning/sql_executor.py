"""The SQL executor: compiles a :class:`ResolvePlan` into **one** SQL statement, as a sqlglot tree.

The statement de-duplicates every upstream to its latest rows, prepares it exactly as the Polars
executor does (drops, renames, filters, select, aggregation), joins, hashes the ``|``-joined
provenance strings with ``concat_ws``, and FULL OUTER JOINs the result with the stored rows, so
``new``, ``stale`` and ``orphaned`` come out of a single pass, tagged by the :data:`KIND` column.
Orphaned rows carry their stored columns as ``__metaxy_o<i>`` (``i`` = position in
:attr:`CompiledResolve.stored_columns`): fetched back through the row identity where the dialect
has one (only the comparison's columns go through the de-duplication), carried through the
comparison otherwise or when the store asks for it (``carry``: cheaper for small stored tables),
then packed in one column (:data:`ORPHAN_ROW`) where the dialect packs rows.

Everything engine-specific (latest-row selection, hashing, struct/map building, row identity)
comes from a :class:`~metaxy.sql.dialects.SqlDialect`; the executor never names a database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlglot import exp

from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.sql._build import alias, and_all, asc, col, desc, lit, or_all, project, select, star, subquery, table
from metaxy.sql.dialects import SqlDialect
from metaxy.sql.statements import ROWID, SqlSource, filter_condition, latest_rows
from metaxy.versioning.hashing import HashAlgorithm
from metaxy.versioning.plan import UPSTREAM_DROPPED, DepPlan, ResolvePlan

__all__ = [
    "COPIES",
    "KIND",
    "ORPHAN_ROW",
    "CompiledResolve",
    "RenderedResolve",
    "compile_resolve",
    "orphan_column",
    "rendered_resolve",
]

KIND = "__metaxy_kind"
_E_MARK = "__metaxy_e"
_C_MARK = "__metaxy_c"
_STORED_PROV = "__metaxy_stored_provenance"
_PRED = "__metaxy_predicate"

Part = Literal["new", "stale", "orphaned"]

#: The data-version columns of computed rows are copies of the provenance columns. Only
#: :attr:`CompiledResolve.expected` and :meth:`CompiledResolve.part` select them; the fetched
#: statements (:attr:`CompiledResolve.computed`, :attr:`CompiledResolve.increment`) leave them out
#: of the transfer and the store re-creates them.
COPIES = {c.DATA_VERSION_BY_FIELD: c.PROVENANCE_BY_FIELD, c.DATA_VERSION: c.PROVENANCE}


def orphan_column(i: int) -> str:
    """The increment's column carrying stored column ``i`` of an orphaned row."""
    return f"__metaxy_o{i}"


#: The increment's one column carrying an orphaned row's stored columns, packed
#: (:meth:`SqlDialect.pack_row`), where the comparison carries them and the dialect packs rows;
#: value ``i`` is stored column ``i``. The fetching store unpacks it into :func:`orphan_column`\ s.
ORPHAN_ROW = "__metaxy_orow"


@dataclass(frozen=True)
class CompiledResolve:
    """The statements of one resolve and how to split the increment's rows."""

    computed: exp.Select  # the joined upstream with provenance, without the data-version copies
    expected: exp.Select  # ``computed`` with the copies (the increment's `input`)
    expected_columns: tuple[str, ...]
    increment: exp.Select | None  # None when there is nothing stored to compare with; no copies
    stored_columns: tuple[str, ...]  # the stored table's columns (orphaned rows have these)
    #: per stored column, its value in an increment row (``__metaxy_o<i>`` or a packed row's field)
    orphan_values: tuple[exp.Expression, ...] = ()

    def tagged(self) -> exp.Select:
        """The increment's statement: its rows tagged by :data:`KIND` (needs :attr:`increment`)."""
        assert self.increment is not None
        return self.increment

    def part(self, kind: Part) -> exp.Select:
        """A statement selecting one part of the increment (needs :attr:`increment`)."""
        source = subquery(self.tagged().copy(), "__metaxy_increment")
        where = exp.EQ(this=col(KIND), expression=lit(kind))
        items: list[exp.Expression]
        if kind == "orphaned":
            items = [alias(v.copy(), name) for v, name in zip(self.orphan_values, self.stored_columns, strict=True)]
        else:
            items = [alias(col(COPIES[n]), n) if n in COPIES else col(n) for n in self.expected_columns]
        return select(items, source, where=where)


def compile_resolve(
    d: SqlDialect,
    plan: ResolvePlan,
    upstream: Sequence[SqlSource],
    current: SqlSource | None,
    *,
    algorithm: HashAlgorithm,
    length: int,
    predicates: Sequence[FilterExpression] = (),
    map_mode: bool = False,
    carry: bool = False,
) -> CompiledResolve:
    """Compile the whole resolve of ``plan`` (see the module docs).

    ``map_mode``: the ``*_by_field`` columns are Maps (stored upstream ones are read as Maps,
    computed ones are built as Maps); Structs otherwise. ``carry``: the stored side carries every
    stored column through the comparison instead of fetching orphaned rows back by row identity
    (cheaper for small stored tables, see :func:`_increment`).
    """
    prepared = [
        _prepare(d, dep, src, algorithm, length, map_mode) for dep, src in zip(plan.deps, upstream, strict=True)
    ]
    joined, joined_cols = _join(plan, prepared)
    computed, computed_cols = _with_provenance(d, plan, joined, joined_cols, algorithm, length, map_mode, prepared)
    copies = [alias(col(source), name) for name, source in COPIES.items()]
    expected = select([star(), *copies], subquery(computed, "__metaxy_versions"))
    expected_cols = (*computed_cols, *COPIES)
    if current is None:
        return CompiledResolve(computed, expected, expected_cols, None, ())
    increment, values = _increment(d, plan, computed, computed_cols, current, predicates, carry=carry)
    return CompiledResolve(computed, expected, expected_cols, increment, current.columns, values)


class RenderedResolve:
    """A compiled resolve whose statements are rendered at most once each (memoised by name)."""

    def __init__(self, dialect: SqlDialect, compiled: CompiledResolve) -> None:
        self.dialect = dialect
        self.compiled = compiled
        self._texts: dict[str, str] = {}

    def text(self, name: str, build: Callable[[CompiledResolve], exp.Expression]) -> str:
        """The SQL of the statement ``build(compiled)``, rendered on first use under ``name``."""
        text = self._texts.get(name)
        if text is None:
            text = self._texts[name] = self.dialect.render(build(self.compiled))
        return text


_CACHE_SIZE = 64
_cache: OrderedDict[tuple[Any, ...], tuple[ResolvePlan, RenderedResolve]] = OrderedDict()
_cache_lock = threading.Lock()


def rendered_resolve(
    d: SqlDialect,
    plan: ResolvePlan,
    upstream: Sequence[SqlSource],
    current: SqlSource | None,
    *,
    algorithm: HashAlgorithm,
    length: int,
    predicates: Sequence[FilterExpression] = (),
    map_mode: bool = False,
    carry: bool = False,
) -> RenderedResolve:
    """:func:`compile_resolve`, cached per plan and inputs: building and rendering the statement of
    a wide graph costs tens of milliseconds of pure Python, and a pipeline resolves the same
    feature with the same tables again and again. Plans are cached on their graph, so the plan
    object identifies the graph version; the entry keeps the plan alive so its id stays unique."""
    key = (id(plan), d.name, tuple(upstream), current, tuple(predicates), algorithm, length, map_mode, carry)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] is plan:
            _cache.move_to_end(key)
            return hit[1]
    compiled = compile_resolve(
        d,
        plan,
        upstream,
        current,
        algorithm=algorithm,
        length=length,
        predicates=predicates,
        map_mode=map_mode,
        carry=carry,
    )
    rendered = RenderedResolve(d, compiled)
    with _cache_lock:
        _cache[key] = (plan, rendered)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return rendered


# --- preparation -----------------------------------------------------------------------------


@dataclass
class _Prepared:
    query: exp.Select
    columns: tuple[str, ...]
    dv_is_map: bool  # how this upstream's data-version column is read


def _prepare(
    d: SqlDialect, dep: DepPlan, src: SqlSource, algorithm: HashAlgorithm, length: int, map_mode: bool
) -> _Prepared:
    dep.check_stored_columns(src.columns)
    renames = dep.all_renames
    kept = [name for name in src.columns if name not in UPSTREAM_DROPPED]
    # Only the data-version struct feeds the hashes: the other versioning columns of an upstream are
    # never read after the join, so they are not even de-duplicated (aggregation rebuilds them).
    # A FeatureDep filter may still name one (under its renamed name): it is read for the filter.
    unused = {c.PROVENANCE_BY_FIELD, c.PROVENANCE, c.DATA_VERSION}
    dep_filtered = {name for f in dep.filters for name in f.columns}
    for_dep_filters = [n for n in kept if n in unused and n not in dep.rename and renames.get(n, n) in dep_filtered]
    kept = [name for name in kept if name not in unused or name in dep.rename]
    # A runtime filter may name any stored column (it applies to the stored rows, before the
    # renames and drops): the columns it names are read for it.
    runtime_filtered = {name for f in src.filters for name in f.columns}
    read = [*kept, *for_dep_filters]
    read += [n for n in src.columns if n in runtime_filtered and n not in read]
    base = latest_rows(d, src, _original_ids(dep), dep.feature_version, output=read)
    cols = tuple(renames.get(name, name) for name in kept)
    items = [alias(col(name), renames[name]) if name in renames else col(name) for name in [*kept, *for_dep_filters]]
    query = project(base, items, "__metaxy_up")
    condition = filter_condition(d, dep.filters)
    if condition is not None:
        query = select([star()], subquery(query, "__metaxy_dep"), where=condition)
    if for_dep_filters:
        query = project(query, [col(name) for name in cols], "__metaxy_dep_cols")
    if dep.select is not None:
        wanted = [name for name in dep.select if name in cols or name not in dep.versioning_columns]
        dep.check_selected(wanted, cols)
        cols = tuple(wanted)
        query = project(query, [col(name) for name in cols], "__metaxy_sel")
    if dep.lineage.is_aggregation:
        return _aggregate(d, dep, query, cols, algorithm, length, map_mode)
    return _Prepared(query, cols, map_mode)


def _original_ids(dep: DepPlan) -> list[str]:
    back = {v: k for k, v in dep.rename.items()}
    return [back.get(i, i) for i in dep.id_columns]


def _aggregate(
    d: SqlDialect,
    dep: DepPlan,
    query: exp.Select,
    cols: tuple[str, ...],
    algorithm: HashAlgorithm,
    length: int,
    map_mode: bool,
) -> _Prepared:
    """Per group: each field's data versions (upstream id order) ``|``-joined and hashed; the
    result replaces both version structs of every row of the group."""
    group = list(dep.join_columns)
    keys = dep.field_struct_keys
    per_field = [
        alias(
            d.hash(
                exp.Coalesce(
                    this=d.string_agg(
                        d.by_field(col(dep.data_version_by_field), k, is_map=map_mode),
                        "|",
                        [col(i) for i in dep.id_columns],
                    ),
                    expressions=[lit("")],
                ),
                algorithm,
                length,
            ),
            k,
        )
        for k in keys
    ]
    agg = select(
        [*(col(g) for g in group), *per_field],
        subquery(query.copy(), "__metaxy_rows"),
        group_by=[col(g) for g in group],
    )

    def struct() -> exp.Expression:
        return d.struct_pack([(k, col(k, "a")) for k in keys])

    def sample() -> exp.Expression:
        return d.hash(
            exp.ConcatWs(coalesce=True, expressions=[lit("|"), *(col(k, "a") for k in keys)]), algorithm, length
        )

    rest = [name for name in cols if name not in dep.versioning_columns]
    on = and_all(exp.NullSafeEQ(this=col(g, "p"), expression=col(g, "a")) for g in group)
    joined = select(
        [
            *(col(name, "p") for name in rest),
            alias(struct(), dep.data_version_by_field),
            alias(sample(), dep.data_version),
            alias(struct(), dep.provenance_by_field),
            alias(sample(), dep.provenance),
        ],
        subquery(query, "p"),
    )
    joined.append("joins", exp.Join(this=subquery(agg, "a"), side="LEFT", on=on))
    out_cols = (*rest, dep.data_version_by_field, dep.data_version, dep.provenance_by_field, dep.provenance)
    return _Prepared(joined, out_cols, False)


def _join(plan: ResolvePlan, prepared: list[_Prepared]) -> tuple[exp.Select, tuple[str, ...]]:
    keys = list(plan.join_keys)
    plan.check_collisions([p.columns for p in prepared])
    order = sorted(range(len(plan.deps)), key=lambda i: plan.deps[i].optional)
    first = order[0]
    if len(order) == 1:
        return prepared[first].query, prepared[first].columns
    outer = plan.join_mode == "outer"
    items: list[exp.Expression] = []
    out: list[str] = []
    for name in prepared[first].columns:
        if name in keys and outer and len(order) > 1:
            items.append(
                alias(
                    exp.Coalesce(this=col(name, f"j{order[0]}"), expressions=[col(name, f"j{i}") for i in order[1:]]),
                    name,
                )
            )
        else:
            items.append(col(name, f"j{first}"))
        out.append(name)
    query = select(items, subquery(prepared[first].query, f"j{first}"))
    for pos, i in enumerate(order[1:], start=1):
        if outer:
            before = order[:pos]
            on = and_all(
                exp.EQ(
                    this=exp.Coalesce(this=col(k, f"j{before[0]}"), expressions=[col(k, f"j{p}") for p in before[1:]])
                    if len(before) > 1
                    else col(k, f"j{before[0]}"),
                    expression=col(k, f"j{i}"),
                )
                for k in keys
            )
            join = exp.Join(this=subquery(prepared[i].query, f"j{i}"), side="FULL", kind="OUTER", on=on)
        else:
            on = and_all(exp.EQ(this=col(k, f"j{first}"), expression=col(k, f"j{i}")) for k in keys)
            side = "LEFT" if plan.deps[i].optional else None
            join = exp.Join(this=subquery(prepared[i].query, f"j{i}"), side=side, on=on)
        query.append("joins", join)
        for name in prepared[i].columns:
            if name not in keys:
                query.append("expressions", col(name, f"j{i}"))
                out.append(name)
    return query, tuple(out)


def _with_provenance(
    d: SqlDialect,
    plan: ResolvePlan,
    joined: exp.Select,
    cols: tuple[str, ...],
    algorithm: HashAlgorithm,
    length: int,
    map_mode: bool,
    prepared: list[_Prepared],
) -> tuple[exp.Select, tuple[str, ...]]:
    hashes: list[exp.Expression] = []
    for i, f in enumerate(plan.fields):
        parts: list[exp.Expression] = [lit(f.field), lit(f.code_version)]
        required: list[exp.Expression] = []
        for p in f.parents:
            dep = plan.deps[p.dep_index]
            is_map = prepared[p.dep_index].dv_is_map

            def value() -> exp.Expression:
                return d.text(d.by_field(col(dep.data_version_by_field), p.struct_key, is_map=is_map))  # noqa: B023

            if dep.optional:
                parts += [lit(p.fq), exp.Coalesce(this=value(), expressions=[lit("")])]
            else:
                parts += [lit(p.fq), value()]
                required.append(value())
        hashes.append(alias(d.hash(d.joined(parts, required), algorithm, length), f"__metaxy_h{i}"))
    keep = [name for name in cols if name not in plan.system_upstream_columns]
    hnames = [f"__metaxy_h{i}" for i in range(len(plan.fields))]
    pack = d.map_pack if map_mode else d.struct_pack
    by_field = pack([(f.struct_key, col(h)) for f, h in zip(plan.fields, hnames, strict=True)])
    sample = d.hash(d.joined([col(h) for h in hnames], [col(h) for h in hnames]), algorithm, length)
    inner = project(joined, [*(col(name) for name in keep), *hashes], "__metaxy_joined")
    hashed = select(
        [*(col(name) for name in keep), alias(by_field, c.PROVENANCE_BY_FIELD), alias(sample, c.PROVENANCE)],
        subquery(inner, "__metaxy_hashes"),
    )
    return hashed, (*keep, c.PROVENANCE_BY_FIELD, c.PROVENANCE)


# --- comparison --------------------------------------------------------------------------------


def _increment(
    d: SqlDialect,
    plan: ResolvePlan,
    expected: exp.Select,
    expected_cols: tuple[str, ...],
    current: SqlSource,
    predicates: Sequence[FilterExpression],
    *,
    carry: bool = False,
) -> tuple[exp.Select, tuple[exp.Expression, ...]]:
    """Expected vs stored in one FULL OUTER JOIN, and each stored column's value in its rows.

    The stored side is de-duplicated on just the columns the comparison needs (keys, provenance,
    what filters and predicates read) plus the row identity, and orphaned rows get their stored
    columns back through it; without a row identity, or with ``carry``, the stored side carries
    every stored column instead (packed in one value where the dialect packs rows). Carrying costs less
    than the second read and join of a fetch-back when the stored table is small (ClickHouse, 10k
    rows: ~15% of the statement) and more when it is large (1M rows: ~20% more), where the wide
    rows pass the de-duplication and the join for every stored row, not only the orphans."""
    keys = list(plan.join_keys)
    by_rowid = d.row_identity is not None and not carry
    needed = [*plan.id_columns, *keys, c.PROVENANCE, *current.referenced]
    if plan.collapse_stored:
        needed.append(c.UPDATED_AT)
    if not by_rowid:
        needed += current.columns
    output = [name for name in dict.fromkeys(needed) if name in current.columns]
    stored_rows = latest_rows(d, current, plan.id_columns, plan.feature_version, output=output, rowid=by_rowid)
    carried = [*output, ROWID] if by_rowid else output
    if plan.collapse_stored:
        order = [desc(col(c.UPDATED_AT)), desc(col(c.PROVENANCE)), *(asc(col(i)) for i in plan.id_columns)]
        stored_rows = d.first_per_group(
            select([col(n) for n in carried], subquery(stored_rows, "__metaxy_current")), keys, order
        )
    pred_conds = [p.to_sqlglot(d.name) for p in predicates]
    pred = exp.Coalesce(this=or_all(pred_conds), expressions=[lit(False)]) if pred_conds else lit(False)
    packed = None if by_rowid else d.pack_row([col(name) for name in current.columns])
    orphan_items: list[exp.Expression]
    if by_rowid:
        orphan_items = [col(ROWID)]
    elif packed is not None:
        orphan_items = [alias(packed, ORPHAN_ROW)]
    else:
        orphan_items = [alias(col(name), orphan_column(i)) for i, name in enumerate(current.columns)]
    values = tuple(
        d.row_field(col(ORPHAN_ROW), i) if packed is not None else col(orphan_column(i))
        for i in range(len(current.columns))
    )
    stored = project(
        stored_rows,
        [
            *(col(k) for k in keys),
            alias(col(c.PROVENANCE), _STORED_PROV),
            alias(pred, _PRED),
            alias(lit(True), _C_MARK),
            *orphan_items,
        ],
        "__metaxy_stored",
    )
    kind = exp.Case(
        ifs=[
            exp.If(this=exp.Is(this=col(_C_MARK, "s"), expression=exp.Null()), true=lit("new")),
            exp.If(this=exp.Is(this=col(_E_MARK, "e"), expression=exp.Null()), true=lit("orphaned")),
        ],
        default=lit("stale"),
    )
    sp, ep = col(_STORED_PROV, "s"), col(c.PROVENANCE, "e")
    where = or_all(
        [
            exp.Is(this=col(_C_MARK, "s"), expression=exp.Null()),
            exp.Is(this=col(_E_MARK, "e"), expression=exp.Null()),
            exp.Is(this=sp, expression=exp.Null()),
            exp.NullSafeNEQ(this=sp.copy(), expression=ep),
            col(_PRED, "s"),
        ]
    )
    carried_out = [col(item.alias_or_name, "s") for item in orphan_items]
    expected_marked = expected.copy()
    expected_marked.append("expressions", alias(lit(True), _E_MARK))
    # Carrying, the wide stored side comes first: engines that hash the right-hand side of a join
    # (ClickHouse) then hash the narrow expected rows and stream the stored ones past them.
    sides = [subquery(expected_marked, "e"), subquery(stored, "s")]
    first, second = sides if by_rowid else sides[::-1]
    matched = select([*(col(name, "e") for name in expected_cols), *carried_out, alias(kind, KIND)], first, where=where)
    on = and_all(exp.EQ(this=col(k, "e"), expression=col(k, "s")) for k in keys)
    matched.append("joins", exp.Join(this=second, side="FULL", kind="OUTER", on=on))
    if not by_rowid:
        return matched, values
    identity = d.row_id()
    assert identity is not None
    out = select(
        [
            *(col(name, "m") for name in expected_cols),
            *(alias(col(name, "o"), orphan_column(i)) for i, name in enumerate(current.columns)),
            col(KIND, "m"),
        ],
        subquery(matched, "m"),
    )
    is_orphan = exp.EQ(this=col(KIND, "m"), expression=lit("orphaned"))
    if d.row_lookup_lateral:
        # per matched row: the stored row with that identity, only for orphans (a one-time filter);
        # OFFSET 0 keeps the planner from pulling the lookup up into a join of the whole table
        where = and_all([exp.EQ(this=identity, expression=col(ROWID, "m")), is_orphan])
        lookup = select([star()], table(current.table), where=where).offset(0, copy=False)
        lateral = exp.Lateral(this=exp.Subquery(this=lookup), alias=exp.TableAlias(this=exp.to_identifier("o")))
        out.append("joins", exp.Join(this=lateral, side="LEFT", on=exp.true()))
        return out, values
    rows = select([alias(identity, ROWID), star()], table(current.table))
    orphan_on = exp.And(this=is_orphan, expression=exp.EQ(this=col(ROWID, "o"), expression=col(ROWID, "m")))
    out.append("joins", exp.Join(this=subquery(rows, "o"), side="LEFT", on=orphan_on))
    return out, values
