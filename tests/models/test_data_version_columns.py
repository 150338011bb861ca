"""``FeatureSpec(data_version_columns=...)``: validated, absent from dumps when unset, and no
version changes with it."""

from __future__ import annotations

import pydantic
import pytest

import metaxy as mx


def _spec(**kw: object) -> mx.FeatureSpec:
    return mx.FeatureSpec(key="t/x", id_columns=["id"], fields=["text", "lang"], **kw)


def test_unset_is_absent_from_the_dump_and_set_round_trips() -> None:
    assert "data_version_columns" not in _spec().model_dump(mode="json")
    listed = _spec(data_version_columns=["text"])
    assert listed.model_dump(mode="json")["data_version_columns"] == ["text"]
    mapped = _spec(data_version_columns={"text": "text", "lang": ["lang", "text"]})
    assert mapped.data_version_columns == {"text": ("text",), "lang": ("lang", "text")}
    assert mx.FeatureSpec.model_validate(mapped.model_dump(mode="json")) == mapped


def test_it_changes_no_version() -> None:
    def versions(**kw: object) -> tuple[str, str]:
        with mx.FeatureGraph().use() as graph:

            class X(mx.BaseFeature, spec=_spec(**kw)):
                id: str

            return X.feature_version(), graph.get_feature_version(X.spec().key)

    assert versions() == versions(data_version_columns=["text"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "non-empty"),
        (["metaxy_provenance"], "system column"),
        ({"nope": ["text"]}, "unknown field"),
        ([3], "non-empty list of column names"),
    ],
)
def test_bad_values_are_refused(value: object, message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        _spec(data_version_columns=value)
