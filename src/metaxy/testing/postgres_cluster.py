"""A throw-away PostgreSQL cluster for tests and benchmarks: ``initdb`` in a temporary directory,
``pg_ctl start`` on a free TCP port of 127.0.0.1 with password authentication, ``pg_ctl stop`` at
the end. Never touches a system-wide cluster.

As root, the server binaries run as the ``postgres`` system user (``initdb`` refuses root).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PostgresCluster", "find_bindir"]


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (Debian keeps them off PATH).

    Raises:
        RuntimeError: no PostgreSQL server binaries are installed.
    """
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError(
            "No PostgreSQL server binaries found (pg_ctl). Hint: apt-get install -y postgresql (scripts/test.sh does)."
        )
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running throw-away cluster; ``url`` connects as the superuser ``metaxy`` with a password."""

    root: Path
    port: int = 0
    user: str = "metaxy"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(8))
    dbname: str = "postgres"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.dbname}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(find_bindir() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    @classmethod
    def start(cls, root: Path | None = None) -> PostgresCluster:
        """initdb + pg_ctl start; raises RuntimeError (with the server's log) when it cannot start."""
        root = Path(root or tempfile.mkdtemp(prefix="metaxy-pg-"))
        root.mkdir(parents=True, exist_ok=True)
        cluster = cls(root=root)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
            os.chmod(root, 0o700)
        pwfile = root / "pw"
        pwfile.write_text(cluster.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        try:
            cluster._run(
                "initdb", "-D", str(cluster.datadir), "-U", cluster.user, f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed: {exc.stderr}") from exc
        finally:
            pwfile.unlink(missing_ok=True)
        cluster.start_server()
        return cluster

    def start_server(self) -> None:
        """(Re)start the server of an initialised cluster on its port (a free one at first)."""
        if not self.port:
            self.port = _free_port()
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=100 -c shared_buffers=128MB"
        )
        res = self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "log"), "-o", opts, "-w", "start",
                        check=False)  # fmt: skip
        if res.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {res.stdout}{res.stderr}\n{log[-2000:]}")

    def stop_server(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop_server("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name
