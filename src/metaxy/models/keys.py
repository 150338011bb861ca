"""Feature and field keys: immutable, ordered tuples of validated parts.

``FeatureKey("video/raw")`` and ``FeatureKey(["video", "raw"])`` are the same key. Keys are
hashable, ordered by their parts, iterable and indexable, and serialise to the slash string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeAlias

from pydantic import BeforeValidator, GetCoreSchemaHandler, PlainSerializer, TypeAdapter
from pydantic_core import core_schema

from metaxy.errors import KeyValidationError

if TYPE_CHECKING:
    from typing import Self

    from metaxy.models.definition import FeatureDefinition
    from metaxy.models.feature import BaseFeature
    from metaxy.models.feature_spec import FeatureSpec

__all__ = [
    "CoercibleToFeatureKey",
    "CoercibleToFieldKey",
    "FQFieldKey",
    "FeatureKey",
    "FieldKey",
    "ValidatedFeatureKey",
    "ValidatedFeatureKeyAdapter",
    "ValidatedFeatureKeySequence",
    "ValidatedFeatureKeySequenceAdapter",
    "ValidatedFieldKey",
    "ValidatedFieldKeyAdapter",
    "ValidatedFieldKeySequence",
    "ValidatedFieldKeySequenceAdapter",
    "coerce_to_feature_key",
    "coerce_to_field_key",
]

_FIRST_PART = re.compile(r"^[a-z_][a-z0-9_-]*$")
_LATER_PART = re.compile(r"^[a-z0-9_][a-z0-9_-]*$")
_HINT = (
    "Hint: key parts are lower-case letters, digits, '_' and '-', separated by '/'; "
    "the first part starts with a letter or '_', and no part contains '__'."
)


class _Key:
    """Shared behaviour of feature and field keys (a tuple of validated string parts)."""

    __slots__ = ("_parts",)
    _kind: ClassVar[str] = "key"
    _parts: tuple[str, ...]

    def __init__(self, value: Any) -> None:
        parts = self._parse(value)
        if not parts:
            raise KeyValidationError(
                f"Invalid {self._kind} {value!r}: a key needs at least one part. "
                f"Hint: name it, e.g. {type(self).__name__}('video/raw')."
            )
        object.__setattr__(self, "_parts", parts)

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def _parse(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, cls):
            return value._parts
        if isinstance(value, _Key):
            raise KeyValidationError(
                f"Cannot use {type(value).__name__} '{value}' as a {cls.__name__}. "
                f"Hint: build a {cls.__name__} from its string form: {cls.__name__}('{value}')."
            )
        if isinstance(value, str):
            parts: tuple[str, ...] = tuple(value.split("/")) if value else ()
        elif isinstance(value, dict):
            raw = value.get("root", value.get("parts"))
            if raw is None or set(value) - {"root", "parts"}:
                raise KeyValidationError(
                    f"Invalid {cls._kind} {value!r}: a dict key needs exactly one of 'root' or 'parts'. {_HINT}"
                )
            return cls._parse(raw)
        elif isinstance(value, Sequence) and not isinstance(value, bytes):
            parts = tuple(value)
            for part in parts:
                if not isinstance(part, str):
                    raise KeyValidationError(f"Invalid {cls._kind} {value!r}: part {part!r} is not a string. {_HINT}")
        else:
            raise KeyValidationError(
                f"Cannot make a {cls.__name__} from {type(value).__name__} {value!r}. "
                f"Hint: pass a string like 'a/b' or a list of parts like ['a', 'b']."
            )
        for i, part in enumerate(parts):
            cls._check_part(part, i, value)
        return parts

    @classmethod
    def _check_part(cls, part: str, index: int, whole: Any) -> None:
        problem = None
        if part == "":
            problem = "an empty part"
        elif "/" in part:
            problem = f"part {part!r} contains '/'"
        elif "__" in part:
            problem = f"part {part!r} contains '__' (reserved as the table-name separator)"
        elif not (_FIRST_PART if index == 0 else _LATER_PART).match(part):
            problem = f"part {part!r} has characters that are not allowed"
        if problem:
            raise KeyValidationError(f"Invalid {cls._kind} {whole!r}: {problem}. {_HINT}")

    @classmethod
    def from_parts(cls, *parts: str) -> Self:
        return cls(list(parts))

    # --- tuple-like behaviour ----------------------------------------------------------------
    @property
    def parts(self) -> tuple[str, ...]:
        return self._parts

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def __getitem__(self, index: int) -> str:
        return self._parts[index]

    def __contains__(self, item: object) -> bool:
        return item in self._parts

    def __hash__(self) -> int:
        return hash((self._kind, self._parts))

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._parts == other._parts
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._parts < other._parts
        return NotImplemented

    def __le__(self, other: object) -> bool:
        return self == other or self < other

    def __gt__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._parts > other._parts
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        return self == other or self > other

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (list(self._parts),))

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    # --- names -------------------------------------------------------------------------------
    def to_string(self) -> str:
        """Parts joined by ``/``, e.g. ``"video/raw"``."""
        return "/".join(self._parts)

    def to_struct_key(self) -> str:
        """Parts joined by ``_``: the field name used inside ``*_by_field`` struct columns."""
        return "_".join(self._parts)

    def to_column_suffix(self) -> str:
        """``"__" + "_".join(parts)``: the suffix given to an upstream's system columns in a join."""
        return "__" + "_".join(self._parts)

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_string()!r})"

    def model_dump(self, *, mode: str = "python", **_: Any) -> str:
        """The key's serialised form, its slash string (as inside any pydantic model dump)."""
        return self.to_string()

    def model_dump_json(self, **_: Any) -> str:
        """The key as a JSON string, e.g. ``'"video/raw"'``."""
        import json

        return json.dumps(self.to_string())

    # --- pydantic ----------------------------------------------------------------------------
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda key: key.to_string(), when_used="always"
            ),
            json_schema_input_schema=core_schema.str_schema(),
        )

    @classmethod
    def _validate(cls, value: Any) -> Self:
        return value if isinstance(value, cls) else cls(value)


