"""``mx metadata``: status, delete, copy, rebase and vacuum stored metadata."""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Annotated, Any

import cyclopts

from metaxy.versioning.samples import sample_columns

from ._context import session
from ._errors import EXIT_ERROR, CliError
from ._output import Format, emit_json, note, print_table, progress

__all__ = ["metadata_app"]

metadata_app = cyclopts.App(name="metadata", help="Inspect and maintain stored metadata.", version_flags=[])

FormatOpt = Annotated[Format, cyclopts.Parameter(name=["--format", "-f"])]
AllFeaturesOpt = Annotated[bool, cyclopts.Parameter(name="--all-features", negative="")]
FilterOpt = Annotated[list[str] | None, cyclopts.Parameter(name="--filter", consume_multiple=False, negative="")]


def _store(name: str | None, allow_fallback: bool = True) -> Any:
    return session.cfg.get_store(name) if allow_fallback else session.cfg.get_store(name, fallback_stores=[])


@contextlib.contextmanager
def _quiet() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@metadata_app.command(name="status")
def status(
    keys: list[str] | None = None,
    /,
    *,
    all_features: AllFeaturesOpt = False,
    store: str | None = None,
    filter: FilterOpt = None,
    global_filter: Annotated[list[str] | None, cyclopts.Parameter(consume_multiple=False, negative="")] = None,
    stale_if: Annotated[list[str] | None, cyclopts.Parameter(consume_multiple=False, negative="")] = None,
    snapshot_id: str | None = None,
    assert_in_sync: Annotated[bool, cyclopts.Parameter(negative="")] = False,
    verbose: Annotated[bool, cyclopts.Parameter(name=["--verbose", "-v"], negative="")] = False,
    progress_bar: Annotated[bool, cyclopts.Parameter(name="--progress", negative="--no-progress")] = True,
    allow_fallback_stores: bool = True,
    format: FormatOpt = "plain",
) -> int:
    """Per feature: rows stored and how many samples are new (missing), stale or orphaned.

    Root features (whose samples come from you) show "-" counts. JSON:
    ``{"project_version", "needs_update", "features": [{"feature_key", "status", "rows", "missing",
    "stale", "orphaned", ...}]}``.

    Parameters
    ----------
    keys
        Feature keys (or use --all-features).
    all_features
        Every feature of the project.
    store
        Store to read (default: the configured default store).
    filter
        SQL filter on the selected features' stored rows and expected samples, e.g. ``"split = 'train'"``; repeatable.
    global_filter
        SQL filter applied to every feature read, upstream included (the column must exist in all of them); repeatable.
    stale_if
        SQL predicate on stored rows: matching samples count as stale; repeatable.
    snapshot_id
        Compare against a pushed project version's definitions instead of the current code.
    assert_in_sync
        Exit with code 1 when any selected feature needs an update (CI).
    verbose
        Also show each feature's version and the store its rows were found in.
    progress_bar
        Show a progress bar (only on a terminal).
    allow_fallback_stores
        Read upstream features from the store's fallback stores when it lacks them.
    format
        ``plain`` or ``json``.
    """
    from metaxy.metadata_store._frames import coerce_filters

    for given in (filter, global_filter, stale_if):
        coerce_filters(given)  # a malformed filter is an error even when nothing gets compared
    graph = session.graph()
    if snapshot_id is not None:
        from metaxy.metadata_store import SystemTableStorage

        with _store(store).open("r") as st0:
            graph = SystemTableStorage(st0).load_graph_from_snapshot(snapshot_id, project=session.cfg.project)
    with graph.use():
        st = _store(store, allow_fallback_stores)  # a broken store config is reported before the selection
        selected = session.select(keys, all_features)
        rows = []
        with st.open("r"), progress("metadata status", len(selected), enabled=progress_bar) as advance:
            for key in selected:
                rows.append(_status_row(st, graph, key, filter, global_filter, stale_if, allow_fallback_stores))
                advance(description=key.to_string())
        try:
            project_version: str | None = graph.project_version
        except RuntimeError:
            project_version = None
    needs = any(r["status"] in ("needs update", "missing", "upstream missing") for r in rows)
    if format == "json":
        emit_json({"project_version": project_version, "needs_update": needs, "features": rows})
    else:
        cols = ["feature_key", "rows", "missing", "stale", "orphaned", "status"]
        if verbose:
            cols[1:1] = ["version", "store"]
        print_table(
            f"Metadata status ({st.display()})",
            [c.replace("feature_key", "feature") for c in cols],
            [[r.get(c) for c in cols] for r in rows],
        )
    return EXIT_ERROR if assert_in_sync and needs else 0


