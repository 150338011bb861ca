"""The two ways the ClickHouse store reaches an engine, behind one small interface.

* :class:`ChdbTransport` -- the embedded ClickHouse engine (``chdb``) in this process. chdb runs
  **one** engine per process, on one data directory: every chdb store of a process must use the
  same path (databases isolate them); a second, different path raises :class:`BackendError`
  before chdb is asked. Processes take turns on a directory: the engine locks it while a store of
  the process is open, and another process's open waits for it (``lock_timeout``).
* :class:`HttpTransport` -- a ClickHouse server over HTTP(S) through ``clickhouse-connect``.

Both run the same SQL text (rendered by :class:`~metaxy.sql.dialects.ClickHouseDialect`), return
query results as Arrow tables and take inserts as Arrow record batches. Drivers are imported when a
transport is created (``import metaxy`` stays light).
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from metaxy.errors import BackendError, StoreBusyError
from metaxy.sql.dialects import ClickHouseDialect as _Dialect

from ._config import Target

__all__ = ["ChdbTransport", "HttpTransport", "Transport", "TransportError", "open_transport"]


class TransportError(Exception):
    """A failed engine call; ``unavailable`` when the engine could not be reached at all; ``hint``
    the transport's own advice (else the store's, by ``unavailable``)."""

    def __init__(self, message: str, *, unavailable: bool = False, hint: str | None = None) -> None:
        super().__init__(message)
        self.unavailable = unavailable
        self.hint = hint


#: A server that answers but refuses the connection: credentials, database, or a server too old
#: for clickhouse-connect's own start-up queries.
CONNECT_HINT = (
    "Hint: check the user, the password and the database, and that the server runs ClickHouse 25.x or "
    "later (metaxy's SQL needs it); or use the embedded engine, chdb:///abs/dir."
)


class Transport(ABC):
    """One connection (one thread's) to a ClickHouse engine, with ``database`` as its default."""

    database: str

    @abstractmethod
    def query_arrow(self, sql: str) -> pa.Table:
        """The rows of a query as an Arrow table (with its schema, also when empty)."""

    @abstractmethod
    def command(self, sql: str) -> None:
        """Run a statement that returns no rows (DDL, ALTER, DELETE, INSERT ... SELECT)."""

    @abstractmethod
    def insert_arrow(self, table: str, columns: Sequence[str], reader: pa.RecordBatchReader) -> None:
        """Insert the batches of ``reader`` into ``table`` (of the default database), by column name."""

    @abstractmethod
    def close(self) -> None: ...

    def scalar(self, sql: str) -> Any:
        table = self.query_arrow(sql)
        return table.column(0)[0].as_py() if table.num_rows else None


# --- chdb -----------------------------------------------------------------------------------------

_engine_lock = threading.Lock()
_engine_path: str | None = None
_users = 0  # this process's open ChdbTransports
_directory_lock: int | None = None  # the fd of <dir>/.metaxy-engine.lock, held while _users > 0
_epoch = 0  # how many times this process took the directory (other processes may write in between)
LOCK_FILE = ".metaxy-engine.lock"
_log = logging.getLogger(__name__)


def engine_path() -> str | None:
    """The data directory of this process's chdb engine (None before the first chdb store opened)."""
    return _engine_path


def engine_epoch() -> int:
    """Changes each time this process takes its engine's directory: what it cached of the tables
    before may have been changed by another process since."""
    return _epoch


class ChdbTransport(Transport):
    """A connection to this process's embedded engine.

    chdb runs one engine per process, and the engine locks its data directory while any connection
    of the process is open. Several processes therefore take turns on one directory: while a process
    has a chdb store open it holds ``<dir>/.metaxy-engine.lock``, and another process's open waits
    for that lock (then for the engine itself, should a process outside metaxy hold it), up to
    ``lock_timeout`` seconds, then raises :class:`StoreBusyError`."""

    def __init__(self, path: str, database: str, *, create_database: bool = True, lock_timeout: float = 30.0) -> None:
        global _engine_path, _users, _directory_lock, _epoch

        deadline = time.monotonic() + lock_timeout
        if not _engine_lock.acquire(timeout=min(lock_timeout, threading.TIMEOUT_MAX)):
            raise _busy(path, lock_timeout, "another thread of this process is waiting for it")
        try:
            if _engine_path is not None and _engine_path != path:
                raise BackendError(
                    f"This process already runs the embedded ClickHouse engine (chdb) on '{_engine_path}'; "
                    f"a store on '{path}' cannot open: chdb runs one engine directory per process. "
                    "Hint: point every chdb store of the process at the same directory and separate them by "
                    "database ('chdb:///dir?database=name'), or use a ClickHouse server."
                )
            first = _users == 0 and path != ":memory:"
            if first:
                _directory_lock = _lock_directory(path, deadline, lock_timeout)
                _epoch += 1
            try:
                self._conn = _connect_waiting(path, deadline, lock_timeout)
            except BaseException:
                if first:
                    _unlock_directory()
                raise
            _users += 1
            _engine_path = path
        finally:
            _engine_lock.release()
        self.database = database
        try:
            if create_database:
                self.command(f"CREATE DATABASE IF NOT EXISTS {_quote(database)}")
            self.command(f"USE {_quote(database)}")
        except BaseException:
            self.close()
            raise

    def _query(self, sql: str, fmt: str) -> Any:
        try:
            return self._conn.query(sql, fmt)
        except Exception as exc:
            raise TransportError(str(exc).strip()) from None

    def query_arrow(self, sql: str) -> pa.Table:
        res = self._query(sql, "Arrow")
        if len(res) == 0:
            return pa.table({})
        return pa.ipc.open_file(pa.py_buffer(res.bytes())).read_all()

    def command(self, sql: str) -> None:
        self._query(sql, "CSV")

    def insert_arrow(self, table: str, columns: Sequence[str], reader: pa.RecordBatchReader) -> None:
        names = ", ".join(_quote(c) for c in columns)
        sql = f"INSERT INTO {_quote(self.database)}.{_quote(table)} ({names})"
        buf = io.BytesIO()
        try:
            with self._conn.send_insert(sql, "ArrowStream") as ins:
                with pa.ipc.new_stream(buf, reader.schema) as writer:
                    for batch in reader:
                        writer.write_batch(batch)
                        if buf.tell() >= 1 << 22:
                            ins.append(buf.getvalue())
                            buf.seek(0)
                            buf.truncate()
                ins.append(buf.getvalue())
                ins.finish()
        except TransportError:
            raise
        except RuntimeError as exc:
            raise TransportError(str(exc).strip()) from None

    def close(self) -> None:
        global _users
        with _engine_lock:
            conn, self._conn = getattr(self, "_conn", None), None
            if conn is None:
                return
            conn.close()
            _users -= 1
            if _users == 0:
                _unlock_directory()  # the engine stopped with the process's last connection


def _busy(path: str, lock_timeout: float, why: str) -> StoreBusyError:
    return StoreBusyError(
        f"The embedded ClickHouse engine (chdb) directory '{path}' is in use: {why} "
        f"(waited {lock_timeout:g}s). Hint: chdb lets one process at a time open a directory; close the "
        "other process's store, raise lock_timeout, or use a ClickHouse server for writers that must "
        "run at the same time."
    )


def _lock_directory(path: str, deadline: float, lock_timeout: float) -> int:
    """Take ``<dir>/.metaxy-engine.lock`` (exclusive ``flock``), waiting for another process's store."""
    import fcntl

    try:
        os.makedirs(path, exist_ok=True)
        fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise TransportError(f"chdb could not open '{path}': {exc}", unavailable=True) from None
    delay, logged = 0.005, False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        except OSError as exc:
            os.close(fd)
            raise TransportError(f"chdb could not lock '{path}': {exc}", unavailable=True) from None
        else:
            return fd
        if time.monotonic() >= deadline:
            os.close(fd)
            raise _busy(path, lock_timeout, "another process has a metaxy store open on it")
        if not logged:
            _log.info("Waiting up to %gs for another process's store on chdb directory '%s'", lock_timeout, path)
            logged = True
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _unlock_directory() -> None:
    global _directory_lock
    if _directory_lock is not None:
        os.close(_directory_lock)  # closing the descriptor releases its flock
        _directory_lock = None


def _engine_holder(path: str) -> int | None:
    """The PID of the process whose engine runs on the directory, if one does: ClickHouse keeps an
    exclusive ``flock`` on ``<dir>/status`` (which names its PID) while the engine runs."""
    import fcntl

    try:
        fd = os.open(os.path.join(path, "status"), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 256).decode(errors="replace")
            pid = text.split("\n", 1)[0].removeprefix("PID:").strip()
            return int(pid) if pid.isdigit() else -1
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _connect_waiting(path: str, deadline: float, lock_timeout: float) -> Any:
    """``chdb.connect(path)``, waiting while an engine outside metaxy (another process's plain
    chdb session) holds the directory.

    chdb reports a held directory only as a failed engine start, so a failure is retried while the
    directory's engine lock is held by another process; a failure with the directory free is
    retried twice (the holder may have stopped between the attempt and the check), then raised."""
    import chdb

    unexplained = 0
    while True:
        try:
            return chdb.connect(path)
        except Exception as exc:
            failure = exc
        holder = _engine_holder(path)
        if holder is None:
            unexplained += 1
            if unexplained > 2:
                raise TransportError(f"chdb could not open '{path}': {failure}", unavailable=True) from None
            time.sleep(0.01)
            continue
        if holder == os.getpid():
            raise TransportError(
                f"chdb could not open '{path}': {failure} (this process's own engine runs on the directory, "
                "opened outside metaxy or under another spelling of its path)",
                unavailable=True,
            ) from None
        unexplained = 0
        delay = 0.01
        while _engine_holder(path) is not None:
            if time.monotonic() >= deadline:
                raise _busy(path, lock_timeout, f"the chdb engine of process {holder} holds it")
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


# --- clickhouse-connect (HTTP) ----------------------------------------------------------------------


class HttpTransport(Transport):
    def __init__(
        self,
        target: Target,
        *,
        connect_timeout: float,
        settings: dict[str, Any],
        create_database: bool,
    ) -> None:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import ClickHouseError

        self.database = target.database
        common: dict[str, Any] = dict(
            host=target.host,
            port=target.port,
            username=target.user,
            password=target.password.get_secret_value(),
            secure=target.secure,
            connect_timeout=connect_timeout,
            settings=settings,
            autogenerate_session_id=False,
        )
        try:
            try:
                self._client = clickhouse_connect.get_client(database=target.database, **common)
            except ClickHouseError as exc:
                if not _unknown_database(exc):
                    raise
                # the first open of a database creates it (empty: a read sees no features) where the
                # user may; else the missing database is the error
                bootstrap = clickhouse_connect.get_client(database="default", **common)
                try:
                    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {_quote(target.database)}")
                except ClickHouseError:
                    if create_database:
                        raise
                    raise exc from None
                finally:
                    bootstrap.close()
                self._client = clickhouse_connect.get_client(database=target.database, **common)
        except ClickHouseError as exc:
            unreachable = _unreachable(exc)
            hint = None if unreachable else CONNECT_HINT
            raise TransportError(str(exc).strip(), unavailable=unreachable, hint=hint) from None
        except OSError as exc:
            raise TransportError(str(exc).strip(), unavailable=True) from None
        try:
            check_server(self)
        except BaseException:
            self._client.close()
            raise

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            return fn(*args, **kwargs)
        except ClickHouseError as exc:
            raise TransportError(str(exc).strip(), unavailable=_unreachable(exc)) from None
        except OSError as exc:
            raise TransportError(str(exc).strip(), unavailable=True) from None

    def query_arrow(self, sql: str) -> pa.Table:
        table: pa.Table = self._call(self._client.query_arrow, sql, use_strings=True)
        return table

    def command(self, sql: str) -> None:
        self._call(self._client.command, sql)

    def insert_arrow(self, table: str, columns: Sequence[str], reader: pa.RecordBatchReader) -> None:
        for batch in reader:
            if batch.num_rows:
                self._call(self._client.insert_arrow, table, pa.Table.from_batches([batch]), database=self.database)

    def close(self) -> None:
        self._client.close()


def check_server(transport: Transport) -> None:
    """Refuse a server that lacks a setting the dialect's statements set (ClickHouse before 25.x),
    naming its version: its first resolve would fail, less clearly."""
    wanted = sorted(_Dialect.statement_settings)
    names = ", ".join(f"'{n}'" for n in wanted)
    row = transport.query_arrow(f"SELECT version(), groupArray(name) FROM system.settings WHERE name IN ({names})")
    version, known = row.column(0)[0].as_py(), set(row.column(1)[0].as_py())
    missing = [n for n in wanted if n not in known]
    if missing:
        raise TransportError(
            f"the ClickHouse server {version} lacks the settings {', '.join(missing)} that metaxy's statements set",
            hint="Hint: use ClickHouse 25.x or later, or the embedded engine (chdb:///abs/dir).",
        )


def _unknown_database(exc: BaseException) -> bool:
    return "UNKNOWN_DATABASE" in str(exc) or "Code: 81." in str(exc)


def _unreachable(exc: BaseException) -> bool:
    return type(exc).__name__ == "OperationalError"


def _quote(name: str) -> str:
    return _Dialect().identifier(name)


def open_transport(
    target: Target, *, connect_timeout: float, settings: dict[str, Any], create_database: bool, lock_timeout: float
) -> Transport:
    """A connection to the target's engine (one per thread that opens the store)."""
    if target.kind == "chdb":
        assert target.path is not None
        return ChdbTransport(target.path, target.database, lock_timeout=lock_timeout)
    return HttpTransport(target, connect_timeout=connect_timeout, settings=settings, create_database=create_database)
