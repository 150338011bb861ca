"""Where a ClickHouse store connects: the connection string and its parameters, parsed once.

Accepted forms (the password is masked wherever the store is shown):

* ``clickhouse+http://user:pass@host:8123/db``, ``clickhouse+https://…:8443/db``, ``clickhouse://…``
  -- a ClickHouse server over HTTP(S) through ``clickhouse-connect``;
* ``clickhouse+native://user:pass@host:9000/db`` -- the published form naming the native TCP
  port. ``clickhouse-connect`` speaks HTTP only, so the store connects over HTTP to the same host,
  on port 8123 (8443 for the secure native port 9440) unless ``http_port`` is given;
* ``chdb:///abs/path`` (a directory) or ``chdb://:memory:`` -- the embedded ClickHouse engine
  (``chdb``) in this process; ``?database=name`` picks the database inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import SecretStr

from metaxy.errors import InvalidConfigError
from metaxy.metadata_store.base import MetadataStoreConfig

__all__ = ["ClickHouseMetadataStoreConfig", "Target", "parse_target"]

_SERVER_SCHEMES = {"clickhouse", "clickhouse+http", "clickhouse+https", "clickhouse+native", "clickhouses"}
_NATIVE_TO_HTTP = {9000: 8123, 9440: 8443}


class ClickHouseMetadataStoreConfig(MetadataStoreConfig):
    connection_string: SecretStr | None = None
    host: str | None = None
    port: int | None = None
    http_port: int | None = None
    user: str | None = None
    password: SecretStr | None = None
    database: str | None = None
    secure: bool | None = None
    table_prefix: str = ""
    connect_timeout: float = 10.0
    lock_timeout: float = 30.0  # the embedded engine: wait for another process's engine on the directory
    settings: dict[str, Any] = {}  # ClickHouse settings (the store keeps them as clickhouse_settings)


@dataclass(frozen=True)
class Target:
    """A parsed connection target. ``kind`` is ``"chdb"`` (``path`` set; ``":memory:"`` for an
    in-memory engine) or ``"server"`` (host, port over HTTP, credentials)."""

    kind: str
    database: str
    path: str | None = None
    host: str = "localhost"
    port: int = 8123
    secure: bool = False
    user: str = "default"
    password: SecretStr = field(default_factory=lambda: SecretStr(""))

    def display(self) -> str:
        if self.kind == "chdb":
            return f"chdb://{self.path if self.path != ':memory:' else ':memory:'} database={self.database}"
        scheme = "https" if self.secure else "http"
        return f"clickhouse+{scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


def _fail(message: str) -> InvalidConfigError:
    return InvalidConfigError(
        f"{message}. Hint: use 'clickhouse+http://user:password@host:8123/db', "
        "'clickhouse+native://user:password@host:9000/db', 'chdb:///absolute/dir' or 'chdb://:memory:'."
    )


def parse_target(
    connection_string: str | None,
    *,
    host: str | None = None,
    port: int | None = None,
    http_port: int | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
    secure: bool | None = None,
) -> Target:
    """The target of a connection string, with separately given parameters overriding its parts.

    Raises:
        InvalidConfigError: the string is not one of the accepted forms (the text of the error
            never contains the password).
    """
    if not connection_string:
        if not host:
            raise _fail("ClickHouseMetadataStore needs a connection_string or a host")
        return Target(
            kind="server",
            database=database or "default",
            host=host,
            port=http_port or _NATIVE_TO_HTTP.get(port or 8123, port or 8123),
            secure=bool(secure),
            user=user or "default",
            password=SecretStr(password or ""),
        )
    text = connection_string.strip()
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise _fail("The ClickHouse connection string has no scheme")
    if scheme == "chdb":
        raw, _, query = rest.partition("?")
        params = dict(parse_qsl(query))
        if raw in (":memory:", "", "/:memory:"):
            path = ":memory:"
        elif raw.startswith("/"):
            path = unquote(raw)
        else:
            raise _fail(f"The chdb path '{raw}' is not absolute")
        return Target(kind="chdb", path=path, database=database or params.get("database") or "default")
    if scheme not in _SERVER_SCHEMES:
        raise _fail(f"Unknown ClickHouse connection scheme '{scheme}'")
    try:
        parts = urlsplit(text)
        url_port = parts.port
    except ValueError as exc:
        raise _fail(f"The ClickHouse connection string is malformed ({type(exc).__name__})") from None
    params = dict(parse_qsl(parts.query))
    is_secure = scheme in ("clickhouse+https", "clickhouses") or params.get("secure", "").lower() in ("1", "true")
    if secure is not None:
        is_secure = secure
    if scheme == "clickhouse+native":
        default = 9440 if is_secure else 9000
        native = port or url_port or default
        resolved = http_port or _NATIVE_TO_HTTP.get(native, 8443 if is_secure else 8123)
    else:
        resolved = http_port or port or url_port or (8443 if is_secure else 8123)
    db = database or unquote(parts.path.lstrip("/")) or params.get("database") or "default"
    return Target(
        kind="server",
        database=db,
        host=host or parts.hostname or "localhost",
        port=resolved,
        secure=is_secure,
        user=user or unquote(parts.username or "") or "default",
        password=SecretStr(password if password is not None else unquote(parts.password or "")),
    )
