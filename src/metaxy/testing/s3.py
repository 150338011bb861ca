"""An S3-compatible server on 127.0.0.1 for tests and benchmarks: moto's standalone server.

:func:`moto_s3_server` starts moto's S3 server (requests serialised, see ``_moto_main``) in a
subprocess on a free port, waits until it answers, and stops it on exit.
:class:`S3Server` carries the endpoint, the dummy
credentials and ``storage_options`` ready for Delta Lake (``deltalake`` / Polars) and pyarrow.
``moto[server]`` is in the ``dev`` extra; nothing here is imported by ``import metaxy``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["S3Server", "moto_s3_server"]

_REGION = "us-east-1"
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server and a bucket on it."""

    endpoint: str
    bucket: str
    access_key_id: str = "metaxytestkey"
    secret_access_key: str = field(default="metaxy-test-secret-Zq8v", repr=False)
    region: str = _REGION

    @property
    def storage_options(self) -> dict[str, str]:
        """Options for ``deltalake`` / ``polars.scan_delta`` (object_store keys).

        Conditional puts (``If-None-Match``), which moto implements, make concurrent Delta commits
        safe without a lock table (``AWS_S3_ALLOW_UNSAFE_RENAME`` is never set).
        """
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_ALLOW_HTTP": "true",
            "AWS_CONDITIONAL_PUT": "etag",
        }

    @property
    def lance_storage_options(self) -> dict[str, str]:
        """LanceDB's names for the server's endpoint and credentials (``storage_options`` of
        :class:`~metaxy.ext.lancedb.LanceDBMetadataStore`)."""
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_endpoint": self.endpoint,
            "region": self.region,
            "allow_http": "true",
        }

    def iceberg_catalog_properties(self, catalog_dir: str | os.PathLike[str]) -> dict[str, str]:
        """PyIceberg catalog properties (``catalog_properties`` of
        :class:`~metaxy.ext.polars.handlers.iceberg.IcebergMetadataStore`): a SQLite catalog in
        ``catalog_dir`` on the local disk, the warehouse's files on this server."""
        return {
            "uri": f"sqlite:///{os.fspath(catalog_dir)}/catalog.db",
            "s3.endpoint": self.endpoint,
            "s3.access-key-id": self.access_key_id,
            "s3.secret-access-key": self.secret_access_key,
            "s3.region": self.region,
        }

    def url(self, prefix: str | None = None) -> str:
        """``s3://<bucket>/<prefix>`` (a fresh random prefix when none is given)."""
        return f"s3://{self.bucket}/{prefix or uuid.uuid4().hex}"

    def create_bucket(self, name: str) -> None:
        """Create a bucket with an anonymous-signature PUT (moto accepts any credentials)."""
        req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(req, timeout=10):
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_s3_server(bucket: str = "metaxy") -> Iterator[S3Server]:
    """Run moto's S3 server on a free local port with ``bucket`` created; stop it on exit.

    Raises:
        RuntimeError: the server did not answer within 30 s (its output is in the message).
    """
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    # moto logs every request: its output goes to a file, never a pipe that could fill up.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "metaxy.testing._moto_main", "127.0.0.1", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    log.seek(0)
                    err = log.read().decode(errors="replace")
                    raise RuntimeError(
                        f"moto S3 server on {endpoint} did not start ({exc}): {err[-2000:]}. "
                        "Hint: install the dev extra: pip install 'metaxy[dev]' (moto[server])."
                    ) from exc
                time.sleep(0.1)
        server = S3Server(endpoint=endpoint, bucket=bucket)
        server.create_bucket(bucket)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
