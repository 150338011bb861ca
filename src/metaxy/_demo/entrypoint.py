"""Entry point for ``mx`` commands in a demo workdir: registers the demo's features in the active graph.

``metaxy.toml`` written by ``mx demo`` lists this module under ``entrypoints`` and records the
audio code version of the last round under ``[ext.demo]``, so ``mx metadata status --all-features``
run in the workdir compares the store with the same feature versions the demo ended with.
"""

from __future__ import annotations

from metaxy._demo.features import build_features
from metaxy.config import MetaxyConfig
from metaxy.models.graph import current_graph

FEATURES = build_features(
    str(MetaxyConfig.get().ext.get("demo", {}).get("audio_code_version", "1")),
    graph=current_graph(),
)
