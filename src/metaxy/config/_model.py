"""``MetaxyConfig``: settings from arguments, ``METAXY_*`` environment variables and TOML."""

from __future__ import annotations

import contextvars
import json
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar, overload

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from metaxy.config._checks import config_problems, fallback_cycle
from metaxy.config._masking import SecretMaskingModel, config_validation_error, env_variable_for
from metaxy.config._store_config import StoreConfig, unknown_store_keys_message
from metaxy.config._store_factory import build_store, config_context
from metaxy.config._toml import dumps_toml, find_config_file, read_config_file
from metaxy.errors import ConfigValidationError, InvalidConfigError, MetaxyWarning

__all__ = ["CONFIG_ENV_VAR", "MetaxyConfig"]

CONFIG_ENV_VAR = "METAXY_CONFIG"
"""Environment variable naming the config file; it beats automatic discovery."""

DEFAULT_LOCK_FILE_NAME = "metaxy.lock"
CLI_THEMES = ("default", "plain")
"""Themes mx knows: ``default`` colours errors, warnings and headings on a terminal; ``plain`` never
styles. Other names are accepted (published configs may name their own) and render as ``default``."""

_ENV_PREFIX = "METAXY_"
_PROJECT_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")

StoreT = TypeVar("StoreT")
PluginT = TypeVar("PluginT", bound=BaseModel)

# The TOML data of the ``load()`` call in progress. A bare ``MetaxyConfig()`` sees None and so
# never reads a file; ``load()`` sets it around the constructor call.
_toml_data: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("metaxy_toml_data", default=None)
# The file of the ``load()`` call in progress, for error messages.
_toml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("metaxy_toml_path", default=None)
_context_config: contextvars.ContextVar[MetaxyConfig | None] = contextvars.ContextVar(
    "metaxy_context_config", default=None
)
_global_config: MetaxyConfig | None = None
_default_cache: dict[tuple[tuple[str, str], ...], MetaxyConfig] = {}


