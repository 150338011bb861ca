"""The metadata-store conformance suite: one set of behaviour tests every backend must pass.

A backend's test module subclasses :class:`MetadataStoreConformance` and overrides the
``store_factory`` fixture; pytest then collects every inherited test::

    import pytest
    from metaxy.testing import MetadataStoreConformance

    class TestMyStore(MetadataStoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path):
            counter = iter(range(1_000_000))

            def make(**kwargs):
                return MyStore(path=tmp_path / f"store-{next(counter)}", auto_create_tables=True, **kwargs)

            return make

The suite talks to stores through the public ``MetadataStore`` API only. Where a backend cannot
do something it must say so through a capability attribute (``supported_hash_algorithms``,
``supports_map_datatype``) and raise the explicit error (``HashAlgorithmNotSupportedError`` on
open, ``StoreCapabilityError``); the suite asserts that error instead of skipping.

Groups (each a mixin importable on its own): lifecycle (§5.1), read (§5.2), write (§5.3),
bad input rejected before writing, resolve_update (§3, §5.4), lineage and upstream
preparation (§3.8-§3.9, §9), deletes / drop / copy (§5.5), system tables (§5.8), trust (no acknowledged write lost,
a typed error for every mistake: docs/reliability.md), error quarantine and early cutoff (issue 22).
"""

from __future__ import annotations

from metaxy.testing.conformance_delete import DeleteConformance
from metaxy.testing.conformance_failures import EarlyCutoffConformance, QuarantineConformance
from metaxy.testing.conformance_lifecycle import LifecycleConformance
from metaxy.testing.conformance_lineage import LineageConformance
from metaxy.testing.conformance_read import ReadConformance
from metaxy.testing.conformance_resolve import ResolveConformance
from metaxy.testing.conformance_support import ConformanceBase, StoreFactory
from metaxy.testing.conformance_system import SystemTablesConformance
from metaxy.testing.conformance_trust import TrustConformance
from metaxy.testing.conformance_validation import ValidationConformance
from metaxy.testing.conformance_write import WriteConformance

__all__ = [
    "ConformanceBase",
    "DeleteConformance",
    "EarlyCutoffConformance",
    "LifecycleConformance",
    "LineageConformance",
    "MetadataStoreConformance",
    "QuarantineConformance",
    "ReadConformance",
    "ResolveConformance",
    "StoreFactory",
    "SystemTablesConformance",
    "TrustConformance",
    "ValidationConformance",
    "WriteConformance",
]


class MetadataStoreConformance(
    LifecycleConformance,
    ReadConformance,
    WriteConformance,
    ValidationConformance,
    ResolveConformance,
    LineageConformance,
    DeleteConformance,
    SystemTablesConformance,
    TrustConformance,
    QuarantineConformance,
    EarlyCutoffConformance,
):
    """Every conformance test; subclass it and override the ``store_factory`` fixture."""
