"""Re-exports a test helper that pytest imports by bare name (rootdir sys.path insertion), for mypy."""

from tests.ext.dagster.mxd_helpers import (
    defs_assets as defs_assets,
)
from tests.ext.dagster.mxd_helpers import (
    event_types as event_types,
)
from tests.ext.dagster.mxd_helpers import (
    failure_text as failure_text,
)
from tests.ext.dagster.mxd_helpers import (
    latest_metadata as latest_metadata,
)
from tests.ext.dagster.mxd_helpers import (
    latest_tags as latest_tags,
)
from tests.ext.dagster.mxd_helpers import (
    materializations as materializations,
)
from tests.ext.dagster.mxd_helpers import (
    observations as observations,
)
from tests.ext.dagster.mxd_helpers import (
    root_rows as root_rows,
)
from tests.ext.dagster.mxd_helpers import (
    step_error as step_error,
)
from tests.ext.dagster.mxd_helpers import (
    step_order as step_order,
)
from tests.ext.dagster.mxd_helpers import (
    store_config as store_config,
)
from tests.ext.dagster.mxd_helpers import (
    values as values,
)
