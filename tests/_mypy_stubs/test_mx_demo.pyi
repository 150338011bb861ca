"""Re-exports a test helper that pytest imports by bare name (rootdir sys.path insertion), for mypy."""

from tests.examples.test_mx_demo import SEED as SEED
from tests.examples.test_mx_demo import N as N
from tests.examples.test_mx_demo import Run as Run
from tests.examples.test_mx_demo import _mx as _mx
from tests.examples.test_mx_demo import run_demo_cli as run_demo_cli
from tests.examples.test_mx_demo import (
    test_demo_succeeds_and_every_check_passes as test_demo_succeeds_and_every_check_passes,
)
from tests.examples.test_mx_demo import (
    test_files_carry_feature_and_data_versions as test_files_carry_feature_and_data_versions,
)
from tests.examples.test_mx_demo import (
    test_json_report_matches_the_printed_tables as test_json_report_matches_the_printed_tables,
)
from tests.examples.test_mx_demo import (
    test_printed_changes_follow_the_mutation_fractions as test_printed_changes_follow_the_mutation_fractions,
)
from tests.examples.test_mx_demo import test_printed_counts_per_round as test_printed_counts_per_round
