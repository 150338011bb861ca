"""The SQL layer shared by SQL backends: statements built as sqlglot expression trees and
rendered per dialect.

* :mod:`metaxy.sql.dialects` -- :class:`SqlDialect` and the DuckDB, PostgreSQL and ClickHouse
  dialects (the few pieces of SQL that differ between engines),
* :mod:`metaxy.sql.statements` -- the read pipeline (latest row per id, filters), hard deletes
  and DDL,
* :mod:`metaxy.versioning.sql_executor` -- the resolve statement.

Importing this package imports sqlglot only (no database driver). See docs/sql.md.
"""

from __future__ import annotations

from .dialects import ClickHouseDialect, DuckDBDialect, PostgresDialect, SqlDialect, dialect_for
from .statements import SqlSource

__all__ = ["ClickHouseDialect", "DuckDBDialect", "PostgresDialect", "SqlDialect", "SqlSource", "dialect_for"]