class _TomlSettingsSource(PydanticBaseSettingsSource):
    """Lowest-precedence source: the dictionary read by ``MetaxyConfig.load``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        data = _toml_data.get() or {}
        return data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        data = _toml_data.get()
        if not data:
            return {}
        known = set(self.settings_cls.model_fields)
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            warnings.warn(
                f"Ignoring unknown configuration key(s): {', '.join(unknown)}. "
                f"Hint: valid keys are {', '.join(sorted(known))}.",
                MetaxyWarning,
                stacklevel=2,
            )
        return {k: v for k, v in data.items() if k in known}


def _env_store_fields(store_name: str) -> list[str]:
    """Dotted config fields that ``METAXY_STORES__<NAME>__...`` variables set for one store."""
    prefix = f"{_ENV_PREFIX}STORES__{store_name}__".lower()
    fields = []
    for var in os.environ:
        if var.lower().startswith(prefix):
            rest = var[len(prefix) :].lower().split("__")
            fields.append(".".join(["stores", store_name, *rest]))
    return sorted(fields)


class MetaxyConfig(SecretMaskingModel, BaseSettings):
    """Metaxy's configuration.

    Values come from, highest precedence first: constructor arguments, ``METAXY_*`` environment
    variables (nested keys joined with ``__``, e.g. ``METAXY_STORES__PROD__CONFIG__ROOT_PATH``)
    and a TOML file (``metaxy.toml``, or ``[tool.metaxy]`` in ``pyproject.toml``). Only
    :meth:`load` reads a file; a bare ``MetaxyConfig()`` reads arguments and the environment.

    Invalid or meaningless settings raise :class:`~metaxy.errors.ConfigValidationError` (an
    ``InvalidConfigError`` and a ``pydantic.ValidationError``) naming each setting, its value and
    the ``METAXY_*`` variable it came from. ``repr``, ``to_toml()`` and JSON dumps mask credentials.

    Example:
        >>> config = MetaxyConfig(project="demo", stores={"dev": {"type": "my.stores.Store"}})
        >>> config.store, sorted(config.stores)
        ('dev', ['dev'])
        >>> with config.use():
        ...     MetaxyConfig.get().project
        'demo'
    """

    model_config = SettingsConfigDict(
        env_prefix=_ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        arbitrary_types_allowed=True,
    )

    project: str | None = Field(default=None, description="Project name ([A-Za-z0-9_-]+, no '/', no '__').")
    store: str = Field(default="dev", description="Name of the default store.")
    stores: dict[str, StoreConfig] = Field(default_factory=dict, description="Named store configurations.")
    entrypoints: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Modules to import for feature discovery."
    )
    hash_truncation_length: int = Field(
        default=8, ge=8, le=64, description="Length hashes are truncated to (8 to 64, the longest digest)."
    )
    auto_create_tables: bool = Field(default=False, description="Let stores create missing tables.")
    enable_map_datatype: bool = Field(
        default=False, description="Store `_by_field` columns as Map instead of Struct (experimental)."
    )
    sync: bool = Field(default=True, description="Sync external features on read/resolve.")
    locked: bool | None = Field(default=None, description="Treat external version mismatches as errors.")
    extra_features: list[dict[str, Any]] = Field(
        default_factory=list, description="Feature selections of external features to load."
    )
    metaxy_lock_path: str | None = Field(default=None, description="Lock file path, relative to the config file.")
    extend: str | None = Field(default=None, description="Parent config file this one extends.")
    ext: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Plugin configurations.")
    theme: str = Field(default="default", description=f"CLI rendering theme: {' or '.join(CLI_THEMES)}.")

    _config_file: Path | None = PrivateAttr(default=None)

    def __init__(self, /, **values: Any) -> None:
        error: InvalidConfigError | None = None
        try:
            super().__init__(**values)
        except SettingsError as exc:
            # pydantic-settings could not decode a METAXY_* variable (e.g. malformed JSON).
            error = InvalidConfigError(
                f"Invalid Metaxy configuration: {exc}. {config_context(_toml_path.get())}. "
                "Hint: METAXY_* variables that hold lists or tables must be JSON, e.g. "
                "METAXY_STORES__DEV__CONFIG__FALLBACK_STORES='[\"prod\"]'."
            )
        if error is not None:
            raise error

    @classmethod
    def _validation_error(cls, exc: ValidationError) -> ConfigValidationError:
        return config_validation_error(
            exc,
            subject="Invalid Metaxy configuration",
            context=config_context(_toml_path.get()),
            env_prefix=_ENV_PREFIX,
            hint="correct the named setting(s) in the config file, or the METAXY_* environment variable named.",
        )

    # --- sources and validation --------------------------------------------------------------

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments beat ``METAXY_*`` variables, which beat the TOML file being loaded."""
        return (init_settings, env_settings, _TomlSettingsSource(settings_cls))

    @model_validator(mode="before")
    @classmethod
    def _check_store_entries(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("stores"), dict):
            return data
        stores: dict[str, Any] = {}
        for name, entry in data["stores"].items():
            if isinstance(entry, dict):
                unknown = [str(k) for k in entry if k not in ("type", "config")]
                if unknown:
                    raise ValueError(unknown_store_keys_message(str(name), unknown))
                if "type" not in entry:
                    env_fields = _env_store_fields(str(name))
                    if env_fields:
                        warnings.warn(
                            f"Ignoring store '{name}' set by environment variables without a `type` "
                            f"({', '.join(env_fields)}). Hint: also set "
                            f"METAXY_STORES__{str(name).upper()}__TYPE, or define [stores.{name}] "
                            "with a `type` in the config file.",
                            MetaxyWarning,
                            stacklevel=2,
                        )
                        continue
            stores[name] = entry
        return {**data, "stores": stores}

    @model_validator(mode="after")
    def _check_stores(self) -> MetaxyConfig:
        problems = config_problems(self.stores, env_prefix=_ENV_PREFIX)
        if "store" in self.model_fields_set and self.stores and self.store not in self.stores:
            var = env_variable_for(("store",), _ENV_PREFIX)
            source = f" (from environment variable {var})" if var else ""
            problems.insert(
                0,
                f"`store` = {self.store!r}{source} is not a configured store (configured stores: "
                f"{', '.join(sorted(self.stores))})",
            )
        if problems:
            raise ValueError(
                f"{'; '.join(problems)} (name only configured stores; no store may fall back to itself, "
                "directly or through other stores)"
            )
        return self

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if "/" in value or "__" in value or not _PROJECT_PATTERN.match(value):
            raise ValueError(
                f"Invalid project name {value!r}: it must match [A-Za-z0-9_-]+ and contain neither '/' "
                "(reserved for feature keys) nor '__' (reserved for table names). "
                "Hint: use a name like 'my_project' or 'my-project'."
            )
        return value

    @field_validator("entrypoints", mode="before")
    @classmethod
    def _split_entrypoints(cls, value: Any) -> Any:
        # METAXY_ENTRYPOINTS may be a JSON list or a comma-separated list of modules.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    # --- loading -----------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        config_file: str | Path | None = None,
        *,
        search_parents: bool = True,
        auto_discovery_start: str | Path | None = None,
    ) -> MetaxyConfig:
        """Load the configuration and make it the global one.

        The file is ``config_file`` if given, else the path in ``METAXY_CONFIG``, else the first
        ``metaxy.toml`` (or ``pyproject.toml`` with a non-empty ``[tool.metaxy]``) found from the
        current directory (or ``auto_discovery_start``) upward. Without any file, the config comes
        from the environment and defaults. ``METAXY_*`` variables override the file. A config
        activated with :meth:`use` keeps precedence over the new global one inside its block.

        Args:
            config_file: Explicit config file path.
            search_parents: Look in parent directories during discovery.
            auto_discovery_start: Directory to start discovery from instead of the CWD.

        Returns:
            The loaded configuration (also set as the global configuration).

        Raises:
            InvalidConfigError: The file given (or in ``METAXY_CONFIG``) does not exist or is not
                valid TOML, or its ``extend`` chain is broken or circular.
            ConfigValidationError: A value is invalid (e.g. ``hash_truncation_length < 8``, a
                fallback cycle); also a ``pydantic.ValidationError``.
        """
        path: Path | None
        if config_file is not None:
            path = Path(config_file)
        elif os.environ.get(CONFIG_ENV_VAR):
            path = Path(os.environ[CONFIG_ENV_VAR])
        else:
            start = Path(auto_discovery_start) if auto_discovery_start is not None else None
            path = find_config_file(start, search_parents=search_parents)
        if path is not None:
            path = path.expanduser().resolve()
            data = read_config_file(path)
        else:
            data = {}
        token = _toml_data.set(data)
        path_token = _toml_path.set(path)
        try:
            config = cls()
        finally:
            _toml_path.reset(path_token)
            _toml_data.reset(token)
        config._config_file = path
        cls.set(config)
        return config

    # --- activation --------------------------------------------------------------------------

    @classmethod
    def get(cls) -> MetaxyConfig:
        """The active configuration.

        Returns:
            The config activated with :meth:`use` in this context, else the global config
            (:meth:`set` / :meth:`load`), else a default ``MetaxyConfig()`` (with a warning).
        """
        current = cls._active()
        if current is not None:
            return current
        warnings.warn(
            "No Metaxy configuration is set; using defaults (plus METAXY_* environment variables). "
            "Hint: call metaxy.init() or MetaxyConfig.load() at startup, or MetaxyConfig.set(config).",
            MetaxyWarning,
            stacklevel=2,
        )
        return cls()

    @classmethod
    def _active(cls) -> MetaxyConfig | None:
        context = _context_config.get()
        return context if context is not None else _global_config

    @classmethod
    def current_or_default(cls) -> MetaxyConfig:
        """The active configuration, or a default one, silently.

        Like :meth:`get` but without the warning, for library code that only needs a setting
        (e.g. ``hash_truncation_length``) and is fine with its default.

        Returns:
            The context or global configuration, else a new ``MetaxyConfig()`` (reads ``METAXY_*``).
        """
        current = cls._active()
        if current is not None:
            return current
        # Building settings parses the environment (~ms); reuse the default while METAXY_* is unchanged.
        env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("METAXY_")))
        cached = _default_cache.get(env)
        if cached is None:
            _default_cache.clear()
            cached = _default_cache[env] = cls()
        return cached

    @classmethod
    def set(cls, config: MetaxyConfig | None) -> None:
        """Make ``config`` the global configuration (None clears it).

        Args:
            config: The configuration to install.
        """
        global _global_config
        _global_config = config

    @classmethod
    def is_set(cls) -> bool:
        """Whether a configuration is active (global, or through :meth:`use`).

        Returns:
            True when :meth:`get` would return without falling back to defaults.
        """
        return cls._active() is not None

    @classmethod
    def reset(cls) -> None:
        """Clear the global configuration; contexts entered with :meth:`use` are unaffected."""
        cls.set(None)

    @contextmanager
    def use(self) -> Iterator[MetaxyConfig]:
        """Activate this configuration in the current context (thread / task) for a block.

        Yields:
            This configuration. The previous active configuration is restored on exit.

        Example:
            >>> with MetaxyConfig(project="tmp").use() as cfg:
            ...     MetaxyConfig.get() is cfg
            True
        """
        token = _context_config.set(self)
        try:
            yield self
        finally:
            _context_config.reset(token)

    # --- stores ------------------------------------------------------------------------------

    @overload
    def get_store(self, name: str | None = None, *, expected_type: None = None, **kwargs: Any) -> Any: ...

    @overload
    def get_store(self, name: str | None = None, *, expected_type: type[StoreT], **kwargs: Any) -> StoreT: ...

    def get_store(self, name: str | None = None, *, expected_type: type | None = None, **kwargs: Any) -> Any:
        """Build a configured metadata store.

        Fallback stores named in the store's config stay names; the store resolves them lazily
        through :meth:`get`.

        Args:
            name: Store name (default: ``self.store``).
            expected_type: Raise unless the store class is a subclass of this.
            **kwargs: Passed to the store class's ``from_config``.

        Returns:
            A new, unopened store instance.

        Raises:
            InvalidConfigError: No stores are configured; the name is unknown; its fallback
                stores form a cycle; the store class cannot be imported or has the wrong type;
                its config fails validation; it cannot be constructed; or it does not use the
                configured ``hash_algorithm``. The message names the config file.
        """
        store_name = name or self.store
        context = config_context(self.config_file)
        if not self.stores:
            raise InvalidConfigError(
                f"No metadata stores are configured (asked for store '{store_name}') {context}. "
                f"Hint: add a [stores.{store_name}] table with a `type` (and [stores.{store_name}.config]) "
                f"to metaxy.toml, or set METAXY_STORES__{store_name.upper()}__TYPE."
            )
        if store_name not in self.stores:
            available = ", ".join(sorted(self.stores))
            raise InvalidConfigError(
                f"Store '{store_name}' is not configured. Available stores: {available} {context}. "
                f"Hint: use one of the available names, or add [stores.{store_name}] to the config."
            )
        cycle = fallback_cycle(self.stores, store_name)
        if cycle is not None:
            raise InvalidConfigError(
                f"Fallback stores form a cycle: {' -> '.join(cycle)} {context}. "
                f"Hint: remove one of these names from a `fallback_stores` list; a store may not fall back "
                "to itself, directly or through other stores."
            )
        return build_store(
            store_name,
            self.stores[store_name],
            config_file=self.config_file,
            auto_create_tables=self.auto_create_tables,
            expected_type=expected_type,
            **kwargs,
        )

    # --- paths and plugins -------------------------------------------------------------------

    @property
    def config_file(self) -> Path | None:
        """The file this configuration was loaded from; None unless created by :meth:`load`."""
        return self._config_file

    @property
    def lock_file(self) -> Path:
        """Where the lock file lives.

        ``metaxy_lock_path`` relative to the config file's directory (default ``metaxy.lock``
        beside it); without a config file, relative to the current directory.
        """
        relative = Path(self.metaxy_lock_path or DEFAULT_LOCK_FILE_NAME).expanduser()
        base = self.config_file.parent if self.config_file is not None else Path.cwd()
        return relative if relative.is_absolute() else base / relative

    @property
    def plugins(self) -> list[str]:
        """Names of the plugins in ``ext`` whose ``enable`` is true, sorted."""
        as_bool = TypeAdapter(bool)
        enabled = []
        for name, options in self.ext.items():
            try:
                if as_bool.validate_python(options.get("enable", False)):
                    enabled.append(name)
            except ValueError:
                continue
        return sorted(enabled)

    def get_plugin(self, name: str, plugin_cls: type[PluginT]) -> PluginT:
        """Validate the ``[ext.<name>]`` table with a plugin's config model.

        Args:
            name: The plugin name (the key under ``ext``).
            plugin_cls: The plugin's pydantic config model.

        Returns:
            ``plugin_cls`` validated from ``[ext.<name>]`` (an empty table if absent).

        Raises:
            ConfigValidationError: The table does not validate against ``plugin_cls`` (an
                ``InvalidConfigError``).
        """
        options = self.ext.get(name, {})
        error: ConfigValidationError | None = None
        try:
            return plugin_cls.model_validate(options)
        except ValidationError as exc:
            # Built outside this block so that pydantic's error (which echoes inputs) is not chained.
            error = config_validation_error(
                exc,
                subject=f"Invalid [ext.{name}] plugin config for {plugin_cls.__name__}",
                context=config_context(self.config_file),
                env_prefix=_ENV_PREFIX,
                env_loc=("ext", name),
                hint=f"valid keys are {', '.join(sorted(plugin_cls.model_fields))}.",
            )
        raise error

    # --- output ------------------------------------------------------------------------------

    def to_toml(self) -> str:
        """Render the effective configuration as ``metaxy.toml`` text.

        ``None`` values are dropped. ``extend`` is left out: the output already contains what
        the extended files contributed. Credentials are masked (``***``), as in ``model_dump_json``.

        Returns:
            TOML text that :meth:`load` reads back to an equal configuration, credentials aside.
        """
        data = self.model_dump(mode="json", exclude_none=True, exclude={"extend"})
        return dumps_toml(data)
