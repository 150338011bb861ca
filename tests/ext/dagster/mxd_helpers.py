"""Helpers shared by the Dagster integration tests (imported as ``mxd_helpers``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from metaxy.config import MetaxyConfig


def store_config(tmp_path: Path, **stores: dict[str, Any]) -> MetaxyConfig:
    """A config with project ``test`` and DuckDB stores ``dev`` (default) plus ``stores``."""
    entries: dict[str, Any] = {
        "dev": {"type": "metaxy.ext.duckdb.DuckDBMetadataStore", "config": {"database": str(tmp_path / "dev.duckdb")}}
    }
    entries.update(stores)
    return MetaxyConfig(project="test", store="dev", stores=entries, auto_create_tables=True)


def root_rows(ids: list[str], **columns: list[Any]) -> pl.DataFrame:
    """Rows of a root feature with field ``value``: ``id``, ``value`` (0..n) and provenance."""
    data: dict[str, Any] = {"id": ids, "value": list(range(len(ids)))}
    data.update(columns)
    data["metaxy_provenance_by_field"] = [{"value": f"h-{i}"} for i in ids]
    return pl.DataFrame(data)


def materializations(instance: dg.DagsterInstance, key: Any) -> list[dg.AssetMaterialization]:
    """The materializations of ``key`` recorded in ``instance``, oldest first."""
    records = instance.fetch_materializations(dg.AssetKey.from_coercible(key), limit=100, ascending=True).records
    return [r.asset_materialization for r in records if r.asset_materialization is not None]


def latest_metadata(instance: dg.DagsterInstance, key: Any) -> dict[str, Any]:
    """The raw values of the latest materialization's metadata of ``key``."""
    mats = materializations(instance, key)
    assert mats, f"no materialization of {key}"
    return {k: getattr(v, "value", v) for k, v in mats[-1].metadata.items()}


def step_order(result: dg.ExecuteInProcessResult) -> list[str]:
    """Step keys in the order their steps started."""
    return [e.step_key for e in result.all_events if e.event_type_value == "STEP_START" and e.step_key]


def latest_tags(instance: dg.DagsterInstance, key: Any) -> dict[str, str]:
    """The tags of the latest materialization of ``key``."""
    mats = materializations(instance, key)
    assert mats, f"no materialization of {key}"
    return dict(mats[-1].tags or {})


def observations(instance: dg.DagsterInstance, key: Any) -> list[dg.AssetObservation]:
    """The observations of ``key`` recorded in ``instance``, oldest first."""
    records = instance.fetch_observations(dg.AssetKey.from_coercible(key), limit=100, ascending=True).records
    return [r.asset_observation for r in records if r.asset_observation is not None]


def values(metadata: Any) -> dict[str, Any]:
    """Raw values of an event's metadata."""
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def event_types(result: Any, kind: str) -> list[Any]:
    """``(step_key, asset_key)`` of the events of ``kind`` (e.g. ``ASSET_MATERIALIZATION``), in order."""
    return [
        e.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type_value == kind and e.asset_key is not None
    ]


def step_error(result: Any, node: str) -> str:
    """The full error text (causes included) of ``node``'s failure; fails the test if it did not fail."""
    failure = result.failure_data_for_node(node)
    assert failure is not None and failure.error is not None, f"{node!r} did not fail"
    return str(failure.error.to_string())


def failure_text(event: dg.DagsterEvent) -> str:
    """The full error text of a ``STEP_FAILURE`` event; fails the test if it carries no error."""
    error = event.step_failure_data.error
    assert error is not None, f"{event.event_type_value} event without an error"
    return str(error.to_string())


def defs_assets(defs: dg.Definitions) -> list[dg.AssetsDefinition | dg.AssetSpec | dg.SourceAsset]:
    """The assets of ``defs``, as ``dg.materialize`` takes them (no cacheable asset definitions expected)."""
    assets = list(defs.assets or [])
    assert all(isinstance(a, dg.AssetsDefinition | dg.AssetSpec | dg.SourceAsset) for a in assets), assets
    return [a for a in assets if isinstance(a, dg.AssetsDefinition | dg.AssetSpec | dg.SourceAsset)]
