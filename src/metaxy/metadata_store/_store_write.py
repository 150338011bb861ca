"""The write layer of ``MetadataStore``: ``write``, ``delete``, ``copy_metadata`` over the contract."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from metaxy._warnings import warn_at_caller
from metaxy.errors import FeatureNotFoundError, MetadataSchemaError, StoreCapabilityError, TableNotFoundError
from metaxy.frames import FrameLike
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.keys import CoercibleToFeatureKey, FeatureKey
from metaxy.versioning.content import content_columns
from metaxy.versioning.plan import compile_plan

from ._frames import FilterLike, WriteContext, check_columns, coerce_filters, normalize_write, to_polars_lazy
from ._store_read import ReadingStore
from .contract import AppendSource
from .filters import require_parsed

if TYPE_CHECKING:
    from .base import MetadataStore

__all__ = ["WritingStore"]


class WritingStore(ReadingStore):
    """``write``, ``write_multi``, ``delete``, ``drop_feature_metadata`` and ``copy_metadata``."""

    # --- write -----------------------------------------------------------------------------------
    def write(
        self,
        feature: CoercibleToFeatureKey,
        df: FrameLike,
        materialization_id: str | None = None,
        preserve_feature_version: bool = False,
    ) -> int:
        """Append rows to a feature's table, stamping the system columns (spec §5.3).

        Args:
            feature: feature class, key or key string.
            df: any narwhals-compatible frame (Polars, pandas, PyArrow; eager or lazy).
            materialization_id: recorded on every row (defaults to the store's).
            preserve_feature_version: keep the frame's feature/project versions (rebase, copy).

        Returns:
            The number of rows written.

        Raises:
            StoreNotOpenError: not open for writing.
            MetadataSchemaError: missing id / provenance columns or wrong dtypes; nothing is written.
            TableNotFoundError: the table is missing and the store may not create it.
        """
        self._require_write()
        key = self._key(feature)
        lf = normalize_write(to_polars_lazy(df), self._write_context(key, materialization_id, preserve_feature_version))
        return self._append_checked(key, lf)

    def _append_checked(self, key: FeatureKey, lf: pl.LazyFrame) -> int:
        table = self._table(key)
        exists = self._table_exists(table)
        if not exists:
            if self._holds_hidden_table(table):  # a failed first write's empty table: same columns rule
                self._check_schema_compatible(key, lf, hidden=True)
            if not (self.always_creates_tables or self.auto_create_tables):
                raise TableNotFoundError(
                    f"Table '{table}' for feature '{key}' does not exist in {self.display()}. Hint: create it, "
                    "or set auto_create_tables = true (store config or metaxy.toml).",
                    keys=[key],
                )
            if not self.always_creates_tables:
                warn_at_caller(f"Creating table '{table}' for feature '{key}' in {self.display()}.", UserWarning)
        else:
            self._check_schema_compatible(key, lf)
        return self._append(table, AppendSource(lf))

    def _check_schema_compatible(self, key: FeatureKey, lf: pl.LazyFrame, *, hidden: bool = False) -> None:
        # Compare what will actually be stored: the backend maps the frame to its storable types.
        table = self._table(key)
        existing = self._table_schema(table)
        incoming = self._storable(lf, existing, table).collect_schema()
        stored_by_case = {n.casefold(): n for n in existing.names()}
        for name in incoming.names():
            stored = stored_by_case.get(name.casefold())
            if stored is not None and stored != name:
                raise MetadataSchemaError(
                    f"Writing '{key}': column '{name}' differs only by case from the stored column '{stored}'. "
                    f"Hint: rename it to '{stored}' (column names are case-sensitive, and SQL stores could not "
                    "keep both)."
                )
        clashes = {
            n: (str(existing[n]), str(dt))
            for n, dt in incoming.items()
            if n in existing
            and existing[n] != dt
            and dt != pl.Null
            and existing[n] != pl.Null
            and not (n in c.SYSTEM_COLUMNS and isinstance(dt, pl.Struct))
        }
        if clashes:
            raise MetadataSchemaError(
                f"Writing '{key}': column types differ from the stored table: "
                + ", ".join(f"{n} stored {a}, got {b}" for n, (a, b) in clashes.items())
                + (
                    ". The table holds no rows: a first write created it and then failed. Hint: drop it "
                    f"with drop_feature_metadata('{key}') and write again, or cast the columns to those types."
                    if hidden
                    else ". Hint: cast the columns to the stored types."
                )
            )

    def _write_context(
        self, key: FeatureKey, materialization_id: str | None, preserve_feature_version: bool, **kw: Any
    ) -> WriteContext:
        graph = self._graph()
        plan = compile_plan(graph, key)
        defn = graph.get_feature_definition(key)
        return WriteContext(
            feature=key.to_string(),
            id_columns=plan.id_columns,
            field_struct_keys=plan.field_struct_keys,
            is_root=plan.is_root,
            feature_version=plan.feature_version,
            project_version=graph.get_project_version(defn.project),
            materialization_id=materialization_id or self.materialization_id,
            now=self._now(),
            algorithm=self.hash_algorithm,
            length=self._hash_length(),
            preserve_feature_version=preserve_feature_version,
            map_mode=self._map_mode(),
            data_version_columns=content_columns(defn.spec),  # early cutoff: content-derived data versions
            **kw,
        )

    def write_multi(
        self, frames: Mapping[Any, FrameLike], materialization_id: str | None = None
    ) -> dict[FeatureKey, int]:
        """Write several features; dependents first (reverse topological order).

        All frames are validated before the first one is written.
        """
        self._require_write()
        by_key = {self._key(k): v for k, v in frames.items()}
        order = self._graph().topological_sort_features(by_key, descending=True)
        prepared = {
            k: normalize_write(to_polars_lazy(by_key[k]), self._write_context(k, materialization_id, False))
            for k in order
        }
        return {k: self._append_checked(k, prepared[k]) for k in order}

    # --- deletes and maintenance -----------------------------------------------------------------
    def delete(
        self,
        feature: CoercibleToFeatureKey,
        filters: FilterLike | Sequence[FilterLike] | None = None,
        *,
        soft: bool = True,
        with_feature_history: bool = False,
        with_sample_history: bool = False,
    ) -> int:
        """Soft-delete (append markers) or hard-delete (physically remove) matching rows.

        Args:
            feature: feature class, key or key string.
            filters: which rows; ``None`` means every row. An empty list is refused.
            soft: append deletion markers (default) instead of removing rows physically.
            with_feature_history: all feature versions instead of the current one.
            with_sample_history: (soft) mark every stored row, not only the latest per sample.

        Returns:
            The number of markers written (soft) or rows removed (hard).

        Raises:
            StoreNotOpenError: not open for writing.
            MetadataSchemaError: ``filters=[]`` (ambiguous: pass ``None`` to delete everything).
            ColumnNotFoundError: a filter names a column the feature's table lacks.
            FeatureNotFoundError: (hard) the feature has no table in this store.
        """
        self._require_write()
        key = self._key(feature)
        parsed = coerce_filters(filters)
        if filters is not None and not parsed:
            raise MetadataSchemaError(
                f"delete('{key}', filters={filters!r}) got an empty filter list. Hint: pass filters=None "
                "to delete every row of the feature (explicitly), or give at least one condition."
            )
        if soft:
            frame = self.read(
                key,
                filters=parsed,
                with_feature_history=with_feature_history,
                with_sample_history=with_sample_history,
            )
            lf = to_polars_lazy(frame)
            ctx = self._write_context(key, None, False, keep_timestamps=True)
            marked = lf.with_columns(pl.lit(ctx.now, pl.Datetime("us", "UTC")).alias(c.DELETED_AT))
            return self._append_checked(key, normalize_write(marked, ctx))
        table = self._table(key)
        if not self._table_exists(table):
            raise FeatureNotFoundError(f"Feature '{key}' has no table in {self.display()}.", keys=[key])
        check_columns(f"'{key}' in {self.display()}", self._column_names(table), filters=parsed)
        where = require_parsed(self._parse_filters(table, parsed), f"Hard delete from '{key}' in {self.display()}")
        if not with_feature_history:
            where.append(FilterExpression.equals(c.FEATURE_VERSION, self._graph().get_feature_version(key)))
        return self._delete_where(table, FilterExpression.all_of(where) if where else None)

    def drop_feature_metadata(self, feature: CoercibleToFeatureKey) -> None:
        """Drop a feature's table and all its rows."""
        self._require_write()
        self._drop(self._table(self._key(feature)))  # no error when there is none

    # --- maintenance -----------------------------------------------------------------------------
    def vacuum(
        self, feature: CoercibleToFeatureKey | None = None, *, retention_hours: float = 168, dry_run: bool = False
    ) -> list[str]:
        """Delete files no committed version references: those a killed or failed writer left, and
        those deletes replaced, once older than ``retention_hours`` (``capabilities.maintenance``).

        Files younger than the retention are kept, so a writer still running in another process is
        never robbed of files it is about to commit: pass ``retention_hours=0`` only when no writer
        is running. Removing replaced files ends time travel to the versions that used them.

        Args:
            feature: one feature (class, key or key string); every table (system tables included)
                when omitted.
            retention_hours: keep unreferenced files younger than this (default: 7 days).
            dry_run: only list the files that would be deleted (the store may be open for reading).

        Returns:
            The deleted (or, with ``dry_run``, deletable) files, as the backend names them.

        Raises:
            StoreCapabilityError: the store has no maintenance capability (nothing to vacuum).
            ValueError: ``retention_hours`` is negative.
            StoreNotOpenError: not open (for writing, unless ``dry_run``).
            BackendError: the backend could not list or delete the files.
        """
        if not self.capabilities.maintenance:
            raise StoreCapabilityError(
                f"{self.display()} has no maintenance operation (vacuum): its engine leaves no unreferenced "
                "files behind. Hint: vacuum only stores that declare capabilities.maintenance (Delta, LanceDB)."
            )
        if retention_hours < 0:
            raise ValueError(f"retention_hours={retention_hours} is negative. Hint: pass 0 or more hours.")
        if dry_run:
            self._require_open()
        else:
            self._require_write()
        tables = [self._table(self._key(feature))] if feature is not None else self._list_tables()
        removed: list[str] = []
        for table in tables:
            if self._table_exists(table):
                removed += self._vacuum(table, retention_hours=retention_hours, dry_run=dry_run)
        return removed

    def copy_metadata(
        self,
        from_store: MetadataStore,
        features: Sequence[Any] | None = None,
        *,
        filters: Mapping[str, FilterLike | Sequence[FilterLike]] | None = None,
        global_filters: FilterLike | Sequence[FilterLike] | None = None,
        with_feature_history: bool = True,
        with_sample_history: bool = False,
    ) -> dict[str, int]:
        """Copy features' rows from another store, keeping versions and timestamps."""
        self._require_write()
        copied = rows = 0
        with from_store.open("r"):
            keys = [self._key(f) for f in features] if features is not None else from_store.list_features()
            by_key = {self._key(k): coerce_filters(v) for k, v in (filters or {}).items()}
            for key in keys:
                if not from_store.has_feature(key):
                    continue
                frame = from_store.read(
                    key,
                    filters=[*by_key.get(key, []), *coerce_filters(global_filters)],
                    with_feature_history=with_feature_history,
                    with_sample_history=with_sample_history,
                    include_soft_deleted=True,
                    allow_fallback=False,
                )
                df = frame.collect().to_polars()
                if df.height == 0:
                    continue
                ctx = self._write_context(key, None, True, keep_timestamps=True)
                rows += self._append_checked(key, normalize_write(df.lazy(), ctx))
                copied += 1
        return {"features_copied": copied, "rows_copied": rows}
