"""Per-sample error quarantine: failed samples recorded in a system table of the same store, and
left out of ``resolve_update``'s ``new`` / ``stale`` until their inputs or the feature version change.

A failure is recorded with the sample's *input provenance* (``metaxy_provenance``) and the feature
version it failed under. A resolve quarantines an expected sample when the store holds a failure
for its ids with exactly its expected provenance and the current feature version: a change of the
sample's inputs (new provenance) or of the feature's code (new feature version) retries it.

One system table per feature, ``metaxy-system/failures/<feature key>`` (the id columns keep their
types, so the resolve joins them in the backend's own engine): the id columns,
``metaxy_provenance``, ``metaxy_feature_version``, ``metaxy_materialization_id``,
``metaxy_error``, ``metaxy_error_type`` and ``metaxy_failed_at``. It is written and read through
the store's primitives only (append, scan, hard delete, drop), so it lives wherever the store does.
When a feature has no failures table, ``resolve_update`` is exactly what it is without this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import narwhals as nw
import polars as pl

from metaxy.errors import MetadataSchemaError
from metaxy.frames import collect_to_polars, to_polars_lazy
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.keys import FeatureKey
from metaxy.versioning.plan import ResolvePlan, compile_plan
from metaxy.versioning.polars_executor import sample_hash_expr
from metaxy.versioning.representation import structs_from_maps

from ._frames import TIMESTAMP, FilterLike, check_columns, coerce_filters
from .contract import AppendSource, ReadRequest, scan_to_polars
from .filters import require_parsed
from .types import FAILURE_COLUMNS, Increment, LazyIncrement

if TYPE_CHECKING:
    from .base import MetadataStore

__all__ = ["ERROR", "ERROR_TYPE", "FAILED_AT", "FAILURES_PREFIX", "FailureQuarantine", "failures_key"]

#: Columns of the frame given to ``record_failures``.
ERROR = "error"
ERROR_TYPE = "error_type"
#: Stored (and ``increment.failed``) column names.
STORED_ERROR, STORED_ERROR_TYPE, FAILED_AT = FAILURE_COLUMNS
FAILURES_PREFIX = (c.SYSTEM_KEY_PREFIX, "failures")


def failures_key(feature: FeatureKey) -> FeatureKey:
    """The system key of a feature's failures table, ``metaxy-system/failures/<feature parts>``."""
    return FeatureKey([*FAILURES_PREFIX, *feature.parts])


