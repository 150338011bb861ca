"""Fixtures for the Dagster integration: a DuckDB store file per test, a real Dagster instance."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from mxd_helpers import store_config

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.config import MetaxyConfig
from metaxy.ext.duckdb import DuckDBMetadataStore


@pytest.fixture(autouse=True)
def _quiet_warnings() -> Iterator[None]:
    """Dagster's beta/preview notices and metaxy's "Creating table" notices are expected here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
        warnings.filterwarnings("ignore", message="Creating table")
        warnings.filterwarnings("ignore", message="Resolving .* with Polars instead of DuckDB SQL")
        # raised inside Dagster when it initialises nested resources (not our code)
        warnings.filterwarnings("ignore", message="InitResourceContext.dagster_run is deprecated")
        yield


@pytest.fixture
def config(tmp_path: Path) -> Iterator[MetaxyConfig]:
    """The active config: one DuckDB file store ``dev`` in ``tmp_path``."""
    with store_config(tmp_path).use() as cfg:
        yield cfg


@pytest.fixture
def store(config: MetaxyConfig) -> DuckDBMetadataStore:
    """The ``dev`` store (a separate object from the one Dagster's resource builds)."""
    built: DuckDBMetadataStore = config.get_store("dev")
    return built


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def resources(config: MetaxyConfig) -> dict[str, Any]:
    """``store`` and ``io_manager`` (the Metaxy IO manager on the default store)."""
    del config
    store = mxd.MetaxyStoreFromConfigResource()
    return {"store": store, "io_manager": mxd.MetaxyIOManager(store=store)}


@pytest.fixture
def features(graph: mx.FeatureGraph) -> dict[str, type[mx.BaseFeature]]:
    """``test/upstream`` (root) and ``test/downstream`` (depends on it)."""

    class Upstream(mx.BaseFeature, spec=mx.FeatureSpec(key="test/upstream", id_columns=["id"], fields=["value"])):
        """Upstream feature with a value per sample."""

        id: str
        value: int

    class Downstream(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="test/downstream", id_columns=["id"], deps=[Upstream], fields=["doubled"]),
    ):
        """Downstream feature doubling the upstream value."""

        id: str
        value: int
        doubled: int

    return {"upstream": Upstream, "downstream": Downstream}
