"""The demo's working directory: media, derived files, the DuckDB metadata store and a ``metaxy.toml``.

```
<workdir>/
    .metaxy-demo          marker: this directory holds a demo (``--reset`` may wipe it)
    metaxy.toml           store + entry point, so `mx metadata status --all-features` works here
    metadata.duckdb       the embedded metadata store (unless ``mx demo --store <url>``: PostgreSQL, ClickHouse)
    dagster/              the Dagster instance the three rounds ran in (DAGSTER_HOME for `dagster dev`)
    media/<channel>/<video_id>/{audio.wav,frames.png}
    out/<feature>/<feature_version>/<video_id>/<data_version>.json   (chunks: .../<data_version>/<n>.wav)
```
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metaxy.config import MetaxyConfig
from metaxy.errors import MetaxyError

__all__ = [
    "MAX_CLIPS",
    "MIN_CLIPS",
    "DemoError",
    "DemoWorkdirError",
    "ServerStore",
    "Workdir",
    "check_clips",
    "server_store",
]

_MARKER = ".metaxy-demo"
_OWNED = ("media", "out", "dagster", "metadata.duckdb", "metadata.duckdb.wal", "metaxy.toml", _MARKER)
STORE_NAME = "demo"
DUCKDB_STORE = "metaxy.ext.duckdb.DuckDBMetadataStore"
POSTGRESQL_STORE = "metaxy.ext.postgresql.PostgreSQLMetadataStore"
CLICKHOUSE_STORE = "metaxy.ext.clickhouse.ClickHouseMetadataStore"


@dataclass(frozen=True)
class ServerStore:
    """A store ``mx demo --store <url>`` can keep the metadata in instead of the DuckDB file."""

    name: str
    type: str
    schemes: tuple[str, ...]
    #: how ``mx`` run in the workdir gets the password, which ``metaxy.toml`` never holds
    password_env: str


SERVER_STORES = (
    ServerStore("PostgreSQL", POSTGRESQL_STORE, ("postgresql", "postgres"), "PGPASSWORD"),
    ServerStore(
        "ClickHouse",
        CLICKHOUSE_STORE,
        ("chdb", "clickhouse", "clickhouse+http", "clickhouse+https", "clickhouse+native", "clickhouses"),
        f"METAXY_STORES__{STORE_NAME.upper()}__CONFIG__PASSWORD",
    ),
)


def server_store(url: str) -> ServerStore | None:
    """The store a ``--store`` URL names, by its scheme (None: not one the demo runs on, e.g. an
    in-memory engine, whose metadata the printed ``mx`` commands could not read afterwards)."""
    scheme, _, rest = url.partition("://")
    if not rest or rest.startswith(":memory:"):
        return None
    return next((s for s in SERVER_STORES if scheme.lower() in s.schemes), None)


def has_password(url: str) -> bool:
    """The URL carries a password (in its user part, or as a ``password`` query parameter)."""
    return without_password(url) != url


MIN_CLIPS = 4
"""Fewest clips: round 2 deletes, re-renders audio and re-renders frames of three disjoint sets."""
MAX_CLIPS = 20_000


class DemoError(MetaxyError):
    """The demo cannot run with these arguments, or its self-check failed."""


class DemoWorkdirError(DemoError):
    """The demo's working directory cannot be used."""


def check_clips(clips: int) -> None:
    """Raises:
    DemoError: ``clips`` outside ``MIN_CLIPS..MAX_CLIPS``.
    """
    if not MIN_CLIPS <= clips <= MAX_CLIPS:
        raise DemoError(
            f"--clips must be between {MIN_CLIPS} and {MAX_CLIPS}, got {clips}. "
            "Hint: a few hundred clips run in well under a minute."
        )


