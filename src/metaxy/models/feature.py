"""``BaseFeature``: define a feature as a pydantic class; defining it registers it in the graph.

Example:
    >>> import metaxy as mx
    >>> g = mx.FeatureGraph()
    >>> with g.use():
    ...     class Clip(mx.BaseFeature, spec=mx.FeatureSpec(key="doc/clip", id_columns=["clip_id"])):
    ...         clip_id: str
    >>> Clip.spec().key, Clip.feature_version()
    (FeatureKey('doc/clip'), '...')
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic._internal._model_construction import ModelMetaclass

from metaxy.errors import FeatureDefinitionError
from metaxy.models.feature_spec import FeatureSpec

if TYPE_CHECKING:
    from metaxy.models.graph import FeatureGraph

__all__ = ["BaseFeature", "FeatureConfig", "detect_project"]


class FeatureConfig(TypedDict, total=False):
    """Class-level configuration for integrations (``ext``: per-integration settings)."""

    ext: dict[str, Any]


def detect_project(module_name: str, namespace: dict[str, Any] | None = None) -> str:
    """The project a feature class belongs to.

    ``__metaxy_project__`` in the class body wins; else the top-level package's
    ``__metaxy_project__`` (must be a string); else the top-level package name.
    """
    if namespace and "__metaxy_project__" in namespace:
        return str(namespace["__metaxy_project__"])
    top = module_name.split(".")[0]
    package = sys.modules.get(top)
    value = getattr(package, "__metaxy_project__", None) if package is not None else None
    if value is not None:
        if not isinstance(value, str):
            raise TypeError(
                f"Package '{top}' sets __metaxy_project__ to {value!r} ({type(value).__name__}). "
                "Hint: __metaxy_project__ must be a string naming the project."
            )
        return value
    return top


class _FeatureMeta(ModelMetaclass):
    """Pops the ``spec=`` class keyword and registers concrete features into the active graph."""

    def __new__(
        mcs,
        cls_name: str,
        bases: tuple[type[Any], ...],
        namespace: dict[str, Any],
        spec: FeatureSpec | None = None,
        **kwargs: Any,
    ) -> type:
        if spec is not None and not isinstance(spec, FeatureSpec):
            raise FeatureDefinitionError(
                f"Feature class {cls_name} got spec={spec!r}. Hint: pass spec=FeatureSpec(key=..., id_columns=[...])."
            )
        cls = super().__new__(mcs, cls_name, bases, namespace, **kwargs)
        project = None
        if spec is not None:
            project = detect_project(namespace.get("__module__", cls.__module__), namespace)
        type.__setattr__(cls, "_metaxy_spec", spec)
        type.__setattr__(cls, "_metaxy_project", project)
        if spec is not None:
            from metaxy.models.graph import current_graph

            graph = current_graph()
            type.__setattr__(cls, "graph", graph)
            graph.add_feature(cls)
        return cls


class BaseFeature(BaseModel, metaclass=_FeatureMeta):
    """Base class of features. ``class X(BaseFeature, spec=FeatureSpec(...))`` registers ``X``.

    Without ``spec`` the class is an abstract base for sharing columns. Instances are frozen
    pydantic models (``extra="forbid"``) unless the class sets ``model_config`` itself.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    graph: ClassVar[FeatureGraph]
    feature_config: ClassVar[FeatureConfig] = {}
    _metaxy_spec: ClassVar[FeatureSpec | None]
    _metaxy_project: ClassVar[str | None]

    metaxy_provenance_by_field: dict[str, str] = {}
    metaxy_provenance: str | None = None
    metaxy_feature_version: str | None = None
    metaxy_project_version: str | None = None
    metaxy_data_version_by_field: dict[str, str] | None = None
    metaxy_data_version: str | None = None
    metaxy_created_at: datetime | None = None
    metaxy_updated_at: datetime | None = None
    metaxy_deleted_at: datetime | None = None
    metaxy_materialization_id: str | None = None

    @model_validator(mode="after")
    def _id_columns_are_fields(self) -> BaseFeature:
        spec = type(self).spec()
        missing = [c for c in spec.id_columns if c not in type(self).model_fields]
        if missing:
            available = sorted(f for f in type(self).model_fields if not f.startswith("metaxy_"))
            raise ValueError(
                f"ID columns {missing} specified in spec are not present in model fields of "
                f"{type(self).__name__}. Available fields: {available}. Hint: declare them as fields "
                "of the class."
            )
        return self

    @classmethod
    def spec(cls) -> FeatureSpec:
        """The feature's spec. Abstract bases (no ``spec=``) raise ``FeatureDefinitionError``."""
        spec = cls.__dict__.get("_metaxy_spec")
        if spec is None:
            raise FeatureDefinitionError(
                f"{cls.__name__} is an abstract feature base (defined without spec=). "
                "Hint: subclass it with `spec=FeatureSpec(...)`."
            )
        return spec

    @classmethod
    def is_abstract(cls) -> bool:
        return cls.__dict__.get("_metaxy_spec") is None

    @classmethod
    def metaxy_project(cls) -> str:
        cls.spec()
        return cls.__dict__["_metaxy_project"]

    @classmethod
    def table_name(cls) -> str:
        return cls.spec().table_name()

    @classmethod
    def feature_version(cls) -> str:
        return cls.graph.get_feature_version(cls.spec().key)

    @classmethod
    def feature_spec_version(cls) -> str:
        return cls.spec().feature_spec_version

    @classmethod
    def provenance_by_field(cls) -> dict[str, str]:
        """The static per-field versions ``{field key string: field version}``."""
        return cls.graph.get_feature_version_by_field(cls.spec().key)

    @classmethod
    def feature_definition(cls) -> Any:
        return cls.graph.get_feature_definition(cls.spec().key)

# Documented aliases hosted here: see metaxy._compat.ALIASES.
from metaxy._compat import alias_hooks  # noqa: E402

__getattr__, __dir__ = alias_hooks(__name__)
