"""Re-exports a test helper that pytest imports by bare name (rootdir sys.path insertion), for mypy."""

from tests.metadata_store.test_delta_store import (
    _big_feature as _big_feature,
)
from tests.metadata_store.test_delta_store import (
    _counter_feature as _counter_feature,
)
from tests.metadata_store.test_delta_store import (
    _endless_frame as _endless_frame,
)
