"""Shared fixtures, frame builders and expected-hash helpers of the store conformance suite.

Everything here talks to a store through the public :class:`~metaxy.MetadataStore` API only, so
the suite runs unchanged against every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest

import metaxy as mx
from metaxy.errors import FeatureNotFoundError
from metaxy.frames import collect_to_polars
from metaxy.models.constants import (
    CREATED_AT,
    DATA_VERSION,
    DATA_VERSION_BY_FIELD,
    DELETED_AT,
    FEATURE_VERSION,
    MATERIALIZATION_ID,
    PROJECT_VERSION,
    PROVENANCE,
    PROVENANCE_BY_FIELD,
    UPDATED_AT,
)
from metaxy.versioning.hashing import HashAlgorithm, hash_string

__all__ = [
    "CREATED_AT",
    "DATA_VERSION",
    "DATA_VERSION_BY_FIELD",
    "DEFAULT_CODE_VERSION",
    "DELETED_AT",
    "FEATURE_VERSION",
    "MATERIALIZATION_ID",
    "PROJECT_VERSION",
    "PROVENANCE",
    "PROVENANCE_BY_FIELD",
    "UPDATED_AT",
    "ConformanceBase",
    "StoreFactory",
    "VideoFeatures",
    "as_mapping",
    "define_video_features",
    "field_provenance",
    "id_set",
    "rows",
    "sample_provenance",
    "samples",
    "store_contents",
    "video_contents",
]

StoreFactory = Callable[..., Any]
"""``store_factory(**kwargs) -> MetadataStore``; kwargs such as ``hash_algorithm``,
``fallback_stores`` and ``materialization_id`` are forwarded to the store constructor."""

DEFAULT_CODE_VERSION = "__metaxy_initial__"


class ConformanceBase:
    """Fixtures every conformance test class relies on.

    A backend's test module subclasses :class:`~metaxy.testing.MetadataStoreConformance` and
    overrides :meth:`store_factory`.
    """

    @pytest.fixture
    def store_factory(self, tmp_path: Any) -> StoreFactory:
        """Return a callable building a *new, empty* store; keyword arguments are forwarded.

        Each call must return a store independent of the previous ones (its own database file,
        directory or in-memory state). SQL stores should be created with ``auto_create_tables=True``.
        """
        raise NotImplementedError("Override `store_factory` in your backend's conformance test class.")

    @pytest.fixture(autouse=True)
    def _default_metaxy_config(self) -> Iterator[None]:
        """Run every test under a default configuration (8-character hashes, no project), whatever
        the environment says, so the expected hashes hold."""
        from metaxy.config import MetaxyConfig

        with MetaxyConfig(hash_truncation_length=8, enable_map_datatype=False, project=None).use():
            yield

    @pytest.fixture
    def graph(self) -> Iterator[mx.FeatureGraph]:
        """A fresh feature graph, active for the duration of the test."""
        g = mx.FeatureGraph()
        with g.use():
            yield g


# --- frames --------------------------------------------------------------------------------------


def samples(
    ids: Sequence[Any],
    fields: Sequence[str] = ("default",),
    *,
    tag: str = "v1",
    id_column: str = "sample_id",
    **columns: Sequence[Any],
) -> pl.DataFrame:
    """A frame of root samples: ``id_column``, extra ``columns`` and a provenance struct whose
    value for field ``f`` of sample ``i`` is ``"f:i:tag"``."""
    data: dict[str, Any] = {id_column: list(ids), **{k: list(v) for k, v in columns.items()}}
    data[PROVENANCE_BY_FIELD] = [{f: f"{f}:{i}:{tag}" for f in fields} for i in ids]
    return pl.DataFrame(data, schema_overrides={PROVENANCE_BY_FIELD: pl.Struct(dict.fromkeys(fields, pl.String))})


def _row_key(row: Mapping[str, Any]) -> str:
    return repr(sorted(row.items(), key=lambda kv: kv[0]))


def rows(frame: Any, columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts (restricted to ``columns``), in a canonical order."""
    df = collect_to_polars(frame)
    if columns is not None:
        df = df.select(list(columns))
    out = [{k: as_mapping(v) if k.endswith("_by_field") else v for k, v in r.items()} for r in df.to_dicts()]
    return sorted(out, key=_row_key)


