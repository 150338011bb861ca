"""``mx demo``: the multimodal demo end to end."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import cyclopts

from ._errors import CliError
from ._output import console

__all__ = ["demo"]


def demo(
    *,
    workdir: Path | None = None,
    clips: int = 300,
    seed: int = 0,
    reset: bool = False,
    store: str | None = None,
    json_path: Annotated[Path | None, cyclopts.Parameter(name="--json")] = None,
    ray: bool = False,
) -> None:
    """Run the multimodal demo end to end: generate clips, materialize, change data and code, re-materialize.

    Parameters
    ----------
    workdir
        Where media, derived files and the DuckDB store go (default: a new temporary directory).
    clips
        How many clips to generate (4 to 20000).
    seed
        Random seed of the generated clips and of the changes.
    reset
        Wipe a previous demo in ``workdir`` (and in the ``--store`` database) first.
    store
        Keep the metadata in this database instead of the embedded DuckDB file:
        ``postgresql://user:password@host:port/db`` (PostgreSQL), ``chdb:///abs/dir`` (the embedded
        ClickHouse engine) or ``clickhouse+http://user:password@host:8123/db`` (a ClickHouse server).
        The password is never printed.
    json_path
        Also write the per-round counts as JSON to this file.
    ray
        Run the per-clip computations as Ray tasks on a local Ray cluster and write their metadata
        back through the Ray datasink (needs the ``ray`` extra).
    """
    from rich.console import Console

    from metaxy._demo.workdir import Workdir, check_clips, server_store

    check_clips(clips)  # bad input fails before the slow imports
    if store is not None and server_store(store) is None:
        raise CliError(
            "mx demo --store takes a PostgreSQL or ClickHouse URL. Hint: --store "
            "postgresql://user:password@host:5432/dbname, chdb:///absolute/dir or "
            "clickhouse+http://user:password@host:8123/dbname (or leave it out for the embedded DuckDB store).",
            code="INVALID_ARGUMENT",
        )
    if workdir is not None:
        Workdir(workdir.expanduser().resolve()).check(reset=reset)
    try:  # the demo needs the `demo` extra; `import metaxy` and the other commands do not
        from metaxy._demo.runner import run_demo
    except ImportError as exc:
        raise CliError(
            f"mx demo needs Dagster and numpy ({exc.name} is not installed). Hint: pip install 'metaxy[demo]'.",
            code="MISSING_EXTRA",
        ) from exc

    root = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="metaxy-demo-"))
    out = Console(soft_wrap=True)
    if not out.is_terminal:  # piped or captured: wide enough for the tables, whatever COLUMNS says
        out = Console(soft_wrap=True, width=max(console().width, 110))
    if ray:
        try:
            import ray as _ray  # noqa: F401
        except ImportError as exc:
            raise CliError(
                "mx demo --ray needs Ray (not installed). Hint: pip install 'metaxy[ray]'.", code="MISSING_EXTRA"
            ) from exc
    report = run_demo(root, clips=clips, seed=seed, reset=reset, console=out, store_url=store, ray=ray)
    if json_path is not None:
        json_path.write_text(report.to_json())
    if not report.ok:
        raise CliError("The demo's self-check failed: see the red marks above.", code="DEMO_FAILED")
