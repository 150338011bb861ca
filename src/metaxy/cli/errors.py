"""``mx errors``: list and reset the failed samples a store has quarantined (``store.record_failures``)."""

from __future__ import annotations

from typing import Annotated, Any

import cyclopts

from ._context import session
from ._output import Format, emit_json, print_table

__all__ = ["errors_app"]

errors_app = cyclopts.App(
    name="errors", help="Failed samples quarantined by the store (record_failures).", version_flags=[]
)

FormatOpt = Annotated[Format, cyclopts.Parameter(name=["--format", "-f"])]
AllFeaturesOpt = Annotated[bool, cyclopts.Parameter(name="--all-features", negative="")]
FilterOpt = Annotated[list[str] | None, cyclopts.Parameter(name="--filter", consume_multiple=False, negative="")]


def _failure_rows(st: Any, key: Any) -> list[dict[str, Any]]:
    from metaxy.models import constants as c

    graph = session.graph()
    ids = list(graph.get_feature_definition(key).id_columns)
    current = graph.get_feature_version(key)
    out = []
    for r in st.read_failures(key).iter_rows(named=True):
        out.append(
            {
                "feature_key": key.to_string(),
                "sample": {i: r[i] for i in ids},
                "error": r["metaxy_error"],
                "error_type": r["metaxy_error_type"],
                "failed_at": r["metaxy_failed_at"].isoformat() if r["metaxy_failed_at"] else None,
                "feature_version": r[c.FEATURE_VERSION],
                "current": r[c.FEATURE_VERSION] == current,
                "materialization_id": r[c.MATERIALIZATION_ID],
            }
        )
    return out


@errors_app.command(name="list")
def list_errors(
    keys: list[str] | None = None,
    /,
    *,
    all_features: AllFeaturesOpt = False,
    store: str | None = None,
    format: FormatOpt = "plain",
) -> None:
    """Recorded failures, latest per sample: why each sample failed and whether it is still quarantined.

    A failure quarantines its sample (``resolve_update`` reports it as ``failed``, not new/stale)
    while the sample's inputs and the feature version are unchanged; ``current`` is false for
    failures recorded under an older feature version (those samples are retried). JSON:
    ``{"count", "failures": [{"feature_key", "sample", "error", "error_type", "failed_at",
    "feature_version", "current", "materialization_id"}]}``.

    Parameters
    ----------
    keys
        Feature keys (default: every feature with failures).
    all_features
        Every feature of the project.
    store
        Store to read (default: the configured default store).
    format
        ``plain`` or ``json``.
    """
    st = session.cfg.get_store(store)
    with st.open("r"):
        selected = session.select(keys, all_features) if keys or all_features else st.features_with_failures()
        rows = [row for key in selected for row in _failure_rows(st, key)]
    if format == "json":
        emit_json({"count": len(rows), "failures": rows})
        return
    print_table(
        f"Failures ({st.display()}): {len(rows)}",
        ["feature", "sample", "type", "error", "current"],
        [
            [
                r["feature_key"],
                ", ".join(f"{k}={v}" for k, v in r["sample"].items()),
                r["error_type"],
                r["error"],
                "yes" if r["current"] else "no",
            ]
            for r in rows
        ],
    )


@errors_app.command(name="reset")
def reset(
    keys: list[str] | None = None,
    /,
    *,
    all_features: AllFeaturesOpt = False,
    store: str | None = None,
    filter: FilterOpt = None,
    yes: Annotated[bool, cyclopts.Parameter(name=["--yes", "-y"], negative="")] = False,
    format: FormatOpt = "plain",
) -> None:
    """Clear recorded failures so the next resolve retries those samples.

    Without --filter every failure of the selected features is cleared. Asks for confirmation
    unless --yes (and refuses when not on a terminal). JSON: ``{"features": [{"feature_key",
    "cleared"}], "cleared"}``.

    Parameters
    ----------
    keys
        Feature keys (or use --all-features).
    all_features
        Every feature of the project.
    store
        Store to reset failures in (default: the configured default store).
    filter
        SQL filter on the failures, e.g. ``"video_id = 'v3'"`` or ``"metaxy_error_type = 'OOM'"``; repeatable.
    yes
        Do not ask for confirmation.
    format
        ``plain`` or ``json``.
    """
    from metaxy.metadata_store._frames import coerce_filters

    from .metadata import _confirm

    coerce_filters(filter)  # a malformed filter is an error before anything is asked
    st = session.cfg.get_store(store)
    selected = session.select(keys, all_features)
    scope = f"matching {' AND '.join(filter)}" if filter else "ALL failures"
    _confirm(f"Reset failures ({scope}) of {len(selected)} feature(s) in {st.display()}?", yes)
    results = []
    with st.open("w"):
        for key in selected:
            results.append({"feature_key": key.to_string(), "cleared": st.reset_failures(key, filter or None)})
    data = {"features": results, "cleared": sum(r["cleared"] for r in results)}
    if format == "json":
        emit_json(data)
        return
    print_table("Reset failures", ["feature", "cleared"], [[r["feature_key"], r["cleared"]] for r in results])
