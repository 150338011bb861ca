"""``examples/multimodal/definitions.py`` is a working Dagster code location: load it, materialize it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg
import polars as pl
import pytest

import metaxy as mx
from metaxy._demo.media import MediaLibrary

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "examples" / "multimodal" / "definitions.py"
CLIPS = 12
KEYS = ["video/raw", "video/chunks", "video/transcript", "video/faces", "video/summary", "channel/report"]


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    """The warnings the demo itself silences (Dagster beta notices, table creation)."""
    from metaxy._demo.runner import _quiet as demo_quiet

    with demo_quiet():
        yield


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def _load(monkeypatch: pytest.MonkeyPatch, workdir: Path, audio: str | None = None) -> ModuleType:
    """Import definitions.py as Dagster would (a file, not a package), into the active graph."""
    monkeypatch.setenv("METAXY_DEMO_WORKDIR", str(workdir))
    monkeypatch.setenv("METAXY_DEMO_CLIPS", str(CLIPS))
    monkeypatch.setenv("METAXY_DEMO_SEED", "5")
    if audio is not None:
        monkeypatch.setenv("METAXY_DEMO_AUDIO_CODE_VERSION", audio)
    spec = importlib.util.spec_from_file_location("multimodal_definitions", DEFINITIONS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _materialize(module: ModuleType, instance: dg.DagsterInstance) -> dict[str, dict[str, Any]]:
    """Materialize every asset of the module's ``defs``; the metadata each feature's event carried."""
    defs: dg.Definitions = module.defs
    with module.config.use():
        assets = list(defs.assets or [])
        assert all(isinstance(a, dg.AssetsDefinition | dg.AssetSpec | dg.SourceAsset) for a in assets), assets
        materializable = [a for a in assets if isinstance(a, dg.AssetsDefinition | dg.AssetSpec | dg.SourceAsset)]
        result = dg.materialize(materializable, resources=defs.resources, instance=instance)
    assert result.success
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        md = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        out[str(md["metaxy/feature"])] = md
    return out


def _counts(md: dict[str, dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    return {k: (v["multimodal/new"], v["multimodal/stale"], v["multimodal/orphaned"]) for k, v in md.items()}


def _rows(module: ModuleType, key: str) -> pl.DataFrame:
    store = module.config.get_store()
    with module.config.use(), store:
        return store.read(key).collect().to_polars()


def test_code_location_has_one_metaxified_asset_per_feature(
    graph: mx.FeatureGraph, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = _load(monkeypatch, tmp_path / "work")
    specs = {s.key.to_user_string(): s for s in module.defs.resolve_all_asset_specs()}
    assert sorted(specs) == sorted(KEYS)
    deps = {k: sorted(d.asset_key.to_user_string() for d in s.deps) for k, s in specs.items()}
    assert deps == {
        "video/raw": [],
        "video/chunks": ["video/raw"],
        "video/transcript": ["video/raw"],
        "video/faces": ["video/raw"],
        "video/summary": ["video/faces", "video/transcript"],
        "channel/report": ["video/summary"],
    }
    for key, spec in specs.items():
        assert spec.metadata["metaxy/feature"] == key
        assert "metaxy" in spec.kinds and spec.group_name == "multimodal"
        assert spec.code_version and "metaxy:" in spec.code_version
    assert sorted(str(k) for k in graph.list_features()) == sorted(KEYS)  # registered in the active graph


def test_materialize_all_then_nothing_is_recomputed(
    graph: mx.FeatureGraph, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    module = _load(monkeypatch, tmp_path / "work")
    first = _materialize(module, instance)
    assert _counts(first) == {k: (4 if k == "channel/report" else CLIPS, 0, 0) for k in KEYS}
    assert first["video/transcript"]["dagster/row_count"] == CLIPS  # written through MetaxyIOManager

    library = MediaLibrary.open(tmp_path / "work" / "media")
    assert len(library.clips) == CLIPS  # the root asset generated the clips on the first run
    transcripts = _rows(module, "video/transcript")
    version = graph.get_feature_version(mx.FeatureKey("video/transcript"))
    for row in transcripts.iter_rows(named=True):
        path = Path(row["path"])
        assert path == tmp_path / "work" / "out" / "transcript" / version / row["video_id"] / (
            row["metaxy_provenance"] + ".json"  # the data version is the hash of what is said (early cutoff)
        )
        assert row["metaxy_data_version"] != row["metaxy_provenance"]
        assert json.loads(path.read_text())["text"].split() == library.expected_words(row["video_id"])
    chunks = _rows(module, "video/chunks")
    assert chunks["video_id"].n_unique() == CLIPS and chunks.height > CLIPS  # 1 clip -> several chunks
    assert all(Path(p).is_file() for p in chunks["path"])
    reports = _rows(module, "channel/report")
    assert reports["clips"].sum() == CLIPS

    second = _materialize(module, instance)
    assert _counts(second) == {k: (0, 0, 0) for k in KEYS}
    assert _rows(module, "video/transcript").height == CLIPS


def test_audio_code_version_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    with mx.FeatureGraph().use():
        _materialize(_load(monkeypatch, tmp_path / "work"), instance)
    with mx.FeatureGraph().use():
        bumped = _load(monkeypatch, tmp_path / "work", audio="2")
        assert bumped.AUDIO_CODE_VERSION == "2"
        counts = _counts(_materialize(bumped, instance))
    assert counts["video/faces"] == (0, 0, 0)  # frames only: nothing to do
    assert counts["video/transcript"] == (CLIPS, 0, 0)  # audio: all new under the new feature version
    assert counts["video/chunks"] == (CLIPS, 0, 0)


def test_a_corrupt_clip_fails_the_run_naming_the_file(
    graph: mx.FeatureGraph, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    module = _load(monkeypatch, tmp_path / "work")
    _materialize(module, instance)
    broken = next((tmp_path / "work" / "media").glob("*/clip_0003/audio.wav"))
    broken.write_bytes(b"not a wav file")
    with module.config.use():
        result = dg.materialize(
            list(module.defs.assets), resources=module.defs.resources, instance=instance, raise_on_error=False
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "raw_clips"
    error = failure.step_failure_data.error
    assert error is not None and f"{broken}: not a readable WAV file" in error.to_string()


def test_dagster_cli_validates_the_code_location(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAXY_", "DAGSTER_"))}
    env["METAXY_DEMO_WORKDIR"] = str(tmp_path / "work")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-f", str(DEFINITIONS)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr
