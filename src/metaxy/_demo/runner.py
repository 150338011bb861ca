"""The ``mx demo`` scenario: three Dagster runs over a generated clip library.

1. **Initial run** — generate ``clips`` clips, predict (everything is new), materialize all assets.
2. **Data changes** — add clips, re-render the *audio only* of some, the *frames only* of others,
   re-encode the audio of others (other bytes, the same words), delete a few; predict, materialize.
   Field-level lineage shows: ``video/transcript`` recomputes the added + audio-changed + re-encoded
   clips, ``video/faces`` the added + frames-changed clips, and every feature drops the deleted clips
   (orphaned). Early cutoff shows: the re-encoded clips' transcripts say the same words, so their
   data version is unchanged and ``video/summary`` recomputes none of them.
3. **Code change** — bump the code version of ``video/raw``'s ``audio`` field (a new audio decoder);
   predict, materialize. Everything downstream of ``audio`` is recomputed under its new feature
   version; ``video/faces`` recomputes nothing.

Before each run the whole cascade is predicted (``plan.predict_increments``); after it, the counts
each asset reported in its Dagster materialization are compared with the prediction (downstream of
a recomputed transcript the prediction is an upper bound: the words are only known once it ran).
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import metaxy.ext.dagster as mxd
from metaxy._demo.assets import ProgressReporter, build_assets, build_resources
from metaxy._demo.features import MultimodalFeatures, build_features
from metaxy._demo.media import MediaLibrary, scan
from metaxy._demo.plan import Counts, predict_with_bounds, upper_bounds
from metaxy._demo.workdir import DemoError, Workdir, check_clips, has_password, server_store

__all__ = ["DemoError", "DemoReport", "Mutations", "run_demo"]


@dataclass(frozen=True)
class Mutations:
    """How many clips round 2 touches, derived from the library size ``n``.

    ``deleted = max(1, n // 20)``, ``audio = max(1, n // 10)`` (audio re-rendered, frames
    untouched), ``frames = max(1, n // 20)`` (frames re-rendered, audio untouched),
    ``reencoded = max(1, n // 10)`` (audio re-encoded: other bytes, the same words) — four
    disjoint sets of existing clips — and ``added = max(1, n // 10)`` new clips.
    """

    deleted: int
    audio: int
    frames: int
    added: int
    reencoded: int = 0

    @classmethod
    def for_clips(cls, n: int) -> Mutations:
        return cls(
            deleted=max(1, n // 20),
            audio=max(1, n // 10),
            frames=max(1, n // 20),
            added=max(1, n // 10),
            reencoded=max(1, n // 10),
        )


@dataclass
class RoundReport:
    """One Dagster run: what was predicted, what each asset reported, how long it took."""

    title: str
    audio_code_version: str
    clips: int
    planned: dict[str, Counts]
    actual: dict[str, Counts]
    files: dict[str, int]
    step_seconds: dict[str, float]
    seconds: float
    checks: dict[str, bool] = field(default_factory=dict)
    """Every Metaxy asset check evaluated after the round's assets: ``{"<asset>:<check>": passed}``."""
    bounded: list[str] = field(default_factory=list)
    """Features whose planned counts are upper bounds (downstream of early cutoff)."""

    def as_planned(self, key: str) -> bool:
        planned, actual = self.planned.get(key), self.actual.get(key)
        if planned is None or actual is None:
            return planned == actual
        return upper_bounds(planned, actual) if key in self.bounded else planned == actual

    @property
    def matches(self) -> bool:
        return self.planned.keys() == self.actual.keys() and all(self.as_planned(k) for k in self.planned)


@dataclass
class DemoReport:
    """Everything the demo printed, as data (``--json``)."""

    workdir: str
    clips: int
    seed: int
    changed: dict[str, list[str]] = field(default_factory=dict)
    rounds: list[RoundReport] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.matches for r in self.rounds) and all(ok for _, ok in self.checks)

    def to_json(self) -> str:
        data = asdict(self)
        for r in data["rounds"]:
            for part in ("planned", "actual"):
                r[part] = {k: dict(zip(Counts._fields, v, strict=True)) for k, v in r[part].items()}
        data["ok"] = self.ok
        return json.dumps(data, indent=2)


class _RichProgress(ProgressReporter):
    """One progress bar per asset, advanced sample by sample."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def start(self, feature: str, total: int) -> None:
        self.tasks[feature] = self.progress.add_task(feature, total=total)

    def advance(self, feature: str) -> None:
        self.progress.advance(self.tasks[feature])


def _bars(console: Console) -> Progress:
    return Progress(
        TextColumn("  {task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
        warnings.filterwarnings("ignore", message="Creating table")
        warnings.filterwarnings("ignore", message="InitResourceContext.dagster_run is deprecated")
        yield


class _Demo:
    def __init__(self, workdir: Workdir, clips: int, seed: int, console: Console, ray: bool = False) -> None:
        self.ray = ray
        self.workdir = workdir
        self.clips = clips
        self.seed = seed
        self.console = console
        self.library = MediaLibrary.open(workdir.media, seed=seed)
        self.report = DemoReport(workdir=str(workdir.root), clips=clips, seed=seed)

    # --- one Dagster run --------------------------------------------------------------------------
    def run_round(self, title: str, audio_code_version: str, instance: dg.DagsterInstance) -> RoundReport:
        features = build_features(audio_code_version)
        store = self.workdir.config().get_store()
        samples = scan(self.workdir.media)
        predicted, bounded = predict_with_bounds(store, features.graph, {features.raw.spec().key: samples})
        planned = {f.spec().key.to_string(): predicted[f.spec().key] for f in features.all()}
        self.console.print()
        self.console.rule(f"[bold]{title}")
        self._print_counts(f"Plan: what metaxy finds new, stale or orphaned ({len(samples)} clips on disk)", planned)
        if bounded:
            self.console.print(
                f"  at most, for {', '.join(sorted(bounded))}: video/transcript's data version is what is said, "
                "known once it ran (early cutoff)"
            )
        started = time.perf_counter()
        with _bars(self.console) as bars, features.graph.use():
            assets = build_assets(features)
            result = dg.materialize(
                [*assets, *mxd.build_metaxy_asset_checks(assets)],
                resources=build_resources(self.workdir.root, progress=_RichProgress(bars), ray=self.ray),
                instance=instance,
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
                raise_on_error=False,
            )
        if not result.success:
            failure = next((e for e in result.all_events if e.is_step_failure), None)
            detail = failure.step_failure_data.error.to_string() if failure and failure.step_failure_data.error else ""
            raise DemoError(f"Dagster run failed ({title}).\n{detail}")
        seconds = time.perf_counter() - started
        actual, files, steps = self._reported(instance, result.run_id, features)
        self.workdir.write_toml(audio_code_version)
        checks = {
            f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed for e in result.get_asset_check_evaluations()
        }
        report = RoundReport(
            title, audio_code_version, len(samples), planned, actual, files, steps, seconds, checks, sorted(bounded)
        )
        self._print_result(report)
        self.report.rounds.append(report)
        return report

    def _reported(
        self, instance: dg.DagsterInstance, run_id: str, features: MultimodalFeatures
    ) -> tuple[dict[str, Counts], dict[str, int], dict[str, float]]:
        """What each asset reported in its materialization, and how long its step took."""
        actual, files, steps = {}, {}, {}
        starts: dict[str | None, float] = {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = entry.timestamp
            mat = entry.asset_materialization
            if mat is None:
                continue
            md: dict[str, Any] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
            key = str(md["metaxy/feature"])
            actual[key] = Counts(int(md["multimodal/new"]), int(md["multimodal/stale"]), int(md["multimodal/orphaned"]))
            files[key] = int(md["multimodal/files_written"])
            steps[key] = entry.timestamp - starts.get(event.step_key, entry.timestamp)
        order = [f.spec().key.to_string() for f in features.all()]
        return {k: actual[k] for k in order if k in actual}, files, steps

    # --- output --------------------------------------------------------------------------------
    def _print_counts(self, title: str, counts: dict[str, Counts]) -> None:
        table = Table(title=title, title_justify="left")
        table.add_column("feature", no_wrap=True)
        for name in ("new", "stale", "orphaned", "to recompute"):
            table.add_column(name, justify="right", no_wrap=True)
        for key, c in counts.items():
            table.add_row(key, str(c.new), str(c.stale), str(c.orphaned), str(c.recomputed))
        self.console.print(table)

    def _print_result(self, r: RoundReport) -> None:
        table = Table(title=f"Result: what each asset recomputed ({r.seconds:.1f} s)", title_justify="left")
        table.add_column("feature", no_wrap=True)
        for name in ("new", "stale", "orphaned", "recomputed", "files", "seconds", "as planned"):
            table.add_column(name, justify="right", no_wrap=True)
        for key, c in r.actual.items():
            ok = r.as_planned(key)
            table.add_row(
                key,
                str(c.new),
                str(c.stale),
                str(c.orphaned),
                str(c.recomputed),
                str(r.files.get(key, 0)),
                f"{r.step_seconds.get(key, 0.0):.2f}",
                "[green]yes[/green]" if ok else "[red]NO[/red]",
            )
        self.console.print(table)

    # --- the scenario --------------------------------------------------------------------------
    def generate(self) -> None:
        with _bars(self.console) as bars:
            task = bars.add_task("generating clips", total=self.clips)
            self.library.add(self.clips, progress=lambda: bars.advance(task))
        self.console.print(
            f"Generated {self.clips} clips (WAV + PNG frame strip each) in {self.workdir.media} (seed {self.seed})."
        )

    def mutate(self) -> Mutations:
        m = Mutations.for_clips(self.clips)
        ids = sorted(self.library.clips)
        random.Random(self.seed).shuffle(ids)
        deleted = ids[: m.deleted]
        audio = ids[m.deleted : m.deleted + m.audio]
        frames = ids[m.deleted + m.audio : m.deleted + m.audio + m.frames]
        start = m.deleted + m.audio + m.frames
        reencoded = ids[start : start + m.reencoded]
        changed = {
            "audio": self.library.change_audio(audio),
            "frames": self.library.change_frames(frames),
            "reencoded": self.library.reencode_audio(reencoded),
            "deleted": self.library.delete(deleted),
            "added": self.library.add(m.added),
        }
        self.report.changed = changed
        table = Table(title="Changes on disk", title_justify="left")
        table.add_column("change", no_wrap=True)
        table.add_column("clips", justify="right", no_wrap=True)
        table.add_column("for example")
        rows = [
            ("audio re-rendered, frames untouched", "audio"),
            ("frames re-rendered, audio untouched", "frames"),
            ("audio re-encoded, same words", "reencoded"),
            ("deleted", "deleted"),
            ("added", "added"),
        ]
        for label, name in rows:
            ids = changed[name]
            table.add_row(label, str(len(ids)), ", ".join(ids[:2]) + (", ..." if len(ids) > 2 else ""))
        self.console.print(table)
        return m

    def check(self, claim: str, ok: bool) -> None:
        self.report.checks.append((claim, ok))
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        self.console.print(f"{mark} {claim}")

    def claims(self, data: RoundReport, code: RoundReport) -> None:
        ch = self.report.changed
        added, audio, frames, deleted = (len(ch[k]) for k in ("added", "audio", "frames", "deleted"))
        reencoded = len(ch.get("reencoded", []))
        t, fa, su = data.actual["video/transcript"], data.actual["video/faces"], data.actual["video/summary"]
        self.console.print()
        self.console.rule("[bold]What this showed")
        self.check(
            f"Data changes: video/transcript recomputed exactly the {added} added + {audio} audio-changed + "
            f"{reencoded} re-encoded clips ({t.new} new + {t.stale} stale)",
            (t.new, t.stale) == (added, audio + reencoded),
        )
        self.check(
            f"Early cutoff: the {reencoded} re-encoded clips' transcripts say the same words, so video/summary "
            f"recomputed none of them, only the {audio} audio- and {frames} frames-changed clips ({su.stale} stale)",
            su.stale == audio + frames,
        )
        self.check(
            f"Data changes: video/faces recomputed none of the {audio} audio-changed clips, only the {added} added "
            f"+ {frames} frames-changed ones ({fa.new} new + {fa.stale} stale)",
            (fa.new, fa.stale) == (added, frames),
        )
        self.check(
            f"Data changes: the {deleted} deleted clips were orphaned (and soft-deleted) in every per-clip feature",
            all(c.orphaned == deleted for k, c in data.actual.items() if k != "channel/report"),
        )
        ct, cf = code.actual["video/transcript"], code.actual["video/faces"]
        self.check(
            f"Audio decoder bump: video/faces recomputed nothing ({cf.recomputed}); video/transcript recomputed all "
            f"{code.clips} clips ({ct.new} new under its new feature version)",
            cf == Counts(0, 0, 0) and ct == Counts(code.clips, 0, 0),
        )
        self.check(
            "Every run recomputed what metaxy predicted before it started (exactly; at most, downstream of a "
            "recomputed transcript)",
            all(r.matches for r in self.report.rounds),
        )
        evaluated = [passed for r in self.report.rounds for passed in r.checks.values()]
        self.check(
            f"After every run, every Metaxy asset check passed ({len(evaluated)} evaluations: up to date, no "
            "orphans, no failed samples)",
            bool(evaluated) and all(evaluated),
        )


def _explore_commands(root: Path, *, password_env: str | None = None) -> list[str]:
    """Commands that work from any directory, whether or not the venv is activated."""
    bin_dir = Path(sys.executable).parent
    mx = bin_dir / "mx" if (bin_dir / "mx").exists() else Path("mx")
    dagster = bin_dir / "dagster" if (bin_dir / "dagster").exists() else Path("dagster")
    definitions = Path(__file__).resolve().parents[3] / "examples" / "multimodal" / "definitions.py"
    lines = [f"cd {root} && {mx} metadata status --all-features"]
    if password_env:  # the workdir's metaxy.toml holds no password
        lines[0] = f"cd {root} && {password_env}=<the store's password> {mx} metadata status --all-features"
    if definitions.exists():  # a source checkout (the wheel has no examples/)
        lines.append(f"METAXY_DEMO_WORKDIR={root} DAGSTER_HOME={root / 'dagster'} {dagster} dev -f {definitions}")
    return lines


def _prepare_store(wd: Workdir, *, reset: bool) -> str:
    """Check (or, with ``reset``, empty) the demo's tables in the store; returns the store's description.

    Raises:
        DemoError: the store already holds the demo's features and ``reset`` was not given.
    """
    store = wd.config().get_store()
    if wd.server is None:
        return "an embedded DuckDB metadata store"
    keys = [f.spec().key for f in build_features().all()]
    with store.open("w"):
        present = [k for k in keys if store.has_feature(k)]
        if present and not reset:
            raise DemoError(
                f"{store.display()} already holds the demo's features ({present[0].to_string()}, ...). "
                "Hint: pass --reset to drop them and start over, or use another database."
            )
        for key in present:
            store.drop_feature_metadata(key)
    return f"a {wd.server.name} metadata store:\n{store.display()}"


def run_demo(
    workdir: Path,
    *,
    clips: int = 300,
    seed: int = 0,
    reset: bool = False,
    console: Console | None = None,
    store_url: str | None = None,
    ray: bool = False,
) -> DemoReport:
    """Run the three rounds in ``workdir`` and return what happened (with ``ray``, the per-clip
    computations run as Ray tasks on a local Ray cluster, see ``metaxy._demo.ray_work``).

    ``store_url`` (``postgresql://user:password@host:port/db``, ``chdb:///abs/dir``,
    ``clickhouse+http://...``): keep the metadata in that PostgreSQL or ClickHouse database instead of
    the workdir's embedded DuckDB file.

    Raises:
        DemoError: ``clips`` out of range, the store holds a previous demo (without ``reset``), or a
            Dagster run failed.
        DemoWorkdirError: the workdir is unusable or holds a previous demo (without ``reset``).
        BackendError: the PostgreSQL or ClickHouse store cannot be reached.
    """
    check_clips(clips)
    if store_url is not None and server_store(store_url) is None:
        raise DemoError(
            "The demo's store URL names no store it can run on. Hint: postgresql://user:password@host:5432/db, "
            "chdb:///absolute/dir or clickhouse+http://user:password@host:8123/db."
        )
    console = console or Console()
    started = time.perf_counter()
    wd = Workdir(workdir.expanduser().resolve(), store_url=store_url)
    wd.check(reset=reset)
    where = _prepare_store(wd, reset=reset)
    wd.prepare(reset=reset)
    demo = _Demo(wd, clips, seed, console, ray=ray)
    console.print(
        Panel.fit(
            "[bold]metaxy demo[/bold]: a multimodal pipeline (audio + frames)\n"
            f"as Dagster assets on {where}\n"
            f"working directory: {wd.root}",
            border_style="cyan",
        )
    )
    wd.dagster_home.mkdir(parents=True, exist_ok=True)
    # A persistent instance in the workdir: `dagster dev` with DAGSTER_HOME=<workdir>/dagster shows the rounds.
    with contextlib.ExitStack() as stack:
        if ray:
            from metaxy._demo.ray_work import local_ray

            stack.enter_context(local_ray())
        _run_rounds(demo, wd, console)
    demo.report.seconds = round(time.perf_counter() - started, 2)
    console.print()
    console.print(f"Done in {demo.report.seconds:.1f} s. Explore the results:")
    password_env = wd.server.password_env if wd.server and store_url and has_password(store_url) else None
    for line in _explore_commands(wd.root, password_env=password_env):
        console.print(f"  {line}", soft_wrap=True, highlight=False)  # copy-pasteable: never folded
    return demo.report


def _run_rounds(demo: _Demo, wd: Workdir, console: Console) -> None:
    with _quiet(), wd.config().use(), dg.DagsterInstance.local_temp(str(wd.dagster_home)) as instance:
        demo.generate()
        demo.run_round("Round 1 · initial run: every clip is new", "1", instance)
        console.print()
        console.rule("[bold]Changing the clips on disk")
        demo.mutate()
        data = demo.run_round("Round 2 · data changes: only the affected samples are recomputed", "1", instance)
        code = demo.run_round(
            "Round 3 · code change: audio decoder 1 -> 2 (code_version of field 'audio')", "2", instance
        )
        demo.claims(data, code)
