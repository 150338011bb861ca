"""Process-wide DuckDB instances for database files: opening a store attaches its file, closing
detaches it.

``duckdb.connect(file)`` creates a whole DuckDB instance, ~12 ms of which go to registering the
function catalog, and closing it tears that down again (~4 ms). A pipeline process opens its store
many times (a Dagster run opens it once per step), so this module keeps one in-memory *host*
instance per database file, created with the file's settings (``temp_directory`` beside the file,
as DuckDB would choose), and only ``ATTACH``es the file while a store has it open (< 1 ms).

The file is locked exactly as long as with ``connect``/``close``: ``DETACH`` releases the lock and
checkpoints the WAL into the file. Several stores open on one file share one attachment (each gets
its own cursor); idle hosts are kept, least recently used first out, up to :data:`MAX_IDLE_HOSTS`.
Idle hosts are closed before a fork, and a forked child starts with none: no DuckDB instance is
used on both sides of a fork.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metaxy.errors import BackendError, StoreBusyError

if TYPE_CHECKING:
    import duckdb

__all__ = ["MAX_IDLE_HOSTS", "WriteGate", "acquire", "gate", "release", "reset"]

#: Idle host instances (no store open on their file) kept for reuse; ~15 MiB of RSS each.
MAX_IDLE_HOSTS = 4

#: Names an attached file cannot take: the host's own catalogs.
_RESERVED_ALIASES = frozenset({"memory", "system", "temp", "main"})

#: Settings that belong to the ``ATTACH`` of the file rather than to the host instance.
_ATTACH_ACCESS_MODE = "access_mode"


class WriteGate:
    """What the stores writing one database in this process share.

    ``lock`` serialises their writes (DuckDB lets one transaction at a time change the catalog;
    concurrent writers would otherwise fail with write-write conflicts). ``epoch`` counts schema
    changes (create / alter / drop), so a store's cached catalog knows when another store on the
    same file changed it.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None  # thread ident of the writer holding the lock
        self.epoch = 0


@dataclass
class _Host:
    path: str
    conn: duckdb.DuckDBPyConnection  # owns the in-memory instance
    settings: tuple[tuple[str, str], ...]
    attach_sql: str
    alias: str
    users: int = 0  # open stores; the file is attached exactly while this is > 0
    gate: WriteGate = field(default_factory=WriteGate)


