"""Failed samples in Dagster: record the failures of an asset's batch, report the failed count on
materializations (``metaxy/failed``) and check it against a threshold (``metaxy_failures``).

An asset body computes the samples it can, records those it cannot, and finishes::

    @mxd.metaxify(feature=Transcript)
    @dg.asset
    def transcript(context, store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
        with store:
            increment = store.resolve_update(Transcript)
        done, failed = transcribe(increment.new)          # failed: id columns + "error"
        mxd.record_failures(context, store, Transcript, failed)
        return done

The next run's ``resolve_update`` leaves the failed samples out until their inputs or the feature
version change, or ``mx errors reset`` clears them.
"""

# No `from __future__ import annotations`: Dagster inspects annotations at runtime.

from typing import Any

from metaxy.metadata_store.base import MetadataStore
from metaxy.models.keys import FeatureKey, coerce_to_feature_key

__all__ = ["METAXY_FAILED_METADATA_KEY", "failure_metadata", "record_failures"]

#: Materialization metadata: failures recorded for the feature under its current feature version.
METAXY_FAILED_METADATA_KEY = "metaxy/failed"


def record_failures(
    context: Any, store: MetadataStore, feature: Any, frame: Any, *, materialization_id: str | None = None
) -> int:
    """Record the failed samples of an asset's batch in ``store`` with the run id as materialization id.

    Args:
        context: the asset (or op) execution context; its ``run_id`` is recorded and its log
            gets one warning line with the count.
        store: the metadata store (opened for writing here).
        feature: feature class, key or key string.
        frame: the id columns and ``error`` (optionally ``error_type``, ``metaxy_provenance``);
            see :meth:`metaxy.MetadataStore.record_failures`.
        materialization_id: recorded instead of the run id.

    Returns:
        The number of failures recorded (0 for an empty frame).

    Raises:
        MetadataSchemaError: the frame is malformed or names samples the feature does not expect;
            nothing is recorded.
    """
    key = coerce_to_feature_key(feature)
    run = getattr(context, "run", None)
    run_id = materialization_id or (run.run_id if run is not None else getattr(context, "run_id", None))
    with store.open("w"):
        count = store.record_failures(key, frame, materialization_id=run_id)
    if count:
        context.log.warning(
            f"metaxy: recorded {count} failed sample(s) of '{key}'; they are left out of the next resolve until "
            "their inputs or the feature version change (`mx errors list`, `mx errors reset`)."
        )
    return count


def failed_count(store: MetadataStore, key: FeatureKey) -> int | None:
    """Samples of ``key`` with a failure under the current feature version that no stored row has
    since succeeded for (same ids and provenance); ``store`` open. None when the feature never had
    a failures table."""
    from metaxy.errors import FeatureNotFoundError
    from metaxy.models import constants as c

    if key not in store.features_with_failures():
        return None
    failures = store.read_failures(key, current=True)
    if failures.height == 0:
        return 0
    on = [*store._graph().get_feature_definition(key).id_columns, c.PROVENANCE]
    try:
        stored = store.read(key, columns=on).collect().to_polars()
    except FeatureNotFoundError:
        return failures.height
    return failures.join(stored, on=on, how="anti").height if stored.height else failures.height


def failure_metadata(store: MetadataStore, key: FeatureKey) -> dict[str, Any]:
    """``{"metaxy/failed": n}`` for event metadata; empty when nothing was ever recorded (so events of
    features without failures carry exactly what they did before)."""
    count = failed_count(store, key)
    return {} if count is None else {METAXY_FAILED_METADATA_KEY: count}
