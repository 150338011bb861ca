"""Lets mypy resolve `mxd_helpers`, which pytest imports via rootdir sys.path insertion; the real module is tests/ext/dagster/mxd_helpers.py."""

from tests.ext.dagster.mxd_helpers import (
    event_types as event_types,
    latest_metadata as latest_metadata,
    latest_tags as latest_tags,
    materializations as materializations,
    observations as observations,
    root_rows as root_rows,
    step_error as step_error,
    step_order as step_order,
    store_config as store_config,
    values as values,
)
