"""The ``mx`` / ``metaxy`` command line (spec §7 plus ``plan``, ``explain`` and ``trace``).

Startup: load ``.env`` from the working directory, set the log level from ``METAXY_LOG_LEVEL``,
load the configuration (``--config-file`` or discovery), import the configured feature entry
points, then run the command. The commands live in one module per group (``features``,
``graph``, ``metadata``, ``snapshots``, ``inspect``, ``config``, ``demo``); this module wires them
together and owns the entry point, whose single error printer turns every failure into one red
line and an exit code (see :mod:`metaxy.cli._errors`).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import cyclopts

from . import config as config_cmds
from . import demo as demo_cmds
from . import errors as errors_cmds
from . import features as feature_cmds
from . import graph as graph_cmds
from . import inspect as inspect_cmds
from . import metadata as metadata_cmds
from . import snapshots as snapshot_cmds
from ._context import load_dotenv, session
from ._errors import EXIT_INTERRUPTED, EXIT_USAGE, one_line, report
from ._output import error_console

__all__ = ["app", "main"]

app = cyclopts.App(
    name="mx",
    help="metaxy: per-sample, per-field metadata versioning. Run `mx COMMAND --help` for a command's options.",
    help_format="md",
    result_action="return_value",
    version_flags=[],
)
app.command(feature_cmds.list_app)
app.command(feature_cmds.describe_app)
app.command(graph_cmds.graph_app)
app.command(graph_cmds.graph_diff_app)
app.command(metadata_cmds.metadata_app)
app.command(errors_cmds.errors_app)
app.command(config_cmds.config_app)
app.command(snapshot_cmds.push)
app.command(snapshot_cmds.history)
app.command(snapshot_cmds.lock)
app.command(inspect_cmds.plan)
app.command(inspect_cmds.explain)
app.command(inspect_cmds.trace)
app.command(demo_cmds.demo)


@app.command
def version() -> None:
    """Print the metaxy version."""
    from metaxy import __version__

    print(__version__)


@app.meta.default
def _startup(
    *tokens: Annotated[str, cyclopts.Parameter(show=False, allow_leading_hyphen=True)],
    config_file: Annotated[Path | None, cyclopts.Parameter(name="--config-file")] = None,
    project: Annotated[str | None, cyclopts.Parameter(name="--project")] = None,
    all_projects: Annotated[bool, cyclopts.Parameter(name="--all-projects", negative="")] = False,
    sync: Annotated[bool, cyclopts.Parameter(name="--sync", negative="")] = False,
    locked: Annotated[bool, cyclopts.Parameter(name="--locked", negative="")] = False,
) -> Any:
    """Load the configuration and the features, then run the command.

    Parameters
    ----------
    config_file
        The metaxy.toml (or pyproject.toml) to use instead of discovering one from the working directory.
    project
        Work on this project's features instead of the configured ``project``.
    all_projects
        Work on the features of every loaded project.
    sync
        Load external features' definitions from the default store before running the command.
    locked
        With --sync: a version mismatch of an external feature is an error, not a warning.
    """
    if not tokens:  # bare `mx`: the overview, without loading anything
        app.help_print([])
        return 0
    if tokens[0] in ("--help", "-h", "version") or tokens[-1] in ("--help", "-h"):
        return app(tokens)
    from metaxy.config import MetaxyConfig, init

    if project and all_projects:
        from ._errors import CliError

        raise CliError("--project and --all-projects are mutually exclusive. Hint: pass one.", code="CONFLICTING_FLAGS")
    config = MetaxyConfig.load(config_file) if config_file else None
    cfg = init(config)
    updates: dict[str, Any] = {}
    if project:
        updates["project"] = project
    if locked:
        updates["locked"] = True
    if updates:
        cfg = cfg.model_copy(update=updates)
        MetaxyConfig.set(cfg)
    session.config = cfg
    session.all_projects = all_projects
    session.project_override = project
    if sync:
        _sync_external(cfg)
    return app(tokens)


def _sync_external(cfg: Any) -> None:
    from metaxy.external_features import sync_external_features

    store = cfg.get_store()
    with store.open("r"):
        sync_external_features(store)  # --locked set config.locked: a mismatch is an error


def _setup_process() -> None:
    load_dotenv(Path.cwd() / ".env")
    level = os.environ.get("METAXY_LOG_LEVEL")
    if level:
        logging.basicConfig(level=level.upper(), stream=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``mx`` / ``metaxy``: run a command; any failure is one red line and an exit code."""
    args = list(argv if argv is not None else sys.argv[1:])
    code: int
    try:
        _setup_process()
        result = app.meta(args, exit_on_error=False, print_error=False)
        code = result if isinstance(result, int) else 0
    except cyclopts.CycloptsError as exc:
        error_console().print(_usage_text(exc))
        code = EXIT_USAGE
    except KeyboardInterrupt:
        error_console().print("Interrupted.", style="mx.error", markup=False)
        code = EXIT_INTERRUPTED
    except SystemExit:
        raise
    except Exception as exc:
        code = report(exc, args)
    sys.exit(code)


def _usage_text(exc: Exception) -> Any:
    from rich.text import Text

    return Text(f"Error: {one_line(str(exc))} Hint: see `mx --help` or `mx COMMAND --help`.", style="mx.error")


if __name__ == "__main__":
    main()