class _Hosts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: OrderedDict[str, _Host] = OrderedDict()
        # id(cursor) -> (host, cursor) of open stores; holding the cursor keeps its id unique
        self._leases: dict[int, tuple[_Host, Any]] = {}
        self._inherited: list[_Host] = []  # a forked child's copies of its parent's open hosts

    # --- fork safety: no idle instance crosses a fork; a child never touches its parent's ---------
    def _before_fork(self) -> None:
        self._lock.acquire()
        for path in [p for p, h in self._hosts.items() if h.users == 0]:
            with contextlib.suppress(Exception):  # a fork must not fail over a cache
                self._hosts.pop(path).conn.close()

    def _after_fork_in_parent(self) -> None:
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        # Hosts still in use belong to the parent's open stores: keep them referenced (their
        # destructor would stop threads that do not exist here) and never use them.
        self._inherited.extend(self._hosts.values())
        self._hosts = OrderedDict()
        self._leases = {}
        self._lock = threading.Lock()

    def acquire(self, database: str, config: Mapping[str, Any], *, lock_timeout: float) -> duckdb.DuckDBPyConnection:
        import duckdb

        path = os.path.realpath(database)
        settings = tuple(sorted((str(k), repr(v)) for k, v in config.items()))
        deadline = time.monotonic() + lock_timeout
        delay = 0.01
        locked: Exception | None = None
        while True:
            with self._lock:
                host = self._host(path, config, settings)
                first = host.users == 0
                try:
                    if first:
                        host.conn.execute(host.attach_sql)
                except duckdb.IOException as exc:
                    if "lock" not in str(exc).lower():
                        raise BackendError(f"Cannot open DuckDB database '{database}': {exc}") from exc
                    locked = exc
                except duckdb.Error as exc:
                    raise BackendError(f"Cannot open DuckDB database '{database}': {exc}") from exc
                else:
                    try:
                        cursor = host.conn.cursor()
                        cursor.execute(f"USE {_quote(host.alias)}")
                    except BaseException:
                        if first:  # never leave the file attached (and locked) with no store open
                            host.conn.execute(f"DETACH {_quote(host.alias)}")
                        raise
                    host.users += 1
                    self._leases[id(cursor)] = (host, cursor)
                    self._hosts.move_to_end(path)
                    return cursor
            if time.monotonic() >= deadline:
                raise StoreBusyError(
                    f"DuckDB database '{database}' is locked by another process (waited {lock_timeout:g}s). "
                    "Hint: DuckDB allows one writing process per file; close the other process's store or "
                    "raise lock_timeout."
                ) from locked
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def gate(self, cursor: duckdb.DuckDBPyConnection) -> WriteGate:
        """The write gate of the file a cursor from :meth:`acquire` is on."""
        with self._lock:
            return self._leases[id(cursor)][0].gate

    def release(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Close a cursor from :meth:`acquire`; the last one out detaches the file."""
        with self._lock:
            host, _ = self._leases.pop(id(cursor), (None, None))
            cursor.close()
            if host is None:  # not leased here (e.g. opened before a fork): nothing else to do
                return
            host.users -= 1
            if host.users:
                return
            try:
                host.conn.execute(f"DETACH {_quote(host.alias)}")
            except Exception:
                # DETACH failed (not seen in practice: it even rolls back other cursors' open
                # transactions): closing the whole instance releases the file all the same
                if self._hosts.get(host.path) is host:
                    del self._hosts[host.path]
                host.conn.close()
                raise
            finally:
                self._trim()

    def reset(self) -> None:
        """Close every idle host (hosts with open stores are kept)."""
        with self._lock:
            for path in [p for p, h in self._hosts.items() if h.users == 0]:
                self._hosts.pop(path).conn.close()

    # --- internals (called with the lock held) -----------------------------------------------------
    def _host(self, path: str, config: Mapping[str, Any], settings: tuple[tuple[str, str], ...]) -> _Host:
        import duckdb

        host = self._hosts.get(path)
        if host is not None and host.settings != settings:
            if host.users:
                raise BackendError(
                    f"DuckDB database '{path}' is already open in this process with other settings "
                    f"({dict(host.settings)}). Hint: open it with the same DuckDB config, or close the "
                    "other store first."
                )
            self._hosts.pop(path).conn.close()
            host = None
        if host is None:
            instance_config = {k: v for k, v in config.items() if k != _ATTACH_ACCESS_MODE}
            instance_config.setdefault("temp_directory", path + ".tmp")
            try:
                conn = duckdb.connect(":memory:", config=instance_config)
            except duckdb.Error as exc:
                raise BackendError(f"Invalid DuckDB config for '{path}': {exc}") from exc
            alias = _alias(path)
            options = " (READ_ONLY)" if str(config.get(_ATTACH_ACCESS_MODE, "")).upper() == "READ_ONLY" else ""
            host = _Host(path, conn, settings, f"ATTACH {_literal(path)} AS {_quote(alias)}{options}", alias)
            self._hosts[path] = host
        return host

    def _trim(self) -> None:
        idle = [p for p, h in self._hosts.items() if h.users == 0]  # least recently used first
        for path in idle[: max(0, len(idle) - MAX_IDLE_HOSTS)]:
            self._hosts.pop(path).conn.close()


def _alias(path: str) -> str:
    """The catalog name ``duckdb.connect(path)`` would give the file (its stem), unless reserved."""
    stem = Path(path).stem
    return "metaxy_store" if not stem or stem.lower() in _RESERVED_ALIASES else stem


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_HOSTS = _Hosts()
acquire = _HOSTS.acquire
gate = _HOSTS.gate
release = _HOSTS.release
reset = _HOSTS.reset
atexit.register(reset)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_HOSTS._before_fork,
        after_in_parent=_HOSTS._after_fork_in_parent,
        after_in_child=_HOSTS._after_fork_in_child,
    )