def _status_row(
    st: Any,
    graph: Any,
    key: Any,
    filters: list[str] | None,
    global_filters: list[str] | None,
    stale_if: list[str] | None,
    allow_fallback: bool,
) -> dict[str, Any]:
    from metaxy.errors import FeatureNotFoundError

    row: dict[str, Any] = {
        "feature_key": key.to_string(),
        "version": graph.get_feature_version(key),
        "store": None,
        "rows": 0,
        "missing": None,
        "stale": None,
        "orphaned": None,
    }
    with _quiet():
        if st.has_feature(key, check_fallback=allow_fallback):
            frame, where = st.read(
                key,
                with_store_info=True,
                allow_fallback=allow_fallback,
                filters=[*(filters or []), *(global_filters or [])],
            )
            row["store"] = where.display()
            row["rows"] = len(frame.select(frame.columns[:1]).collect())
        if not graph.get_feature_definition(key).spec.deps:
            row["status"] = "root feature"
            return row
        try:
            inc = st.resolve_update(key, global_filters=global_filters, staleness_predicates=stale_if)
        except FeatureNotFoundError:
            row["status"] = "upstream missing"
            return row
    # --filter selects the samples compared: expected and stored alike
    units = sample_columns(graph.get_feature_definition(key).spec)  # samples, not rows (1:N, N:1)
    counts = [_filtered_len(frame, filters, units) for frame in (inc.new, inc.stale, inc.orphaned)]
    row.update(missing=counts[0], stale=counts[1], orphaned=counts[2])
    if row["store"] is None and row["missing"]:
        row["status"] = "missing"
    else:
        row["status"] = "needs update" if row["missing"] or row["stale"] else "up-to-date"
    return row


def _filtered_len(frame: Any, filters: list[str] | None, units: list[str]) -> int:
    from metaxy.versioning.samples import count_samples

    if not filters:
        return count_samples(frame, units)
    from metaxy.metadata_store._frames import apply_filters, coerce_filters

    return count_samples(apply_filters(frame.to_polars().lazy(), coerce_filters(filters)).collect(), units)


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(
            f"{question} Refusing without confirmation (stdin is not a terminal). Hint: pass --yes.",
            code="NOT_CONFIRMED",
        )
    from rich.prompt import Confirm

    if not Confirm.ask(question, default=False):
        raise CliError("Cancelled: nothing was deleted.", code="NOT_CONFIRMED")


@metadata_app.command(name="delete")
def delete(
    keys: list[str] | None = None,
    /,
    *,
    all_features: AllFeaturesOpt = False,
    store: str | None = None,
    filter: FilterOpt = None,
    soft: Annotated[bool, cyclopts.Parameter(name="--soft", negative="--hard")] = True,
    with_feature_history: Annotated[bool, cyclopts.Parameter(negative="")] = False,
    yes: Annotated[bool, cyclopts.Parameter(name=["--yes", "-y"], negative="")] = False,
    dry_run: Annotated[bool, cyclopts.Parameter(negative="")] = False,
    format: FormatOpt = "plain",
) -> None:
    """Delete samples: soft by default (an appended marker hides them), ``--hard`` removes rows physically.

    Without --filter every sample of the selected features is deleted. Asks for confirmation
    unless --yes (and refuses when not on a terminal).

    Parameters
    ----------
    keys
        Feature keys (or use --all-features).
    all_features
        Every feature of the project.
    store
        Store to delete from (default: the configured default store).
    filter
        SQL filter selecting the samples to delete, e.g. ``"sid = 'a'"``; repeatable (AND-ed).
    soft
        ``--soft`` (default) appends deletion markers; ``--hard`` removes the rows.
    with_feature_history
        Also delete rows of older feature versions (default: the current version only).
    yes
        Do not ask for confirmation.
    dry_run
        Only count the rows that would be deleted.
    format
        ``plain`` or ``json``.
    """
    st = _store(store)
    selected = session.select(keys, all_features)
    mode = "soft" if soft else "hard"
    results: list[dict[str, Any]] = []
    with st.open("r"):
        counts = {key: _count_deletable(st, key, filter, soft, with_feature_history) for key in selected}
    if not dry_run:
        total = sum(counts.values())
        scope = f"matching {' AND '.join(filter)}" if filter else "ALL rows"
        _confirm(
            f"{mode.capitalize()}-delete {total} rows ({scope}) of {len(selected)} feature(s) in {st.display()}?", yes
        )
    with st.open("r" if dry_run else "w"), progress("delete", len(selected)) as advance, _quiet():
        for key in selected:
            n = counts[key]
            if not dry_run and n:
                n = st.delete(key, filter or None, soft=soft, with_feature_history=with_feature_history)
            results.append({"feature_key": key.to_string(), "rows": n})
            advance(description=key.to_string())
    data = {"mode": mode, "dry_run": dry_run, "features": results, "rows": sum(r["rows"] for r in results)}
    if format == "json":
        emit_json(data)
        return
    verb = "Would delete" if dry_run else "Deleted"
    print_table(f"{verb} ({mode})", ["feature", "rows"], [[r["feature_key"], r["rows"]] for r in results])


