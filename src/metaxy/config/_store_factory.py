"""Building a metadata store from a ``StoreConfig`` entry.

The contract with store classes: a store class has the classmethods ``config_model()``
(returning a pydantic model of its options) and ``from_config(config_obj, **kwargs)``. The store
classes live in ``metaxy.metadata_store``; nothing here imports them, so ``import metaxy.config``
stays light and store drivers are only imported when a store is built.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from metaxy.config._checks import store_setting_problems
from metaxy.config._masking import config_validation_error
from metaxy.config._store_config import StoreConfig
from metaxy.errors import InvalidConfigError

__all__ = ["build_store", "config_context", "import_store_class"]


def config_context(config_file: Path | None) -> str:
    """The sentence every store error carries: where the settings came from."""
    source = f"config file '{config_file}'" if config_file else "no config file (settings from code/env)"
    return (
        f"[{source}; note that METAXY_* environment variables such as METAXY_STORE and "
        "METAXY_STORES__<NAME>__TYPE override the file]"
    )


def _fail(message: str, hint: str, config_file: Path | None) -> InvalidConfigError:
    return InvalidConfigError(f"{message} {config_context(config_file)}. Hint: {hint}")


def import_store_class(name: str, store_config: StoreConfig, config_file: Path | None) -> type:
    """Resolve ``stores.<name>.type`` to a class.

    Args:
        name: The store name (for messages).
        store_config: The store entry.
        config_file: The config file the entry came from (for messages).

    Returns:
        The store class.

    Raises:
        InvalidConfigError: The import path cannot be imported, or does not name a class.
    """
    if isinstance(store_config.type, type):
        return store_config.type
    path = store_config.type.strip()
    module_name, sep, attr = path.replace(":", ".").rpartition(".")
    hint = (
        "use the full import path of the store class, e.g. "
        '"metaxy.ext.duckdb.DuckDBMetadataStore", and check that its extra is installed.'
    )
    if not sep or not module_name:
        raise _fail(f"Store '{name}' has type '{path}', which is not a module path.", hint, config_file)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise _fail(
            f"Store '{name}': could not import module '{module_name}' for type '{path}' ({type(exc).__name__}: {exc}).",
            hint,
            config_file,
        ) from exc
    try:
        obj = getattr(module, attr)
    except AttributeError as exc:
        raise _fail(
            f"Store '{name}': module '{module_name}' has no attribute '{attr}' (type '{path}').",
            hint,
            config_file,
        ) from exc
    if not isinstance(obj, type):
        raise _fail(f"Store '{name}': type '{path}' is a {type(obj).__name__}, not a class.", hint, config_file)
    return obj


def _algorithm_name(value: Any) -> str:
    raw = getattr(value, "value", value)
    return str(raw).lower()


def _decode_json_strings(options: dict[str, Any], error: ValidationError) -> dict[str, Any] | None:
    """Environment variables deliver lists and tables as JSON text; decode the fields that failed."""
    decoded = dict(options)
    changed = False
    for err in error.errors():
        loc = err.get("loc") or ()
        field = loc[0] if loc else None
        raw = decoded.get(field) if isinstance(field, str) else None
        if isinstance(field, str) and isinstance(raw, str) and raw.strip()[:1] in ("[", "{"):
            try:
                decoded[field] = json.loads(raw)
                changed = True
            except json.JSONDecodeError:
                continue
    return decoded if changed else None


def _validate_options(name: str, store_cls: type, options: dict[str, Any], config_file: Path | None) -> BaseModel:
    model: type[BaseModel] = store_cls.config_model()  # type: ignore[attr-defined]
    error: InvalidConfigError | None = None
    try:
        validated = model.model_validate(options)
    except ValidationError as exc:
        retry = _decode_json_strings(options, exc)
        if retry is not None:
            try:
                validated = model.model_validate(retry)
            except ValidationError:
                retry = None
        if retry is None:
            # Built outside this block so that pydantic's error (which echoes inputs) is not chained.
            error = config_validation_error(
                exc,
                subject=f"Store '{name}' ({store_cls.__name__}) has invalid config",
                context=config_context(config_file),
                env_prefix="METAXY_",
                env_loc=("stores", name, "config"),
                hint=f"fix [stores.{name}.config]; valid options are: {', '.join(sorted(model.model_fields))}.",
            )
    if error is not None:
        raise error
    problems = store_setting_problems(validated.model_dump())
    if problems:
        raise _fail(
            f"Store '{name}' ({store_cls.__name__}) has invalid config: {'; '.join(problems)}.",
            f"fix [stores.{name}.config].",
            config_file,
        )
    return validated


def build_store(
    name: str,
    store_config: StoreConfig,
    *,
    config_file: Path | None,
    auto_create_tables: bool,
    expected_type: type | None = None,
    **kwargs: Any,
) -> Any:
    """Instantiate the store described by one store entry.

    Args:
        name: The store name; passed as ``name`` when the store's config model has that field.
        store_config: The store entry.
        config_file: The file the entry came from (for messages).
        auto_create_tables: The global setting, injected when the store's config model has an
            ``auto_create_tables`` field and the entry does not set it.
        expected_type: Raise unless the store class is a subclass of this.
        **kwargs: Passed to the store's ``from_config``.

    Returns:
        The store instance (not opened).

    Raises:
        InvalidConfigError: The class cannot be imported, is not a store class or not of
            ``expected_type``, its config does not validate, construction fails, or the store
            does not use the configured ``hash_algorithm``.
    """
    store_cls = import_store_class(name, store_config, config_file)
    if not callable(getattr(store_cls, "config_model", None)) or not callable(getattr(store_cls, "from_config", None)):
        raise _fail(
            f"Store '{name}': {store_config.type_path} is not a metadata store class "
            "(it has no config_model()/from_config()).",
            "point `type` at a MetadataStore subclass.",
            config_file,
        )
    if expected_type is not None and not issubclass(store_cls, expected_type):
        raise _fail(
            f"Store '{name}' is a {store_cls.__name__} ({store_config.type_path}), "
            f"but a {expected_type.__name__} was expected.",
            f"configure a {expected_type.__name__} under [stores.{name}], or ask for another store name.",
            config_file,
        )

    options = dict(store_config.config)
    model: type[BaseModel] = store_cls.config_model()  # type: ignore[attr-defined]
    if "name" in model.model_fields and "name" not in options:
        options["name"] = name
    if "auto_create_tables" in model.model_fields and options.get("auto_create_tables") is None:
        options["auto_create_tables"] = auto_create_tables
    config_obj = _validate_options(name, store_cls, options, config_file)

    try:
        store = store_cls.from_config(config_obj, **kwargs)  # type: ignore[attr-defined]
    except Exception as exc:
        raise _fail(
            f"Store '{name}' ({store_cls.__name__}) could not be created: {type(exc).__name__}: {exc}.",
            f"check the options in [stores.{name}.config] and that the backend is reachable.",
            config_file,
        ) from exc

    configured = kwargs.get("hash_algorithm", options.get("hash_algorithm"))
    if configured is not None:
        actual = getattr(store, "hash_algorithm", None)
        if actual is None or _algorithm_name(actual) != _algorithm_name(configured):
            raise _fail(
                f"Store '{name}' ({store_cls.__name__}) was configured with hash_algorithm "
                f"'{_algorithm_name(configured)}' but uses '{_algorithm_name(actual)}'.",
                f"this store class ignores `hash_algorithm`; remove it from [stores.{name}.config] "
                "or fix the store's from_config().",
                config_file,
            )
    return store
