"""Testing helpers for metaxy users and backend authors.

:class:`MetadataStoreConformance` is the shared behaviour suite every ``MetadataStore`` backend
must pass (subclass it in a pytest module and override the ``store_factory`` fixture). It needs
``pytest`` (and ``pandas`` for one input-format test), which are not runtime dependencies of
metaxy: import this package from tests only.
"""

from __future__ import annotations

import pytest

# Plain ``assert`` statements in the suite get pytest's detailed failure messages.
pytest.register_assert_rewrite(
    "metaxy.testing.conformance",
    "metaxy.testing.conformance_delete",
    "metaxy.testing.conformance_lifecycle",
    "metaxy.testing.conformance_lineage",
    "metaxy.testing.conformance_read",
    "metaxy.testing.conformance_resolve",
    "metaxy.testing.conformance_support",
    "metaxy.testing.conformance_system",
    "metaxy.testing.conformance_trust",
    "metaxy.testing.conformance_validation",
    "metaxy.testing.conformance_write",
    "metaxy.testing.golden",
)

from metaxy.testing.conformance import MetadataStoreConformance  # noqa: E402
from metaxy.testing.conformance_support import StoreFactory  # noqa: E402
from metaxy.testing.conformance_trust import TrustConformance  # noqa: E402

__all__ = ["MetadataStoreConformance", "StoreFactory", "TrustConformance"]
