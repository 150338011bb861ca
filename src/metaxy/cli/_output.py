"""How ``mx`` prints: tables and JSON on stdout, errors and notes on stderr, progress only on a terminal.

Everything user-controlled (keys, filter strings, error messages, cell values) is printed as
:class:`rich.text.Text`, never parsed as rich markup, so ``[stores.dev.config]`` or ``[/red]``
come out literally.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

__all__ = [
    "Format",
    "console",
    "emit_json",
    "error_console",
    "note",
    "print_table",
    "progress",
    "table",
]

Format = Literal["plain", "json"]


# The styles mx uses, by meaning; ``theme`` in metaxy.toml picks one set (MetaxyConfig.theme).
_STYLES = {"mx.error": "red", "mx.warning": "yellow", "mx.heading": "bold"}
THEMES: dict[str, Theme] = {
    "default": Theme(_STYLES),
    "plain": Theme(dict.fromkeys(_STYLES, "none")),
}


def _theme() -> Theme:
    from metaxy.config import MetaxyConfig
    from metaxy.errors import InvalidConfigError

    try:
        return THEMES.get(MetaxyConfig.current_or_default().theme, THEMES["default"])
    except InvalidConfigError:  # the configuration itself failed (e.g. METAXY_THEME): report that in colour
        return THEMES["default"]


def console() -> Console:
    """The stdout console: the terminal's width, 80 columns when piped (unless ``COLUMNS`` says otherwise)."""
    return Console(highlight=False, theme=_theme())


def error_console() -> Console:
    """The stderr console; ``soft_wrap`` keeps a message on one line whatever the width."""
    return Console(stderr=True, soft_wrap=True, highlight=False, theme=_theme())


def note(message: str, *, style: str | None = None) -> None:
    """One literal line on stderr (status messages, never data)."""
    error_console().print(Text(message, style=style or ""))


def emit_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (plain ``print``: no rich wrapping or colour)."""
    print(json.dumps(data, indent=2, default=str))


def _cell(value: Any) -> Text:
    if value is None or value == "":
        return Text("-")
    if isinstance(value, list | tuple):
        return Text(", ".join(str(v) for v in value) or "-")
    return Text(str(value))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A table whose cells are literal text; long cells fold so the table fits the console width."""
    t = Table(title=Text(title) if title else None, title_justify="left", expand=False)
    for col in columns:
        t.add_column(Text(col), overflow="fold")
    for row in rows:
        t.add_row(*(_cell(v) for v in row))
    return t


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print :func:`table` on stdout."""
    console().print(table(title, columns, rows))


@contextmanager
def progress(description: str, total: int | None, *, enabled: bool | None = None) -> Iterator[Any]:
    """A rich progress bar on stderr while the block runs, shown only when stderr is a terminal.

    Yields a callable ``advance(n=1, description=None)``. With ``enabled=False`` (``--no-progress``)
    or when piped, nothing is drawn.
    """
    err = Console(stderr=True)
    show = err.is_terminal if enabled is None else (enabled and err.is_terminal)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1, description: str | None = None) -> None:
            if description is None:
                bar.advance(task, n)
            else:
                bar.update(task, advance=n, description=description)

        yield advance


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