def id_set(frame: Any, column: str = "sample_id") -> set[Any]:
    """The distinct values of ``column``."""
    return set(collect_to_polars(frame).get_column(column).to_list())


def as_mapping(value: Any) -> Any:
    """A ``_by_field`` value as a dict, whether stored as a struct or as a map (list of key/value)."""
    if isinstance(value, list) and all(isinstance(v, dict) and set(v) == {"key", "value"} for v in value):
        return {v["key"]: v["value"] for v in value}
    return value


def store_contents(store: Any, features: Iterable[Any]) -> dict[str, list[dict[str, Any]] | None]:
    """Every raw row of each feature (all versions, all history, soft-deleted included), or
    None for a feature the store has no table for. Used to prove a failed call wrote nothing."""
    out: dict[str, list[dict[str, Any]] | None] = {}
    for feature in features:
        key = mx.coerce_to_feature_key(feature).to_string()
        try:
            frame = store.read(
                feature,
                with_feature_history=True,
                with_sample_history=True,
                include_soft_deleted=True,
                allow_fallback=False,
            )
            out[key] = rows(frame)
        except FeatureNotFoundError:
            out[key] = None
    return out


def video_contents(store: Any, vf: VideoFeatures) -> dict[str, list[dict[str, Any]] | None]:
    """:func:`store_contents` of the three video features, opening the store for reading."""
    with store:
        return store_contents(store, [vf.video, vf.transcript, vf.faces])


# --- expected hashes (spec §3.3) -----------------------------------------------------------------


def field_provenance(
    algorithm: HashAlgorithm | str,
    field: str,
    code_version: str,
    parents: Mapping[str, str | None],
) -> str:
    """The row-level hash of one field: ``field|code_version|<fq parent>|<value>...`` with parents
    ordered by their FQ string (``"upstream/key.field"``); a None value renders as ``""``."""
    parts = [field, code_version]
    for fq in sorted(parents):
        value = parents[fq]
        parts += [fq, "" if value is None else str(value)]
    return hash_string(algorithm, "|".join(parts))


def sample_provenance(algorithm: HashAlgorithm | str, by_field: Mapping[str, str]) -> str:
    """The sample-level hash: the per-field hashes ordered by struct key, joined with ``|``."""
    return hash_string(algorithm, "|".join(by_field[k] for k in sorted(by_field)))


# --- the feature graph most tests use ------------------------------------------------------------


@dataclass(frozen=True)
class VideoFeatures:
    """``video`` (root; fields ``audio``, ``frames``) and two dependents with field-level lineage:
    ``transcript.text`` depends on ``video.audio`` only, ``faces.faces`` on ``video.frames`` only."""

    video: type[mx.BaseFeature]
    transcript: type[mx.BaseFeature]
    faces: type[mx.BaseFeature]


def define_video_features(
    *, transcript_code_version: str = "1", faces_code_version: str = "1", audio_code_version: str | None = None
) -> VideoFeatures:
    """Register the video features in the active graph and return their classes."""
    audio: Any = "audio" if audio_code_version is None else mx.FieldSpec(key="audio", code_version=audio_code_version)

    class Video(
        mx.BaseFeature,
        spec=mx.FeatureSpec(key="video", id_columns=["sample_id"], fields=[audio, "frames"]),
    ):
        sample_id: str

    class Transcript(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="transcript",
            id_columns=["sample_id"],
            deps=[Video],
            fields=[
                mx.FieldSpec(
                    key="text",
                    code_version=transcript_code_version,
                    deps=[mx.FieldDep(feature="video", fields=["audio"])],
                )
            ],
        ),
    ):
        sample_id: str

    class Faces(
        mx.BaseFeature,
        spec=mx.FeatureSpec(
            key="faces",
            id_columns=["sample_id"],
            deps=[Video],
            fields=[
                mx.FieldSpec(
                    key="faces",
                    code_version=faces_code_version,
                    deps=[mx.FieldDep(feature="video", fields=["frames"])],
                )
            ],
        ),
    ):
        sample_id: str

    return VideoFeatures(video=Video, transcript=Transcript, faces=Faces)


def expected_transcript(algorithm: HashAlgorithm | str, audio: str, code_version: str = "1") -> str:
    """The expected ``transcript.text`` hash for a video whose ``audio`` data version is ``audio``."""
    return field_provenance(algorithm, "text", code_version, {"video.audio": audio})
