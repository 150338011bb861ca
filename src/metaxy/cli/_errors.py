"""The one error printer of ``mx``: every failure is one red line on stderr and an exit code.

Exit codes (documented in docs/cli.md):

* ``0`` success;
* ``1`` an error: bad input, a metaxy error, a failed ``--assert-in-sync`` / ``plan --assert-in-sync``
  check, a declined confirmation;
* ``2`` the command line itself could not be parsed (unknown command or option, missing or
  malformed value);
* ``3`` an unexpected internal error (a bug): still one line, the traceback only with
  ``METAXY_TRACEBACK=1``;
* ``130`` interrupted (Ctrl-C).

With ``--format json`` the error is also written to stdout as ``{"error": CODE, "message": ...}``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.text import Text

from metaxy.errors import MetaxyError

from ._output import error_console

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "one_line",
    "report",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class CliError(MetaxyError):
    """A command-line mistake (conflicting or missing flags, an unconfirmed delete ...).

    ``code`` is the stable identifier JSON consumers see (``CONFLICTING_FLAGS``,
    ``MISSING_REQUIRED_FLAG``, ``INVALID_FEATURE_KEY``, ``NO_FEATURES`` ...).
    """

    def __init__(self, message: str, *, code: str = "CLI_ERROR", **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


# Errors from user input that are not MetaxyErrors: printed as one line like ours.
_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, OSError, TypeError)


def one_line(message: str) -> str:
    """A message folded onto one line (pydantic and driver messages span several)."""
    parts = [p.strip() for p in str(message).splitlines()]
    return "; ".join(p for p in parts if p)


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and not isinstance(exc, MetaxyError) and exc.args:
        return str(exc.args[0])
    text = str(exc)
    return text if text else type(exc).__name__


def _pydantic_message(exc: Any) -> str:
    """A pydantic ValidationError named by its settings, without echoing input values (secrets)."""
    title = getattr(exc, "title", "value")
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or title
        problems.append(f"{loc}: {err.get('msg', 'invalid')}")
    return f"Invalid {title}: " + "; ".join(problems) + ". Hint: fix the named setting(s)."


def classify(exc: BaseException) -> tuple[str, str, int]:
    """``(code, message, exit code)`` for an exception raised while running a command."""
    try:
        import pydantic
    except ImportError:  # pragma: no cover - pydantic is a core dependency
        pydantic = None  # type: ignore[assignment]
    if isinstance(exc, CliError):
        return exc.code, one_line(_message(exc)), EXIT_ERROR
    if isinstance(exc, MetaxyError):
        return type(exc).__name__, one_line(_message(exc)), EXIT_ERROR
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        return "VALIDATION_ERROR", one_line(_pydantic_message(exc)), EXIT_ERROR
    if isinstance(exc, _USER_ERRORS):
        return type(exc).__name__, one_line(_message(exc)), EXIT_ERROR
    message = (
        f"Internal error ({type(exc).__name__}): {_message(exc)}. "
        "Hint: this is a bug in metaxy; rerun with METAXY_TRACEBACK=1 and report the traceback."
    )
    return "INTERNAL_ERROR", one_line(message), EXIT_INTERNAL


def wants_json(argv: Sequence[str]) -> bool:
    """Whether the command line asks for JSON output (``-f json``, ``--format json``, ``--format=json``)."""
    for i, token in enumerate(argv):
        if token in ("-f", "--format") and i + 1 < len(argv) and argv[i + 1] == "json":
            return True
        if token in ("--format=json", "-f=json"):
            return True
    return False


def report(exc: BaseException, argv: Sequence[str]) -> int:
    """Print ``exc`` as one red line (and a JSON object on stdout in JSON mode); return the exit code."""
    code, message, exit_code = classify(exc)
    if exit_code == EXIT_INTERNAL and os.environ.get("METAXY_TRACEBACK"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    error_console().print(Text(f"Error: {message}", style="mx.error"))
    if wants_json(argv):
        details = getattr(exc, "details", {}) if isinstance(exc, CliError) else {}
        print(json.dumps({"error": code, "message": message, **details}, default=str))
    return exit_code
