"""Configuration: ``metaxy.toml`` / ``[tool.metaxy]``, ``METAXY_*`` variables, named stores.

Example:
    >>> from metaxy.config import MetaxyConfig
    >>> config = MetaxyConfig(project="demo")
    >>> config.store
    'dev'
"""

from __future__ import annotations

from metaxy.config._init import init
from metaxy.config._model import CONFIG_ENV_VAR, MetaxyConfig
from metaxy.config._store_config import StoreConfig
from metaxy.config._toml import dumps_toml, expand_env_vars, find_config_file, read_config_file

__all__ = [
    "CONFIG_ENV_VAR",
    "MetaxyConfig",
    "StoreConfig",
    "dumps_toml",
    "expand_env_vars",
    "find_config_file",
    "init",
    "read_config_file",
]

# Documented aliases hosted here: see metaxy._compat.ALIASES.
from metaxy._compat import alias_hooks

__getattr__, __dir__ = alias_hooks(__name__)