@dataclass(frozen=True)
class Workdir:
    """Paths of a demo working directory (nothing is created until :meth:`prepare`)."""

    root: Path
    #: the URL of a :data:`SERVER_STORES` store (``postgresql://...``, ``chdb:///dir``, ...); None: the
    #: embedded DuckDB file.
    store_url: str | None = field(default=None, repr=False)

    @property
    def server(self) -> ServerStore | None:
        return None if self.store_url is None else server_store(self.store_url)

    @property
    def media(self) -> Path:
        return self.root / "media"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def database(self) -> Path:
        return self.root / "metadata.duckdb"

    @property
    def dagster_home(self) -> Path:
        """The persistent Dagster instance of the demo's runs: ``DAGSTER_HOME`` for ``dagster dev``."""
        return self.root / "dagster"

    @property
    def toml(self) -> Path:
        return self.root / "metaxy.toml"

    def holds_demo(self) -> bool:
        return (self.root / _MARKER).exists() or self.database.exists()

    def check(self, *, reset: bool = False) -> None:
        """Check, without changing anything, that :meth:`prepare` can use the directory.

        Raises:
            DemoWorkdirError: not a directory, not writable, or already holding a demo without ``reset``.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise DemoWorkdirError(
                f"Demo workdir '{root}' exists and is not a directory. Hint: pick another --workdir."
            )
        existing = next(p for p in (root, *root.parents) if p.exists())
        if not existing.is_dir():
            raise DemoWorkdirError(
                f"Cannot create demo workdir '{root}': '{existing}' is a file, not a directory. "
                "Hint: pick another --workdir."
            )
        if not os.access(existing, os.W_OK | os.X_OK):
            raise DemoWorkdirError(
                f"Cannot write to demo workdir '{root}' ('{existing}' is not writable). "
                "Hint: pick a writable --workdir."
            )
        if self.holds_demo() and not reset:
            raise DemoWorkdirError(
                f"Demo workdir '{root}' already holds a demo run. Hint: pass --reset to start over, "
                "or pick another --workdir."
            )

    def prepare(self, *, reset: bool = False) -> None:
        """Create the directory (or wipe a previous demo in it when ``reset``).

        Raises:
            DemoWorkdirError: see :meth:`check`, or creating the directory failed.
        """
        self.check(reset=reset)
        root = self.root
        if self.holds_demo():
            for name in _OWNED:  # only what the demo created; anything else in the directory stays
                path = root / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        try:
            root.mkdir(parents=True, exist_ok=True)
            (root / _MARKER).write_text("metaxy demo working directory\n")
        except OSError as exc:
            raise DemoWorkdirError(
                f"Cannot write to demo workdir '{root}': {exc.strerror or exc}. Hint: pick a writable --workdir."
            ) from exc

    def store_entry(self) -> dict[str, Any]:
        """The demo store's configuration: the server store of ``store_url``, or the DuckDB file."""
        if self.store_url is not None and self.server is not None:
            return {"type": self.server.type, "config": {"connection_string": self.store_url}}
        return {"type": DUCKDB_STORE, "config": {"database": str(self.database)}}

    def config(self) -> MetaxyConfig:
        """A configuration with one store, ``demo`` (see :meth:`store_entry`)."""
        return MetaxyConfig(
            project="multimodal",
            store=STORE_NAME,
            stores={STORE_NAME: self.store_entry()},
            auto_create_tables=True,
        )

    def _toml_store(self) -> str:
        if self.store_url is None or self.server is None:
            return f'type = "{DUCKDB_STORE}"\nconfig = {{ database = {json.dumps(str(self.database))} }}\n'
        # never the password: mx reads it from the environment (libpq also from ~/.pgpass)
        hint = (
            f"# the password is not written here: set {self.server.password_env} before running mx\n"
            if has_password(self.store_url)
            else ""
        )
        return (
            hint + f'type = "{self.server.type}"\n'
            f"config = {{ connection_string = {json.dumps(without_password(self.store_url))} }}\n"
        )

    def write_toml(self, audio_code_version: str) -> None:
        """Write ``metaxy.toml`` so ``mx`` commands run in this directory see the demo's features and store."""
        self.toml.write_text(
            "# Written by `mx demo`: the demo's store and features for `mx` commands run here.\n"
            'project = "multimodal"\n'
            f'store = "{STORE_NAME}"\n'
            'entrypoints = ["metaxy._demo.entrypoint"]\n\n'
            f"[stores.{STORE_NAME}]\n" + self._toml_store() + "\n"
            "[ext.demo]\n"
            f'audio_code_version = "{audio_code_version}"\n'
        )


def without_password(url: str) -> str:
    """``url`` with the password of its user part (``postgresql://user@host:port/db``) and any
    ``password`` query parameter removed."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    changed = parts.password is not None
    if changed:
        host = parts.hostname or ""
        netloc = (parts.username or "") + "@" + (f"[{host}]" if ":" in host else host)
        parts = parts._replace(netloc=netloc + (f":{port}" if port else ""))
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k.lower() != "password"]
    if len(kept) != len(query):
        parts, changed = parts._replace(query=urlencode(kept)), True
    return urlunsplit(parts) if changed else url  # untouched: urlunsplit would drop an empty host
