"""The feature model: keys, specs, definitions, the graph and static versions."""

from __future__ import annotations

from metaxy.models.definition import FeatureDefinition
from metaxy.models.feature import BaseFeature, FeatureConfig
from metaxy.models.feature_spec import (
    FeatureDep,
    FeatureDepMetadata,
    FeatureSpec,
    FeatureSpecWithIDColumns,
    IDColumns,
)
from metaxy.models.field import FieldDep, FieldSpec, SpecialFieldDep
from metaxy.models.fields_mapping import (
    AllFieldsMapping,
    DefaultFieldsMapping,
    FieldsMapping,
    FieldsMappingType,
)
from metaxy.models.graph import FeatureGraph, FeaturePlan, FieldPlan, current_graph, get_feature_by_key, graph
from metaxy.models.keys import (
    CoercibleToFeatureKey,
    CoercibleToFieldKey,
    FeatureKey,
    FieldKey,
    FQFieldKey,
    ValidatedFeatureKey,
    ValidatedFeatureKeySequence,
    ValidatedFieldKey,
    ValidatedFieldKeySequence,
    coerce_to_feature_key,
)
from metaxy.models.lineage import LineageRelationship


def __getattr__(name: str) -> object:
    """The key TypeAdapters are built on first use (see ``metaxy.models.keys``)."""
    from metaxy.models import keys

    return getattr(keys, name)


__all__ = [
    "AllFieldsMapping",
    "BaseFeature",
    "CoercibleToFeatureKey",
    "CoercibleToFieldKey",
    "DefaultFieldsMapping",
    "FQFieldKey",
    "FeatureConfig",
    "FeatureDefinition",
    "FeatureDep",
    "FeatureDepMetadata",
    "FeatureGraph",
    "FeatureKey",
    "FeaturePlan",
    "FeatureSpec",
    "FeatureSpecWithIDColumns",
    "FieldDep",
    "FieldKey",
    "FieldPlan",
    "FieldSpec",
    "FieldsMapping",
    "FieldsMappingType",
    "IDColumns",
    "LineageRelationship",
    "SpecialFieldDep",
    "ValidatedFeatureKey",
    "ValidatedFeatureKeyAdapter",
    "ValidatedFeatureKeySequence",
    "ValidatedFeatureKeySequenceAdapter",
    "ValidatedFieldKey",
    "ValidatedFieldKeyAdapter",
    "ValidatedFieldKeySequence",
    "ValidatedFieldKeySequenceAdapter",
    "coerce_to_feature_key",
    "current_graph",
    "get_feature_by_key",
    "graph",
]
