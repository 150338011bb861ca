from __future__ import annotations

from collections.abc import Iterator

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
