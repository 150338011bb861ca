"""The demo in the Dagster UI: a real ``dagster-webserver`` over ``examples/multimodal/definitions.py``
and the demo's persistent instance, queried over its GraphQL API (what the asset pages show).

``mx demo`` leaves round 3 (audio decoder 2) materialised. The location is opened one decoder back
(``METAXY_DEMO_AUDIO_CODE_VERSION=1``), so the asset pages show round 3's picture from the other
side: exactly the assets whose feature version the decoder changes are Unsynced — raw, chunks,
transcript, summary, report — and faces is not.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from metaxy._demo.features import build_features
from metaxy._demo.runner import run_demo
from metaxy._demo.workdir import Workdir

# One worker runs the module: its module-scoped demo run is set up once, not once per worker.
pytestmark = pytest.mark.xdist_group("demo_webserver")

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "examples" / "multimodal" / "definitions.py"
WEBSERVER = Path(sys.executable).parent / "dagster-webserver"
READY_WITHIN_S = 240.0  # a bound on start-up, not a timing assertion
KEYS = ["video/raw", "video/chunks", "video/transcript", "video/faces", "video/summary", "channel/report"]

QUERY = """
query {
  assetNodes(loadMaterializations: true) {
    assetKey { path }
    staleStatus
    staleCauses { key { path } category reason dependency { path } }
    metadataEntries { label __typename ... on TextMetadataEntry { text } }
    assetChecksOrError { __typename ... on AssetChecks { checks { name canExecuteIndividually
      executionForLatestMaterialization { status } } } }
    assetMaterializations(limit: 10) {
      metadataEntries { label __typename ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        data: dict[str, Any] = json.loads(response.read())
    assert "errors" not in data, data.get("errors")
    return data["data"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    wd = Workdir(tmp_path_factory.mktemp("ui") / "demo")
    report = run_demo(wd.root, clips=4, seed=1, console=Console(file=io.StringIO(), width=120))
    assert report.ok
    return wd


@pytest.fixture(scope="module")
def graphql(demo: Workdir, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The GraphQL URL of a webserver over the demo's location (decoder 1) and instance; always stopped."""
    port = _free_port()
    cwd = tmp_path_factory.mktemp("webserver")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAXY_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(demo.dagster_home),
        METAXY_DEMO_WORKDIR=str(demo.root),
        METAXY_DEMO_AUDIO_CODE_VERSION="1",
    )
    log = (cwd / "webserver.log").open("w")
    proc = subprocess.Popen(
        [str(WEBSERVER), "-h", "127.0.0.1", "-p", str(port), "-f", str(DEFINITIONS)],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the code server it spawns is stopped with it
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            assert proc.poll() is None, (cwd / "webserver.log").read_text()
            try:
                if len(_post(url, "{ assetNodes { id } }")["assetNodes"]) == len(KEYS):
                    break
            except (urllib.error.URLError, ConnectionError, AssertionError):
                pass
            assert time.monotonic() < deadline, "webserver not ready:\n" + (cwd / "webserver.log").read_text()
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def pages(graphql: str) -> dict[str, dict[str, Any]]:
    nodes = _post(graphql, QUERY)["assetNodes"]
    return {"/".join(node["assetKey"]["path"]): node for node in nodes}


def _text(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["label"]: e.get("text", e.get("intValue")) for e in entries}


def test_the_ui_shows_round_3_as_unsynced_exactly_where_the_feature_version_changed(
    pages: dict[str, dict[str, Any]],
) -> None:
    assert sorted(pages) == sorted(KEYS)
    status = {key: page["staleStatus"] for key, page in pages.items()}
    assert status == {key: "FRESH" if key == "video/faces" else "STALE" for key in KEYS}
    for key in KEYS:
        if key == "video/faces":
            assert pages[key]["staleCauses"] == []
            continue
        (cause,) = pages[key]["staleCauses"]  # the asset's own code version: nothing propagated
        assert (cause["category"], cause["reason"]) == ("CODE", "has a new code version")
        assert "/".join(cause["key"]["path"]) == key


def test_the_ui_shows_the_three_rounds_and_short_metadata(demo: Workdir, pages: dict[str, dict[str, Any]]) -> None:
    v1, v2 = build_features("1"), build_features("2")
    for key in KEYS:
        definition = _text(pages[key]["metadataEntries"])
        feature = next(f for f in v1.all() if f.spec().key.to_string() == key)
        assert definition["metaxy/feature"] == key
        assert definition["metaxy/feature_version"] == feature.feature_version()
        assert definition["metaxy/project"] == "multimodal"
        assert "metaxy/code_version" in definition and "dagster/column_schema" in definition
        assert "metaxy/info" not in definition

        history = pages[key]["assetMaterializations"]
        assert len(history) == 3, "one materialization per round, kept in the workdir's instance"
        latest = _text(history[0]["metadataEntries"])
        assert "metaxy/info" not in latest
        assert latest["metaxy/store"] == f"DuckDBMetadataStore({demo.database})"
        round_3 = next(f for f in v2.all() if f.spec().key.to_string() == key)
        assert latest["metaxy/feature_version"] == round_3.feature_version()


def test_the_ui_can_run_each_metaxy_check_alone(pages: dict[str, dict[str, Any]]) -> None:
    for key in KEYS:
        checks = pages[key]["assetChecksOrError"]
        assert checks["__typename"] == "AssetChecks"
        if key == "video/raw":
            assert checks["checks"] == [], "a root feature has nothing to be stale against"
            continue
        by_name = {c["name"]: c for c in checks["checks"]}
        assert sorted(by_name) == ["metaxy_failures", "metaxy_no_orphans", "metaxy_up_to_date"]
        for check in by_name.values():
            assert check["canExecuteIndividually"] == "CAN_EXECUTE"
            assert check["executionForLatestMaterialization"]["status"] == "SUCCEEDED"  # run by round 3
