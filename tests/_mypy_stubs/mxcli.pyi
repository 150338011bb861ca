"""Re-exports a test helper that pytest imports by bare name (rootdir sys.path insertion), for mypy."""

from tests.cli.mxcli import (
    MX as MX,
)
from tests.cli.mxcli import (
    WRITER as WRITER,
)
from tests.cli.mxcli import (
    Runner as Runner,
)
from tests.cli.mxcli import (
    assert_one_error_line as assert_one_error_line,
)
from tests.cli.mxcli import (
    clean_env as clean_env,
)
from tests.cli.mxcli import (
    mx as mx,
)
from tests.cli.mxcli import (
    project as project,
)
from tests.cli.mxcli import (
    run_mx as run_mx,
)
from tests.cli.mxcli import (
    stored as stored,
)
from tests.cli.mxcli import (
    write_rows as write_rows,
)
