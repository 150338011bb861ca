"""A real ClickHouse server for the server transport's tests: Debian's ``clickhouse-server``
(``scripts/test.sh`` installs it), started in a temporary directory on free loopback ports.

Debian ships ClickHouse 18.16, older than the 25.x that metaxy's SQL needs, and older than what
``clickhouse-connect`` can start a session with: the tests run the connection and its errors against
it (a wrong password, a server too old), not a resolve."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_PASSWORD = "Ch-s3rver-Pa55"


@dataclass(frozen=True)
class Server:
    port: int  # HTTP
    user: str
    password: str
    version: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary() -> str:
    for candidate in ("/usr/sbin/clickhouse-server", shutil.which("clickhouse-server"), shutil.which("clickhouse")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail(
        "No ClickHouse server binary: install Debian's clickhouse-server (scripts/test.sh does), "
        "the server transport's tests run against it."
    )


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = _binary()
    root = tmp_path_factory.mktemp("clickhouse_server")
    http, tcp = _free_port(), _free_port()
    (root / "users.xml").write_text(
        "<?xml version='1.0'?><yandex><profiles><default></default></profiles><users><metaxy>"
        f"<password>{SERVER_PASSWORD}</password><networks><ip>127.0.0.1</ip></networks>"
        "<profile>default</profile><quota>default</quota></metaxy></users>"
        "<quotas><default></default></quotas></yandex>"
    )
    (root / "config.xml").write_text(
        "<?xml version='1.0'?><yandex>"
        f"<logger><level>warning</level><log>{root}/server.log</log><errorlog>{root}/error.log</errorlog>"
        "<console>0</console></logger>"
        f"<http_port>{http}</http_port><tcp_port>{tcp}</tcp_port><listen_host>127.0.0.1</listen_host>"
        f"<path>{root}/data/</path><tmp_path>{root}/tmp/</tmp_path>"
        f"<user_files_path>{root}/user_files/</user_files_path>"
        f"<format_schema_path>{root}/format_schemas/</format_schema_path>"
        f"<users_config>{root}/users.xml</users_config>"
        "<default_profile>default</default_profile><default_database>default</default_database>"
        "<mark_cache_size>5368709</mark_cache_size></yandex>"
    )
    args = [binary, "server"] if Path(binary).name == "clickhouse" else [binary]
    proc = subprocess.Popen(
        [*args, f"--config-file={root / 'config.xml'}"],
        stdout=subprocess.DEVNULL,
        stderr=(root / "stderr.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/ping", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                logs = "".join(p.read_text(errors="replace")[-2000:] for p in root.glob("*.log") if p.exists())
                pytest.fail(f"clickhouse-server did not start (exit {proc.poll()}): {logs}")
            time.sleep(0.1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{http}/?query=SELECT%20version()",
            headers={"X-ClickHouse-User": "metaxy", "X-ClickHouse-Key": SERVER_PASSWORD},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            version = r.read().decode().strip()
        yield Server(http, "metaxy", SERVER_PASSWORD, version)
    finally:
        proc.kill()  # a throw-away server: nothing of it is kept (a clean stop waits ~10 s)
        proc.wait()
