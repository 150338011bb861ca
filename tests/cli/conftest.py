"""Fixtures of the CLI tests (the helpers live in ``mxcli.py``)."""

from __future__ import annotations

from mxcli import mx, project, stored

__all__ = ["mx", "project", "stored"]
