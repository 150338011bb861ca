#!/usr/bin/env python3
"""Benchmark metaxy's ``resolve_update`` against the raw-DuckDB lower bound, side by side.

For every (scenario, N, phase) cell the harness runs two child processes, one after the
other: the lower bound (``lower_bound_duckdb.py --layout append``, unmodified) and metaxy
(``run.py --worker``).  Each child seeds a fresh database per round outside the timed block
and times the resolve; the parent reads the child's peak RSS (seeding included) from
``os.wait4`` and writes a markdown report.

    python benchmarks/run.py --quick               # N = 10k, 100k; < 1 min
    python benchmarks/run.py                       # N = 10k, 100k, 1M, 10M
    python benchmarks/run.py --quick --only-bound  # just the lower bound
    python benchmarks/run.py --quick --cold-open   # time the store's first open in the process

The timed block builds a new store object and opens it.  By default that open finds the DuckDB
host instance the worker's seeding left for the same file (a process reusing its store, as a
pipeline does); ``--cold-open`` closes idle host instances first, so the timed open creates its
DuckDB instance as the bound's ``duckdb.connect`` does.

Exit code: 0 when every cell ran (targets failing included; it is a report), 1 when a cell
errored (a crash or a wrong new/stale count).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bound_worker
import report
import workload as wl

BENCH_DIR = Path(__file__).resolve().parent
FULL_NS = (10_000, 100_000, 1_000_000, 10_000_000)
QUICK_NS = (10_000, 100_000)
QUICK_ROUNDS = 3
BOUND_LAYOUT = "append"
HASHES = ("md5", "sha256")
WORKER_FLAG = "--worker"


def default_rounds(n: int) -> int:
    if n <= 100_000:
        return 5
    if n <= 1_000_000:
        return 3
    return 1


# ------------------------------------------------------------------------ stores

#: ``factory(round_dir, hash_algorithm) -> metadata store``; imports metaxy lazily.
StoreFactory = Callable[[Path, str], Any]


def _duckdb_store(round_dir: Path, hash_algorithm: str) -> Any:
    from metaxy.ext.duckdb import DuckDBMetadataStore

    return DuckDBMetadataStore(round_dir / "bench.duckdb", hash_algorithm=hash_algorithm, auto_create_tables=True)


def _delta_store(round_dir: Path, hash_algorithm: str) -> Any:
    from metaxy.ext.polars.handlers.delta import DeltaMetadataStore

    return DeltaMetadataStore(round_dir / "lake", hash_algorithm=hash_algorithm)


STORES: dict[str, StoreFactory] = {"duckdb": _duckdb_store, "delta": _delta_store}


# ----------------------------------------------------------- metaxy worker (child)


class CountMismatchError(AssertionError):
    pass


def _row_count(frame: Any) -> int:
    collect = getattr(frame, "collect", None)  # tolerate lazy frames
    return len(collect() if callable(collect) else frame)


def _seed(store: Any, feats: wl.BenchFeatures, scenario: wl.Scenario, n: int, phase: str) -> None:
    """Write the roots (and for ``stale``: the leaf, then root 0 bumped, appended)."""
    with store.open("w"):
        for root_index, frame in wl.iter_root_frames(scenario, n):
            store.write(feats.roots[root_index], frame)
            del frame
        if phase == "stale":
            increment = store.resolve_update(feats.leaf)
            store.write(feats.leaf, increment.new)
            del increment
            store.write(feats.roots[0], wl.root_frame(scenario, 0, n, bumped=True))


def _close_idle_hosts() -> None:
    """Close the DuckDB host instances kept for reopening (so the next open starts cold)."""
    from metaxy.metadata_store import _duckdb_hosts

    _duckdb_hosts.reset()


def _timed_resolve(
    factory: StoreFactory, round_dir: Path, hash_algorithm: str, leaf: type, *, cold_open: bool = False
) -> tuple[float, tuple[int, int]]:
    """The timed block: build + open the store, resolve the leaf, count new and stale rows."""
    if cold_open:
        _close_idle_hosts()
    gc.collect()
    start = time.perf_counter()
    store = factory(round_dir, hash_algorithm)
    with store.open("r"):
        increment = store.resolve_update(leaf)
        counts = (_row_count(increment.new), _row_count(increment.stale))
    elapsed_ms = (time.perf_counter() - start) * 1000
    return elapsed_ms, counts


def import_metaxy() -> str:
    """Import metaxy (falling back to the project's ``src/`` checkout); describe what was loaded."""
    if importlib.util.find_spec("metaxy") is None:
        sys.path.insert(0, str(BENCH_DIR.parent / "src"))
    import metaxy

    version = getattr(metaxy, "__version__", "?")
    return f"metaxy {version} from {Path(metaxy.__file__ or '?').parent}"


def run_metaxy_rounds(
    store_name: str,
    scenario: wl.Scenario,
    n: int,
    phase: str,
    rounds: int,
    hash_algorithm: str,
    tmpdir: str | None,
    cold_open: bool = False,
) -> dict[str, Any]:
    factory = STORES[store_name]
    expected = wl.expected_counts(n, phase)
    library = import_metaxy()
    feats = wl.define_features(scenario)
    times_ms: list[float] = []
    with feats.graph.use():
        for rnd in range(rounds):
            round_dir = Path(tempfile.mkdtemp(prefix="metaxy_bench_", dir=tmpdir))
            try:
                seed_start = time.perf_counter()
                _seed(factory(round_dir, hash_algorithm), feats, scenario, n, phase)
                seed_s = time.perf_counter() - seed_start
                ms, counts = _timed_resolve(factory, round_dir, hash_algorithm, feats.leaf, cold_open=cold_open)
            finally:
                shutil.rmtree(round_dir, ignore_errors=True)
            if counts != expected:
                raise CountMismatchError(f"(new, stale) = {counts}, expected {expected}")
            times_ms.append(ms)
            print(
                f"[metaxy {scenario.name} n={n}] {phase} round {rnd + 1}/{rounds}: {ms:.1f} ms "
                f"(seed {seed_s:.1f}s, new/stale {counts})",
                file=sys.stderr,
                flush=True,
            )
    return {
        "median_ms": statistics.median(times_ms),
        "times_ms": times_ms,
        "new_rows": expected[0],
        "stale_rows": expected[1],
        "library": library,
    }


def worker_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="run.py --worker")
    p.add_argument("--store", required=True, choices=sorted(STORES))
    p.add_argument("--scenario", required=True, choices=sorted(wl.SCENARIOS))
    p.add_argument("--n", required=True, type=int)
    p.add_argument("--phase", required=True, choices=wl.PHASES)
    p.add_argument("--rounds", required=True, type=int)
    p.add_argument("--hash", required=True)
    p.add_argument("--tmpdir")
    p.add_argument("--json-out", required=True)
    p.add_argument("--cold-open", action="store_true")
    a = p.parse_args(argv)
    try:
        result = run_metaxy_rounds(
            a.store, wl.SCENARIOS[a.scenario], a.n, a.phase, a.rounds, a.hash, a.tmpdir, cold_open=a.cold_open
        )
    except Exception as exc:  # reported as the cell's error
        Path(a.json_out).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        raise
    Path(a.json_out).write_text(json.dumps(result))
    return 0


