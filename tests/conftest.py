from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

import metaxy as mx


@pytest.fixture
def graph() -> Iterator[mx.FeatureGraph]:
    """A fresh, active feature graph: features defined in the test register here."""
    g = mx.FeatureGraph()
    with g.use():
        yield g


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test sees the developer's metaxy.toml, METAXY_* variables or another test's config."""
    from metaxy.config import MetaxyConfig

    for name in list(__import__("os").environ):
        if name.startswith("METAXY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    MetaxyConfig.reset()
    with MetaxyConfig().use():
        yield
    MetaxyConfig.reset()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[object]:
    """moto's S3 server on 127.0.0.1 with a bucket, for the whole session (fails, never skips)."""
    from metaxy.testing.s3 import moto_s3_server

    with moto_s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A throw-away PostgreSQL cluster for the session (initdb in a temp dir, a free port, password
    auth over TCP). Fails -- never skips -- when the server cannot start."""
    from metaxy.testing.postgres_cluster import PostgresCluster

    try:
        cluster = PostgresCluster.start()  # its own dir: pytest's tmp dir is private to this user
    except RuntimeError as exc:
        pytest.fail(f"The test PostgreSQL server could not start: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: Any, request: pytest.FixtureRequest) -> str:
    """A fresh database of the session cluster for one test."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:8]
    url: str = postgres_cluster.create_database(name)
    return url


# --- ClickHouse (chdb) ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chdb_engine_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The one chdb engine directory of this test process (chdb runs one engine per process;
    stores isolate by database).

    One connection stays open for the session: while any connection is open, a store's
    ``chdb.connect`` joins the running engine (< 1 ms); with none open, chdb starts the engine again
    and reloads every table's metadata (~0.3 s per store open after a few hundred tests)."""
    import chdb

    path = str(tmp_path_factory.mktemp("chdb_engine"))
    keeper = chdb.connect(path)
    try:
        yield path
    finally:
        keeper.close()


# One local Ray cluster for every Ray test of the session (Ray starts in ~5-10 s). Each pytest-xdist
# worker that runs Ray tests starts its own local cluster (``ray.init`` with no address never joins
# another), in its own temp dir; Ray tests are marked ``xdist_group("ray")`` and scripts/test.sh runs
# ``--dist loadgroup``, so one worker runs them all.
@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    import ray

    temp_dir = tempfile.mkdtemp(prefix="mxray", dir="/tmp")  # short: Ray's socket paths must fit
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=temp_dir,
        configure_logging=False,
        runtime_env={"env_vars": {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}},
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
