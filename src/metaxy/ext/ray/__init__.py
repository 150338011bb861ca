"""Ray integration: read a feature or an increment as a Ray Dataset, write a Dataset's rows back as
metadata from many workers, each block exactly once (see ``docs/scale.md``).

``import metaxy`` never imports this module (nor Ray); install the ``ray`` extra to use it.
"""

from __future__ import annotations

from ._commit import BlockReport
from ._datasink import MetaxyDatasink, WriteReport, write_metadata
from ._datasource import INCREMENT_COLUMN, MetaxyDatasource, read_feature, read_increment
from ._shipping import WorkerContext

__all__ = [
    "INCREMENT_COLUMN",
    "BlockReport",
    "MetaxyDatasink",
    "MetaxyDatasource",
    "WorkerContext",
    "WriteReport",
    "read_feature",
    "read_increment",
    "write_metadata",
]