def _count_deletable(st: Any, key: Any, filters: list[str] | None, soft: bool, with_feature_history: bool) -> int:
    if not st.has_feature(key):
        return 0
    frame = st.read(
        key,
        filters=filters or None,
        with_feature_history=with_feature_history,
        with_sample_history=not soft,
        include_soft_deleted=not soft,
        allow_fallback=False,
    )
    return len(frame.select(frame.columns[:1]).collect())


@metadata_app.command(name="copy")
def copy(
    keys: list[str] | None = None,
    /,
    *,
    from_store: Annotated[str, cyclopts.Parameter(name="--from")],
    to_store: Annotated[str, cyclopts.Parameter(name="--to")],
    all_features: AllFeaturesOpt = False,
    filter: FilterOpt = None,
    global_filter: Annotated[list[str] | None, cyclopts.Parameter(consume_multiple=False, negative="")] = None,
    with_feature_history: bool = True,
    with_sample_history: Annotated[bool, cyclopts.Parameter(negative="")] = False,
    format: FormatOpt = "plain",
) -> None:
    """Copy features' metadata from one store to another, keeping versions and timestamps.

    Parameters
    ----------
    keys
        Feature keys (or use --all-features).
    from_store
        The configured store to copy from.
    to_store
        The configured store to copy to.
    all_features
        Every feature of the project.
    filter
        SQL filter on the copied rows of every selected feature; repeatable.
    global_filter
        SQL filter applied to every feature read; repeatable.
    with_feature_history
        Copy rows of every feature version (``--no-with-feature-history``: the current one only).
    with_sample_history
        Copy every row, not only the latest per sample.
    format
        ``plain`` or ``json``.
    """
    selected = session.select(keys, all_features)
    if from_store == to_store:
        raise CliError(
            f"--from and --to are both '{from_store}'. Hint: name two different stores.", code="CONFLICTING_FLAGS"
        )
    source, target = _store(from_store), _store(to_store)
    results = []
    with target.open("w"), progress("copy", len(selected)) as advance, _quiet():
        for key in selected:
            done = target.copy_metadata(
                source,
                [key],
                filters={key.to_string(): filter} if filter else None,
                global_filters=global_filter,
                with_feature_history=with_feature_history,
                with_sample_history=with_sample_history,
            )
            results.append({"feature_key": key.to_string(), "rows": done["rows_copied"]})
            advance(description=key.to_string())
    data = {
        "features_copied": sum(1 for r in results if r["rows"]),
        "rows_copied": sum(r["rows"] for r in results),
        "features": results,
    }
    if format == "json":
        emit_json(data)
        return
    print_table(
        f"Copied {data['rows_copied']} rows of {data['features_copied']} feature(s): "
        f"{source.display()} → {target.display()}",
        ["feature", "rows"],
        [[r["feature_key"], r["rows"]] for r in results],
    )


