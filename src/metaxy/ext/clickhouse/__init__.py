"""``metaxy.ext.clickhouse``: the ClickHouse metadata store (a server through clickhouse-connect,
or the embedded engine through chdb). Drivers are imported when a store opens."""

from __future__ import annotations

from ._config import ClickHouseMetadataStoreConfig
from .store import ClickHouseMetadataStore

__all__ = ["ClickHouseMetadataStore", "ClickHouseMetadataStoreConfig"]