class FeatureKey(_Key):
    """The key of a feature, e.g. ``FeatureKey("video/raw")``.

    Example:
        >>> key = FeatureKey("video/raw")
        >>> key.table_name, key.to_struct_key(), list(key)
        ('video__raw', 'video_raw', ['video', 'raw'])
    """

    __slots__ = ()
    _kind = "feature key"

    @property
    def table_name(self) -> str:
        """Parts joined by ``__`` with ``-`` replaced by ``_``: the feature's table name."""
        return "__".join(self._parts).replace("-", "_")


class FieldKey(_Key):
    """The key of a field within a feature, e.g. ``FieldKey("audio")``."""

    __slots__ = ()
    _kind = "field key"


class FQFieldKey:
    """A fully-qualified field key: a feature key and one of its field keys.

    Its string form is ``"<feature/key>.<field/key>"``; keys sort by that string.
    """

    __slots__ = ("feature", "field")
    feature: FeatureKey
    field: FieldKey

    def __init__(self, feature: CoercibleToFeatureKey, field: CoercibleToFieldKey) -> None:
        object.__setattr__(self, "feature", coerce_to_feature_key(feature))
        object.__setattr__(self, "field", coerce_to_field_key(field))

    def to_string(self) -> str:
        return f"{self.feature.to_string()}.{self.field.to_string()}"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"FQFieldKey({self.to_string()!r})"

    def __hash__(self) -> int:
        return hash((self.feature, self.field))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FQFieldKey):
            return (self.feature, self.field) == (other.feature, other.field)
        return NotImplemented

    def __lt__(self, other: FQFieldKey) -> bool:
        return self.to_string() < other.to_string()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FQFieldKey is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (FQFieldKey, (self.feature, self.field))


