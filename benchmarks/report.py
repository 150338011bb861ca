"""Result types, performance targets and the markdown report of ``benchmarks/run.py``."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

GIB = 1024**3
MIB = 1024**2

# Targets (see benchmarks/README.md).
RATIO_LIMIT_UP_TO_1M = 1.5
RATIO_LIMIT_ABOVE_1M = 2.0
LATENCY_N, LATENCY_SCENARIO, LATENCY_LIMIT_MS = 10_000, "simple", 40.0
RSS_N, RSS_SCENARIO, RSS_LIMIT_BYTES = 10_000_000, "wide", 3 * GIB

TARGETS_TEXT = (
    f"- ratio metaxy/bound ≤ {RATIO_LIMIT_UP_TO_1M} for N ≤ 1M, ≤ {RATIO_LIMIT_ABOVE_1M} above (10M)",
    f"- metaxy ≤ {LATENCY_LIMIT_MS:.0f} ms total for a {LATENCY_N // 1000}k resolve "
    f"({LATENCY_SCENARIO} graph; the bound alone needs ~44 ms for wide 10k stale, "
    "so the wide graph is held to the ratio only)",
    f"- metaxy peak RSS of the {RSS_N // 1_000_000}M {RSS_SCENARIO} run (seeding included) ≤ "
    f"{RSS_LIMIT_BYTES / GIB:.0f} GiB",
)


@dataclass(frozen=True)
class Cell:
    scenario: str
    n: int
    phase: str
    rounds: int


@dataclass(frozen=True)
class SideResult:
    """One side (metaxy or bound) of a cell: timings, or an error; peak RSS either way."""

    median_ms: float | None = None
    times_ms: list[float] = field(default_factory=list)
    peak_rss: int | None = None
    error: str | None = None
    library: str | None = None  # which metaxy the worker loaded


@dataclass(frozen=True)
class Check:
    label: str
    passed: bool


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    ours: SideResult | None  # None with --only-bound
    bound: SideResult

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.ours.median_ms is None or not self.bound.median_ms:
            return None
        return self.ours.median_ms / self.bound.median_ms

    def errors(self) -> list[str]:
        sides = (("metaxy", self.ours), ("bound", self.bound))
        return [f"{name}: {side.error}" for name, side in sides if side is not None and side.error]

    def checks(self) -> list[Check]:
        """The targets that apply to this cell (none without a metaxy timing)."""
        ours, c = self.ours, self.cell
        if ours is None or ours.median_ms is None:
            return []
        checks = []
        if self.ratio is not None:
            limit = RATIO_LIMIT_UP_TO_1M if c.n <= 1_000_000 else RATIO_LIMIT_ABOVE_1M
            checks.append(Check(f"ratio ≤ {limit}", self.ratio <= limit))
        if c.n == LATENCY_N and c.scenario == LATENCY_SCENARIO:
            checks.append(Check(f"≤ {LATENCY_LIMIT_MS:.0f} ms", ours.median_ms <= LATENCY_LIMIT_MS))
        if c.n == RSS_N and c.scenario == RSS_SCENARIO and ours.peak_rss is not None:
            checks.append(Check(f"RSS ≤ {RSS_LIMIT_BYTES / GIB:.0f} GiB", ours.peak_rss <= RSS_LIMIT_BYTES))
        return checks

    def status(self) -> str:
        if self.errors():
            return "ERROR"
        checks = self.checks()
        if not checks:
            return "-"
        failed = [ch.label for ch in checks if not ch.passed]
        return "FAIL: " + ", ".join(failed) if failed else "pass"


# ----------------------------------------------------------------- formatting


def fmt_n(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n:,}"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def fmt_rss(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / GIB:.2f} GiB" if value >= GIB else f"{value / MIB:.0f} MiB"


def _side_ms(side: SideResult | None) -> str:
    if side is None:
        return "-"
    return "error" if side.error else fmt_ms(side.median_ms)


def _side_rss(side: SideResult | None) -> str:
    return "-" if side is None else fmt_rss(side.peak_rss)


def table_row(r: CellResult) -> str:
    c = r.cell
    ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
    cols = [
        c.scenario,
        fmt_n(c.n),
        c.phase,
        _side_ms(r.ours),
        _side_ms(r.bound),
        ratio,
        _side_rss(r.ours),
        _side_rss(r.bound),
        str(c.rounds),
        r.status(),
    ]
    return "| " + " | ".join(cols) + " |"


TABLE_HEADER = (
    "| graph | N | phase | metaxy median ms | bound median ms | ratio | metaxy peak RSS | bound peak RSS "
    "| rounds | targets |\n"
    "|:--|--:|:--|--:|--:|--:|--:|--:|--:|:--|"
)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _fmt_load(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def run_metadata(
    *,
    results: Sequence[CellResult],
    store: str,
    hash_algorithm: str,
    bound_command: str,
    bound_notes: Sequence[str],
    only_bound: bool,
    wall_s: float,
    load_before: float | None,
    cold_open: bool = False,
) -> dict[str, str]:
    libraries = sorted({r.ours.library for r in results if r.ours is not None and r.ours.library})
    metaxy_side = f"store `{store}`, hash `{hash_algorithm}`" + "".join(f"; {lib}" for lib in libraries)
    if store == "duckdb":
        metaxy_side += (
            "; timed open: **cold** (idle DuckDB host instances closed first, so the open creates one)"
            if cold_open
            else "; timed open: warm (reuses the DuckDB host instance the seeding left for the same file; "
            "`--cold-open` for the first open in a process)"
        )
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores ({_cpu_model()}), {fmt_rss(_ram_bytes())} RAM, {platform.platform()}",
        "versions": ", ".join(f"{d} {_version(d)}" for d in ("duckdb", "polars", "pyarrow", "narwhals"))
        + f", Python {platform.python_version()}",
        "metaxy": "not run (--only-bound)" if only_bound else metaxy_side,
        "bound": " ".join([f"`{bound_command}`", *bound_notes]),
        "rounds per cell": ", ".join(dict.fromkeys(f"N={fmt_n(r.cell.n)}: {r.cell.rounds}" for r in results)),
        "wall time": f"{wall_s:.1f} s",
        "1-min load average": f"{_fmt_load(load_before)} before the run (above ~1 other work was competing "
        f"and timings are noisy), {_fmt_load(load_average())} after (includes the benchmark's own load)",
    }


def render(results: Sequence[CellResult], meta: dict[str, str]) -> str:
    lines = ["# metaxy `resolve_update` benchmark", ""]
    lines += [f"- **{key}**: {value}" for key, value in meta.items()]
    lines += [
        "",
        "Medians over the rounds; each round uses a fresh database in a fresh temp dir, seeded "
        "outside the timed block. Peak RSS is per cell and per side (one child process each, all rounds "
        "and seeding included).",
        "",
        "## Targets",
        "",
        *TARGETS_TEXT,
        "",
        "## Results",
        "",
        TABLE_HEADER,
    ]
    lines += [table_row(r) for r in results]
    errors = [(r.cell, e) for r in results for e in r.errors()]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {c.scenario} {fmt_n(c.n)} {c.phase}: `{' '.join(e.split())}`" for c, e in errors]
    return "\n".join(lines) + "\n"


def progress_line(r: CellResult) -> str:
    c = r.cell
    spread = ""
    if r.bound.times_ms:
        spread = f" [bound min {min(r.bound.times_ms):.1f} / max {max(r.bound.times_ms):.1f}]"
    ratio = "" if r.ratio is None else f" ratio {r.ratio:.2f}"
    return (
        f"{c.scenario:>6} {fmt_n(c.n):>5} {c.phase:<5}  metaxy {_side_ms(r.ours):>8} ms  "
        f"bound {_side_ms(r.bound):>8} ms{ratio}{spread}  {r.status()}"
    )


def summary(results: Sequence[CellResult], output: Path) -> str:
    checks = [ch for r in results for ch in r.checks()]
    failed = [(r.cell, ch) for r in results for ch in r.checks() if not ch.passed]
    errors = [(r.cell, e) for r in results for e in r.errors()]
    lines = [
        f"\nwrote {output}",
        f"{len(results)} cells, {len(checks)} target checks: {len(checks) - len(failed)} pass, "
        f"{len(failed)} fail; {len(errors)} errors",
    ]
    lines += [f"  FAIL  {c.scenario} {fmt_n(c.n)} {c.phase}: {ch.label}" for c, ch in failed]
    lines += [f"  ERROR {c.scenario} {fmt_n(c.n)} {c.phase}: {e.splitlines()[0][:200]}" for c, e in errors]
    ratios = [r.ratio for r in results if r.ratio is not None]
    if ratios:
        lines.append(f"median ratio {statistics.median(ratios):.2f}, worst {max(ratios):.2f}")
    return "\n".join(lines)
