"""The ``mx`` / ``metaxy`` command line (a subset of spec §7): inspect features and stores, report
what needs recomputing, and push graph snapshots.

Startup: load the configuration (``--config-file`` or discovery from the working directory), then
import the configured feature entry points.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import cyclopts
from rich.console import Console
from rich.table import Table

from metaxy.errors import FeatureNotFoundError, MetaxyError

__all__ = ["app", "main"]

Format = Literal["plain", "json"]

app = cyclopts.App(name="mx", help="metaxy: per-sample, per-field metadata versioning.")
list_app = cyclopts.App(name="list", help="List features or stores.")
metadata_app = cyclopts.App(name="metadata", help="Inspect stored metadata.")
config_app = cyclopts.App(name="config", help="Show the configuration.")
app.command(list_app)
app.command(metadata_app)
app.command(config_app)

_state: dict[str, Any] = {}


@app.meta.default
def _startup(
    *tokens: Annotated[str, cyclopts.Parameter(show=False, allow_leading_hyphen=True)],
    config_file: Annotated[Path | None, cyclopts.Parameter(name="--config-file")] = None,
    project: Annotated[str | None, cyclopts.Parameter(name="--project")] = None,
) -> Any:
    """Load configuration and features, then run the command."""
    from metaxy.config import MetaxyConfig, init

    config = MetaxyConfig.load(config_file) if config_file else None
    cfg = init(config)
    if project:
        cfg = cfg.model_copy(update={"project": project})
        MetaxyConfig.set(cfg)
    _state["config"] = cfg
    return app(tokens)


def _console() -> Console:
    return Console(soft_wrap=True)


def _emit(rows: list[dict[str, Any]], columns: list[str], title: str, fmt: Format) -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row[c]) for c in columns))
    _console().print(table)


@app.command
def version() -> None:
    """Print the metaxy version."""
    from metaxy import __version__

    print(__version__)


@config_app.command(name="print")
def config_print(*, format: Literal["toml", "json"] = "toml") -> None:
    """Print the effective configuration."""
    cfg = _state["config"]
    print(cfg.model_dump_json(indent=2, exclude_none=True) if format == "json" else cfg.to_toml())


@list_app.command(name="features")
def list_features(*, format: Format = "plain") -> None:
    """List the features of the project with their versions."""
    import metaxy as mx

    graph = mx.current_graph()
    rows = []
    for key in graph.list_features():
        defn = graph.get_feature_definition(key)
        rows.append(
            {
                "feature": key.to_string(),
                "version": graph.get_feature_version(key),
                "fields": ", ".join(f.key.to_string() for f in defn.spec.fields),
                "deps": ", ".join(d.feature.to_string() for d in defn.spec.deps) or None,
                "project": defn.project,
            }
        )
    _emit(rows, ["feature", "version", "fields", "deps", "project"], "Features", format)


@list_app.command(name="stores")
def list_stores(*, format: Format = "plain") -> None:
    """List the configured stores (the default one marked)."""
    cfg = _state["config"]
    rows = [
        {"store": name, "type": sc.type_path, "default": "*" if name == cfg.store else ""}
        for name, sc in sorted(cfg.stores.items())
    ]
    _emit(rows, ["store", "type", "default"], "Stores", format)


@metadata_app.command(name="status")
def metadata_status(
    keys: list[str] | None = None,
    /,
    *,
    all_features: bool = False,
    store: str | None = None,
    filter: list[str] | None = None,
    assert_in_sync: bool = False,
    format: Format = "plain",
) -> None:
    """Per feature: rows stored and how many samples are new, stale or orphaned.

    Root features (which need samples to resolve) show "-" counts.
    """
    import metaxy as mx
    from metaxy.versioning.samples import count_samples, sample_columns

    if bool(keys) == all_features:
        raise _usage("Name feature keys or pass --all-features (exactly one of them).")
    graph = mx.current_graph()
    wanted = graph.list_features() if all_features else [mx.FeatureKey(k) for k in keys or []]
    st = _state["config"].get_store(store)
    rows = []
    out_of_sync = False
    with st.open("r"):
        for key in graph.topological_sort_features(wanted):
            row: dict[str, Any] = {"feature": key.to_string()}
            row["rows"] = len(st.read(key).collect()) if st.has_feature(key, check_fallback=True) else 0
            if not graph.get_feature_definition(key).spec.deps:
                row["status"] = "root feature"
            else:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        inc = st.resolve_update(key, filters={key: filter} if filter else None)
                except FeatureNotFoundError:
                    row["status"] = "upstream missing"
                    out_of_sync = True
                    rows.append(row)
                    continue
                units = sample_columns(graph.get_feature_definition(key).spec)  # parents / groups, not rows
                row.update({name: count_samples(getattr(inc, name), units) for name in ("new", "stale", "orphaned")})
                needs = row["new"] or row["stale"]
                row["status"] = "needs update" if needs else "up-to-date"
                out_of_sync |= bool(needs)
            rows.append(row)
    _emit(rows, ["feature", "rows", "new", "stale", "orphaned", "status"], f"Metadata status ({st.display()})", format)
    if assert_in_sync and out_of_sync:
        sys.exit(1)


@app.command
def push(*, store: str | None = None) -> None:
    """Record the project's feature definitions in the store's system tables."""
    from metaxy.metadata_store import SystemTableStorage

    st = _state["config"].get_store(store)
    with st.open("w"):
        result = SystemTableStorage(st).push_graph_snapshot()
    if result.already_pushed and not result.updated_features:
        print("Snapshot already recorded.", file=sys.stderr)
    elif result.updated_features:
        print(f"Updated feature information: {', '.join(result.updated_features)}", file=sys.stderr)
    else:
        print("Recorded feature graph snapshot.", file=sys.stderr)
    print(result.project_version)


@app.command
def history(*, store: str | None = None, limit: int = 20, format: Format = "plain") -> None:
    """Pushed graph snapshots, newest first."""
    from metaxy.metadata_store import SystemTableStorage

    st = _state["config"].get_store(store)
    with st.open("r"):
        frame = SystemTableStorage(st).read_graph_snapshots().head(limit)
    _emit(frame.to_dicts(), ["project", "metaxy_project_version", "recorded_at", "feature_count"], "History", format)


@app.command
def demo(
    *,
    workdir: Path | None = None,
    clips: int = 300,
    seed: int = 0,
    reset: bool = False,
    json_path: Annotated[Path | None, cyclopts.Parameter(name="--json")] = None,
) -> None:
    """Run the multimodal demo end to end: generate clips, materialize, change data and code, re-materialize.

    Parameters
    ----------
    workdir
        Where media, derived files and the DuckDB store go (default: a new temporary directory).
    clips
        How many clips to generate (4 to 20000).
    seed
        Random seed of the generated clips and of the changes.
    reset
        Wipe a previous demo in ``workdir`` first.
    json_path
        Also write the per-round counts as JSON to this file.
    """
    import tempfile

    from metaxy._demo.workdir import Workdir, check_clips

    check_clips(clips)  # bad input fails before the slow imports
    if workdir is not None:
        Workdir(workdir.expanduser().resolve()).check(reset=reset)
    try:  # the demo needs the `demo` extra; `import metaxy` and the other commands do not
        from metaxy._demo.runner import run_demo
    except ImportError as exc:
        raise _usage(
            f"mx demo needs Dagster and numpy ({exc.name} is not installed). Hint: pip install 'metaxy[demo]'."
        ) from exc

    root = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="metaxy-demo-"))
    console = _console()
    if not console.is_terminal:  # piped or captured: wide enough for the tables, whatever COLUMNS says
        console = Console(soft_wrap=True, width=max(console.width, 110))
    report = run_demo(root, clips=clips, seed=seed, reset=reset, console=console)
    if json_path is not None:
        json_path.write_text(report.to_json())
    if not report.ok:
        raise _usage("The demo's self-check failed: see the red marks above.")


class _UsageError(MetaxyError):
    pass


def _usage(message: str) -> _UsageError:
    return _UsageError(message)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``mx`` / ``metaxy``: metaxy errors become one red line and exit code 1."""
    try:
        app.meta(argv if argv is not None else sys.argv[1:])
    except MetaxyError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]Error:[/red] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
