"""``MetaxyIOManager``: store asset outputs as Metaxy feature metadata, load inputs as lazy frames."""

# No `from __future__ import annotations`: Dagster inspects the resource field annotations at runtime.

from collections.abc import Mapping
from typing import Any, TypeAlias

import dagster as dg
import narwhals as nw
import polars as pl
from pydantic import Field

from metaxy.errors import FeatureNotFoundError, MetaxyError
from metaxy.frames import to_polars_lazy
from metaxy.metadata_store.base import MetadataStore
from metaxy.models.keys import FeatureKey

from ._features import feature_key_from_metadata, feature_metadata, resolve_definition, slice_from_metadata
from ._partitions import build_metaxy_partition_filter, partition_by_of, partition_columns, partition_filters
from ._runtime import FeatureStats, PartitionSelection, build_runtime_feature_metadata, store_location
from .constants import (
    DAGSTER_METAXY_ERROR_METADATA_KEY,
    DAGSTER_METAXY_FEATURE_METADATA_KEY,
)
from .errors import MetaxyIOManagerError, MetaxyPartitionError
from .resources import MetaxyStoreFromConfigResource

__all__ = ["MetaxyIOManager", "MetaxyOutput"]

MetaxyOutput: TypeAlias = Any
"""What a Metaxy asset returns: any narwhals-compatible frame (Polars, pandas, PyArrow, narwhals;
eager or lazy), or None when the asset wrote its metadata itself."""


def _feature_key(metadata: Mapping[str, Any] | None, what: str) -> FeatureKey:
    key = feature_key_from_metadata(metadata)
    if key is None:
        raise MetaxyIOManagerError(
            f"{what} has no '{DAGSTER_METAXY_FEATURE_METADATA_KEY}' metadata, so MetaxyIOManager cannot tell which "
            f"feature it is. Hint: add metadata={{'{DAGSTER_METAXY_FEATURE_METADATA_KEY}': 'my/feature'}} (or use "
            "@metaxify(feature=...)), or give non-Metaxy assets another io_manager_key."
        )
    resolve_definition(key)  # unknown features fail here, naming the key
    return key


def _set_data_version(context: dg.OutputContext, version: dg.DataVersion) -> None:
    """Give the materialization the content data version (G13), unless the output set its own.

    Dagster takes a data version cached on the step for the asset when the ``Output`` has none
    (the cache ``OpExecutionContext.set_data_version`` fills). An IO manager reaches it only
    through ``OutputContext.step_context``, which is not public API: if a Dagster release moves
    it, the materialization keeps Dagster's default version and the metadata, and a debug line
    says why (a test pins the current behaviour).
    """
    try:
        step = context.step_context
        if not step.has_data_version(context.asset_key):
            step.set_data_version(context.asset_key, version)
    except (dg.DagsterInvariantViolationError, AttributeError) as exc:  # outside a run, or Dagster changed
        context.log.debug(f"Metaxy could not set the data version of '{context.asset_key.to_user_string()}': {exc}")


def _check_fits(key: FeatureKey, obj: Any, metadata: Mapping[str, Any] | None) -> None:
    """Refuse an output that does not fit the asset: a missing ``partition_by`` or slice column, or
    rows outside the asset's ``metaxy/partition`` slice (null slice values are outside).

    Raises:
        MetaxyPartitionError: naming the column or a few offending values.
    """
    frame = nw.from_native(obj)
    columns = frame.collect_schema().names()
    slice_filter = slice_from_metadata(metadata) or {}
    for column in [*partition_columns(partition_by_of(metadata)), *slice_filter]:
        if column not in columns:
            raise MetaxyPartitionError(
                f"Output of feature '{key}' has no column '{column}', which the asset's "
                f"{'slice' if column in slice_filter else 'partition_by'} names. Available columns: "
                f"{', '.join(columns)}. Hint: add the column, or fix the asset metadata."
            )
    if not slice_filter:
        return
    inside = nw.all_horizontal(*build_metaxy_partition_filter(slice_filter), ignore_nulls=False).fill_null(False)
    outside = frame.filter(~inside).select(*slice_filter).head(3)
    if isinstance(outside, nw.LazyFrame):
        outside = outside.collect()
    if len(outside):
        examples = ", ".join(str(row) for row in outside.rows(named=True))
        raise MetaxyPartitionError(
            f"Output of feature '{key}' has rows outside the asset's slice {slice_filter} (e.g. {examples}). "
            "Nothing was written. Hint: return only the slice's rows; other slices belong to other assets."
        )


