"""``mx push``, ``mx history`` and ``mx lock``: record and list graph snapshots, pin other projects' features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import cyclopts

from ._context import session
from ._errors import CliError
from ._output import Format, emit_json, note, print_table

__all__ = ["history", "lock", "push"]


def push(
    *,
    store: str | None = None,
    tags: Annotated[dict[str, str] | None, cyclopts.Parameter(name="--tags")] = None,
) -> None:
    """Record the project's feature definitions in the store's system tables (idempotent).

    Prints what happened on stderr and the project version on stdout.

    Parameters
    ----------
    store
        The store to push to (default: the configured default store).
    tags
        Tags recorded with the snapshot, as ``--tags.KEY VALUE`` (repeatable; ``metaxy`` is reserved).
    """
    from metaxy.metadata_store import SystemTableStorage

    if session.all_projects or session.project_override:
        raise CliError(
            "mx push records the configured project; --project and --all-projects are not allowed. "
            "Hint: set `project` in metaxy.toml.",
            code="CONFLICTING_FLAGS",
        )
    if tags and "metaxy" in tags:
        raise CliError("The 'metaxy' tag is reserved. Hint: pick another tag name.", code="INVALID_VALUE")
    session.project_features()  # a project without features is an error, not an empty snapshot
    st = session.store(store)
    with st.open("w"):
        result = SystemTableStorage(st).push_graph_snapshot(tags=dict(tags) if tags else None)
    if result.already_pushed and not result.updated_features:
        note("Snapshot already recorded.")
    elif result.updated_features:
        note(f"Updated feature information: {', '.join(result.updated_features)}")
    else:
        note("Recorded feature graph snapshot.")
    print(result.project_version)


def lock(
    *,
    store: str | None = None,
    output: Annotated[Path | None, cyclopts.Parameter(name=["--output", "-o"])] = None,
) -> None:
    """Pin the features this project uses from other projects in ``metaxy.lock``.

    Resolves them (transitively) from the latest definitions other projects pushed to the store;
    the file is rewritten only when its content changes. Prints what was added, updated and removed.

    Parameters
    ----------
    store
        The store holding the other projects' pushed definitions (default: the configured default store).
    output
        Where to write (default: the configured ``metaxy_lock_path``, ``metaxy.lock`` beside metaxy.toml).
    """
    from metaxy.external_features import write_lock_file

    if session.all_projects:
        raise CliError(
            "mx lock pins other projects' features for one project; --all-projects is not allowed. "
            "Hint: pass --project NAME or set `project` in metaxy.toml.",
            code="CONFLICTING_FLAGS",
        )
    st = session.store(store)
    with st.open("r"):
        result = write_lock_file(st, config=session.cfg, path=output)
    for key in result.added:
        note(f"added {key}")
    for key, metadata_only in result.updated:
        note(f"updated {key}" + (" (definition only, same version)" if metadata_only else ""))
    for key in result.removed:
        note(f"removed {key}")
    if not result.changed:
        note(f"{result.path} is up to date.")
    print(result.path)


def history(
    *,
    store: str | None = None,
    limit: int = 20,
    format: Annotated[Format, cyclopts.Parameter(name=["--format", "-f"])] = "plain",
) -> None:
    """List pushed graph snapshots, newest first.

    Parameters
    ----------
    store
        The store to read (default: the configured default store).
    limit
        Show at most this many snapshots.
    format
        ``plain`` or ``json`` (``{"snapshots": [...]}``).
    """
    from metaxy.metadata_store import SystemTableStorage

    if limit < 1:
        raise CliError(f"--limit must be at least 1, got {limit}. Hint: pass a positive number.", code="INVALID_VALUE")
    st = session.store(store)
    project = None if session.all_projects else session.cfg.project
    with st.open("r"):
        frame = SystemTableStorage(st).read_graph_snapshots(project=project).head(limit)
    rows = [
        {
            "project": r["project"],
            "project_version": r["metaxy_project_version"],
            "recorded_at": r["recorded_at"].isoformat() if r["recorded_at"] else None,
            "feature_count": r["feature_count"],
        }
        for r in frame.iter_rows(named=True)
    ]
    if format == "json":
        emit_json({"snapshots": rows})
        return
    print_table(
        "History",
        ["project", "project version", "recorded at (UTC)", "features"],
        [[r["project"], r["project_version"], _short_ts(r["recorded_at"]), r["feature_count"]] for r in rows],
    )


def _short_ts(value: str | None) -> str | None:
    return None if value is None else value[:19].replace("T", " ")
