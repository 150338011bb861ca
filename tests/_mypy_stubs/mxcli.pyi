"""Lets mypy resolve `mxcli`, which pytest imports via rootdir sys.path insertion; the real module is tests/cli/mxcli.py."""

from tests.cli.mxcli import (
    MX as MX,
    Runner as Runner,
    WRITER as WRITER,
    assert_one_error_line as assert_one_error_line,
    clean_env as clean_env,
    mx as mx,
    project as project,
    run_mx as run_mx,
    stored as stored,
    write_rows as write_rows,
)
