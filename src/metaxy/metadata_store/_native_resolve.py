"""What every SQL store's ``_resolve_native`` shares: deciding whether a resolve can run as one
statement in the engine, rendering it, and (for stores that fetch the statement's rows into Polars)
splitting the tagged rows into new / stale / orphaned frames.

:func:`prepare` takes the decision: samples given as a local frame, an upstream read from a fallback
store, or a Polars-expression filter send the resolve to Polars (a warning, or
:class:`VersioningEngineMismatchError` when ``versioning_engine='native'`` was asked for).
:func:`fetched_increment` builds the (lazy) increment of a store that runs the rendered statement
and receives its rows as a Polars frame (PostgreSQL, ClickHouse); DuckDB keeps its relations lazy
in the engine instead (``_duckdb_resolve``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import narwhals as nw
import polars as pl

from metaxy._warnings import warn_at_caller
from metaxy.errors import PolarsMaterializationWarning, VersioningEngineMismatchError
from metaxy.metadata_store.contract import ResolveRequest
from metaxy.metadata_store.types import Increment, LazyIncrement
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.sql.dialects import SqlDialect
from metaxy.sql.statements import SqlSource
from metaxy.versioning.sql_executor import COPIES, KIND, RenderedResolve, orphan_column, rendered_resolve

if TYPE_CHECKING:
    from metaxy.metadata_store.base import MetadataStore

__all__ = ["COPIES", "NativeResolve", "conditions", "fetched_increment", "prepare", "with_copies"]


def conditions(filters: Sequence[Any]) -> list[FilterExpression] | None:
    """The filters parsed; None when one is a narwhals / Polars expression (the Polars engine
    handles those)."""
    out: list[FilterExpression] = []
    for f in filters:
        if isinstance(f, str):
            f = FilterExpression.parse(f)
        if not isinstance(f, FilterExpression):
            return None
        out.append(f)
    return out


@dataclass(frozen=True)
class NativeResolve:
    """A resolve rendered for the engine, with the column types a fetching store needs."""

    rendered: RenderedResolve
    #: the types of the upstream columns (under their original and renamed names) and of the stored
    #: target's columns; empty unless :func:`prepare` was asked for ``types``
    known: dict[str, pl.DataType] = field(default_factory=dict)
    #: the stored target's schema (None when nothing is stored or the comparison is skipped)
    stored_schema: pl.Schema | None = None


def prepare(
    store: MetadataStore,
    request: ResolveRequest,
    dialect: SqlDialect,
    *,
    strict: bool,
    engine: str,
    types: bool = False,
    carry: Callable[[str], bool] | None = None,
) -> NativeResolve | None:
    """The resolve rendered in ``dialect``, or None when it runs in Polars instead.

    ``engine`` names the engine in the messages (``"PostgreSQL"``); ``types``: read every table's
    schema (not only its column names) to fill :attr:`NativeResolve.known`; ``carry(table)``: whether
    the comparison carries the stored table's columns (see ``sql_executor._increment``) rather than
    fetching orphaned rows back by row identity.

    Raises:
        VersioningEngineMismatchError: ``strict`` and the resolve cannot run in the engine.
    """
    plan = request.plan
    reason = None
    if request.samples is not None:
        reason = "samples were given as a local frame"
    elif any(not store._table_exists(store._table(d.feature)) for d in plan.deps):
        if not any(fb.has_feature_anywhere(d.feature) for d in plan.deps for fb in store.fallback_stores):
            return None  # missing everywhere: the Polars path raises FeatureNotFoundError
        reason = "an upstream feature is read from a fallback store"
        if strict and store._fallback_specs:
            strict = False  # with fallbacks configured, 'native' materialises like 'auto' (spec §5.4)
    sources: list[SqlSource] = []
    known: dict[str, pl.DataType] = {}
    if reason is None:
        for dep in plan.deps:
            name = store._table(dep.feature)
            conds = conditions([*request.filters_by_key.get(dep.feature, []), *request.global_filters])
            if conds is None:
                reason = f"a filter on '{dep.feature}' is a Polars expression"
                break
            if types:
                schema = store._table_schema(name)
                renamed = {**dict(dep.rename), **dict(dep.system_rename)}
                # each column's type under the name it has after the renames: the result's columns
                # are looked up by those names (a name an upstream renames away says nothing about
                # another upstream's column of that name)
                known.update({renamed.get(n, n): t for n, t in schema.items()})
                columns = tuple(schema)
            else:
                columns = tuple(store._column_names(name))
            sources.append(SqlSource(name, columns, tuple(conds)))
    current = None
    stored_schema: pl.Schema | None = None
    predicates: list[FilterExpression] = []
    target = store._table(plan.feature)
    target_exists = reason is None and store._table_exists(target)
    if target_exists and types:
        # also without a comparison: the (empty) orphaned frame has the stored columns
        stored_schema = store._table_schema(target)
    if target_exists and not request.skip_comparison:
        conds = conditions(request.target_filters)
        preds = conditions(request.staleness_predicates)
        if conds is None or preds is None:
            reason = "a target filter or staleness predicate is a Polars expression"
        else:
            if stored_schema is not None:
                known = {**known, **dict(stored_schema)}
            stored = tuple(stored_schema) if stored_schema is not None else tuple(store._column_names(target))
            used = sorted({n for f in [*conds, *preds] for n in f.columns})
            current = SqlSource(target, stored, tuple(conds), tuple(used))
            predicates = preds
    if reason is not None:
        if strict:
            raise VersioningEngineMismatchError(
                f"Cannot resolve '{plan.feature}' natively in {engine}: {reason}. "
                "Hint: use versioning_engine='auto' or 'polars'."
            )
        warn_at_caller(
            f"Resolving '{plan.feature}' with Polars instead of {engine} SQL: {reason}.", PolarsMaterializationWarning
        )
        return None
    rendered = rendered_resolve(
        dialect,
        plan,
        sources,
        current,
        algorithm=request.settings.hash_algorithm,
        length=request.settings.hash_length,
        predicates=predicates,
        map_mode=request.settings.map_mode,
        carry=current is not None and carry is not None and carry(target),
    )
    return NativeResolve(rendered, known, stored_schema)


#: ``fetch(which, schema)``: run the rendered statement ``which`` and return its rows as a Polars
#: frame of ``schema``. ``"input"``: the expected rows, every column (``compiled.expected``);
#: ``"expected"`` (``compiled.computed``) and ``"increment"`` (whose rows carry the :data:`KIND`
#: tag): without the data-version copies (:data:`COPIES`), which the caller re-creates as aliases
#: sharing the provenance columns' buffers (:func:`with_copies`), a third of the increment's memory.
Fetch = Callable[[str, dict[str, pl.DataType]], pl.DataFrame]


def pick(df: pl.DataFrame, columns: Sequence[tuple[str, str]], rows: pl.Series | None = None) -> pl.DataFrame:
    """``df``'s column ``source`` as ``name``, for each ``(name, source)`` (of the ``rows`` where that
    mask is true): Series operations, no query plan (a few Polars selects cost more than the small
    increments they pick from)."""
    by_name = {s.name: s for s in df.get_columns()}
    picked = [by_name[source].alias(name) for name, source in columns]
    if rows is not None:
        picked = [s.filter(rows) for s in picked]
    return pl.DataFrame(picked)


def with_copies(df: pl.DataFrame, names: Sequence[str], rows: pl.Series | None = None) -> pl.DataFrame:
    """Re-create the copies a fetch left out; the columns in the order of ``names`` (of the ``rows``
    where that mask is true)."""
    return pick(df, [(n, COPIES.get(n, n)) for n in names], rows)


def without_copies(schema: dict[str, pl.DataType]) -> dict[str, pl.DataType]:
    """``schema`` without the data-version copies (what the fetched statements select)."""
    return {n: t for n, t in schema.items() if n not in COPIES}


def fetched_increment(
    native: NativeResolve, request: ResolveRequest, fetch: Fetch, *, lazy: bool
) -> LazyIncrement | Increment:
    """The increment of a store that fetches the statement's rows: the statement runs once (when the
    increment, or a lazy part of it, is first collected) and its tagged rows are split by kind."""
    compiled = native.rendered.compiled
    plan = request.plan
    by_field: pl.DataType = (
        pl.Map(pl.String, pl.String)
        if request.settings.map_mode
        else pl.Struct({k: pl.String() for k in plan.field_struct_keys})
    )
    known = {**native.known, c.PROVENANCE_BY_FIELD: by_field, c.DATA_VERSION_BY_FIELD: by_field}
    known.update({c.PROVENANCE: pl.String(), c.DATA_VERSION: pl.String()})
    names = list(compiled.expected_columns)
    expected_schema = {n: known.get(n, pl.String()) for n in names}
    stored_schema = native.stored_schema
    orphaned_schema = pl.Schema(stored_schema if stored_schema is not None else expected_schema)
    cache: list[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]] = []

    def fetch_computed(which: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """``fetch`` without the data-version copies, re-created here as aliases (shared buffers)."""
        return with_copies(fetch(which, without_copies(schema)), list(schema))

    def run() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """Run the one resolve statement (once) and split its rows into new / stale / orphaned."""
        if cache:
            return cache[0]
        if compiled.increment is None:
            new = fetch_computed("expected", expected_schema)
            parts = (new, new.clear(), pl.DataFrame(schema=orphaned_schema))
        else:
            assert stored_schema is not None
            orphans = {orphan_column(i): n for i, n in enumerate(compiled.stored_columns)}
            orphaned = {o: stored_schema[n] for o, n in orphans.items()}
            df = fetch("increment", {**without_copies(expected_schema), **orphaned, KIND: pl.String()})
            kinds = df.get_column(KIND)
            parts = (
                with_copies(df, names, kinds == "new"),
                with_copies(df, names, kinds == "stale"),
                pick(df, [(n, o) for o, n in orphans.items()], kinds == "orphaned"),
            )
        cache.append(parts)
        return parts

    def collect() -> Increment:
        return Increment(*(nw.from_native(f) for f in run()))

    if not lazy:
        return collect()
    new, stale, orphaned = (
        nw.from_native(pl.defer(lambda i=i: run()[i], schema=schema))  # type: ignore[misc]
        for i, schema in enumerate([expected_schema, expected_schema, orphaned_schema])
    )
    expected_frame = pl.defer(lambda: fetch("input", expected_schema), schema=expected_schema)
    return LazyIncrement(new, stale, orphaned, input=nw.from_native(expected_frame), collector=collect)
