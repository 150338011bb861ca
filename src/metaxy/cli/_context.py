"""What every command shares: the loaded configuration, the store, and feature selection."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import CliError

if TYPE_CHECKING:
    from metaxy.config import MetaxyConfig
    from metaxy.metadata_store import MetadataStore
    from metaxy.models.graph import FeatureGraph
    from metaxy.models.keys import FeatureKey

__all__ = ["Session", "load_dotenv", "session"]


@dataclass
class Session:
    """The state the startup hands to commands."""

    config: MetaxyConfig | None = None
    all_projects: bool = False
    project_override: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cfg(self) -> MetaxyConfig:
        if self.config is None:  # pragma: no cover - the startup always sets it
            raise CliError("The configuration was not loaded.", code="NO_CONFIG")
        return self.config

    def store(self, name: str | None = None) -> MetadataStore:
        """The named (or default) configured store, unopened."""
        return self.cfg.get_store(name)

    def graph(self) -> FeatureGraph:
        from metaxy.models.graph import current_graph

        return current_graph()

    def project_features(self) -> list[FeatureKey]:
        """The features of the configured (or ``--project``) project, every project with ``--all-projects``.

        Raises:
            CliError: no features are loaded, or the project matches none of them (``NO_FEATURES``).
        """
        graph = self.graph()
        everything = graph.list_features(only_current_project=False)
        if not everything:
            where = f" (config file {self.cfg.config_file})" if self.cfg.config_file else " (no config file found)"
            raise CliError(
                f"No features are loaded{where}. Hint: list the modules defining your features in "
                "`entrypoints` of metaxy.toml (or METAXY_ENTRYPOINTS), or run mx from the project directory.",
                code="NO_FEATURES",
            )
        if self.all_projects or not self.cfg.project:
            return everything
        keys = graph.list_features(self.cfg.project)
        if not keys:
            projects = sorted({graph.get_feature_definition(k).project for k in everything})
            raise CliError(
                f"Project '{self.cfg.project}' matches none of the {len(everything)} loaded features "
                f"(their projects: {', '.join(projects)}). Hint: fix `project` in metaxy.toml or --project, "
                "or pass --all-projects.",
                code="NO_FEATURES",
            )
        return keys

    def select(self, keys: list[str] | None, all_features: bool) -> list[FeatureKey]:
        """Positional feature keys or ``--all-features`` (exactly one), in topological order.

        Raises:
            CliError: both or neither given (``CONFLICTING_FLAGS`` / ``MISSING_REQUIRED_FLAG``), or a
                key is malformed (``INVALID_FEATURE_KEY``).
            FeatureNotInGraphError: a key is not a loaded feature.
        """
        from metaxy.models.keys import FeatureKey

        if keys and all_features:
            raise CliError(
                "Feature keys and --all-features are mutually exclusive. Hint: pass one of them.",
                code="CONFLICTING_FLAGS",
            )
        if not keys and not all_features:
            raise CliError(
                "No features selected. Hint: name feature keys (e.g. video/raw) or pass --all-features.",
                code="MISSING_REQUIRED_FLAG",
            )
        graph = self.graph()
        if all_features:
            return graph.topological_sort_features(self.project_features())
        parsed = []
        for raw in keys or []:
            try:
                parsed.append(FeatureKey(raw))
            except ValueError as exc:
                raise CliError(str(exc), code="INVALID_FEATURE_KEY", key=raw) from exc
        for key in parsed:
            graph.get_feature_definition(key)  # FeatureNotInGraphError lists the available keys
        return graph.topological_sort_features(parsed)


session = Session()


def load_dotenv(path: Path) -> list[str]:
    """Load ``KEY=VALUE`` lines of a ``.env`` file into the environment; existing variables win.

    Supports comments, blank lines, an ``export`` prefix and single or double quotes.
    Returns the names set.
    """
    if not path.is_file():
        return []
    loaded = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.replace("_", "").isalnum():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if name not in os.environ:
            os.environ[name] = value
            loaded.append(name)
    return loaded
