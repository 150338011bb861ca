"""The published command set over a real DuckDB store: list, describe, status, push/history, delete, copy, rebase."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import duckdb
from mxcli import Runner, run_mx, write_rows


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_list_features_json_shape_and_verbose_fields(mx: Runner) -> None:
    data = _json(mx("list", "features", "-f", "json"))
    assert data["feature_count"] == 4
    by_key = {f["key"]: f for f in data["features"]}
    assert list(by_key) == ["cli/raw", "cli/chunks", "cli/transcript", "cli/summary"]
    assert by_key["cli/raw"]["is_root"] and by_key["cli/raw"]["fields"] == ["audio", "frames"]
    assert by_key["cli/transcript"]["deps"] == ["cli/raw"] and by_key["cli/chunks"]["id_columns"] == ["sid", "chunk"]
    verbose = _json(mx("list", "features", "--verbose", "--format", "json"))
    (audio,) = next(f for f in verbose["features"] if f["key"] == "cli/transcript")["fields"]
    assert audio["key"] == "audio" and audio["upstream"] == ["cli/raw.audio"] and len(audio["version"]) == 8
    stores = _json(mx("list", "stores", "-f", "json"))
    assert [(s["name"], s["default"]) for s in stores["stores"]] == [("backup", False), ("dev", True)]


def test_describe_features_and_graph(stored: Path) -> None:
    data = _json(run_mx(stored, "describe", "features", "cli/transcript", "cli/raw", "-f", "json"))
    raw, transcript = data["features"]  # upstream first
    assert raw["key"] == "cli/raw" and raw["description"] == "Raw recordings." and raw["store"]["rows"] == 3
    assert transcript["deps"][0]["feature"] == "cli/raw" and transcript["deps"][0]["lineage"] == "1:1"
    assert transcript["fields"][0]["upstream"] == ["cli/raw.audio"] and transcript["schema"]["sid"] == "string"
    assert raw["dependents"] == ["cli/chunks", "cli/transcript"]
    plain = run_mx(stored, "describe", "features", "cli/transcript")
    assert plain.returncode == 0 and "cli/raw.audio" in plain.stdout and "3 rows" in plain.stdout
    graph = _json(run_mx(stored, "describe", "graph", "-f", "json"))
    assert graph == {
        "feature_count": 4,
        "depth": 3,
        "roots": ["cli/raw"],
        "leaves": ["cli/chunks", "cli/summary"],
        "projects": {"cli_features": 4},
        "source": "current code",
    }


def test_status_json_shape_flags_and_assert_in_sync(stored: Path) -> None:
    done = run_mx(stored, "metadata", "status", "--all-features", "-f", "json", "--assert-in-sync")
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert set(data) == {"project_version", "needs_update", "features"} and data["needs_update"] is True
    rows = {r["feature_key"]: r for r in data["features"]}
    assert rows["cli/raw"]["status"] == "root feature" and rows["cli/raw"]["rows"] == 3
    assert (rows["cli/transcript"]["missing"], rows["cli/transcript"]["stale"]) == (0, 1)
    assert rows["cli/summary"]["status"] == "up-to-date"
    # --filter limits the compared samples; --stale-if marks stored rows stale; --global-filter reaches upstreams
    only_b = _json(run_mx(stored, "metadata", "status", "cli/transcript", "--filter", "sid = 'b'", "-f", "json"))
    assert only_b["features"][0]["status"] == "up-to-date"
    forced = _json(run_mx(stored, "metadata", "status", "cli/summary", "--stale-if", "sid = 'c'", "-f", "json"))
    assert forced["features"][0]["stale"] == 1
    glob = _json(run_mx(stored, "metadata", "status", "cli/transcript", "--global-filter", "sid != 'a'", "-f", "json"))
    assert glob["features"][0]["status"] == "up-to-date" and glob["features"][0]["rows"] == 2
    write_rows(stored, {"resolve": "cli/transcript"}, {"resolve": "cli/summary"}, {"resolve": "cli/chunks"})
    in_sync = run_mx(stored, "metadata", "status", "--all-features", "--assert-in-sync", "-v", "--no-progress")
    assert in_sync.returncode == 0, in_sync.stderr
    assert "up-to-date" in in_sync.stdout and "m.duckdb" in in_sync.stdout


def test_status_against_a_pushed_snapshot_and_without_fallbacks(stored: Path) -> None:
    version = run_mx(stored, "push").stdout.strip()
    data = _json(run_mx(stored, "metadata", "status", "--all-features", "--snapshot-id", version, "-f", "json"))
    assert data["project_version"] == version
    no_fb = _json(run_mx(stored, "metadata", "status", "cli/raw", "--no-allow-fallback-stores", "-f", "json"))
    assert no_fb["features"][0]["rows"] == 3


def test_push_with_tags_and_history(stored: Path) -> None:
    first = run_mx(stored, "push", "--tags.team", "ml", "--tags.ticket", "42")
    assert first.returncode == 0 and "Recorded" in first.stderr
    again = run_mx(stored, "push")
    assert again.stdout == first.stdout and "already recorded" in again.stderr
    with duckdb.connect(str(stored / "m.duckdb"), read_only=True) as con:
        (tags,) = con.execute("select distinct tags from metaxy_system__feature_versions").fetchone()  # type: ignore[misc]
    assert json.loads(tags)["team"] == "ml" and json.loads(tags)["ticket"] == "42"
    hist = _json(run_mx(stored, "history", "-f", "json"))
    (snap,) = hist["snapshots"]
    assert snap["project_version"] == first.stdout.strip() and snap["feature_count"] == 4


def test_delete_soft_dry_run_then_hard(stored: Path) -> None:
    dry = _json(run_mx(stored, "metadata", "delete", "cli/summary", "--filter", "sid = 'a'", "--dry-run", "-f", "json"))
    assert dry == {"mode": "soft", "dry_run": True, "features": [{"feature_key": "cli/summary", "rows": 1}], "rows": 1}
    soft = _json(run_mx(stored, "metadata", "delete", "cli/summary", "--filter", "sid = 'a'", "--yes", "-f", "json"))
    assert soft["rows"] == 1
    status = _json(run_mx(stored, "metadata", "status", "cli/summary", "-f", "json"))
    assert (status["features"][0]["rows"], status["features"][0]["missing"]) == (2, 1)
    hard_dry = _json(run_mx(stored, "metadata", "delete", "cli/summary", "--hard", "--dry-run", "-f", "json"))
    assert hard_dry["rows"] == 4  # 3 rows + the soft-delete marker, physically
    hard = run_mx(stored, "metadata", "delete", "cli/summary", "--hard", "--yes")
    assert hard.returncode == 0 and "Deleted (hard)" in hard.stdout
    with duckdb.connect(str(stored / "m.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from cli__summary").fetchone() == (0,)


def test_delete_asks_and_a_no_keeps_everything(stored: Path) -> None:
    # stdin is not a terminal: the CLI refuses rather than prompting; nothing is deleted
    refused = run_mx(stored, "metadata", "delete", "--all-features", stdin="y\n")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    rows = _json(run_mx(stored, "metadata", "status", "cli/raw", "-f", "json"))["features"][0]["rows"]
    assert rows == 3


def test_copy_between_stores_keeps_versions_and_timestamps(stored: Path) -> None:
    data = _json(
        run_mx(stored, "metadata", "copy", "cli/raw", "cli/transcript", "--from", "dev", "--to", "backup", "-f", "json")
    )
    assert data["features_copied"] == 2 and data["rows_copied"] == 6  # the latest row of each of 3 samples
    filtered = _json(
        run_mx(
            stored,
            "metadata",
            "copy",
            "cli/summary",
            "--from",
            "dev",
            "--to",
            "backup",
            "--filter",
            "sid = 'b'",
            "-f",
            "json",
        )
    )
    assert filtered["rows_copied"] == 1
    query = "select sid, metaxy_updated_at::varchar, metaxy_feature_version from cli__transcript order by sid"
    with duckdb.connect(str(stored / "m.duckdb"), read_only=True) as con:
        src = con.execute(query).fetchall()
    with duckdb.connect(str(stored / "backup.duckdb"), read_only=True) as con:
        dst = con.execute(query).fetchall()
    assert dst == src


def test_rebase_onto_the_current_version(stored: Path) -> None:
    # an older definition of cli/transcript wrote rows under another version: rebase them onto the current one
    features = (stored / "cli_features" / "__init__.py").read_text()
    old = features.replace(
        'deps=[Raw], fields=["audio"]', 'deps=[Raw], fields=[mx.FieldSpec(key="audio", code_version="0")]', 1
    )
    assert old != features
    (stored / "cli_features" / "__init__.py").write_text(old)
    old_version = next(
        f["version"]
        for f in _json(run_mx(stored, "list", "features", "-f", "json"))["features"]
        if f["key"] == "cli/transcript"
    )
    write_rows(stored, {"resolve": "cli/transcript", "run": "old"})
    (stored / "cli_features" / "__init__.py").write_text(features)
    before = _json(run_mx(stored, "metadata", "status", "cli/transcript", "-f", "json"))["features"][0]
    dry = _json(
        run_mx(stored, "metadata", "rebase", "cli/transcript", "--from", old_version, "--dry-run", "-f", "json")
    )
    assert dry["rows"] == 3 and dry["dry_run"] is True
    done = run_mx(stored, "metadata", "rebase", "cli/transcript", "--from", old_version)
    assert done.returncode == 0 and "Rebased 3 rows" in done.stderr
    after = _json(run_mx(stored, "metadata", "status", "cli/transcript", "-f", "json"))["features"][0]
    assert (before["stale"], after["stale"], after["missing"]) == (1, 0, 0)