class FailureQuarantine:
    """The failure methods of :class:`~metaxy.metadata_store.base.MetadataStore` (a mixin)."""

    @property
    def _as_store(self) -> MetadataStore:
        return cast("MetadataStore", self)

    # --- record / reset / read -------------------------------------------------------------------
    def record_failures(self, feature: Any, df: Any, materialization_id: str | None = None) -> int:
        """Record failed samples of ``feature``; the next ``resolve_update`` reports them as
        ``increment.failed`` instead of ``new`` / ``stale`` until their inputs or the feature
        version change (or :meth:`reset_failures` clears them).

        Args:
            feature: feature class, key or key string.
            df: the id columns and ``error`` (string), optionally ``error_type`` and the sample's
                ``metaxy_provenance`` (or ``metaxy_provenance_by_field``) — e.g. rows of the
                resolve's ``new`` / ``stale`` frames with an ``error`` column added. Without
                provenance, it is taken from the resolve's expected samples (not possible for a
                root feature).
            materialization_id: recorded with each failure (defaults to the store's).

        Returns:
            The number of failures recorded.

        Raises:
            StoreNotOpenError: not open for writing.
            MetadataSchemaError: a missing id / ``error`` column, a null id or error, a sample
                listed twice, a root feature without provenance, or ids that are not expected
                samples of the feature; nothing is written.

        Example:
            >>> import polars as pl
            >>> failures = pl.DataFrame({"video_id": ["v3"], "error": ["decoder crashed"]})
            >>> store.record_failures(Video, failures)  # doctest: +SKIP
            1
        """
        self._as_store._require_write()
        key = self._as_store._key(feature)
        plan = compile_plan(self._as_store._graph(), key)
        frame = _checked_failures(plan, to_polars_lazy(df))
        if c.PROVENANCE not in frame.columns:
            frame = _with_expected_provenance(self._as_store, plan, frame)
        elif not plan.is_root:
            _with_expected_provenance(self._as_store, plan, frame.drop(c.PROVENANCE))  # refuses unknown samples
        now = self._as_store._now()
        rows = frame.select(
            *plan.id_columns,
            pl.col(c.PROVENANCE).cast(pl.String),
            pl.lit(plan.feature_version, pl.String).alias(c.FEATURE_VERSION),
            pl.lit(materialization_id or self._as_store.materialization_id, pl.String).alias(c.MATERIALIZATION_ID),
            pl.col(ERROR).cast(pl.String).alias(STORED_ERROR),
            pl.col(ERROR_TYPE).cast(pl.String).alias(STORED_ERROR_TYPE),
            pl.lit(now, TIMESTAMP).alias(FAILED_AT),
        )
        if rows.height == 0:
            return 0
        return self._as_store._append(self._as_store._table(failures_key(key)), AppendSource(rows.lazy()))

    def reset_failures(self, feature: Any, filters: FilterLike | Sequence[FilterLike] | None = None) -> int:
        """Clear recorded failures of ``feature`` (all, or those matching every filter), so the next
        resolve retries those samples.

        Args:
            feature: feature class, key or key string.
            filters: SQL strings or expressions over the failures table's columns (the id columns,
                ``metaxy_error``, ``metaxy_error_type``, ``metaxy_failed_at`` ...).

        Returns:
            The number of failure records removed.

        Raises:
            StoreNotOpenError: not open for writing.
            ColumnNotFoundError: a filter names a column the failures table lacks.
        """
        self._as_store._require_write()
        key = self._as_store._key(feature)
        table = self._as_store._table(failures_key(key))
        if not self._as_store._table_exists(table):
            return 0
        parsed = coerce_filters(filters)
        check_columns(f"the failures of '{key}'", self._as_store._column_names(table), filters=parsed)
        if not parsed:
            count = int(scan_to_polars(self._as_store._scan(table)).select(pl.len()).collect().item())
            self._as_store._drop(table)  # no table: resolves skip the quarantine entirely
            return count
        where = require_parsed(self._as_store._parse_filters(table, parsed), f"Resetting failures of '{key}'")
        return self._as_store._delete_where(table, FilterExpression.all_of(where))

    def read_failures(self, feature: Any, *, current: bool = False) -> pl.DataFrame:
        """The recorded failures of ``feature``, latest per sample, newest first.

        Args:
            feature: feature class, key or key string.
            current: only failures recorded under the current feature version (those that can
                still quarantine a sample).

        Returns:
            A Polars DataFrame: the id columns, ``metaxy_provenance``, ``metaxy_feature_version``,
            ``metaxy_materialization_id``, ``metaxy_error``, ``metaxy_error_type``,
            ``metaxy_failed_at`` (empty, with those columns, when nothing was recorded).
        """
        self._as_store._require_open()
        key = self._as_store._key(feature)
        plan = compile_plan(self._as_store._graph(), key)
        table = self._as_store._table(failures_key(key))
        if not self._as_store._table_exists(table):
            return _empty_failures(self._as_store, plan)
        rows = scan_to_polars(self._as_store._scan(table)).collect()
        if current:
            rows = rows.filter(pl.col(c.FEATURE_VERSION) == plan.feature_version)
        return _latest(rows, plan.id_columns).sort(FAILED_AT, descending=True)

    def features_with_failures(self) -> list[FeatureKey]:
        """Keys of the graph's features that have a failures table in this store."""
        self._as_store._require_open()
        tables = set(self._as_store._list_tables())
        graph = self._as_store._graph()
        return sorted(
            (k for k in graph.feature_definitions_by_key if self._as_store._table(failures_key(k)) in tables), key=str
        )

    # --- the resolve hook ------------------------------------------------------------------------
    def _quarantine(self, result: Any, plan: ResolvePlan) -> Any:
        """``result`` with samples under a matching failure moved from ``new`` / ``stale`` to
        ``failed``. Returned unchanged (the same object) when the feature has no failures."""
        table = self._as_store._table(failures_key(plan.feature))
        if not self._as_store._table_exists(table):
            return result
        stored = (
            scan_to_polars(self._as_store._scan(table))
            .filter(pl.col(c.FEATURE_VERSION) == plan.feature_version)
            .select(*plan.id_columns, c.PROVENANCE, STORED_ERROR, STORED_ERROR_TYPE, FAILED_AT)
            .collect()
        )
        if stored.height == 0:
            return result
        failures = _latest(stored, [*plan.id_columns, c.PROVENANCE])
        if isinstance(result, Increment):
            return _split_eager(result, failures, plan)
        return _split_lazy(self._as_store, result, failures, plan)


