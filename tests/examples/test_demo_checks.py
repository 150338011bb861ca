"""The Metaxy asset checks on the demo's graph: every lineage (identity, 1:N, N:1), the same counts
as ``mx metadata status``, each check runnable alone, and the truth after a code change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

import metaxy.ext.dagster as mxd
from metaxy._demo.assets import build_assets, build_resources
from metaxy._demo.features import MultimodalFeatures, build_features
from metaxy._demo.media import MediaLibrary
from metaxy._demo.workdir import Workdir

CLIPS = 8
MX = str(Path(sys.executable).parent / "mx")


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    from metaxy._demo.runner import _quiet as demo_quiet

    with demo_quiet():
        yield


@pytest.fixture
def workdir(tmp_path: Path) -> Workdir:
    wd = Workdir(tmp_path / "work")
    wd.prepare()
    return wd


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def _materialize(features: MultimodalFeatures, wd: Workdir, instance: dg.DagsterInstance, *keys: str) -> None:
    with wd.config().use(), features.graph.use():
        assets = build_assets(features)
        selection = [dg.AssetKey.from_user_string(k) for k in keys] if keys else None
        resources = build_resources(wd.root, clips=CLIPS, seed=3)
        result = dg.materialize(assets, resources=resources, instance=instance, selection=selection)
    assert result.success
    wd.write_toml(features.audio_code_version)


def _run_checks(
    features: MultimodalFeatures, wd: Workdir, instance: dg.DagsterInstance, only: list[dg.AssetCheckKey] | None = None
) -> dict[tuple[str, str], Any]:
    """``{(asset, check name): evaluation}`` of the demo's Metaxy checks (all, or ``only``)."""
    with wd.config().use(), features.graph.use():
        assets = build_assets(features)
        checks = mxd.build_metaxy_asset_checks(assets)
        selection = dg.AssetSelection.checks(*(only or [k for c in checks for k in c.check_keys]))
        result = dg.materialize(
            [*assets, *checks], selection=selection, instance=instance, resources=build_resources(wd.root)
        )
    assert result.success
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def _status(wd: Workdir) -> dict[str, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAXY_")}
    done = subprocess.run(
        [MX, "metadata", "status", "--all-features", "--format", "json"],
        cwd=wd.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {row["feature_key"]: row for row in json.loads(done.stdout)["features"]}


def _counts(evaluation: Any) -> tuple[int, int, int]:
    md = evaluation.metadata
    return tuple(md[f"metaxy/{k}"].value for k in ("new", "stale", "orphaned"))


def test_checks_count_samples_for_every_lineage_like_mx_metadata_status(
    workdir: Workdir, instance: dg.DagsterInstance
) -> None:
    features = build_features("1")
    _materialize(features, workdir, instance)
    evaluations = _run_checks(features, workdir, instance)
    assert sorted({asset for asset, _ in evaluations}) == [
        "channel/report",
        "video/chunks",
        "video/faces",
        "video/summary",
        "video/transcript",
    ], "every feature with deps has checks; the root has none"
    assert all(e.passed for e in evaluations.values()), {k: e.description for k, e in evaluations.items()}

    library = MediaLibrary.open(workdir.media)
    ids = sorted(library.clips)
    channels = sorted({library.clips[vid].channel for vid in ids[:3]})  # the groups these clips belong to
    audio, deleted = library.change_audio(ids[:2]), library.delete(ids[2:3])
    _materialize(features, workdir, instance, "video/raw", "video/transcript", "video/faces", "video/summary")
    evaluations = _run_checks(features, workdir, instance)
    status = _status(workdir)

    chunks = evaluations[("video/chunks", "metaxy_up_to_date")]  # 1:N: counted in clips, not chunk rows
    assert _counts(chunks) == (0, len(audio), len(deleted))
    assert chunks.metadata["metaxy/example_stale"].value == ", ".join(audio)
    assert evaluations[("video/chunks", "metaxy_no_orphans")].metadata["metaxy/example_orphaned"].value == deleted[0]

    report = evaluations[("channel/report", "metaxy_up_to_date")]  # N:1: counted in channels, not clips
    assert _counts(report)[1] == len(channels) and not report.passed
    examples = report.metadata["metaxy/example_stale"].value.split(", ")
    assert examples == channels, "each channel once"

    for asset in ("video/chunks", "video/transcript", "video/faces", "video/summary", "channel/report"):
        evaluation = evaluations[(asset, "metaxy_up_to_date")]
        row = status[asset]
        assert _counts(evaluation) == (row["missing"], row["stale"], row["orphaned"]), asset
        assert evaluation.metadata["dagster/row_count"].value == row["rows"], asset


def test_each_check_runs_alone(workdir: Workdir, instance: dg.DagsterInstance) -> None:
    features = build_features("1")
    _materialize(features, workdir, instance)
    with features.graph.use():
        (check,) = [c for c in mxd.build_metaxy_asset_checks(build_assets(features)) if "faces" in str(c.check_keys)]
    assert check.can_subset  # what the UI needs to enable "Execute" on one check
    key = dg.AssetCheckKey(dg.AssetKey(["video", "faces"]), "metaxy_no_orphans")
    evaluations = _run_checks(features, workdir, instance, only=[key])
    assert list(evaluations) == [("video/faces", "metaxy_no_orphans")]


def test_checks_after_a_code_change_say_the_upstream_is_not_materialized(
    workdir: Workdir, instance: dg.DagsterInstance
) -> None:
    _materialize(build_features("1"), workdir, instance)
    bumped = build_features("2")  # the audio decoder changes: raw, chunks, transcript, ... get new versions
    evaluations = _run_checks(bumped, workdir, instance)
    for name in ("metaxy_up_to_date", "metaxy_no_orphans"):
        for asset in ("video/faces", "video/transcript", "video/chunks"):  # no false orphans, no vacuous pass
            evaluation = evaluations[(asset, name)]
            assert not evaluation.passed
            assert "Upstream not materialized at its current feature version: 'video/raw'" in evaluation.description
            assert evaluation.metadata["metaxy/upstream_not_materialized"].value == "video/raw"

    assert _unsynced(bumped, instance) == {  # Dagster's own resolver (the UI's "Unsynced") on the demo graph
        key: "has a new code version"
        for key in ("video/raw", "video/chunks", "video/transcript", "video/summary", "channel/report")
    }

    _materialize(bumped, workdir, instance, "video/raw")
    evaluations = _run_checks(bumped, workdir, instance)
    assert evaluations[("video/faces", "metaxy_up_to_date")].passed  # frames only: nothing to do
    assert evaluations[("video/faces", "metaxy_no_orphans")].passed
    transcript = evaluations[("video/transcript", "metaxy_up_to_date")]
    assert not transcript.passed and _counts(transcript) == (CLIPS, 0, 0)  # every clip under the new version
    assert "video/faces" not in _unsynced(bumped, instance)  # raw's rewrite kept its data version

    _materialize(bumped, workdir, instance)
    assert _unsynced(bumped, instance) == {}
    assert all(e.passed for e in _run_checks(bumped, workdir, instance).values())


def _unsynced(features: MultimodalFeatures, instance: dg.DagsterInstance) -> dict[str, str]:
    """``{asset: root cause}`` of the demo assets Dagster's stale-status resolver reports STALE."""
    from dagster._core.definitions.data_version import StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver

    with features.graph.use():
        assets = build_assets(features)
    resolver = get_stale_status_resolver(instance, assets)
    out = {}
    for key in (k for a in assets for k in a.keys):
        if resolver.get_status(key) == StaleStatus.STALE:
            out[key.to_user_string()] = "; ".join(c.reason for c in resolver.get_stale_root_causes(key))
    return out
