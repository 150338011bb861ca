"""docs/differences.md lists what still differs, and nothing else: every CLI command of the published
reference that it does not name exists, and every module it names as missing is really missing."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from metaxy.cli.app import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "differences.md"
# the published CLI reference: command -> subcommands
PUBLISHED_CLI = {
    "shell": [],
    "config": ["print"],
    "list": ["features", "stores"],
    "describe": ["graph", "features"],
    "graph": ["render"],
    "graph-diff": ["render"],
    "history": [],
    "metadata": ["status", "delete", "rebase", "copy"],
    "push": [],
    "lock": [],
    "mcp": [],
}


def _not_included() -> str:
    text = DOC.read_text()
    return text[text.index("## Not (yet) included") :]


def _named_commands(section: str) -> set[str]:
    sentence = section[section.index("CLI commands") :].split(" are not part", 1)[0]
    return set(re.findall(r"`([a-z-]+)`", sentence))


def test_the_missing_cli_commands_are_exactly_the_ones_the_doc_names() -> None:
    named = _named_commands(_not_included())
    ours = {name for name in app if not name.startswith("-")}
    missing = {cmd for cmd in PUBLISHED_CLI if cmd not in ours}
    assert missing == named
    for cmd, subs in PUBLISHED_CLI.items():
        if cmd in ours and subs:
            assert set(subs) <= {name for name in app[cmd] if not name.startswith("-")}, cmd


@pytest.mark.parametrize("module", re.findall(r"`(metaxy\.ext\.[a-z.|]+)`", _not_included()))
def test_every_module_named_missing_is_missing(module: str) -> None:
    stem, _, alternatives = module.rpartition(".")
    for name in alternatives.split("|"):
        assert importlib.util.find_spec(f"{stem}.{name}") is None, f"{stem}.{name} exists: update docs/differences.md"