# ------------------------------------------------------------------ parent side


@dataclass(frozen=True)
class Options:
    store: str
    hash_algorithm: str
    tmpdir: str | None
    verbose: bool
    only_bound: bool
    cold_open: bool = False


def run_child(cmd: Sequence[str], log_path: Path, verbose: bool) -> tuple[int, int]:
    """Run ``cmd`` to completion; return (exit code, peak RSS in bytes incl. its children)."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=None if verbose else log)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    rss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return proc.returncode, rss


def _tail(path: Path, lines: int = 8) -> str:
    text = path.read_text(errors="replace").strip() if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _run_side(cmd: list[str], workdir: Path, opts: Options) -> tuple[dict[str, Any], int]:
    """Run one side of a cell; return its JSON result (or ``{"error": ...}``) and peak RSS."""
    json_out, log = workdir / "result.json", workdir / "child.log"
    code, rss = run_child([*cmd, "--json-out", str(json_out)], log, opts.verbose)
    data: dict[str, Any] = json.loads(json_out.read_text()) if json_out.exists() else {}
    if code != 0 and "error" not in data:
        data = {"error": f"exit code {code}: {_tail(log) or 'see stderr'}"}
    return data, rss


def _check_counts(data: dict[str, Any], cell: report.Cell) -> str | None:
    expected_new, expected_stale = wl.expected_counts(cell.n, cell.phase)
    new = int(data.get("new_rows") or 0)
    stale = int(data.get("stale_rows") or 0)
    if (new, stale) != (expected_new, expected_stale):
        return f"(new, stale) = {(new, stale)}, expected {(expected_new, expected_stale)}"
    return None


def _side_result(data: dict[str, Any], rss: int, cell: report.Cell) -> report.SideResult:
    error = data.get("error") or _check_counts(data, cell)
    if error:
        return report.SideResult(error=str(error), peak_rss=rss)
    return report.SideResult(
        median_ms=float(data["median_ms"]),
        times_ms=list(data["times_ms"]),
        peak_rss=rss,
        library=data.get("library"),
    )


def _flags(values: dict[str, object]) -> list[str]:
    """``{"n": 10}`` -> ``["--n", "10"]``; ``None`` values are left out."""
    return [arg for key, value in values.items() if value is not None for arg in (f"--{key}", str(value))]


def bound_command(cell: report.Cell, opts: Options) -> list[str]:
    """Arguments as ``lower_bound_duckdb.py`` spells them (plural ``--scenarios`` / ``--phases``)."""
    flags = {
        "layout": BOUND_LAYOUT,
        "hash": opts.hash_algorithm,
        "n": cell.n,
        "rounds": cell.rounds,
        "scenarios": cell.scenario,
        "phases": cell.phase,
        "tmpdir": opts.tmpdir,
    }
    return [sys.executable, str(BENCH_DIR / "bound_worker.py"), *_flags(flags)]


def metaxy_command(cell: report.Cell, opts: Options) -> list[str]:
    flags = {
        "store": opts.store,
        "hash": opts.hash_algorithm,
        "n": cell.n,
        "rounds": cell.rounds,
        "scenario": cell.scenario,
        "phase": cell.phase,
        "tmpdir": opts.tmpdir,
    }
    cold = ["--cold-open"] if opts.cold_open else []
    return [sys.executable, str(Path(__file__).resolve()), WORKER_FLAG, *_flags(flags), *cold]


def bound_notes() -> list[str]:
    notes = ["(run unmodified via `bound_worker.py`, pyarrow compute warmed before stale runs"]
    if bound_worker.needs_fetch_shim(metadata.version("duckdb")):
        notes.append("+ duckdb-2 shim: `execute().fetchone()` also finishes its result")
    return [" ".join(notes) + ")"]


def bound_row(data: dict[str, Any]) -> dict[str, Any]:
    """The bound writes ``{"rows": [one row per cell], "meta": ...}``; a worker error passes through."""
    rows = data.get("rows")
    return rows[0] if rows else data


def run_side(
    cmd: list[str],
    cell: report.Cell,
    opts: Options,
    extract: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: d,
) -> report.SideResult:
    with tempfile.TemporaryDirectory(prefix="metaxy_bench_cell_") as workdir:
        data, rss = _run_side(cmd, Path(workdir), opts)
    return _side_result(extract(data), rss, cell)


def run_cell(cell: report.Cell, opts: Options) -> report.CellResult:
    bound = run_side(bound_command(cell, opts), cell, opts, extract=bound_row)
    ours = None if opts.only_bound else run_side(metaxy_command(cell, opts), cell, opts)
    return report.CellResult(cell=cell, ours=ours, bound=bound)


def plan(ns: Sequence[int], scenarios: Sequence[str], phases: Sequence[str], rounds: int | None) -> list[report.Cell]:
    return [
        report.Cell(scenario=s, n=n, phase=p, rounds=rounds or default_rounds(n))
        for n in ns
        for s in scenarios
        for p in phases
    ]


def _csv(value: str, allowed: Sequence[str]) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {list(allowed)}")
    return items


def _ns(value: str) -> list[int]:
    return [int(v.replace("_", "")) for v in value.split(",") if v.strip()]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"N = {QUICK_NS}, {QUICK_ROUNDS} rounds (under a minute)")
    p.add_argument("--n", type=_ns, help="comma-separated sizes, e.g. 10000,100000 (overrides --quick sizes)")
    p.add_argument("--rounds", type=int, help="rounds per cell (default: 5 up to 100k, 3 at 1M, 1 above)")
    p.add_argument("--scenario", default="simple,wide", type=lambda v: _csv(v, list(wl.SCENARIOS)))
    p.add_argument("--phase", default="new,stale", type=lambda v: _csv(v, wl.PHASES))
    p.add_argument("--store", default="duckdb", choices=sorted(STORES))
    p.add_argument("--hash", default="md5", choices=HASHES)
    p.add_argument("--output", type=Path, default=BENCH_DIR / "RESULTS.md")
    p.add_argument("--only-bound", action="store_true", help="run only the lower bound (no metaxy needed)")
    p.add_argument("--tmpdir", help="parent directory for the per-round databases")
    p.add_argument(
        "--cold-open",
        action="store_true",
        help="close the worker's idle DuckDB host instances before each timed open (first open in a process)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="stream the children's per-round progress")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [WORKER_FLAG]:
        return worker_main(argv[1:])
    args = parse_args(argv)
    if not bound_worker.bound_script().is_file():
        print(f"lower bound not found: {bound_worker.bound_script()} (set METAXY_BENCH_DIR)", file=sys.stderr)
        return 2
    ns = args.n or (QUICK_NS if args.quick else FULL_NS)
    cells = plan(ns, args.scenario, args.phase, args.rounds or (QUICK_ROUNDS if args.quick else None))
    opts = Options(
        store=args.store,
        hash_algorithm=args.hash,
        tmpdir=args.tmpdir,
        verbose=args.verbose,
        only_bound=args.only_bound,
        cold_open=args.cold_open,
    )
    load_before = report.load_average()
    started = time.perf_counter()
    results = []
    for cell in cells:
        result = run_cell(cell, opts)
        results.append(result)
        print(report.progress_line(result), flush=True)
    meta = report.run_metadata(
        results=results,
        store=opts.store,
        hash_algorithm=opts.hash_algorithm,
        bound_command=f"{bound_worker.bound_script()} --layout {BOUND_LAYOUT} --hash {opts.hash_algorithm}",
        bound_notes=bound_notes(),
        only_bound=opts.only_bound,
        cold_open=opts.cold_open,
        wall_s=time.perf_counter() - started,
        load_before=load_before,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report.render(results, meta))
    print(report.summary(results, args.output))
    return 1 if any(r.errors() for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
