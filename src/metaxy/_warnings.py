"""Warnings that name the caller's line, however deep inside metaxy they are raised."""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["warn_at_caller"]

# Not made absolute: frames of metaxy's modules carry the file names of the same import (so the same
# spelling of the path, e.g. ``tests/../src/metaxy/...`` when sys.path holds such an entry).
_PACKAGE = os.path.dirname(__file__) + os.sep
_TESTING = os.path.join(_PACKAGE, "testing") + os.sep  # the shipped test suites are metaxy's callers


def _internal(filename: str) -> bool:
    return filename.startswith(_PACKAGE) and not filename.startswith(_TESTING)


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` at the first frame outside metaxy's own modules (Python 3.12's
    ``skip_file_prefixes``, which 3.10 and 3.11 lack)."""
    frame = sys._getframe(1)
    level = 2  # 1 is this function, 2 its caller
    while frame.f_back is not None and _internal(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