def _checked_failures(plan: ResolvePlan, lf: pl.LazyFrame) -> pl.DataFrame:
    """The failures frame, validated: ids and ``error`` present and non-null, each sample once."""
    names = lf.collect_schema().names()
    shown = f"Available columns: {', '.join(names) or '(none)'}."
    missing = [col for col in (*plan.id_columns, ERROR) if col not in names]
    if missing:
        raise MetadataSchemaError(
            f"Failures of '{plan.feature}' have no column(s) {missing}. {shown} Hint: give the id columns "
            f"{list(plan.id_columns)} and an '{ERROR}' string column (optionally '{ERROR_TYPE}')."
        )
    optional = (ERROR_TYPE, c.PROVENANCE, c.PROVENANCE_BY_FIELD)
    keep = [*plan.id_columns, ERROR, *(col for col in optional if col in names)]
    df = structs_from_maps(lf.select(keep), {c.PROVENANCE_BY_FIELD: plan.field_struct_keys}).collect()
    if ERROR_TYPE not in df.columns:
        df = df.with_columns(pl.lit(None, pl.String).alias(ERROR_TYPE))
    for col in (ERROR, ERROR_TYPE):
        if df.schema[col] not in (pl.String, pl.Null):
            raise MetadataSchemaError(
                f"Failures of '{plan.feature}': '{col}' must be a string column, got {df.schema[col]}. "
                f"Hint: cast it, e.g. pl.col('{col}').cast(pl.String)."
            )
    for col in (*plan.id_columns, ERROR):
        nulls = df.get_column(col).null_count()
        if nulls:
            raise MetadataSchemaError(
                f"Failures of '{plan.feature}': {nulls} row(s) have a null '{col}'. "
                "Hint: every failure names its sample and says why it failed; drop or fill those rows."
            )
    dupes = df.group_by(plan.id_columns).len().filter(pl.col("len") > 1)
    if dupes.height:
        raise MetadataSchemaError(
            f"Failures of '{plan.feature}' list {dupes.height} sample(s) more than once, e.g. "
            f"{_shown(dupes.select(plan.id_columns))}. Hint: record one failure per sample (join the errors)."
        )
    return df


