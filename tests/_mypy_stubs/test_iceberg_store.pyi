"""Re-exports a test helper that pytest imports by bare name (rootdir sys.path insertion), for mypy."""

from tests.metadata_store.test_iceberg_store import kill_a_writer_mid_stream as kill_a_writer_mid_stream
from tests.metadata_store.test_iceberg_store import run_concurrent_writers as run_concurrent_writers
from tests.metadata_store.test_iceberg_store import small_data_files as small_data_files
