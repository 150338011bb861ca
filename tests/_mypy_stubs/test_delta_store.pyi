"""Lets mypy resolve `test_delta_store`, which pytest imports via rootdir sys.path insertion; the real module is tests/metadata_store/test_delta_store.py."""

from tests.metadata_store.test_delta_store import (
    _big_feature as _big_feature,
    _counter_feature as _counter_feature,
    _endless_frame as _endless_frame,
)
