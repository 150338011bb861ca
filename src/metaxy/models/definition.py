"""``FeatureDefinition``: the serialisable form of a feature (spec + column schema + origin)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from metaxy.models.feature_spec import FeatureSpec
from metaxy.models.keys import FeatureKey
from metaxy.versioning.hashing import sha256_hex

if TYPE_CHECKING:
    from metaxy.models.feature import BaseFeature

__all__ = ["FeatureDefinition", "schema_from_columns"]

OnVersionMismatch = Literal["warn", "error"]


def _clean_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values recursively (stored schemas are JSON without nulls)."""
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if v is None:
            continue
        out[k] = _clean_schema(v) if isinstance(v, Mapping) else v
    return out


def _call_site() -> str:
    import inspect

    for frame in inspect.stack()[2:]:
        module = frame.frame.f_globals.get("__name__", "")
        if not module.startswith("metaxy.models"):
            return f"{frame.filename}:{frame.lineno}"
    return "<unknown>"


class FeatureDefinition(BaseModel):
    """A feature as metaxy stores and compares it: spec, JSON schema of its columns, origin.

    Build one with :meth:`from_feature_class`, :meth:`from_spec` (a feature without a Python
    class), :meth:`from_stored_data` or :meth:`external` (a stub for another project's feature).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    spec: FeatureSpec
    feature_schema: dict[str, Any] = Field(default_factory=dict)
    feature_class_path: str | None = None
    project: str

    _external: bool = PrivateAttr(default=False)
    _provenance_override: dict[str, str] | None = PrivateAttr(default=None)
    _on_version_mismatch: OnVersionMismatch = PrivateAttr(default="warn")
    _source: str | None = PrivateAttr(default=None)

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not value:
            raise ValueError("FeatureDefinition.project must be non-empty. Hint: name the owning project.")
        return value

    @field_validator("feature_schema", mode="before")
    @classmethod
    def _schema(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value)
        return _clean_schema(value or {})

    # --- constructors --------------------------------------------------------------------------
    @classmethod
    def from_feature_class(cls, feature_cls: type[BaseFeature]) -> FeatureDefinition:
        """The definition of a ``BaseFeature`` subclass (docstring fills a missing description)."""
        import inspect

        spec = feature_cls.spec()
        doc = feature_cls.__dict__.get("__doc__")
        if spec.description is None and doc:
            spec = spec.model_copy(update={"description": inspect.cleandoc(doc)})
        return cls(
            spec=spec,
            feature_schema=feature_cls.model_json_schema(),
            feature_class_path=f"{feature_cls.__module__}.{feature_cls.__qualname__}",
            project=feature_cls.metaxy_project(),
        )

    @classmethod
    def from_spec(
        cls, spec: FeatureSpec, columns: Mapping[str, Any] | None = None, *, project: str
    ) -> FeatureDefinition:
        """A feature defined without a Python class: a spec plus its user columns.

        Args:
            spec: the feature spec.
            columns: ``{name: type}`` of the user columns (Python types such as ``int``/``str``,
                or Polars dtypes). Id columns missing from it are added as strings.
            project: the owning project.

        Example:
            >>> import metaxy as mx
            >>> d = FeatureDefinition.from_spec(
            ...     mx.FeatureSpec(key="audio/clip", id_columns=["clip_id"]), {"clip_id": int, "path": str},
            ...     project="demo")
            >>> sorted(d.columns)
            ['clip_id', 'path']
        """
        return cls(spec=spec, feature_schema=schema_from_columns(spec, columns or {}), project=project)

    @classmethod
    def from_stored_data(
        cls,
        feature_spec: Mapping[str, Any] | str | FeatureSpec,
        feature_schema: Mapping[str, Any] | str,
        feature_class_path: str | None,
        project: str,
        source: str | None = None,
    ) -> FeatureDefinition:
        """Rebuild a definition from what a store's system table holds (dicts or JSON strings)."""
        if isinstance(feature_spec, str):
            feature_spec = json.loads(feature_spec)
        spec = feature_spec if isinstance(feature_spec, FeatureSpec) else FeatureSpec.model_validate(feature_spec)
        defn = cls(spec=spec, feature_schema=feature_schema, feature_class_path=feature_class_path, project=project)
        defn._source = source
        return defn

    @classmethod
    def external(
        cls,
        *,
        spec: FeatureSpec,
        project: str,
        feature_schema: Mapping[str, Any] | None = None,
        provenance_by_field: Mapping[str, str] | None = None,
        on_version_mismatch: OnVersionMismatch = "warn",
        source: str | None = None,
    ) -> FeatureDefinition:
        """A stub for a feature owned by another project; a real definition replaces it on load."""
        defn = cls(spec=spec, feature_schema=dict(feature_schema or {}), project=project)
        defn._external = True
        defn._provenance_override = dict(provenance_by_field) if provenance_by_field is not None else None
        defn._on_version_mismatch = on_version_mismatch
        defn._source = source if source is not None else _call_site()
        return defn

    # --- properties ----------------------------------------------------------------------------
    @property
    def key(self) -> FeatureKey:
        return self.spec.key

    @property
    def table_name(self) -> str:
        return self.spec.key.table_name

    @property
    def id_columns(self) -> tuple[str, ...]:
        return self.spec.id_columns

    @property
    def columns(self) -> list[str]:
        """The user columns declared by the schema (system columns excluded)."""
        from metaxy.models.constants import SYSTEM_COLUMNS

        return [c for c in self.feature_schema.get("properties", {}) if c not in SYSTEM_COLUMNS]

    @property
    def is_external(self) -> bool:
        return self._external

    @property
    def has_provenance_override(self) -> bool:
        if not self._external:
            raise ValueError(
                f"Feature '{self.key}' is not external; only external features carry a provenance override. "
                "Hint: check `is_external` first."
            )
        return self._provenance_override is not None

    @property
    def provenance_by_field_override(self) -> dict[str, str] | None:
        return self._provenance_override

    @property
    def on_version_mismatch(self) -> OnVersionMismatch:
        return self._on_version_mismatch

    @property
    def source(self) -> str:
        """Where the definition came from: the given source (a call site, ``"metaxy.lock"``, a store),
        else the feature class path, else ``"?"``."""
        return self._source or self.feature_class_path or "?"

    @property
    def feature_definition_version(self) -> str:
        """SHA-256 of the (truncated) spec version ‖ the sorted JSON schema; the project is excluded."""
        return sha256_hex([self.spec.feature_spec_version, json.dumps(self.feature_schema, sort_keys=True)])


def schema_from_columns(spec: FeatureSpec, columns: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema for a class-less feature with the given user columns."""
    import pydantic

    fields: dict[str, Any] = {}
    for name, dtype in columns.items():
        fields[name] = (_python_type(dtype), ...)
    for col in spec.id_columns:
        fields.setdefault(col, (str, ...))
    model = pydantic.create_model(spec.key.to_struct_key() or "Feature", **fields)
    return model.model_json_schema()


def _python_type(dtype: Any) -> Any:
    if isinstance(dtype, type) and not _is_polars_dtype(dtype):
        return dtype
    if _is_polars_dtype(dtype):
        import polars as pl

        dt = dtype() if isinstance(dtype, type) else dtype
        if dt.is_integer():
            return int
        if dt.is_float():
            return float
        if dt == pl.Boolean:
            return bool
        if dt == pl.String:
            return str
        return Any
    if isinstance(dtype, str):
        return {"int": int, "str": str, "float": float, "bool": bool, "string": str, "integer": int}.get(dtype, Any)
    return Any


def _is_polars_dtype(dtype: Any) -> bool:
    module = getattr(dtype if isinstance(dtype, type) else type(dtype), "__module__", "")
    return module.startswith("polars")
