"""Lets mypy resolve `oracle`, which pytest imports via rootdir sys.path insertion; the real module is tests/versioning/oracle.py."""

from tests.versioning.oracle import (
    DV as DV,
    DVBF as DVBF,
    OracleFeatureNotFound as OracleFeatureNotFound,
    OracleStore as OracleStore,
    PBF as PBF,
    PROV as PROV,
    Row as Row,
    VERSIONING as VERSIONING,
    resolve as resolve,
)
