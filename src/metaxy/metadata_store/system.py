"""System tables: pushed graph snapshots (``metaxy-system/feature_versions``) and their readers.

A client of the backend contract: it reads and appends through a store's primitives
(``_scan``, ``_append``) and imports nothing from the public store layer above it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from metaxy._version import __version__
from metaxy.models import constants as c
from metaxy.models.graph import FeatureGraph, current_graph
from metaxy.models.keys import FeatureKey

from ._frames import TIMESTAMP
from ._store_core import StoreCore
from .contract import AppendSource, scan_to_polars

__all__ = ["EVENTS_KEY", "FEATURE_VERSIONS_KEY", "PushResult", "SystemTableStorage"]

FEATURE_VERSIONS_KEY = FeatureKey([c.SYSTEM_KEY_PREFIX, "feature_versions"])
EVENTS_KEY = FeatureKey([c.SYSTEM_KEY_PREFIX, "events"])

_FEATURE_VERSIONS_COLUMNS: dict[str, Any] = {
    "project": pl.String,
    "feature_key": pl.String,
    c.FEATURE_VERSION: pl.String,
    c.DEFINITION_VERSION: pl.String,
    "recorded_at": TIMESTAMP,
    "feature_spec": pl.String,
    "feature_schema": pl.String,
    "feature_class_path": pl.String,
    c.PROJECT_VERSION: pl.String,
    "tags": pl.String,
    "deleted_at": TIMESTAMP,
}
FEATURE_VERSIONS_SCHEMA = pl.Schema(_FEATURE_VERSIONS_COLUMNS)


@dataclass(frozen=True)
class PushResult:
    """What ``push_graph_snapshot`` did; unpacks like the published tuple
    (``project_version, already_pushed, updated_features = result``)."""

    project_version: str
    already_pushed: bool
    updated_features: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.project_version, self.already_pushed, self.updated_features))


class SystemTableStorage:
    """Reads and writes a store's system tables. The store must be open (``"w"`` to push)."""

    def __init__(self, store: StoreCore) -> None:
        self.store = store

    def _rows(self) -> pl.DataFrame:
        store = self.store
        store._require_open()
        table = store._table(FEATURE_VERSIONS_KEY)
        if not store._table_exists(table):
            return FEATURE_VERSIONS_SCHEMA.to_frame()
        return scan_to_polars(store._scan(table)).collect()

    def push_graph_snapshot(
        self, project: str | None = None, tags: dict[str, Any] | None = None, *, graph: FeatureGraph | None = None
    ) -> PushResult:
        """Record the project's feature definitions (idempotent).

        Raises:
            ValueError: ``tags`` uses the reserved ``metaxy`` key.
        """
        self.store._require_write()
        if tags and "metaxy" in tags:
            raise ValueError("The 'metaxy' tag is reserved. Hint: pick another tag name.")
        graph = graph or current_graph()
        project = project or graph.project
        version = graph.get_project_version(project)
        snapshot = graph.to_snapshot(project)
        existing = self._rows().filter(pl.col("project") == project)
        already = bool(existing.height) and existing.sort("recorded_at")[c.PROJECT_VERSION][-1] == version
        if already:
            latest = {
                r["feature_key"]: r[c.DEFINITION_VERSION] for r in existing.sort("recorded_at").iter_rows(named=True)
            }
            wanted = [k for k, v in snapshot.items() if latest.get(k) != v["metaxy_definition_version"]]
        else:
            wanted = list(snapshot)
        if wanted:
            now = self.store._now()
            tag_json = json.dumps({**(tags or {}), "metaxy": {"version": __version__}}, sort_keys=True)
            rows = [
                {
                    "project": project,
                    "feature_key": k,
                    c.FEATURE_VERSION: snapshot[k]["metaxy_feature_version"],
                    c.DEFINITION_VERSION: snapshot[k]["metaxy_definition_version"],
                    "recorded_at": now,
                    "feature_spec": json.dumps(snapshot[k]["feature_spec"], sort_keys=True),
                    "feature_schema": json.dumps(snapshot[k]["feature_schema"], sort_keys=True),
                    "feature_class_path": snapshot[k]["feature_class_path"],
                    c.PROJECT_VERSION: version,
                    "tags": tag_json,
                    "deleted_at": None,
                }
                for k in wanted
            ]
            frame = pl.DataFrame(rows, schema=FEATURE_VERSIONS_SCHEMA).lazy()
            self.store._append(self.store._table(FEATURE_VERSIONS_KEY), AppendSource(frame))
        return PushResult(version, already, wanted if already else [])

    def read_graph_snapshots(self, project: str | None = None) -> pl.DataFrame:
        """``project_version``, first ``recorded_at`` and ``feature_count`` per pushed snapshot, newest first."""
        rows = self._rows()
        if project is not None:
            rows = rows.filter(pl.col("project") == project)
        return (
            rows.group_by("project", c.PROJECT_VERSION)
            .agg(pl.col("recorded_at").min(), pl.col("feature_key").n_unique().alias("feature_count"))
            .sort("recorded_at", descending=True)
        )

    def read_features(
        self, *, current: bool = True, project_version: str | None = None, project: str | None = None
    ) -> pl.DataFrame:
        """Stored feature definitions: of one project version, of the current graph's, or the latest of each."""
        rows = self._rows()
        if project is not None:
            rows = rows.filter(pl.col("project") == project)
        if project_version is None and current:
            graph = current_graph()
            project_version = graph.get_project_version(project or graph.project)
        if project_version is not None:
            rows = rows.filter(pl.col(c.PROJECT_VERSION) == project_version)
        return rows.sort("recorded_at", descending=True).unique("feature_key", keep="first").sort("feature_key")

    def load_graph_from_snapshot(self, project_version: str, project: str | None = None) -> FeatureGraph:
        """A class-less graph of the definitions pushed under ``project_version``.

        Raises:
            ValueError: nothing was pushed under that version.
        """
        rows = self.read_features(current=False, project_version=project_version, project=project)
        if rows.height == 0:
            raise ValueError(
                f"Project version '{project_version}' not found in system storage of {self.store.display()}. "
                "Hint: list pushed versions with `metaxy history`."
            )
        snapshot = {
            r["feature_key"]: {
                "feature_spec": json.loads(r["feature_spec"]),
                "feature_schema": json.loads(r["feature_schema"]),
                "feature_class_path": r["feature_class_path"],
                "project": r["project"],
            }
            for r in rows.iter_rows(named=True)
        }
        return FeatureGraph.from_snapshot(snapshot)