CoercibleToFeatureKey: TypeAlias = (
    "str | Sequence[str] | FeatureKey | type[BaseFeature] | FeatureSpec | FeatureDefinition"
)
"""Anything ``coerce_to_feature_key`` accepts: a string, parts, a key, a feature class, spec or definition."""
CoercibleToFieldKey: TypeAlias = "str | Sequence[str] | FieldKey"
"""Anything ``coerce_to_field_key`` accepts: a string, parts or a key."""


def coerce_to_feature_key(value: Any) -> FeatureKey:
    """Coerce a key-like value to a :class:`FeatureKey`.

    Args:
        value: ``"a/b"``, ``["a", "b"]``, a ``FeatureKey``, a ``BaseFeature`` subclass, a
            ``FeatureSpec`` or a ``FeatureDefinition``.

    Raises:
        KeyValidationError: the value is not key-like or breaks the key rules.
    """
    if isinstance(value, FeatureKey):
        return value
    if isinstance(value, type) and hasattr(value, "spec") and callable(value.spec):
        if getattr(value, "is_abstract", lambda: False)():
            raise KeyValidationError(
                f"{value.__name__} is an abstract feature class (no spec) and has no key. "
                "Hint: pass a concrete feature class defined with `spec=FeatureSpec(...)`."
            )
        return value.spec().key
    key = getattr(value, "key", None)
    if isinstance(key, FeatureKey):  # FeatureSpec, FeatureDefinition
        return key
    return FeatureKey(value)


def coerce_to_field_key(value: Any) -> FieldKey:
    """Coerce a string, a sequence of parts or a :class:`FieldKey` to a :class:`FieldKey`."""
    return value if isinstance(value, FieldKey) else FieldKey(value)


def _serialize(key: _Key) -> str:
    return key.to_string()


ValidatedFeatureKey = Annotated[
    FeatureKey, BeforeValidator(coerce_to_feature_key), PlainSerializer(_serialize, return_type=str)
]
ValidatedFieldKey = Annotated[
    FieldKey, BeforeValidator(coerce_to_field_key), PlainSerializer(_serialize, return_type=str)
]


def _coerce_feature_keys(value: Any) -> list[FeatureKey]:
    if isinstance(value, str | FeatureKey):
        value = [value]
    return [coerce_to_feature_key(v) for v in value]


def _coerce_field_keys(value: Any) -> list[FieldKey]:
    if isinstance(value, str | FieldKey):
        value = [value]
    return [coerce_to_field_key(v) for v in value]


ValidatedFeatureKeySequence = Annotated[list[FeatureKey], BeforeValidator(_coerce_feature_keys)]
ValidatedFieldKeySequence = Annotated[list[FieldKey], BeforeValidator(_coerce_field_keys)]

_ADAPTED: dict[str, Any] = {
    "ValidatedFeatureKeyAdapter": ValidatedFeatureKey,
    "ValidatedFieldKeyAdapter": ValidatedFieldKey,
    "ValidatedFeatureKeySequenceAdapter": ValidatedFeatureKeySequence,
    "ValidatedFieldKeySequenceAdapter": ValidatedFieldKeySequence,
}

if TYPE_CHECKING:
    ValidatedFeatureKeyAdapter: TypeAdapter[FeatureKey]
    ValidatedFieldKeyAdapter: TypeAdapter[FieldKey]
    ValidatedFeatureKeySequenceAdapter: TypeAdapter[list[FeatureKey]]
    ValidatedFieldKeySequenceAdapter: TypeAdapter[list[FieldKey]]


def __getattr__(name: str) -> Any:
    """The ``Validated*Adapter`` TypeAdapters, built on first use (keeps ``import metaxy`` light)."""
    if name in _ADAPTED:
        adapter = TypeAdapter(_ADAPTED[name])
        globals()[name] = adapter
        return adapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
