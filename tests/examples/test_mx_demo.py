"""``mx demo`` end to end: the real CLI in a subprocess, its printed counts checked against the mutation plan.

Expected counts are derived from ``--clips N`` and the documented mutation fractions (``mx demo``
deletes ``max(1, N // 20)`` clips, re-renders the audio of ``max(1, N // 10)``, the frames of
``max(1, N // 20)`` and adds ``max(1, N // 10)``), not copied from a previous run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import metaxy as mx
from metaxy._demo.features import build_features
from metaxy._demo.media import CHANNELS

# One worker runs the module: its module-scoped demo run is set up once, not once per worker.
pytestmark = pytest.mark.xdist_group("mx_demo")

BIN = Path(sys.executable).parent
N = 40
SEED = 3
PER_CLIP = ["video/raw", "video/chunks", "video/transcript", "video/faces", "video/summary"]
KEYS = [*PER_CLIP, "channel/report"]


@dataclass(frozen=True)
class Run:
    workdir: Path
    stdout: str
    stderr: str
    returncode: int
    report: dict


def _mx(
    *args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("METAXY_")}, **(env or {})}
    env["COLUMNS"] = "80"  # the demo widens its tables when not on a terminal
    return subprocess.run([str(BIN / "mx"), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def run_demo_cli(base: Path, *options: str) -> Run:
    """``mx demo`` (N clips, SEED) in ``base/demo`` with ``options`` (``--store URL``), JSON report read back."""
    workdir = base / "demo"
    args = ["demo", *options, "--workdir", str(workdir), "--clips", str(N), "--seed", str(SEED), "--json", "r.json"]
    done = _mx(*args, cwd=base)
    report = json.loads((base / "r.json").read_text()) if (base / "r.json").exists() else {}
    return Run(workdir, done.stdout, done.stderr, done.returncode, report)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_demo_cli(tmp_path_factory.mktemp("mx_demo"))


def _tables(stdout: str) -> dict[tuple[int, str], dict[str, tuple[int, ...]]]:
    """``{(round, "Plan"|"Result"): {feature: (new, stale, orphaned, ...)}}`` parsed from the printed tables."""
    tables: dict[tuple[int, str], dict[str, tuple[int, ...]]] = {}
    round_no, kind = 0, ""
    for line in stdout.splitlines():
        if m := re.search(r"Round (\d) ·", line):
            round_no = int(m.group(1))
        elif line.startswith(("Plan:", "Result:")):
            kind = line.split(":")[0]
        elif line.startswith("│") and round_no:
            cells = [c.strip() for c in line.strip("│").split("│")]
            if cells[0] in KEYS:
                numbers = tuple(int(c) for c in cells[1:5])  # new, stale, orphaned, recomputed
                tables.setdefault((round_no, kind), {})[cells[0]] = numbers
    return tables


def _changes(stdout: str) -> dict[str, int]:
    found = {}
    for label, name in (
        ("audio re-rendered", "audio"),
        ("frames re-rendered", "frames"),
        ("audio re-encoded", "reencoded"),
        ("deleted", "deleted"),
        ("added", "added"),
    ):
        m = re.search(rf"│ {label}[^│]*│\s+(\d+) │", stdout)
        assert m, f"no '{label}' row in the printed changes"
        found[name] = int(m.group(1))
    return found


def _channel(video_id: str) -> str:
    return CHANNELS[int(video_id.rsplit("_", 1)[1]) % len(CHANNELS)]


def test_demo_succeeds_and_every_check_passes(run: Run) -> None:
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("✓") == 7 and "✗" not in run.stdout
    checks = [passed for r in run.report["rounds"] for passed in r["checks"].values()]
    assert len(checks) == 3 * 15 and all(checks)  # 5 features with deps x 3 Metaxy checks, every round
    assert run.report["ok"] is True and len(run.report["rounds"]) == 3


def test_printed_changes_follow_the_mutation_fractions(run: Run) -> None:
    expected = {
        "audio": max(1, N // 10),
        "frames": max(1, N // 20),
        "reencoded": max(1, N // 10),
        "deleted": max(1, N // 20),
        "added": max(1, N // 10),
    }
    assert _changes(run.stdout) == expected
    changed = run.report["changed"]
    assert {k: len(v) for k, v in changed.items()} == expected
    existing = set(changed["audio"]) | set(changed["frames"]) | set(changed["reencoded"]) | set(changed["deleted"])
    assert len(existing) == sum(expected[k] for k in ("audio", "frames", "reencoded", "deleted"))  # disjoint sets
    assert all(int(v.rsplit("_", 1)[1]) >= N for v in changed["added"])


def test_printed_counts_per_round(run: Run) -> None:
    changed = run.report["changed"]
    a, c_audio, c_frames, r, d = (len(changed[k]) for k in ("added", "audio", "frames", "reencoded", "deleted"))
    n2 = N + a - d
    touched = {_channel(v) for k, group in changed.items() if k != "reencoded" for v in group}
    maybe = touched | {_channel(v) for v in changed["reencoded"]}
    round_2 = {
        "video/raw": (a, c_audio + c_frames + r, d),
        "video/chunks": (a, c_audio + r, d),
        "video/transcript": (a, c_audio + r, d),  # re-encoded audio: the transcripts recompute...
        "video/faces": (a, c_frames, d),  # the audio changes recompute no faces
    }
    expected_plan = {  # the summaries of re-encoded clips are planned at most: the words are known once it ran
        2: {**round_2, "video/summary": (a, c_audio + c_frames + r, d), "channel/report": (0, len(maybe), 0)},
    }
    expected = {
        1: {**{k: (N, 0, 0) for k in PER_CLIP}, "channel/report": (len(CHANNELS), 0, 0)},
        2: {  # ...with the same words: no summary or report recomputes for them (early cutoff)
            **round_2,
            "video/summary": (a, c_audio + c_frames, d),
            "channel/report": (0, len(touched), 0),
        },
        3: {  # audio decoder bump: everything on the audio path is new under its new feature version
            **{k: (n2, 0, 0) for k in PER_CLIP},
            "video/faces": (0, 0, 0),
            "channel/report": (len(CHANNELS), 0, 0),
        },
    }
    tables = _tables(run.stdout)
    for round_no, counts in expected.items():
        for kind in ("Plan", "Result"):
            printed = tables[(round_no, kind)]
            want = expected_plan.get(round_no, counts) if kind == "Plan" else counts
            assert {k: v[:3] for k, v in printed.items()} == want, (round_no, kind)
            assert all(v[3] == v[0] + v[1] for v in printed.values())  # "to recompute" = new + stale


def test_json_report_matches_the_printed_tables(run: Run) -> None:
    tables = _tables(run.stdout)
    for i, rnd in enumerate(run.report["rounds"], start=1):
        for part, kind in (("planned", "Plan"), ("actual", "Result")):
            as_json = {k: (v["new"], v["stale"], v["orphaned"]) for k, v in rnd[part].items()}
            assert as_json == {k: v[:3] for k, v in tables[(i, kind)].items()}


def test_files_carry_feature_and_data_versions(run: Run) -> None:
    changed = run.report["changed"]
    out = run.workdir / "out"
    v1 = build_features("1").graph
    v2 = build_features("2").graph

    def version(graph: mx.FeatureGraph, key: str) -> str:
        return graph.get_feature_version(mx.FeatureKey(key))

    assert version(v1, "video/faces") == version(v2, "video/faces")  # frames-only: unchanged by the bump
    t1, t2 = out / "transcript" / version(v1, "video/transcript"), out / "transcript" / version(v2, "video/transcript")
    audio_changed, frames_changed, deleted = changed["audio"][0], changed["frames"][0], changed["deleted"][0]
    assert len(list((t1 / audio_changed).glob("*.json"))) == 2  # before and after its audio changed
    assert len(list((t1 / frames_changed).glob("*.json"))) == 1  # frames do not touch transcripts
    assert len(list((t2 / audio_changed).glob("*.json"))) == 1  # recomputed under the new decoder
    assert not (t1 / deleted).exists()  # orphaned samples lose their files
    faces = out / "faces" / version(v1, "video/faces")
    assert len(list((faces / frames_changed).glob("*.json"))) == 2
    assert len(list((faces / audio_changed).glob("*.json"))) == 1


def test_mx_metadata_status_in_the_workdir_is_in_sync(run: Run) -> None:
    done = _mx("metadata", "status", "--all-features", "--format", "json", "--assert-in-sync", cwd=run.workdir)
    assert done.returncode == 0, done.stderr
    rows = {r["feature_key"]: r for r in json.loads(done.stdout)["features"]}
    clips = N + max(1, N // 10) - max(1, N // 20)
    assert rows["video/raw"]["rows"] == clips and rows["video/transcript"]["rows"] == clips
    assert rows["channel/report"]["rows"] == len(CHANNELS)
    assert {r["status"] for k, r in rows.items() if k != "video/raw"} == {"up-to-date"}


def test_existing_demo_needs_reset_and_reset_keeps_other_files(run: Run, tmp_path: Path) -> None:
    refused = _mx("demo", "--workdir", str(run.workdir), "--clips", "4", cwd=tmp_path)
    assert refused.returncode == 1
    assert "already holds a demo run" in refused.stderr and "--reset" in refused.stderr
    keep = run.workdir / "notes.txt"
    keep.write_text("mine")
    again = _mx("demo", "--workdir", str(run.workdir), "--clips", "4", "--reset", "--json", "r4.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert keep.read_text() == "mine"
    rounds = json.loads((tmp_path / "r4.json").read_text())["rounds"]
    assert rounds[0]["actual"]["video/raw"] == {"new": 4, "stale": 0, "orphaned": 0}


@pytest.mark.parametrize("clips", ["0", "-3", "3", "20001"])
def test_bad_clip_counts_are_refused(clips: str, tmp_path: Path) -> None:
    done = _mx("demo", "--workdir", str(tmp_path / "w"), "--clips", clips, cwd=tmp_path)
    assert done.returncode == 1
    assert f"--clips must be between 4 and 20000, got {clips}" in done.stderr
    assert not (tmp_path / "w").exists()


def test_python_m_examples_multimodal_is_mx_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAXY_")}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "examples.multimodal", "--clips", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env=env,
    )
    assert done.returncode == 1
    assert "--clips must be between 4 and 20000, got 2" in done.stderr


def test_unusable_workdir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = _mx("demo", "--workdir", str(tmp_path / "file" / "demo"), cwd=tmp_path)
    assert done.returncode == 1
    assert "is a file, not a directory" in done.stderr and "Hint" in done.stderr


def test_cli_import_stays_light() -> None:
    code = (
        "import sys, metaxy.cli.app; print(sorted(m for m in ('dagster', 'numpy', 'metaxy._demo') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_explore_hints_work_without_an_activated_venv(run: Run) -> None:
    """The closing hints name the venv's executables and the definitions file by absolute path."""
    hints = run.stdout[run.stdout.index("Explore the results:") :].split()
    executables = [Path(word) for word in hints if "=" not in word and word.endswith(("/mx", "/dagster"))]
    assert {p.name for p in executables} == {"mx", "dagster"}
    assert all(p.is_absolute() and p.exists() for p in executables)
    homes = [Path(word.split("=", 1)[1]) for word in hints if word.startswith("DAGSTER_HOME=")]
    assert homes == [run.workdir / "dagster"] and (run.workdir / "dagster").is_dir()  # the rounds' instance
    definitions = [Path(word) for word in hints if word.endswith("definitions.py")]
    assert definitions and all(p.is_absolute() and p.exists() for p in definitions)
