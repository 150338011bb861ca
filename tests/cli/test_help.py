"""Every command and option has help; bare ``mx`` shows the overview."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mxcli import run_mx

from metaxy.cli.app import app


def _commands(parent: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name in parent:
        if name.startswith("-"):  # --help / -h
            continue
        sub = parent[name]
        names = [n for n in sub if not n.startswith("-")]
        if names:
            yield from _commands(sub, (*path, name))
        else:
            yield (*path, name), sub


COMMANDS = sorted(_commands(app), key=lambda item: item[0])


def test_the_published_command_set_is_there() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {
        "list features",
        "list stores",
        "describe features",
        "describe graph",
        "graph render",
        "graph-diff render",
        "metadata status",
        "metadata delete",
        "metadata copy",
        "metadata rebase",
        "metadata vacuum",
        "push",
        "history",
        "config print",
        "plan",
        "explain",
        "trace",
    } <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_has_a_description(path: tuple[str, ...], command: Any) -> None:
    assert command.help, f"mx {' '.join(path)} has no description"
    missing = [
        arg.name
        for arg in command.assemble_argument_collection(parse_docstring=True)
        if arg.show and not (arg.parameter.help or "").strip()
    ]
    assert missing == [], f"mx {' '.join(path)}: options without help: {missing}"


def test_global_options_have_descriptions() -> None:
    shown = [arg for arg in app.meta.assemble_argument_collection(parse_docstring=True) if arg.show]
    assert {arg.name for arg in shown} >= {"--config-file", "--project", "--all-projects", "--sync", "--locked"}
    assert [arg.name for arg in shown if not (arg.parameter.help or "").strip()] == []


def test_bare_mx_and_help_in_a_subprocess(project: Path) -> None:
    bare = run_mx(project)
    assert bare.returncode == 0 and "Usage: mx COMMAND" in bare.stdout and "plan" in bare.stdout
    assert "--all-projects" in bare.stdout and "Work on the features of every loaded project" in bare.stdout
    plan = run_mx(project, "plan", "--help")
    assert plan.returncode == 0 and "Exit with code 1 when the run would recompute anything" in plan.stdout
    # help never needs a working configuration
    (project / "metaxy.toml").write_text("broken = [")
    assert run_mx(project, "metadata", "delete", "--help").returncode == 0
