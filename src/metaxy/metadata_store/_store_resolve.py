"""The resolve layer of ``MetadataStore``: ``resolve_update`` (native or Polars), provenance, rebase."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, overload

import narwhals as nw
import polars as pl

from metaxy import _hooks
from metaxy._warnings import warn_at_caller
from metaxy.errors import (
    MetadataSchemaError,
    PolarsMaterializationWarning,
    RootFeatureError,
    VersioningEngineMismatchError,
)
from metaxy.frames import FrameLike, like_input
from metaxy.models import constants as c
from metaxy.models.filter_expression import FilterExpression
from metaxy.models.graph import FeatureGraph
from metaxy.models.keys import CoercibleToFeatureKey, FeatureKey
from metaxy.versioning import polars_executor as px
from metaxy.versioning.plan import ResolvePlan, compile_plan
from metaxy.versioning.representation import BY_FIELD_COLUMNS, maps_from_structs, structs_from_maps

from ._frames import (
    FilterLike,
    WriteContext,
    apply_filters,
    check_columns,
    coerce_filters,
    normalize_write,
    to_polars_lazy,
)
from ._store_core import VersioningEngine
from ._store_write import WritingStore
from .contract import ReadRequest, ResolveRequest
from .failures import FailureQuarantine
from .system import SystemTableStorage
from .types import Increment, LazyIncrement

__all__ = ["FiltersByFeature", "ResolvingStore"]

FiltersByFeature = Mapping[CoercibleToFeatureKey, FilterLike | Sequence[FilterLike]]


class ResolvingStore(FailureQuarantine, WritingStore):
    """``resolve_update``, ``compute_provenance``, ``calculate_input_progress`` and ``rebase``."""

    # --- resolve ---------------------------------------------------------------------------------
    @overload
    def resolve_update(
        self,
        feature: CoercibleToFeatureKey,
        *,
        samples: FrameLike | None = None,
        filters: FiltersByFeature | None = None,
        global_filters: FilterLike | Sequence[FilterLike] | None = None,
        target_filters: FilterLike | Sequence[FilterLike] | None = None,
        lazy: Literal[False] = False,
        versioning_engine: VersioningEngine | None = None,
        skip_comparison: bool = False,
        staleness_predicates: FilterLike | Sequence[FilterLike] | None = None,
    ) -> Increment: ...
    @overload
    def resolve_update(
        self,
        feature: CoercibleToFeatureKey,
        *,
        samples: FrameLike | None = None,
        filters: FiltersByFeature | None = None,
        global_filters: FilterLike | Sequence[FilterLike] | None = None,
        target_filters: FilterLike | Sequence[FilterLike] | None = None,
        lazy: Literal[True],
        versioning_engine: VersioningEngine | None = None,
        skip_comparison: bool = False,
        staleness_predicates: FilterLike | Sequence[FilterLike] | None = None,
    ) -> LazyIncrement: ...
    @overload
    def resolve_update(
        self,
        feature: CoercibleToFeatureKey,
        *,
        samples: FrameLike | None = None,
        filters: FiltersByFeature | None = None,
        global_filters: FilterLike | Sequence[FilterLike] | None = None,
        target_filters: FilterLike | Sequence[FilterLike] | None = None,
        lazy: bool = False,
        versioning_engine: VersioningEngine | None = None,
        skip_comparison: bool = False,
        staleness_predicates: FilterLike | Sequence[FilterLike] | None = None,
    ) -> Increment | LazyIncrement: ...
    def resolve_update(
        self,
        feature: CoercibleToFeatureKey,
        *,
        samples: FrameLike | None = None,
        filters: FiltersByFeature | None = None,
        global_filters: FilterLike | Sequence[FilterLike] | None = None,
        target_filters: FilterLike | Sequence[FilterLike] | None = None,
        lazy: bool = False,
        versioning_engine: VersioningEngine | None = None,
        skip_comparison: bool = False,
        staleness_predicates: FilterLike | Sequence[FilterLike] | None = None,
    ) -> Increment | LazyIncrement:
        """Which samples of ``feature`` are new, stale or orphaned (spec §3.10, §5.4).

        Args:
            feature: feature class, key or key string.
            samples: expected rows with ``metaxy_provenance_by_field`` (required for root features;
                for others, replaces loading the upstream).
            filters: ``{feature: [filter, ...]}``; upstream entries filter that upstream's read,
                the target's entry filters stored rows and samples.
            global_filters: applied to the target and to every upstream read.
            target_filters: applied to the target only (stored rows and samples).
            lazy: return a :class:`LazyIncrement` (with ``input``) instead of collecting.
            versioning_engine: ``"auto"``, ``"native"`` or ``"polars"`` (default: the store's).
            skip_comparison: report every expected sample as new.
            staleness_predicates: stored rows matching any of these are stale.

        Raises:
            RootFeatureError: root feature without ``samples``.
            FeatureNotFoundError: an upstream has no metadata anywhere.
            VersioningEngineMismatchError: ``"native"`` was required but frames are foreign.
        """
        self._require_open()
        _hooks.run_before_store_access(self)  # e.g. external features of other projects (config.sync)
        key = self._key(feature)
        graph = self._graph()
        graph.get_feature_definition(key)
        plan = compile_plan(graph, key)
        if plan.is_root and samples is None:
            raise RootFeatureError(
                f"'{key}' is a root feature (no upstream); resolve_update needs samples=. Hint: pass a frame "
                f"of the expected samples with '{c.PROVENANCE_BY_FIELD}' (one entry per field)."
            )
        by_key = {self._key(k): coerce_filters(v) for k, v in (filters or {}).items()}
        glob = coerce_filters(global_filters)
        target = [*by_key.get(key, []), *glob, *coerce_filters(target_filters)]
        predicates = coerce_filters(staleness_predicates)
        self._check_resolve_columns(plan, samples, by_key, glob, target, predicates)
        engine = versioning_engine or self.versioning_engine
        request = ResolveRequest(plan, samples, by_key, glob, target, predicates, skip_comparison, self.settings)
        if engine == "native" and not self.capabilities.native_resolve:
            raise VersioningEngineMismatchError(
                f"{type(self).__name__} has no native versioning engine. Hint: use versioning_engine='polars'."
            )
        if engine != "polars" and self.capabilities.native_resolve:
            native = self._resolve_native(request, strict=engine == "native", lazy=lazy)
            if native is not None:
                return self._quarantine(native, plan)  # quarantined samples move to increment.failed
        result = self._resolve_polars(request, warn=engine == "auto")
        return self._quarantine(result if lazy else result.collect(), plan)

    def _check_resolve_columns(
        self,
        plan: ResolvePlan,
        samples: Any,
        by_key: Mapping[FeatureKey, Sequence[FilterLike]],
        global_filters: Sequence[FilterLike],
        target: Sequence[FilterLike],
        predicates: Sequence[FilterLike],
    ) -> None:
        """Every filter of a resolve names columns its data has (ColumnNotFoundError otherwise)."""
        for dep in plan.deps:
            filters = [*by_key.get(dep.feature, []), *global_filters]
            if filters:
                store = self._find_store(dep.feature, allow_fallback=True)
                with store.open("r") if store is not self else contextlib.nullcontext():
                    available = store._column_names(store._table(dep.feature))
                check_columns(f"upstream '{dep.feature}' in {store.display()}", available, filters=filters)
        if not (target or predicates):
            return
        table = self._table(plan.feature)
        if self._table_exists(table):
            stored = self._column_names(table)
            check_columns(f"'{plan.feature}' in {self.display()}", stored, filters=[*target, *predicates])
        if samples is not None and target:
            names = [*to_polars_lazy(samples).collect_schema().names(), *sorted(c.SYSTEM_COLUMNS)]
            check_columns(f"the samples of '{plan.feature}'", names, filters=target)

    def _expected_polars(self, request: ResolveRequest, *, warn: bool) -> pl.LazyFrame:
        """The joined upstream with computed provenance (Polars), from the store's upstream reads."""
        plan, algo, length = request.plan, request.settings.hash_algorithm, request.settings.hash_length
        prepared = [
            px.prepare_upstream(dep, self._upstream_polars(dep.feature, request, warn=warn), algo, length)
            for dep in plan.deps
        ]
        return px.with_provenance(plan, px.join_upstreams(plan, prepared), algo, length)

    def _resolve_polars(self, request: ResolveRequest, *, warn: bool) -> LazyIncrement:
        plan = request.plan
        if request.samples is not None:
            expected = self._samples_frame(plan, request.samples, request.target_filters)
            upstream_input = None
        else:
            expected = self._expected_polars(request, warn=warn)
            upstream_input = expected
        current = self._current_polars(plan, request.target_filters)
        predicate_columns: list[str] = []
        if current is not None and request.staleness_predicates:
            current, predicate_columns = _with_predicate_columns(current, request.staleness_predicates)
        res = px.resolve(
            plan, expected, current, predicate_columns=predicate_columns, skip_comparison=request.skip_comparison
        )
        present = self._present

        def collect() -> Increment:
            new, stale, orphaned = res.collect()
            frames = (present(plan, f.lazy()).collect() for f in (new, stale, orphaned))
            return Increment(*(nw.from_native(f, eager_only=True) for f in frames))

        return LazyIncrement(
            nw.from_native(present(plan, res.new)),
            nw.from_native(present(plan, res.stale)),
            nw.from_native(present(plan, res.orphaned)),
            nw.from_native(present(plan, upstream_input)) if upstream_input is not None else None,
            collector=collect,
        )

    def _present(self, plan: ResolvePlan, lf: pl.LazyFrame) -> pl.LazyFrame:
        """Computed frames in the store's representation of the ``*_by_field`` columns."""
        if not self._map_mode():
            return lf
        return maps_from_structs(lf, {col: plan.field_struct_keys for col in BY_FIELD_COLUMNS})

    def _upstream_polars(self, key: FeatureKey, request: ResolveRequest, *, warn: bool) -> pl.LazyFrame:
        frame = self.read(key, filters=[*request.filters_by_key.get(key, []), *request.global_filters])
        native = frame.to_native()
        if isinstance(native, pl.LazyFrame):
            return native
        if warn and self.native_engine == "polars":
            warn_at_caller(
                f"Upstream '{key}' was materialised to Polars for the resolve.", PolarsMaterializationWarning
            )
        return frame.collect().to_polars().lazy()

    def _current_polars(self, plan: ResolvePlan, target_filters: Sequence[FilterLike]) -> pl.LazyFrame | None:
        if not self._table_exists(self._table(plan.feature)):
            return None
        table = self._table(plan.feature)
        filters = self._parse_filters(table, target_filters)
        request = ReadRequest(
            key=plan.feature,
            table=table,
            feature_version=plan.feature_version,
            id_columns=tuple(plan.id_columns),
            with_sample_history=False,
            include_soft_deleted=False,
            filters=tuple(f for f in filters if isinstance(f, FilterExpression)),
            columns=None,
        )
        frame = self._run_read(request, filters)
        native = frame.to_native()
        return native if isinstance(native, pl.LazyFrame) else frame.collect().to_polars().lazy()

    def _samples_frame(self, plan: ResolvePlan, samples: Any, target_filters: Sequence[FilterLike]) -> pl.LazyFrame:
        lf = to_polars_lazy(samples)
        names = lf.collect_schema().names()
        if c.PROVENANCE_BY_FIELD not in names:
            raise MetadataSchemaError(
                f"samples for '{plan.feature}' have no '{c.PROVENANCE_BY_FIELD}' column. Available: {names}. "
                f"Hint: add a struct column with one string per field: {list(plan.field_struct_keys)}."
            )
        ctx = WriteContext(
            feature=plan.feature.to_string(),
            id_columns=plan.id_columns,
            field_struct_keys=plan.field_struct_keys,
            is_root=True,
            feature_version=plan.feature_version,
            project_version="",
            materialization_id=None,
            now=datetime.now(UTC),
            algorithm=self.hash_algorithm,
            length=self._hash_length(),
            map_mode=self._map_mode(),
        )
        normalized = normalize_write(lf.drop([n for n in names if n == c.PROVENANCE]), ctx)
        _refuse_duplicate_ids(normalized, plan)
        keep = [n for n in normalized.collect_schema().names() if n not in _LIFECYCLE]
        return apply_filters(normalized.select(keep), target_filters)

    def compute_provenance(self, feature: CoercibleToFeatureKey, df: FrameLike) -> Any:
        """Add the versioning columns to a user-joined upstream frame; returns the frame type given.

        ``df`` must hold ``metaxy_data_version_by_field__<upstream suffix>`` for every dependency.

        Raises:
            ValueError: the required upstream columns are missing.
        """
        key = self._key(feature)
        plan = compile_plan(self._graph(), key)
        lf = to_polars_lazy(df)
        names = lf.collect_schema().names()
        required = [d.data_version_by_field for d in plan.deps]
        missing = [col for col in required if col not in names]
        if missing:
            raise ValueError(
                f"compute_provenance('{key}') is missing required upstream columns {missing}. "
                "Hint: rename each upstream's metaxy_data_version_by_field with its suffix before joining."
            )
        for dep in plan.deps:
            for col in dep.versioning_columns:
                if col not in names:
                    lf = lf.with_columns(pl.lit(None, pl.String).alias(col))
        for dep in plan.deps:
            keys = dep.field_struct_keys
            lf = structs_from_maps(lf, {dep.data_version_by_field: keys, dep.provenance_by_field: keys})
        out = px.with_provenance(plan, lf, self.hash_algorithm, self._hash_length())
        return like_input(df, self._present(plan, out))

    def calculate_input_progress(self, lazy_increment: LazyIncrement, feature: CoercibleToFeatureKey) -> float | None:
        """Percent of distinct input units (join keys) of ``lazy_increment.input`` already processed,
        i.e. not in ``new``; ``None`` when there is no input (samples were given) or it is empty."""
        if lazy_increment.input is None:
            return None
        keys = list(compile_plan(self._graph(), self._key(feature)).join_keys)
        total = len(lazy_increment.input.select(keys).unique().collect())
        if total == 0:
            return None
        pending = len(lazy_increment.new.select(keys).unique().collect())
        return 100.0 * (total - pending) / total

    def rebase(self, feature: CoercibleToFeatureKey, df: FrameLike, *, to_feature_version: str | None = None) -> Any:
        """Re-stamp stored rows onto another feature version of the same feature.

        User and data-version columns are kept (a data version equal to the old provenance is
        cleared, so it follows the new provenance on write); provenance is recomputed from the
        upstream under the target graph (the current one, or the pushed snapshot holding
        ``to_feature_version``). Write the result with ``preserve_feature_version=True``.

        Raises:
            ValueError: ``feature`` is a root feature, or ``to_feature_version`` was never pushed.
        """
        self._require_open()
        key = self._key(feature)
        graph = self._rebase_graph(key, to_feature_version)
        with graph.use():
            plan = compile_plan(graph, key)
            if plan.is_root:
                raise ValueError(
                    f"Cannot rebase root feature '{key}': its provenance comes from its samples. "
                    "Hint: re-write the root samples instead."
                )
            expected = self._expected_polars(
                ResolveRequest(plan, None, {}, [], [], [], False, self.settings), warn=True
            )
            project_version = graph.get_project_version(graph.get_feature_definition(key).project)
        lf = to_polars_lazy(df)
        names = lf.collect_schema().names()
        same = pl.col(c.DATA_VERSION) == pl.col(c.PROVENANCE)
        if c.DATA_VERSION_BY_FIELD in names and c.DATA_VERSION in names:
            lf = lf.with_columns(
                pl.when(same).then(None).otherwise(pl.col(c.DATA_VERSION_BY_FIELD)).alias(c.DATA_VERSION_BY_FIELD),
                pl.when(same).then(None).otherwise(pl.col(c.DATA_VERSION)).alias(c.DATA_VERSION),
            )
        keys = list(plan.join_keys)
        lf = lf.drop([col for col in (c.PROVENANCE_BY_FIELD, c.PROVENANCE) if col in names])
        fresh = expected.select(*keys, c.PROVENANCE_BY_FIELD, c.PROVENANCE).unique(subset=keys, keep="first")
        out = lf.join(self._present(plan, fresh), on=keys, how="inner").with_columns(
            pl.lit(plan.feature_version).alias(c.FEATURE_VERSION), pl.lit(project_version).alias(c.PROJECT_VERSION)
        )
        return nw.from_native(out.collect())

    def _rebase_graph(self, key: FeatureKey, to_feature_version: str | None) -> FeatureGraph:
        current = self._graph()
        if to_feature_version is None or to_feature_version == current.get_feature_version(key):
            return current
        storage = SystemTableStorage(self)
        rows = storage._rows().filter(
            (pl.col("feature_key") == key.to_string()) & (pl.col(c.FEATURE_VERSION) == to_feature_version)
        )
        if rows.height == 0:
            raise ValueError(
                f"Feature version '{to_feature_version}' of '{key}' not found in system storage of {self.display()}. "
                "Hint: push the graph that defines it (`metaxy push`) before rebasing onto it."
            )
        latest = rows.sort("recorded_at").row(-1, named=True)
        return storage.load_graph_from_snapshot(latest[c.PROJECT_VERSION], project=latest["project"])


_LIFECYCLE = frozenset(
    {c.FEATURE_VERSION, c.PROJECT_VERSION, c.CREATED_AT, c.UPDATED_AT, c.DELETED_AT, c.MATERIALIZATION_ID}
)


def _refuse_duplicate_ids(lf: pl.LazyFrame, plan: ResolvePlan) -> None:
    """``samples=`` must name each sample once: two provenances for one sample are ambiguous, and
    the sample would be listed (and recomputed) twice.

    Raises:
        MetadataSchemaError: naming up to five duplicated ids.
    """
    ids = list(plan.id_columns)
    dupes = lf.group_by(ids).agg(pl.len().alias("__n")).filter(pl.col("__n") > 1).collect()
    if dupes.height:
        shown = ", ".join(str(tuple(r) if len(r) > 1 else r[0]) for r in dupes.select(ids).head(5).rows())
        raise MetadataSchemaError(
            f"samples for '{plan.feature}' list {dupes.height} sample(s) more than once (by {ids}): {shown}. "
            "Hint: give each sample once, e.g. samples.unique(subset=id_columns, keep='last')."
        )


def _with_predicate_columns(lf: pl.LazyFrame, predicates: Sequence[FilterLike]) -> tuple[pl.LazyFrame, list[str]]:
    """Evaluate staleness predicates (SQL strings, Polars or narwhals expressions) as boolean columns."""
    from metaxy.models.filter_expression import FilterExpression

    names: list[str] = []
    for i, p in enumerate(predicates):
        name = f"__metaxy_predicate_{i}"
        names.append(name)
        if isinstance(p, str):
            p = FilterExpression.parse(p)
        if isinstance(p, FilterExpression):
            lf = lf.with_columns(p.to_polars().alias(name))
        elif isinstance(p, pl.Expr):
            lf = lf.with_columns(p.alias(name))
        else:
            lf = nw.from_native(lf).with_columns(p.alias(name)).to_native()
    return lf, names
