"""Inspect a project from Python: what the next run recomputes, why a sample is stale, where a sample is.

The ``mx plan`` / ``mx explain`` / ``mx trace`` / ``mx describe`` / ``mx graph`` commands are thin
printers over these functions::

    from metaxy.inspect import plan_run, explain_sample, trace_sample

    with store:
        plan = plan_run(store)                      # per feature: new / stale / orphaned, cascade included
        why = explain_sample(store, "video/clips", {"clip_id": "c1"})
        where = trace_sample(store, {"clip_id": "c1"})
"""

from __future__ import annotations

from .explain import Cause, Explanation, explain_sample
from .graph_view import (
    FeatureChange,
    FieldChange,
    GraphDiff,
    RenderOptions,
    describe_feature,
    describe_graph,
    diff_graphs,
    focus,
    render_graph,
)
from .plan import Counts, FeatureForecast, RunPlan, plan_run, sample_columns
from .trace import TraceEntry, trace_sample

__all__ = [
    "Cause",
    "Counts",
    "Explanation",
    "FeatureChange",
    "FeatureForecast",
    "FieldChange",
    "GraphDiff",
    "RenderOptions",
    "RunPlan",
    "TraceEntry",
    "describe_feature",
    "describe_graph",
    "diff_graphs",
    "explain_sample",
    "focus",
    "plan_run",
    "render_graph",
    "sample_columns",
    "trace_sample",
]
