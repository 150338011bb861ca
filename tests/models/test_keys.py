from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import metaxy as mx
from metaxy.errors import KeyValidationError
from metaxy.models.keys import FQFieldKey

first_part = st.from_regex(r"[a-z_][a-z0-9_-]{0,8}", fullmatch=True).filter(lambda p: "__" not in p)
later_part = st.from_regex(r"[a-z0-9_][a-z0-9_-]{0,8}", fullmatch=True).filter(lambda p: "__" not in p)
parts = st.tuples(first_part, st.lists(later_part, max_size=4)).map(lambda t: [t[0], *t[1]])


def test_forms_are_equivalent() -> None:
    key = mx.FeatureKey("video/raw")
    assert key == mx.FeatureKey(["video", "raw"]) == mx.FeatureKey(key) == mx.FeatureKey({"root": ["video", "raw"]})
    assert key == mx.FeatureKey({"parts": ["video", "raw"]})
    assert key.to_string() == str(key) == "video/raw"
    assert key.table_name == "video__raw"
    assert key.to_struct_key() == "video_raw"
    assert key.to_column_suffix() == "__video_raw"
    assert mx.FeatureKey("my-org/a-b").table_name == "my_org__a_b"


def test_tuple_like() -> None:
    key = mx.FeatureKey("a/b/c")
    assert list(key) == ["a", "b", "c"] and len(key) == 3 and key[1] == "b" and "c" in key
    assert mx.FeatureKey("a/b") < mx.FeatureKey("a/c") < mx.FeatureKey("b")
    assert len({mx.FeatureKey("a/b"), mx.FeatureKey(["a", "b"])}) == 1
    with pytest.raises(AttributeError):
        key._parts = ()


def test_feature_and_field_keys_differ() -> None:
    assert mx.FeatureKey("a") != mx.FieldKey("a")
    with pytest.raises(KeyValidationError):
        mx.FeatureKey(mx.FieldKey("a"))


@pytest.mark.parametrize("empty", ["", [], ()])
@pytest.mark.parametrize("cls", [mx.FeatureKey, mx.FieldKey])
def test_empty_key_is_refused(cls: type[mx.FeatureKey] | type[mx.FieldKey], empty: object) -> None:
    with pytest.raises(KeyValidationError, match=r"at least one part.*Hint"):
        cls(empty)


def test_keys_dump_to_their_slash_string() -> None:
    assert mx.FeatureKey(["a", "b", "c"]).model_dump() == "a/b/c"
    assert mx.FieldKey("x/y").model_dump(mode="json") == "x/y"
    assert mx.FeatureKey("a/b").model_dump_json() == '"a/b"'


@pytest.mark.parametrize("bad", ["Video/raw", "a__b", "a//b", "-a", "a/", "a b", "a/B", "é"])
def test_invalid_parts(bad: str) -> None:
    with pytest.raises(KeyValidationError, match="Hint"):
        mx.FeatureKey(bad)


def test_invalid_part_in_sequence_and_types() -> None:
    with pytest.raises(KeyValidationError, match="contains '/'"):
        mx.FeatureKey(["a/b"])
    with pytest.raises(KeyValidationError, match="not a string"):
        mx.FeatureKey(["a", 1])
    with pytest.raises(KeyValidationError):
        mx.FeatureKey(12)
    with pytest.raises(KeyValidationError):
        mx.FeatureKey({"other": ["a"]})


def test_later_parts_may_start_with_digit() -> None:
    assert mx.FeatureKey("a/1b").parts == ("a", "1b")
    with pytest.raises(KeyValidationError):
        mx.FeatureKey("1a")


def test_pydantic_validation_and_serialisation() -> None:
    class M(BaseModel):
        key: mx.ValidatedFeatureKey
        keys: mx.ValidatedFeatureKeySequence

    m = M(key="a/b", keys=["c", ["d", "e"]])
    assert m.key == mx.FeatureKey("a/b") and m.keys == [mx.FeatureKey("c"), mx.FeatureKey("d/e")]
    assert m.model_dump() == {"key": "a/b", "keys": ["c", "d/e"]}
    assert M.model_validate_json(m.model_dump_json()) == m
    with pytest.raises(ValidationError):
        M(key="Bad", keys=[])
    assert mx.ValidatedFieldKeyAdapter.validate_python("x/y") == mx.FieldKey("x/y")
    assert mx.ValidatedFeatureKeySequenceAdapter.validate_python("a") == [mx.FeatureKey("a")]


def test_coerce_from_class_spec_definition(graph: mx.FeatureGraph) -> None:
    spec = mx.FeatureSpec(key="x/y", id_columns=["id"])

    class X(mx.BaseFeature, spec=spec):
        id: str

    class Abstract(mx.BaseFeature):
        pass

    assert mx.coerce_to_feature_key(X) == mx.coerce_to_feature_key(spec) == mx.FeatureKey("x/y")
    assert mx.coerce_to_feature_key(graph.get_feature_definition("x/y")) == mx.FeatureKey("x/y")
    with pytest.raises(KeyValidationError, match="abstract"):
        mx.coerce_to_feature_key(Abstract)


def test_fq_field_key() -> None:
    fq = FQFieldKey("video/raw", "audio")
    assert fq.to_string() == "video/raw.audio"
    assert sorted([FQFieldKey("b", "a"), FQFieldKey("a", "z")]) == [FQFieldKey("a", "z"), FQFieldKey("b", "a")]
    assert pickle.loads(pickle.dumps(fq)) == fq


@settings(deadline=None)
@given(parts)
def test_roundtrip_string_and_pickle(p: list[str]) -> None:
    key = mx.FeatureKey(p)
    assert mx.FeatureKey(key.to_string()) == key
    assert pickle.loads(pickle.dumps(key)) == key
    assert mx.ValidatedFeatureKeyAdapter.validate_json(mx.ValidatedFeatureKeyAdapter.dump_json(key)) == key
    assert mx.FieldKey(p).to_struct_key() == "_".join(p)


@settings(deadline=None)
@given(st.text(max_size=12))
def test_arbitrary_strings_either_parse_or_raise_typed(text: str) -> None:
    try:
        key = mx.FeatureKey(text)
    except KeyValidationError:
        return
    assert key.to_string() == text
