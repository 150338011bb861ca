"""``mx list`` and ``mx describe``: the features and stores of the project."""

from __future__ import annotations

from typing import Annotated, Any

import cyclopts
from rich.text import Text

from ._context import session
from ._output import Format, console, emit_json, print_table, table

__all__ = ["describe_app", "list_app"]

list_app = cyclopts.App(name="list", help="List the project's features or the configured stores.", version_flags=[])
describe_app = cyclopts.App(name="describe", help="Describe features or the feature graph in detail.", version_flags=[])

FormatOpt = Annotated[Format, cyclopts.Parameter(name=["--format", "-f"])]
VerboseOpt = Annotated[bool, cyclopts.Parameter(name=["--verbose", "-v"], negative="")]
AllFeaturesOpt = Annotated[bool, cyclopts.Parameter(name="--all-features", negative="")]


@list_app.command(name="features")
def list_features(*, format: FormatOpt = "plain", verbose: VerboseOpt = False) -> None:
    """List the features of the project (``--project``, or every project with ``--all-projects``).

    JSON: ``{"feature_count": N, "features": [{"key", "version", "project", "is_root", "source",
    "fields", "deps", ...}]}``.

    Parameters
    ----------
    format
        ``plain`` (a table) or ``json``.
    verbose
        Also show each field's code version and version, and the resolved upstream fields.
    """
    from metaxy.inspect import describe_feature

    graph = session.graph()
    keys = graph.topological_sort_features(session.project_features())
    features = []
    for key in keys:
        info = describe_feature(graph, key)
        entry: dict[str, Any] = {
            "key": info["key"],
            "version": info["version"],
            "project": info["project"],
            "is_root": not info["deps"],
            "external": info["external"],
            "source": info["class_path"],
            "id_columns": info["id_columns"],
            "deps": [d["feature"] for d in info["deps"]],
            "fields": info["fields"] if verbose else [f["key"] for f in info["fields"]],
        }
        features.append(entry)
    if format == "json":
        emit_json({"feature_count": len(features), "features": features})
        return
    rows = []
    for f in features:
        fields = (
            [f"{x['key']} (code {x['code_version']}, {x['version']})" for x in f["fields"]] if verbose else f["fields"]
        )
        rows.append([f["key"], f["version"], "\n".join(fields) if verbose else fields, f["deps"]])
    roots = sum(1 for f in features if f["is_root"])
    title = f"{len(features)} features ({roots} root, {len(features) - roots} dependent)"
    print_table(title, ["feature", "version", "fields", "deps"], rows)


@list_app.command(name="stores")
def list_stores(*, format: FormatOpt = "plain") -> None:
    """List the configured stores; the default one is marked.

    Parameters
    ----------
    format
        ``plain`` (a table) or ``json``.
    """
    cfg = session.cfg
    rows = [
        {"name": name, "type": sc.type_path, "default": name == cfg.store} for name, sc in sorted(cfg.stores.items())
    ]
    if format == "json":
        emit_json({"store_count": len(rows), "stores": rows})
        return
    print_table(
        "Stores", ["store", "type", "default"], [[r["name"], r["type"], "*" if r["default"] else ""] for r in rows]
    )


@describe_app.command(name="features")
def describe_features(
    keys: list[str] | None = None,
    /,
    *,
    all_features: AllFeaturesOpt = False,
    store: str | None = None,
    format: FormatOpt = "plain",
) -> None:
    """Describe features: versions, fields with their versions and upstream fields, deps, schema, store status.

    Parameters
    ----------
    keys
        Feature keys, e.g. ``video/raw`` (or use --all-features).
    all_features
        Describe every feature of the project.
    store
        Store whose row counts to show (default: the configured default store).
    format
        ``plain`` or ``json`` (``{"features": [...]}``).
    """
    from metaxy.inspect import describe_feature

    graph = session.graph()
    st = session.store(store)
    selected = session.select(keys, all_features)
    described = []
    with st.open("r"):
        for key in selected:
            info = describe_feature(graph, key)
            info["store"] = _store_status(st, key)
            described.append(info)
    if format == "json":
        emit_json({"features": described})
        return
    out = console()
    for info in described:
        head = Text(f"{info['key']}", style="mx.heading")
        head.append(Text(f"  version {info['version']}  project {info['project']}"))
        out.print(head)
        if info["description"]:
            out.print(Text(f"  {info['description']}"))
        out.print(Text(f"  id columns: {', '.join(info['id_columns'])}   table: {info['table']}"))
        s = info["store"]
        out.print(
            Text(
                f"  store: {s['rows']} rows ({s['store']})"
                if s["rows"] is not None
                else f"  store: no table ({s['store']})"
            )
        )
        out.print(
            table(
                None,
                ["field", "code", "version", "upstream fields"],
                [[f["key"], f["code_version"], f["version"], f["upstream"]] for f in info["fields"]],
            )
        )
        if info["deps"]:
            out.print(
                table(
                    None,
                    ["dep", "lineage", "optional", "rename", "select"],
                    [
                        [d["feature"], d["lineage"], "yes" if d["optional"] else "", _fmt_map(d["rename"]), d["select"]]
                        for d in info["deps"]
                    ],
                )
            )
        user_columns = sorted((k, v) for k, v in info["schema"].items() if not k.startswith("metaxy_"))
        if user_columns:
            out.print(table(None, ["column", "type"], user_columns))


def _fmt_map(mapping: dict[str, str] | None) -> str:
    return ", ".join(f"{a}→{b}" for a, b in (mapping or {}).items())


def _store_status(st: Any, key: Any) -> dict[str, Any]:
    if not st.has_feature(key, check_fallback=True):
        return {"store": st.display(), "rows": None}
    frame, where = st.read(key, with_store_info=True)
    return {"store": where.display(), "rows": len(frame.select(frame.columns[:1]).collect())}


@describe_app.command(name="graph")
def describe_graph(*, snapshot: str | None = None, store: str | None = None, format: FormatOpt = "plain") -> None:
    """Summarise the feature graph: feature count, depth, roots, leaves, features per project.

    Parameters
    ----------
    snapshot
        A pushed project version to describe instead of the current code (see ``mx history``).
    store
        The store holding the snapshot (default: the configured default store).
    format
        ``plain`` or ``json``.
    """
    from metaxy.inspect import describe_graph as describe

    graph, keys, label = _graph_for(snapshot, store)
    info = describe(graph, keys)
    info["source"] = label
    if format == "json":
        emit_json(info)
        return
    rows = [
        ["source", label],
        ["features", info["feature_count"]],
        ["depth", info["depth"]],
        ["roots", info["roots"]],
        ["leaves", info["leaves"]],
        ["projects", [f"{p}: {n}" for p, n in info["projects"].items()]],
    ]
    print_table("Feature graph", ["", ""], rows)


def _graph_for(snapshot: str | None, store: str | None) -> tuple[Any, list[Any], str]:
    """The current graph and the project's features, or a pushed snapshot's graph and all its features."""
    if snapshot is None:
        graph = session.graph()
        return graph, session.project_features(), "current code"
    from metaxy.metadata_store import SystemTableStorage

    st = session.store(store)
    with st.open("r"):
        graph = SystemTableStorage(st).load_graph_from_snapshot(snapshot, project=session.cfg.project)
    return graph, graph.list_features(only_current_project=False), f"snapshot {snapshot}"
