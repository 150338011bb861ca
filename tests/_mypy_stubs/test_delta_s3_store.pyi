"""Re-exports a test helper that pytest imports by bare name (rootdir sys.path insertion), for mypy."""

from tests.metadata_store.test_delta_s3_store import _s3_keys as _s3_keys
