"""``mx plan``, ``mx explain`` and ``mx trace``: what the next run recomputes, why, and where a sample is."""

from __future__ import annotations

from typing import Annotated, Any

import cyclopts
from rich.text import Text

from ._context import session
from ._errors import EXIT_ERROR, CliError
from ._output import Format, console, emit_json, print_table, progress, table

__all__ = ["explain", "plan", "trace"]

FormatOpt = Annotated[Format, cyclopts.Parameter(name=["--format", "-f"])]


def _n(counts: Any, field: str) -> Any:
    return None if counts is None else getattr(counts, field)


def plan(
    keys: list[str] | None = None,
    /,
    *,
    store: str | None = None,
    assert_in_sync: Annotated[bool, cyclopts.Parameter(negative="")] = False,
    progress_bar: Annotated[bool, cyclopts.Parameter(name="--progress", negative="--no-progress")] = True,
    format: FormatOpt = "plain",
) -> int:
    """Predict what the next run of the whole graph recomputes, before anything runs.

    Per feature: samples that are new, stale or orphaned now, plus those that will become stale once
    their upstream features are recomputed ("cascaded"). Roots keep their stored samples. The store
    is only read. JSON: ``{"project_version", "needs_update", "features": [{"feature", "status",
    "predicted": {"new", "stale", "orphaned"}, "direct": {...}, "cascaded", "note"}]}``.

    Parameters
    ----------
    keys
        Only report these features (their upstream features are still replayed). Default: every feature of the project.
    store
        The store to read (default: the configured default store).
    assert_in_sync
        Exit with code 1 when the run would recompute anything (CI).
    progress_bar
        Show a progress bar (only on a terminal).
    format
        ``plain`` or ``json``.
    """
    from metaxy.inspect import plan_run

    st = session.store(store)
    selected = session.select(keys, not keys)
    with progress("plan", None, enabled=progress_bar) as advance:
        result = plan_run(st, session.graph(), features=selected, progress=lambda name: advance(description=name))
    if format == "json":
        emit_json(result.to_dict())
    else:
        rows = [
            [
                f.feature,
                _n(f.predicted, "new"),
                _n(f.predicted, "stale"),
                f.cascaded if f.predicted else None,
                _n(f.predicted, "orphaned"),
                f.status,
            ]
            for f in result.features
        ]
        print_table(f"Plan ({st.display()})", ["feature", "new", "stale", "cascaded", "orphaned", "status"], rows)
        notes = [f"{f.feature}: {f.note}" for f in result.features if f.note and f.status != "root"]
        for line in notes:
            console().print(Text(line, style="mx.warning"))
    return EXIT_ERROR if assert_in_sync and result.needs_update else 0


def _sample_ids(feature_ids: list[str], id_columns: Any) -> list[dict[str, str]]:
    from metaxy.inspect._samples import parse_sample_id

    return [parse_sample_id(text, list(id_columns)) for text in feature_ids]


def explain(
    feature: str,
    ids: list[str],
    /,
    *,
    store: str | None = None,
    format: FormatOpt = "plain",
) -> None:
    """Explain why samples of a feature are new, stale or orphaned: which upstream field or code version changed.

    Parameters
    ----------
    feature
        The feature key, e.g. ``video/clips``.
    ids
        Sample ids: the value for a single id column, or ``col=value[,col=value]``.
    store
        The store to read (default: the configured default store).
    format
        ``plain`` or ``json`` (``{"samples": [...]}``).
    """
    from metaxy.inspect import explain_sample

    (key,) = session.select([feature], False)
    graph = session.graph()
    samples = _sample_ids(ids, graph.get_feature_definition(key).id_columns)
    st = session.store(store)
    with st.open("r"):
        results = [explain_sample(st, key, s, graph=graph) for s in samples]
    if format == "json":
        emit_json({"samples": [r.to_dict() for r in results]})
        return
    out = console()
    for r in results:
        ident = ", ".join(f"{k}={v}" for k, v in r.sample.items())
        out.print(Text(f"{r.feature} [{ident}]: {r.status}", style="mx.heading"), soft_wrap=True)
        for cause in r.causes:
            out.print(Text(f"  - {cause.message}"), soft_wrap=True)
        if r.stored:
            s = r.stored
            out.print(
                Text(
                    f"  stored: version {s['feature_version']}, updated {_short_ts(s['updated_at'])} UTC"
                    + (f", materialization {s['materialization_id']}" if s["materialization_id"] else "")
                ),
                soft_wrap=True,
            )


def trace(
    ids: list[str],
    /,
    *,
    store: str | None = None,
    format: FormatOpt = "plain",
) -> None:
    """Follow samples through every feature that shares their id, with their 1:N children and N:1 groups.

    Per feature: present / new / stale / failed / orphaned / deleted / outdated / missing, the stored
    feature version, timestamps and materialization id (the Dagster run id when Dagster wrote it),
    then the failures recorded for the sample (``mx errors``).

    Parameters
    ----------
    ids
        ``col=value[,col=value]`` (e.g. ``clip_id=c1``), or a bare value to match every feature's single id column.
    store
        The store to read (default: the configured default store).
    format
        ``plain`` or ``json`` (``{"samples": [{"sample", "features": [...]}]}``).
    """
    from metaxy.inspect import trace_sample

    graph = session.graph()
    keys = session.project_features()
    st = session.store(store)
    results: list[dict[str, Any]] = []
    with st.open("r"):
        for text in ids:
            entries = []
            if "=" in text:
                from metaxy.inspect._samples import parse_sample_id

                pairs = dict(part.partition("=")[::2] for part in text.split(","))
                entries = trace_sample(st, parse_sample_id(text, list(pairs)), features=keys, graph=graph)
                sample: dict[str, str] = pairs
            else:
                sample = {"id": text}
                for key in keys:
                    cols = graph.get_feature_definition(key).id_columns
                    if len(cols) == 1 and not any(e.feature == key.to_string() for e in entries):
                        found = trace_sample(st, {cols[0]: text}, features=[key], graph=graph)
                        entries += found
                entries.sort(
                    key=lambda e: [k.to_string() for k in graph.topological_sort_features(keys)].index(e.feature)
                )
            if not entries:
                raise CliError(
                    f"No feature has an id column for '{text}'. Hint: write col=value with one of the id columns "
                    "shown by `mx list features -f json`.",
                    code="INVALID_SAMPLE_ID",
                )
            results.append({"sample": sample, "features": [e.to_dict() for e in entries]})
    if format == "json":
        emit_json({"samples": results})
        return
    out = console()
    for r in results:
        ident = ", ".join(f"{k}={v}" for k, v in r["sample"].items())
        out.print(
            table(
                f"Trace {ident}",
                ["feature", "status", "rows", "version", "updated (UTC)", "run"],
                [
                    [
                        e["feature"],
                        e["status"],
                        e["rows"],
                        e["feature_version"],
                        _short_ts(e["updated_at"]),
                        e["materialization_id"],
                    ]
                    for e in r["features"]
                ],
            )
        )
        failures = [(e["feature"], f) for e in r["features"] for f in e.get("failures", [])]
        if failures:
            out.print(
                table(
                    f"Failures of {ident}",
                    ["feature", "type", "error", "run", "current"],
                    [
                        [name, f["error_type"], f["error"], f["materialization_id"], "yes" if f["current"] else "no"]
                        for name, f in failures
                    ],
                )
            )


def _short_ts(value: str | None) -> str | None:
    return None if value is None else value[:19].replace("T", " ")
