"""``mx demo --store chdb:///dir``: the whole demo (Dagster resource and IO manager included) on a
ClickHouse store in the embedded engine, through the real CLI in a subprocess. Every "as planned"
claim is checked by the DuckDB demo's own checks (imported below, run here against this module's
``run`` fixture). The store is read back in subprocesses: chdb runs one engine per process, and this
test process may hold another one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_mx_demo as duck  # the DuckDB demo's test module (same directory)
from test_mx_demo import (  # noqa: F401  (collected here: run against the ClickHouse `run` below)
    test_demo_succeeds_and_every_check_passes,
    test_files_carry_feature_and_data_versions,
    test_json_report_matches_the_printed_tables,
    test_printed_counts_per_round,
)

# One worker runs the module: its module-scoped demo run is set up once, not once per worker.
pytestmark = pytest.mark.xdist_group("mx_demo_clickhouse")


@pytest.fixture(scope="module")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('mx_demo_chdb') / 'engine'}"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, chdb_url: str) -> duck.Run:
    return duck.run_demo_cli(tmp_path_factory.mktemp("mx_demo_ch"), "--store", chdb_url)


def test_the_metadata_is_in_clickhouse_and_mx_in_the_workdir_reads_it(run: duck.Run, chdb_url: str) -> None:
    assert run.returncode == 0, run.stderr[-3000:]
    assert "as Dagster assets on a ClickHouse metadata store:" in run.stdout
    assert "ClickHouseMetadataStore(chdb://" in run.stdout
    assert not (run.workdir / "metadata.duckdb").exists()
    toml = (run.workdir / "metaxy.toml").read_text()
    assert "metaxy.ext.clickhouse.ClickHouseMetadataStore" in toml and chdb_url in toml
    assert "password" not in toml  # a chdb URL has none to hide
    done = duck._mx("metadata", "status", "--all-features", "--format", "json", "--assert-in-sync", cwd=run.workdir)
    assert done.returncode == 0, done.stderr
    rows = {r["feature_key"]: r for r in json.loads(done.stdout)["features"]}
    assert {r["status"] for k, r in rows.items() if k != "video/raw"} == {"up-to-date"}
    clips = duck.N + max(1, duck.N // 10) - max(1, duck.N // 20)
    assert all(rows[k]["rows"] == clips for k in ("video/raw", "video/transcript")), rows


def test_a_second_demo_on_the_same_engine_needs_reset(run: duck.Run, chdb_url: str, tmp_path: Path) -> None:
    refused = duck._mx("demo", "--store", chdb_url, "--workdir", str(tmp_path / "d"), "--clips", "4", cwd=tmp_path)
    assert refused.returncode == 1
    assert "already holds the demo's features" in refused.stderr and "--reset" in refused.stderr


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("chdb://relative/dir", "is not absolute"),
        ("clickhouse+http://u:sekrit@127.0.0.1:1/db", "check that the ClickHouse server is running"),
        ("mysql://u:sekrit@127.0.0.1/db", "takes a PostgreSQL or ClickHouse URL"),
        ("chdb://:memory:", "takes a PostgreSQL or ClickHouse URL"),  # gone before `mx` could read it
    ],
)
def test_bad_clickhouse_urls_are_refused_without_printing_the_password(
    store: str, message: str, tmp_path: Path
) -> None:
    done = duck._mx("demo", "--store", store, "--workdir", str(tmp_path / "d"), "--clips", "4", cwd=tmp_path)
    assert done.returncode == 1
    assert "sekrit" not in done.stderr + done.stdout
    assert message in done.stderr
    assert not (tmp_path / "d").exists()  # nothing made before the store was checked


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:sekrit@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql://u@h/db?password=sekrit&sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("clickhouse+http://u:sekrit@[::1]:8123/d", "clickhouse+http://u@[::1]:8123/d"),
        ("chdb:///abs/dir?database=x", "chdb:///abs/dir?database=x"),
    ],
)
def test_the_written_store_url_never_holds_the_password(url: str, shown: str) -> None:
    from metaxy._demo.workdir import has_password, without_password

    assert without_password(url) == shown
    assert has_password(url) == ("sekrit" in url)


def test_run_demo_refuses_a_url_it_cannot_run_on(tmp_path: Path) -> None:
    from metaxy._demo.runner import run_demo
    from metaxy._demo.workdir import DemoError

    with pytest.raises(DemoError, match="names no store it can run on"):
        run_demo(tmp_path / "d", clips=4, store_url="mysql://u@h/db")
    assert not (tmp_path / "d").exists()