@metadata_app.command(name="rebase")
def rebase(
    feature: str,
    /,
    *,
    from_version: Annotated[str, cyclopts.Parameter(name="--from")],
    to_version: Annotated[str | None, cyclopts.Parameter(name="--to")] = None,
    store: str | None = None,
    dry_run: Annotated[bool, cyclopts.Parameter(negative="")] = False,
    format: FormatOpt = "plain",
) -> None:
    """Re-stamp a feature's stored rows of one feature version onto another, without recomputing them.

    Use it when a version change does not change the data (a refactor): the rows of ``--from``
    get provenance recomputed under the target version and are written as that version.

    Parameters
    ----------
    feature
        The feature key.
    from_version
        The stored feature version to rebase.
    to_version
        The target feature version (default: the current one; another one must have been pushed).
    store
        The store (default: the configured default store).
    dry_run
        Only count the rows that would be rebased.
    format
        ``plain`` or ``json``.
    """
    (key,) = session.select([feature], False)
    st = _store(store)
    target = to_version or session.graph().get_feature_version(key)
    steps = 2 if dry_run else 3  # read, re-stamp, write
    with st.open("r" if dry_run else "w"), progress("rebase", steps) as advance, _quiet():
        frame = st.read(key, feature_version=from_version, with_feature_history=True)
        rows = frame.collect()
        advance(description=f"rebase {key}: re-stamping {len(rows)} rows")
        if len(rows) == 0:
            raise CliError(
                f"Feature '{key}' has no stored rows of version '{from_version}' in {st.display()}. "
                "Hint: check the version with `mx describe features` or `mx history`.",
                code="NOTHING_TO_REBASE",
            )
        rebased = st.rebase(key, rows, to_feature_version=to_version)
        n = len(rebased)
        advance(description=f"rebase {key}: writing {n} rows")
        if not dry_run and n:
            st.write(key, rebased, preserve_feature_version=True)
            advance()
    data = {"feature_key": key.to_string(), "from": from_version, "to": target, "rows": n, "dry_run": dry_run}
    if format == "json":
        emit_json(data)
        return
    verb = "Would rebase" if dry_run else "Rebased"
    note(f"{verb} {n} rows of '{key}' from {from_version} to {target}.")


@metadata_app.command(name="vacuum")
def vacuum(
    keys: list[str] | None = None,
    /,
    *,
    all_features: AllFeaturesOpt = False,
    store: str | None = None,
    retention_hours: Annotated[float, cyclopts.Parameter(name="--retention-hours")] = 168,
    dry_run: Annotated[bool, cyclopts.Parameter(negative="")] = False,
    format: FormatOpt = "plain",
) -> None:
    """Delete files no committed version references (a killed writer's, those deletes replaced).

    Only stores with a maintenance capability (Delta, LanceDB) have such files; on any other
    store the command fails with one line. Files younger than --retention-hours are kept, so a
    writer still running elsewhere keeps its files: pass 0 only when no writer is running.

    Parameters
    ----------
    keys
        Feature keys (or use --all-features).
    all_features
        Every table of the store, system tables included.
    store
        Store to vacuum (default: the configured default store).
    retention_hours
        Keep unreferenced files younger than this many hours (default: 168, a week).
    dry_run
        Only list the files that would be deleted.
    format
        ``plain`` or ``json``.
    """
    from metaxy.errors import StoreCapabilityError

    selected = session.select(keys, all_features)
    st = _store(store, allow_fallback=False)
    if not st.capabilities.maintenance:
        raise StoreCapabilityError(
            f"{st.display()} has no maintenance operation (vacuum): its engine leaves no unreferenced files "
            "behind. Hint: vacuum a store that declares it (Delta, LanceDB)."
        )
    if retention_hours < 0:
        raise CliError(
            f"--retention-hours {retention_hours:g} is negative. Hint: pass 0 or more hours.", code="INVALID_VALUE"
        )
    targets: list[Any] = [None] if all_features else list(selected)
    results: list[dict[str, Any]] = []
    with st.open("r" if dry_run else "w"), progress("vacuum", len(targets)) as advance, _quiet():
        for key in targets:
            label = "(all tables)" if key is None else key.to_string()
            files = (
                []
                if key is not None and not st.has_feature(key)
                else st.vacuum(key, retention_hours=retention_hours, dry_run=dry_run)
            )
            results.append({"feature_key": label, "files": files})
            advance(description=label)
    data = {
        "dry_run": dry_run,
        "retention_hours": retention_hours,
        "files": sum(len(r["files"]) for r in results),
        "features": results,
    }
    if format == "json":
        emit_json(data)
        return
    verb = "Would delete" if dry_run else "Deleted"
    print_table(
        f"{verb} {data['files']} unreferenced file(s)",
        ["feature", "files"],
        [[r["feature_key"], len(r["files"])] for r in results],
    )