def _detached(frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """A lazy frame that stays valid after the store closes (G16): Polars plans are kept,
    frames bound to a connection are collected into Polars."""
    if isinstance(frame.to_native(), pl.LazyFrame):
        return frame
    return nw.from_native(to_polars_lazy(frame))


class MetaxyIOManager(dg.ConfigurableIOManager):
    """Writes asset outputs to the asset's Metaxy feature and reads inputs from upstream features.

    The asset names its feature with ``metadata={"metaxy/feature": "a/b"}`` (``metaxify`` sets it).

    * Output: a narwhals-compatible frame is written with ``store.write``; ``None`` means the
      asset wrote its metadata itself. Either way the materialization gets row counts
      (``dagster/row_count``, ``dagster/partition_row_count``), the store description, table
      name and URI, a 5-row preview and ``metaxy/materialized_in_run``.
    * Input: a ``narwhals.LazyFrame`` of the upstream feature's current rows, filtered to the
      input's partitions (through the partition mapping; static, time-window, multi-dimensional,
      ranges) and to the upstream's ``metaxy/partition`` slice, read through fallback stores.
      The frame stays valid after the store is closed.

    Attributes:
        store: the store resource (default: ``MetaxyStoreFromConfigResource()``, the configured
            default store).
    """

    store: dg.ResourceDependency[MetaxyStoreFromConfigResource] = Field(
        default_factory=MetaxyStoreFromConfigResource,  # type: ignore[arg-type]
        description="The metadata store to read and write (default: the configured default store).",
    )

    @property
    def metadata_store(self) -> MetadataStore:
        """The resolved store."""
        store: Any = self.store  # Dagster resolves the nested resource to the store it creates
        if isinstance(store, MetaxyStoreFromConfigResource):  # not resolved (the IO manager used directly)
            return store.get_store()
        return store

    # --- output --------------------------------------------------------------------------------
    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Write ``obj`` (unless None) and log the feature's runtime metadata.

        Raises:
            MetaxyIOManagerError: the asset has no ``metaxy/feature`` metadata, or ``obj`` is not a frame.
            FeatureNotInGraphError: the feature is not in the active graph.
        """
        key = _feature_key(context.definition_metadata, f"Output '{context.name}' of step '{context.step_key}'")
        store = self.metadata_store
        if obj is not None:
            try:
                nw.from_native(obj)
            except TypeError as exc:
                raise MetaxyIOManagerError(
                    f"Asset output for feature '{key}' is a {type(obj).__name__}, not a dataframe. Hint: return a "
                    "Polars/pandas/PyArrow/narwhals frame (eager or lazy), or None if the asset wrote it itself."
                ) from exc
            _check_fits(key, obj, context.definition_metadata)  # before anything is written
            with store.open("w"):
                written = store.write(key, obj)
            context.log.debug(f"Wrote {written} rows of feature '{key}' to {store.display()}.")
        already = dict(context.output_metadata or {})
        if obj is None and DAGSTER_METAXY_FEATURE_METADATA_KEY in already:
            # The asset's result was described by generate_*_results / generate_outputs (G4).
            context.log.debug(f"Metaxy metadata of '{key}' came with the result; not reading the store again.")
            return
        metadata, stats = self._output_metadata(context, store, key)
        context.add_output_metadata({k: v for k, v in metadata.items() if k not in already})
        if stats is not None and context.has_asset_key:
            _set_data_version(context, stats.data_version)

    def _output_metadata(
        self, context: dg.OutputContext, store: MetadataStore, key: FeatureKey
    ) -> tuple[dict[str, Any], FeatureStats | None]:
        partitions = None
        if context.has_asset_partitions:
            partitions = PartitionSelection(
                partition_by_of(context.definition_metadata), context.asset_partitions_def, context.asset_partition_keys
            )
        try:
            with store:
                return build_runtime_feature_metadata(
                    key,
                    store,
                    partitions=partitions,
                    metaxy_partition=slice_from_metadata(context.definition_metadata),
                    run_id=context.run_id,
                )
        except MetaxyPartitionError:
            raise  # the asset's partition_by / slice does not fit the feature: a configuration error
        except FeatureNotFoundError as exc:
            context.log.warning(f"No Metaxy metadata to describe for '{key}': {exc}")
            error = {**feature_metadata(key), DAGSTER_METAXY_ERROR_METADATA_KEY: str(exc)}
            return error, None
        except (MetaxyError, ValueError, TypeError, RuntimeError, OSError) as exc:
            # The rows are written; a metadata failure must show, not fail the write or vanish (G12).
            context.log.error(f"Could not build Metaxy metadata for '{key}': {type(exc).__name__}: {exc}")
            error = {**feature_metadata(key), DAGSTER_METAXY_ERROR_METADATA_KEY: f"{type(exc).__name__}: {exc}"}
            return error, None

    # --- input ---------------------------------------------------------------------------------
    def load_input(self, context: dg.InputContext) -> nw.LazyFrame[Any]:
        """The upstream feature's current rows for this input's partitions, as a lazy frame.

        Raises:
            MetaxyIOManagerError: the upstream asset has no ``metaxy/feature`` metadata.
            FeatureNotFoundError: the feature has no metadata in the store or its fallbacks.
        """
        upstream = context.upstream_output
        upstream_md = upstream.definition_metadata if upstream is not None else {}
        asset = context.asset_key.to_user_string() if context.has_asset_key else context.name
        key = _feature_key(upstream_md, f"Upstream asset '{asset}' of input '{context.name}'")
        store = self.metadata_store
        slice_filters = build_metaxy_partition_filter(slice_from_metadata(upstream_md))
        with store:
            frame, resolved = store.read(key, filters=slice_filters or None, with_store_info=True)
            keys = self._input_partition_keys(context)
            if keys is not None:
                schema = dict(frame.collect_schema())
                part = partition_filters(partition_by_of(upstream_md), context.asset_partitions_def, keys, schema)
                if part:
                    frame = frame.filter(*part)
            frame = _detached(frame)
        if context.has_asset_key and (not context.has_asset_partitions or len(context.asset_partition_keys) == 1):
            # Dagster's add_input_metadata breaks with several partition keys
            context.add_input_metadata(store_location(resolved, key), description="Metadata Store Info")
        return frame

    @staticmethod
    def _input_partition_keys(context: dg.InputContext) -> list[str] | None:
        """The upstream partition keys this input needs; None for all of them (no filter)."""
        if not context.has_asset_partitions:
            return None
        keys = list(context.asset_partition_keys)
        every = context.asset_partitions_def.get_partition_keys(dynamic_partitions_store=context.instance)
        if set(keys) >= set(every):  # AllPartitionMapping (or every partition selected): no filter
            return None
        return keys
