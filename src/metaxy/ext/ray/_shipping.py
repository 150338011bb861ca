"""What crosses from the driver to a Ray worker: the store's configuration and the feature graph.

A store object pickles without its connections (``StoreCore.__getstate__``), so it *is* its
configuration; a worker re-creates the connection by opening it. The feature graph travels as its
snapshot (class-less definitions: a worker need not import the user's feature modules) and the
ambient settings (hash truncation, Map columns) as a frozen dataclass. ``repr`` never shows the
store's credentials (``store.display()`` masks them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metaxy.models import settings as _settings
from metaxy.models.graph import FeatureGraph, current_graph
from metaxy.models.keys import CoercibleToFeatureKey, FeatureKey, coerce_to_feature_key

if TYPE_CHECKING:
    from metaxy.metadata_store.base import MetadataStore

__all__ = ["WorkerContext"]


@dataclass(frozen=True)
class WorkerContext:
    """A store configuration, a feature key and the graph, picklable for Ray tasks and actors."""

    store: MetadataStore = field(repr=False)
    key: FeatureKey
    snapshot: dict[str, dict[str, Any]] = field(repr=False)
    settings: _settings.AmbientSettings

    @classmethod
    def capture(cls, store: MetadataStore, feature: CoercibleToFeatureKey) -> WorkerContext:
        graph = current_graph()
        key = coerce_to_feature_key(feature)
        graph.get_feature_definition(key)  # FeatureNotInGraphError on the driver, not in a worker
        return cls(store=store, key=key, snapshot=graph.to_snapshot(), settings=_settings.current_settings())

    def __repr__(self) -> str:
        return f"WorkerContext(store={self.store.display()}, key={self.key.to_string()})"

    @staticmethod
    def graph_definition(ctx: WorkerContext) -> Any:
        """The feature's definition in the active graph (on the driver)."""
        return current_graph().get_feature_definition(ctx.key)

    @property
    def concurrency(self) -> str:
        return self.store.capabilities.concurrency

    @contextlib.contextmanager
    def activate(self) -> Iterator[FeatureGraph]:
        """Inside a worker: the shipped graph active and the shipped settings in force."""
        graph = FeatureGraph.from_snapshot(self.snapshot)
        previous = list(_settings._provider)
        shipped = self.settings
        _settings.register_settings_provider(lambda: shipped)
        try:
            with graph.use():
                yield graph
        finally:
            _settings._provider[:] = previous
