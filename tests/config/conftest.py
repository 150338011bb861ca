from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import metaxy.config._model as config_model
import metaxy.entrypoints as entrypoints
from metaxy.config import MetaxyConfig


@pytest.fixture(autouse=True)
def clean_config_state(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test starts with no METAXY_* variables, no global or context config, an empty CWD and
    no remembered entry points; whatever a test sets is undone afterwards."""
    for name in list(os.environ):
        if name.startswith("METAXY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    monkeypatch.setattr(entrypoints, "_loaded_modules", set())
    monkeypatch.setattr(entrypoints, "_loaded_entry_points", set())
    MetaxyConfig.reset()
    # Clear any context override (e.g. one installed by the suite-wide conftest).
    token = config_model._context_config.set(None)
    try:
        yield
    finally:
        config_model._context_config.reset(token)
        MetaxyConfig.reset()


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` to ``tmp_path / relative`` (creating folders) and return the path."""

    def write(relative: str, text: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write
