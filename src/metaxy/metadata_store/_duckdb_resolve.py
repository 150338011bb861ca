"""Assembling a DuckDB resolve result: the lazy increment (one relation per part, bound on first
access) and the collector that runs the single combined statement and streams its Arrow batches
into Polars."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import narwhals as nw
import polars as pl
from sqlglot import exp

from metaxy.sql._build import select, star, subquery
from metaxy.versioning.sql_executor import KIND, CompiledResolve, RenderedResolve, orphan_column

from ._native_resolve import with_copies
from .types import Increment, LazyIncrement


def lazy_increment(conn: Any, rendered: RenderedResolve, orphan_sql: str | None) -> _DuckDBLazyIncrement:
    """Relations for each part (rendered and bound only when used) and a collector running one
    statement.

    ``orphan_sql`` selects no rows of the stored table (its columns are the orphaned frame's when
    nothing is compared); None when there is no stored table.
    """
    text = rendered.text
    compiled = rendered.compiled
    names = list(compiled.expected_columns)

    def expected(r: CompiledResolve) -> exp.Expression:
        return r.expected

    def empty_expected(r: CompiledResolve) -> exp.Expression:
        return select([star()], subquery(r.expected.copy(), "__metaxy_new")).limit(0, copy=False)

    if compiled.increment is None:
        # Nothing stored (or skip_comparison): all expected rows are new; orphaned is empty with
        # the stored table's columns, or the new frame's when there is no table.
        sqls: dict[str, Callable[[], str]] = {
            "new": lambda: text("expected", expected),
            "stale": lambda: text("empty", empty_expected),
            "orphaned": lambda: orphan_sql or text("empty", empty_expected),
        }

        def collect() -> Increment:
            new = _fetch_versioned(conn, text("computed", lambda r: r.computed), names)
            orphaned = _to_polars(conn.sql(orphan_sql)) if orphan_sql else new.clear()
            return Increment(nw.from_native(new), nw.from_native(new.clear()), nw.from_native(orphaned))

    else:
        sqls = {
            part: (lambda part=part: text(part, lambda r: r.part(part)))  # type: ignore[misc]
            for part in ("new", "stale", "orphaned")
        }
        orphans = {orphan_column(i): name for i, name in enumerate(compiled.stored_columns)}

        def collect() -> Increment:
            statement = text("increment", lambda r: r.tagged())
            df = _fetch_versioned(conn, statement, [*names, *orphans, KIND])
            kinds = df.get_column(KIND)
            new = df.filter(kinds == "new").select(names)
            stale = df.filter(kinds == "stale").select(names)
            orphaned = df.filter(kinds == "orphaned").select(pl.col(o).alias(n) for o, n in orphans.items())
            return Increment(nw.from_native(new), nw.from_native(stale), nw.from_native(orphaned))

    sqls["input"] = lambda: text("expected", expected)
    return _DuckDBLazyIncrement(conn, sqls, collect)


class _DuckDBLazyIncrement(LazyIncrement):
    """A lazy increment over DuckDB: each frame is a relation rendered and bound on first access,
    and ``collect()`` runs the single combined statement once."""

    _conn: Any
    _sqls: dict[str, Callable[[], str]]
    _collector: Callable[[], Increment]
    _frames: dict[str, Any]

    def __init__(self, conn: Any, sqls: dict[str, Callable[[], str]], collector: Callable[[], Increment]) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_sqls", sqls)
        object.__setattr__(self, "_collector", collector)
        object.__setattr__(self, "_frames", {})

    def _frame(self, part: str) -> Any:
        frames = self._frames
        if part not in frames:
            frames[part] = nw.from_native(self._conn.sql(self._sqls[part]()))
        return frames[part]

    @property
    def new(self) -> Any:
        return self._frame("new")

    @property
    def stale(self) -> Any:
        return self._frame("stale")

    @property
    def orphaned(self) -> Any:
        return self._frame("orphaned")

    @property
    def input(self) -> Any:
        return self._frame("input")

    def collect(self) -> Increment:
        return self._collector()


def _to_polars(rel: Any) -> pl.DataFrame:
    return pl.from_arrow(rel.to_arrow_table())  # type: ignore[return-value]


def _frame(value: pl.DataFrame | pl.Series) -> pl.DataFrame:
    return value if isinstance(value, pl.DataFrame) else value.to_frame()


def _fetch_versioned(conn: Any, sql: str, names: Sequence[str]) -> pl.DataFrame:
    """Run a resolve statement without the data-version copies and stream its Arrow batches into
    one Polars frame (the Arrow side holds one batch at a time), the copies re-created."""
    reader = conn.sql(sql).to_arrow_reader()
    chunks = [_frame(pl.from_arrow(batch)) for batch in reader]
    df = pl.concat(chunks, rechunk=False) if chunks else _frame(pl.from_arrow(reader.schema.empty_table()))
    return with_copies(df, names)
