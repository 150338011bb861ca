"""``resolve_update`` of the ClickHouse store as one statement inside ClickHouse.

The SQL layer composes the statement (:func:`metaxy.versioning.sql_executor.rendered_resolve`) with
the ClickHouse dialect; the store runs it once and splits the tagged rows into new / stale /
orphaned frames. Lazy increments run the statement when first collected.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import narwhals as nw
import polars as pl

from metaxy.errors import PolarsMaterializationWarning, VersioningEngineMismatchError
from metaxy.metadata_store._duckdb_resolve import _COPIES, _without_copies
from metaxy.metadata_store.contract import ResolveRequest
from metaxy.metadata_store.types import Increment, LazyIncrement
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.sql.statements import SqlSource
from metaxy.versioning.sql_executor import KIND, orphan_column, rendered_resolve

if TYPE_CHECKING:
    from .store import ClickHouseMetadataStore


def conditions(filters: Sequence[Any]) -> list[FilterExpression] | None:
    """The filters parsed; None when one is a Polars / narwhals expression (Polars runs those)."""
    out: list[FilterExpression] = []
    for f in filters:
        if isinstance(f, str):
            f = FilterExpression.parse(f)
        if not isinstance(f, FilterExpression):
            return None
        out.append(f)
    return out


def resolve_native(
    store: ClickHouseMetadataStore, request: ResolveRequest, *, strict: bool, lazy: bool
) -> LazyIncrement | Increment | None:
    plan = request.plan
    reason = None
    if request.samples is not None:
        reason = "samples were given as a local frame"
    elif any(not store._table_exists(store._table(d.feature)) for d in plan.deps):
        if not any(fb.has_feature_anywhere(d.feature) for d in plan.deps for fb in store.fallback_stores):
            return None
        reason = "an upstream feature is read from a fallback store"
        if strict and store._fallback_specs:
            strict = False
    sources: list[SqlSource] = []
    known: dict[str, pl.DataType] = {}
    if reason is None:
        for dep in plan.deps:
            name = store._table(dep.feature)
            conds = conditions([*request.filters_by_key.get(dep.feature, []), *request.global_filters])
            if conds is None:
                reason = f"a filter on '{dep.feature}' is a Polars expression"
                break
            schema = store._table_schema(name)
            renamed = {**dict(dep.rename.items()), **dict(dep.system_rename)}
            known = {**{renamed.get(n, n): t for n, t in schema.items()}, **dict(schema), **known}
            sources.append(SqlSource(name, tuple(schema), tuple(conds)))
    current = None
    stored_schema: pl.Schema | None = None
    predicates: list[FilterExpression] = []
    target = store._table(plan.feature)
    if reason is None and not request.skip_comparison and store._table_exists(target):
        conds = conditions(request.target_filters)
        preds = conditions(request.staleness_predicates)
        if conds is None or preds is None:
            reason = "a target filter or staleness predicate is a Polars expression"
        else:
            stored_schema = store._table_schema(target)
            used = sorted({n for f in [*conds, *preds] for n in f.columns})
            current = SqlSource(target, tuple(stored_schema), tuple(conds), tuple(used))
            predicates = preds
    if reason is not None:
        if strict:
            raise VersioningEngineMismatchError(
                f"Cannot resolve '{plan.feature}' natively in ClickHouse: {reason}. "
                "Hint: use versioning_engine='auto' or 'polars'."
            )
        warnings.warn(
            f"Resolving '{plan.feature}' with Polars instead of ClickHouse SQL: {reason}.",
            PolarsMaterializationWarning,
            stacklevel=5,
        )
        return None
    rendered = rendered_resolve(
        store.dialect,
        plan,
        sources,
        current,
        algorithm=request.settings.hash_algorithm,
        length=request.settings.hash_length,
        predicates=predicates,
        map_mode=request.settings.map_mode,
    )
    compiled = rendered.compiled
    by_field: pl.DataType = (
        pl.Map(pl.String, pl.String)
        if request.settings.map_mode
        else pl.Struct({k: pl.String() for k in plan.field_struct_keys})
    )
    if stored_schema is not None:
        known = {**known, **dict(stored_schema)}
    known.update({c.PROVENANCE_BY_FIELD: by_field, c.DATA_VERSION_BY_FIELD: by_field})
    known.update({c.PROVENANCE: pl.String(), c.DATA_VERSION: pl.String()})
    names = list(compiled.expected_columns)
    expected_schema = {n: known.get(n, pl.String()) for n in names}
    orphaned_schema = pl.Schema(stored_schema if stored_schema is not None else expected_schema)
    cache: list[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]] = []
    transport = store.transport  # lazy frames may collect on Polars' threads

    def fetch(name: str, build: Any, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        from . import _types
        from ._transport import TransportError

        try:
            table = transport.query_arrow(rendered.text(name, build))  # rendered once per cached plan
        except TransportError as exc:
            raise store._error(f"Resolving '{plan.feature}'", exc) from None
        return _types.conform(table, schema)

    def fetched(schema: dict[str, pl.DataType]) -> dict[str, pl.DataType]:
        return {n: t for n, t in schema.items() if n not in _COPIES}

    def with_copies(df: pl.DataFrame) -> pl.DataFrame:
        # the data-version columns of computed rows are the provenance columns: not transferred
        return df.with_columns(pl.col(src).alias(dst) for dst, src in _COPIES.items())

    def run() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        if cache:
            return cache[0]
        if compiled.increment is None:
            new = with_copies(fetch("fetch_expected", lambda r: _without_copies(r.expected), fetched(expected_schema)))
            new = new.select(names)
            parts = (new, new.clear(), pl.DataFrame(schema=orphaned_schema))
        else:
            assert stored_schema is not None
            orphans = {orphan_column(i): n for i, n in enumerate(compiled.stored_columns)}
            full = {**expected_schema, **{o: stored_schema[n] for o, n in orphans.items()}, KIND: pl.String()}
            df = with_copies(fetch("fetch_increment", lambda r: _without_copies(r.increment), fetched(full)))
            kinds = df.get_column(KIND)
            parts = (
                df.filter(kinds == "new").select(names),
                df.filter(kinds == "stale").select(names),
                df.filter(kinds == "orphaned").select(pl.col(o).alias(n) for o, n in orphans.items()),
            )
        cache.append(parts)
        return parts

    def collect() -> Increment:
        return Increment(*(nw.from_native(f) for f in run()))

    if not lazy:
        return collect()
    frames = [
        nw.from_native(pl.defer(lambda i=i: run()[i], schema=schema))  # type: ignore[misc]
        for i, schema in enumerate([expected_schema, expected_schema, orphaned_schema])
    ]
    expected_frame = pl.defer(lambda: fetch("expected", lambda r: r.expected, expected_schema), schema=expected_schema)
    new, stale, orphaned = frames
    return LazyIncrement(new, stale, orphaned, input=nw.from_native(expected_frame), collector=collect)
