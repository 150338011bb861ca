"""``init``: load the configuration and discover the features in one call."""

from __future__ import annotations

from pathlib import Path

from metaxy.config._model import MetaxyConfig

__all__ = ["init"]


def _load_lock_file_hook(config: MetaxyConfig) -> None:
    """Register the features pinned in ``metaxy.lock`` as external stubs in the active graph,
    before entrypoints are imported, so that real definitions replace them (spec §2.11)."""
    from metaxy.external_features import load_lock_file

    load_lock_file(config)


def init(
    config: MetaxyConfig | str | Path | None = None,
    search_parents: bool = True,
    *,
    isolated: bool = False,
) -> MetaxyConfig:
    """Set up metaxy: configuration, then lock file, then feature discovery.

    Args:
        config: A configuration to install, or the path of a config file to load. None
            discovers the config file from the current directory (see ``MetaxyConfig.load``).
        search_parents: During discovery, also look in parent directories.
        isolated: Accepted for compatibility; package entry points are always filtered by the
            configured project.

    Returns:
        The configuration now set as the global one.

    Raises:
        InvalidConfigError: The config file is missing, invalid or its ``extend`` chain is broken.
        EntrypointLoadError: A feature module or package entry point failed to import.

    Example:
        >>> import metaxy as mx
        >>> config = mx.init()  # doctest: +SKIP
    """
    del isolated  # documented as accepted-but-ignored (spec §11.5)
    if isinstance(config, MetaxyConfig):
        MetaxyConfig.set(config)
        loaded = config
    else:
        loaded = MetaxyConfig.load(config, search_parents=search_parents)
    _load_lock_file_hook(loaded)

    from metaxy.entrypoints import load_features

    load_features(loaded.entrypoints, filter_project=loaded.project)
    return loaded
