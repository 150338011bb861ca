"""``mx graph render`` and ``mx graph-diff render``: draw the feature graph and what changed in it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import cyclopts
from rich.text import Text

from ._context import session
from ._errors import CliError
from ._output import console, emit_json, note

__all__ = ["graph_app", "graph_diff_app"]

graph_app = cyclopts.App(name="graph", help="Render the feature graph.", version_flags=[])
graph_diff_app = cyclopts.App(name="graph-diff", help="Compare two versions of the feature graph.", version_flags=[])

Direction = Literal["TB", "LR"]


def _write(text: str, output: Path | None) -> None:
    if output is None:
        console().print(Text(text.rstrip("\n")), soft_wrap=True)
        return
    output.write_text(text)
    note(f"Wrote {output}")


@graph_app.command(name="render")
def render(
    *,
    format: Annotated[
        Literal["terminal", "mermaid", "graphviz"], cyclopts.Parameter(name=["--format", "-f"])
    ] = "terminal",
    output: Annotated[Path | None, cyclopts.Parameter(name=["--output", "-o"])] = None,
    snapshot: str | None = None,
    store: str | None = None,
    feature: str | None = None,
    up: int | None = None,
    down: int | None = None,
    minimal: Annotated[bool, cyclopts.Parameter(negative="")] = False,
    verbose: Annotated[bool, cyclopts.Parameter(name=["--verbose", "-v"], negative="")] = False,
    show_fields: bool = True,
    show_feature_versions: bool = True,
    show_field_versions: bool = False,
    show_code_versions: bool = False,
    show_projects: bool = False,
    hash_length: int = 8,
    direction: Direction = "TB",
    title: str | None = None,
) -> None:
    """Render the feature graph as an indented text tree, a Mermaid flowchart or a Graphviz DOT graph.

    Parameters
    ----------
    format
        ``terminal`` (text), ``mermaid`` or ``graphviz`` (DOT).
    output
        Write to this file instead of stdout.
    snapshot
        Render a pushed project version (see ``mx history``) instead of the current code.
    store
        The store holding --snapshot (default: the configured default store).
    feature
        Focus on this feature (with --up / --down).
    up
        With --feature: how many levels of upstream features to include (default: all).
    down
        With --feature: how many levels of dependent features to include (default: all).
    minimal
        Only feature keys: no fields, no versions.
    verbose
        Everything: field versions, code versions and projects.
    show_fields
        List each feature's fields.
    show_feature_versions
        Show feature versions.
    show_field_versions
        Show field versions.
    show_code_versions
        Show fields' code versions.
    show_projects
        Show each feature's project.
    hash_length
        Characters of each version to show (0 for the full hash).
    direction
        Layout direction of Mermaid/Graphviz output: ``TB`` (top to bottom) or ``LR``.
    title
        A title for the rendering.
    """
    from metaxy.inspect import RenderOptions, focus, render_graph

    from .features import _graph_for

    if (up is not None or down is not None) and feature is None:
        raise CliError(
            "--up and --down need --feature. Hint: name the feature to focus on.", code="MISSING_REQUIRED_FLAG"
        )
    if hash_length < 0:
        raise CliError(
            f"--hash-length must be 0 or more, got {hash_length}. Hint: 0 shows full hashes.", code="INVALID_VALUE"
        )
    graph, keys, _ = _graph_for(snapshot, store)
    if feature is not None:
        keys = focus(graph, keys, feature, up, down)
    opts = RenderOptions(
        show_fields=show_fields and not minimal,
        show_feature_versions=show_feature_versions and not minimal,
        show_field_versions=(show_field_versions or verbose) and not minimal,
        show_code_versions=(show_code_versions or verbose) and not minimal,
        show_projects=show_projects or verbose,
        hash_length=hash_length or None,
        direction=direction,
        title=title,
    )
    with graph.use():
        _write(render_graph(graph, keys, format, opts), output)


def _resolve_side(name: str, st: Any) -> tuple[Any, str]:
    from metaxy.metadata_store import SystemTableStorage

    if name == "current":
        return session.graph(), "current"
    storage = SystemTableStorage(st)
    project = session.graph().project if session.cfg.project is None else session.cfg.project
    if name == "latest":
        snaps = storage.read_graph_snapshots(project=project)
        if snaps.height == 0:
            raise CliError(
                f"Nothing was pushed for project '{project}' to {st.display()}. Hint: run `mx push` first.",
                code="NO_SNAPSHOT",
            )
        name = snaps["metaxy_project_version"][0]
    return storage.load_graph_from_snapshot(name, project=project), name


@graph_diff_app.command(name="render")
def diff_render(
    from_version: str = "latest",
    to_version: str = "current",
    /,
    *,
    store: str | None = None,
    format: Annotated[Literal["terminal", "json", "mermaid"], cyclopts.Parameter(name=["--format", "-f"])] = "terminal",
    output: Annotated[Path | None, cyclopts.Parameter(name=["--output", "-o"])] = None,
) -> None:
    """Show what changed between two graph versions: features added, removed and changed, with field versions.

    Parameters
    ----------
    from_version
        ``latest`` (the last pushed snapshot, default), ``current`` (the code) or a pushed project version.
    to_version
        The same choices; default ``current``.
    store
        The store holding the snapshots (default: the configured default store).
    format
        ``terminal``, ``json`` or ``mermaid`` (the current graph with changes highlighted).
    output
        Write to this file instead of stdout.
    """
    from metaxy.inspect import diff_graphs

    st = session.store(store)
    with st.open("r"):
        old, old_label = _resolve_side(from_version, st)
        new, new_label = _resolve_side(to_version, st)
    project = session.cfg.project
    old_keys = old.list_features(project) if project else old.list_features(only_current_project=False)
    new_keys = new.list_features(project) if project else new.list_features(only_current_project=False)
    with new.use():
        diff = diff_graphs(old, new, keys=set(old_keys) | set(new_keys))
    if format == "json":
        data = {"from": old_label, "to": new_label, **diff.to_dict()}
        if output is None:
            emit_json(data)
        else:
            import json

            _write(json.dumps(data, indent=2), output)
        return
    if format == "mermaid":
        _write(_diff_mermaid(old, new, diff), output)
        return
    lines = [f"Graph diff {old_label} → {new_label}"]
    if diff.is_empty:
        lines.append("  no changes")
    lines += [f"  + {k}" for k in diff.added]
    lines += [f"  - {k}" for k in diff.removed]
    for ch in diff.changed:
        lines.append(f"  ~ {ch.feature}: {ch.old_version} → {ch.new_version}")
        for f in ch.fields:
            if f.status == "changed":
                code = (
                    f" (code {f.old_code_version} → {f.new_code_version})"
                    if f.old_code_version != f.new_code_version
                    else ""
                )
                lines.append(f"      ~ {f.field}: {f.old_version} → {f.new_version}{code}")
            else:
                sign = "+" if f.status == "added" else "-"
                lines.append(f"      {sign} {f.field}")
    _write("\n".join(lines) + "\n", output)


def _diff_mermaid(old: Any, new: Any, diff: Any) -> str:
    from metaxy.inspect.graph_view import _node_id

    changed = {c.feature for c in diff.changed}
    out = ["flowchart TB"]
    keys = sorted(
        {*new.list_features(only_current_project=False), *old.list_features(only_current_project=False)}, key=str
    )
    for key in keys:
        name = key.to_string()
        mark = "+ " if name in diff.added else "- " if name in diff.removed else "~ " if name in changed else ""
        out.append(f'    {_node_id(key)}["{mark}{name}"]')
    for graph in (new, old):
        for key in graph.list_features(only_current_project=False):
            for dep in graph.get_feature_definition(key).spec.deps:
                edge = f"    {_node_id(dep.feature)} --> {_node_id(key)}"
                if edge not in out:
                    out.append(edge)
    out.append("    classDef added fill:#e6ffed,stroke:#2ea043")
    out.append("    classDef removed fill:#ffebe9,stroke:#cf222e,stroke-dasharray: 4")
    out.append("    classDef changed fill:#fff8c5,stroke:#bf8700")
    for cls, names in (("added", diff.added), ("removed", diff.removed), ("changed", sorted(changed))):
        ids = [_node_id(k) for k in keys if k.to_string() in names]
        if ids:
            out.append(f"    class {','.join(ids)} {cls}")
    return "\n".join(out) + "\n"
