"""Re-exports a test helper that pytest imports by bare name (rootdir sys.path insertion), for mypy."""

from tests.versioning.oracle import (
    DV as DV,
)
from tests.versioning.oracle import (
    DVBF as DVBF,
)
from tests.versioning.oracle import (
    PBF as PBF,
)
from tests.versioning.oracle import (
    PROV as PROV,
)
from tests.versioning.oracle import (
    VERSIONING as VERSIONING,
)
from tests.versioning.oracle import (
    OracleFeatureNotFound as OracleFeatureNotFound,
)
from tests.versioning.oracle import (
    OracleStore as OracleStore,
)
from tests.versioning.oracle import (
    Row as Row,
)
from tests.versioning.oracle import (
    resolve as resolve,
)