def _with_expected_provenance(store: MetadataStore, plan: ResolvePlan, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with each sample's expected ``metaxy_provenance`` (from the resolve's expected
    samples, or computed from a given ``metaxy_provenance_by_field``).

    Raises:
        MetadataSchemaError: a root feature without provenance; ids that are not expected samples.
    """
    if c.PROVENANCE_BY_FIELD in frame.columns:
        keys, algorithm = plan.field_struct_keys, store.hash_algorithm
        expr = sample_hash_expr(c.PROVENANCE_BY_FIELD, keys, algorithm, store._hash_length())
        return frame.with_columns(expr.alias(c.PROVENANCE)).drop(c.PROVENANCE_BY_FIELD)
    if plan.is_root:
        raise MetadataSchemaError(
            f"'{plan.feature}' is a root feature: its failures need the samples' '{c.PROVENANCE}' (or "
            f"'{c.PROVENANCE_BY_FIELD}'); metaxy cannot derive it without upstream. Hint: record rows of the "
            "resolve's new / stale frames (they carry it) with an 'error' column added."
        )
    ids = list(plan.id_columns)
    increment = store.resolve_update(plan.feature, lazy=True, skip_comparison=True)
    expected = increment.input
    assert expected is not None  # a non-root resolve always carries its expected samples
    id_types = collect_to_polars(expected.select(*ids).head(0)).schema
    try:  # the ids in the expected samples' types (e.g. Int32 given, Int64 stored)
        frame = frame.with_columns(pl.col(col).cast(id_types[col]) for col in ids)
    except pl.exceptions.InvalidOperationError as exc:
        raise MetadataSchemaError(
            f"Failures of '{plan.feature}': the id columns {ids} cannot be cast to the feature's id types "
            f"{dict(id_types)}: {exc}. Hint: give the ids with the types the feature's samples have."
        ) from exc
    for col in ids:  # narrow the expected samples in the backend before anything crosses over
        values = frame.get_column(col).unique().to_list()
        expected = expected.filter(nw.col(col).is_in(values))
    found = collect_to_polars(expected.select(*ids, c.PROVENANCE))
    joined = frame.join(found, on=ids, how="left", nulls_equal=False)
    unknown = joined.filter(pl.col(c.PROVENANCE).is_null())
    if unknown.height:
        raise MetadataSchemaError(
            f"Failures of '{plan.feature}' name {unknown.height} sample(s) that are not expected samples of the "
            f"feature: {_shown(unknown.select(ids))}. Hint: record failures of samples the resolve returned "
            "(check the id values and the upstream metadata)."
        )
    return joined


def _empty_failures(store: MetadataStore, plan: ResolvePlan) -> pl.DataFrame:
    schema: dict[str, Any] = {col: pl.String for col in plan.id_columns}
    if store._table_exists(store._table(plan.feature)):  # the stored id types, when there are any
        stored = store._table_schema(store._table(plan.feature))
        schema = {col: stored[col] for col in plan.id_columns if col in stored}
    schema |= {
        c.PROVENANCE: pl.String,
        c.FEATURE_VERSION: pl.String,
        c.MATERIALIZATION_ID: pl.String,
        STORED_ERROR: pl.String,
        STORED_ERROR_TYPE: pl.String,
        FAILED_AT: TIMESTAMP,
    }
    return pl.DataFrame(schema=schema)


def _latest(rows: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    return rows.sort(FAILED_AT).unique(subset=list(by), keep="last", maintain_order=True)


def _shown(ids: pl.DataFrame) -> str:
    return ", ".join(str(r[0] if len(r) == 1 else r) for r in ids.head(5).rows())


def _split_eager(inc: Increment, failures: pl.DataFrame, plan: ResolvePlan) -> Increment:
    """The eager split, in Polars (an eager increment is Polars)."""
    on = [*plan.id_columns, c.PROVENANCE]
    keys = failures.select(on)
    parts = [collect_to_polars(inc.new), collect_to_polars(inc.stale)]
    failed = pl.concat([p.join(failures, on=on, how="inner", nulls_equal=False) for p in parts], how="vertical_relaxed")
    new, stale = (p.join(keys, on=on, how="anti", nulls_equal=False) for p in parts)
    return Increment(
        nw.from_native(new, eager_only=True),
        nw.from_native(stale, eager_only=True),
        inc.orphaned,
        nw.from_native(failed.sort(plan.id_columns), eager_only=True),
    )


def _split_lazy(store: MetadataStore, inc: LazyIncrement, failures: pl.DataFrame, plan: ResolvePlan) -> LazyIncrement:
    """The lazy split: joins in the increment's own backend (a DuckDB increment joins the failures
    as a relation on the same connection; a Polars one as a LazyFrame); ``collect()`` runs the
    original increment once and splits it in Polars."""
    on = [*plan.id_columns, c.PROVENANCE]
    new, stale = inc.new, inc.stale
    if isinstance(new.to_native(), pl.LazyFrame):
        stored: Any = nw.from_native(failures.lazy())
    else:
        stored = _native_failures(store, plan, failures)
    keys = stored.select(on)
    failed = nw.concat([new.join(stored, on=on, how="inner"), stale.join(stored, on=on, how="inner")])
    inner = inc

    def collect() -> Increment:
        return _split_eager(inner.collect(), failures, plan)

    return LazyIncrement(
        new.join(keys, on=on, how="anti"),
        stale.join(keys, on=on, how="anti"),
        inc.orphaned,
        inc.input,
        collector=collect,
        failed=failed,
    )


def _native_failures(store: MetadataStore, plan: ResolvePlan, failures: pl.DataFrame) -> Any:
    """The latest failures per (ids, provenance) as a frame of the store's native engine."""
    on = [*plan.id_columns, c.PROVENANCE]
    key = failures_key(plan.feature)
    request = ReadRequest(
        key=key,
        table=store._table(key),
        feature_version=plan.feature_version,
        id_columns=plan.id_columns,
        with_sample_history=True,
        include_soft_deleted=True,
        filters=(),
        columns=(*on, STORED_ERROR, STORED_ERROR_TYPE, FAILED_AT),
    )
    frame = store._read_frame(request)
    if frame is None or isinstance(frame.to_native(), pl.LazyFrame):  # a backend without a native reader
        return nw.from_native(failures.lazy())
    newest = frame.group_by(on).agg(nw.col(FAILED_AT).max())
    return frame.join(newest, on=[*on, FAILED_AT], how="inner")
