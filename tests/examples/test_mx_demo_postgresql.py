"""``mx demo --store postgresql://...``: the whole demo (Dagster resource and IO manager included) on a
PostgreSQL store of the test cluster, through the real CLI in a subprocess. Every "as planned" claim
is checked by the DuckDB demo's own checks (imported below, run here against this module's ``run``
fixture); the password never appears in the output, the report or the workdir's ``metaxy.toml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import test_mx_demo as duck  # the DuckDB demo's test module (same directory)
from test_mx_demo import (  # noqa: F401  (collected here: run against the PostgreSQL `run` below)
    test_demo_succeeds_and_every_check_passes,
    test_files_carry_feature_and_data_versions,
    test_json_report_matches_the_printed_tables,
    test_printed_changes_follow_the_mutation_fractions,
    test_printed_counts_per_round,
)

from metaxy._demo.features import build_features
from metaxy.ext.postgresql import PostgreSQLMetadataStore

# One worker runs the module: its module-scoped demo run is set up once, not once per worker.
pytestmark = pytest.mark.xdist_group("mx_demo_postgresql")


@pytest.fixture(scope="module")
def pg_url(postgres_cluster: Any) -> str:
    url: str = postgres_cluster.create_database("mx_demo_pg")
    return url


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> duck.Run:
    return duck.run_demo_cli(tmp_path_factory.mktemp("mx_demo_pg"), "--store", pg_url)


def password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def test_the_metadata_is_in_postgresql_and_no_duckdb_file_is_made(run: duck.Run, pg_url: str) -> None:
    assert run.returncode == 0, run.stderr[-3000:]
    assert "as Dagster assets on a PostgreSQL metadata store:" in run.stdout
    assert "PostgreSQLMetadataStore(postgresql://127.0.0.1:" in run.stdout
    assert not (run.workdir / "metadata.duckdb").exists()
    clips = duck.N + max(1, duck.N // 10) - max(1, duck.N // 20)
    with build_features("2").graph.use(), PostgreSQLMetadataStore(pg_url) as store:
        assert store.read("video/raw").collect().to_polars().height == clips
        assert store.read("video/transcript").collect().to_polars().height == clips


def test_the_password_is_never_printed_or_written(run: duck.Run, pg_url: str) -> None:
    secret = password(pg_url)
    toml = (run.workdir / "metaxy.toml").read_text()
    assert secret not in run.stdout and secret not in run.stderr
    assert secret not in json.dumps(run.report) and secret not in toml
    assert "PGPASSWORD" in toml and "postgresql://metaxy@127.0.0.1:" in toml


def test_mx_in_the_workdir_reads_the_postgresql_store_with_pgpassword(run: duck.Run, pg_url: str) -> None:
    env = {"PGPASSWORD": password(pg_url)}
    done = duck._mx("metadata", "status", "--all-features", "--format", "json", "--assert-in-sync", cwd=run.workdir,
                    env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {r["feature_key"]: r for r in json.loads(done.stdout)["features"]}
    assert {r["status"] for k, r in rows.items() if k != "video/raw"} == {"up-to-date"}


def test_a_second_demo_on_the_same_database_needs_reset(run: duck.Run, pg_url: str, tmp_path: Path) -> None:
    refused = duck._mx("demo", "--store", pg_url, "--workdir", str(tmp_path / "d"), "--clips", "4", cwd=tmp_path)
    assert refused.returncode == 1
    assert "already holds the demo's features" in refused.stderr and "--reset" in refused.stderr
    assert password(pg_url) not in refused.stderr + refused.stdout


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("duckdb:///tmp/x.duckdb", "takes a PostgreSQL or ClickHouse URL"),
        ("postgresql://u:sekrit@127.0.0.1:1/db", "reachable"),
    ],
)
def test_bad_store_urls_are_refused_without_printing_the_password(store: str, message: str, tmp_path: Path) -> None:
    done = duck._mx("demo", "--store", store, "--workdir", str(tmp_path / "d"), "--clips", "4", cwd=tmp_path)
    assert done.returncode == 1
    assert message in done.stderr
    assert "sekrit" not in done.stderr + done.stdout
    assert not (tmp_path / "d").exists()  # nothing made before the store was checked
