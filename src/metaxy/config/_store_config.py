"""``StoreConfig``: one ``[stores.<name>]`` entry of the configuration."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_serializer, field_validator, model_validator

from metaxy.config._masking import SecretMaskingModel
from metaxy.config._toml import dumps_toml

__all__ = ["StoreConfig", "class_import_path", "unknown_store_keys_message"]

_STORE_KEYS = frozenset({"type", "config"})

# The field ``type`` shadows the builtin inside the class body; annotations use this alias.
_Class = type


def class_import_path(cls: type) -> str:
    """The dotted import path of a class, as written in ``stores.<name>.type``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def unknown_store_keys_message(name: str, keys: list[str]) -> str:
    """The message for store options written directly under ``[stores.<name>]``."""
    shown = ", ".join(sorted(keys))
    example = sorted(keys)[0]
    return (
        f"Store '{name}' has unknown key(s): {shown}. A store entry only takes `type` and `config`. "
        f"Hint: move store options under [stores.{name}.config], e.g. [stores.{name}.config] {example} = ..."
    )


class StoreConfig(SecretMaskingModel):
    """How to build one named metadata store.

    In TOML::

        [stores.dev]
        type = "metaxy.ext.duckdb.DuckDBMetadataStore"
        [stores.dev.config]
        database = "metadata.duckdb"
        fallback_stores = ["prod"]

    ``repr`` and JSON dumps mask credentials. Meaningless common options (``versioning_engine``,
    ``lock_timeout``, ``fallback_stores``) are refused by ``MetaxyConfig`` and by ``get_store``.

    Attributes:
        type: The store class, or its import path (``"package.module.ClassName"``).
        config: Keyword arguments validated by the store class's config model.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    type: str | _Class = Field(description="Store class or its import path.")
    config: dict[str, Any] = Field(default_factory=dict, description="Store constructor options.")

    @model_validator(mode="before")
    @classmethod
    def _reject_flat_options(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [str(k) for k in data if k not in _STORE_KEYS]
            if unknown:
                raise ValueError(unknown_store_keys_message("<name>", unknown))
        return data

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str | _Class) -> str | _Class:
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "Store `type` is empty. Hint: set it to the store class import path, "
                'e.g. type = "metaxy.ext.duckdb.DuckDBMetadataStore".'
            )
        return value

    @field_serializer("type")
    def _serialize_type(self, value: str | _Class) -> str:
        return value if isinstance(value, str) else class_import_path(value)

    @property
    def type_path(self) -> str:
        """The import path of the store class, whether ``type`` was given as a string or a class."""
        return self.type if isinstance(self.type, str) else class_import_path(self.type)

    def to_toml(self) -> str:
        """Render this entry as the body of a ``[stores.<name>]`` table.

        Returns:
            TOML text with ``type`` and a ``[config]`` table; ``None`` values are dropped and
            credentials are masked.
        """
        return dumps_toml(self.model_dump(mode="json", exclude_none=True))
