"""Re-exports a test helper that pytest imports by bare name (rootdir sys.path insertion), for mypy."""

from tests.conformance.test_lancedb import _KnownGaps as _KnownGaps
