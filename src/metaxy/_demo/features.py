"""The demo's feature graph, built for a given code version of the ``audio`` field.

```
video/raw ──audio──▶ video/chunks       (1:N expansion: half-second audio chunks)
    │  └────audio──▶ video/transcript ─┐
    └─────frames───▶ video/faces ──────┴─▶ video/summary ──▶ channel/report (N:1 aggregation)
```

Bumping the ``audio`` code version (the decoder) changes the versions of every field that
depends on it — ``chunks``, ``transcript``, ``summary``, ``report`` — and not ``faces``.
``video/transcript`` derives its data version from what is said (``data_version_columns``), so a
transcript recomputed with the same words leaves ``summary`` and ``report`` up to date (early cutoff).
"""

from __future__ import annotations

from dataclasses import dataclass

import metaxy as mx

__all__ = ["PROJECT", "MultimodalFeatures", "build_features"]

PROJECT = "multimodal"


@dataclass(frozen=True)
class MultimodalFeatures:
    """The feature classes of one build, and the graph they are registered in."""

    graph: mx.FeatureGraph
    audio_code_version: str
    raw: type[mx.BaseFeature]
    chunks: type[mx.BaseFeature]
    transcript: type[mx.BaseFeature]
    faces: type[mx.BaseFeature]
    summary: type[mx.BaseFeature]
    report: type[mx.BaseFeature]

    def all(self) -> list[type[mx.BaseFeature]]:
        """Every feature, upstream first."""
        return [self.raw, self.chunks, self.transcript, self.faces, self.summary, self.report]


def build_features(audio_code_version: str = "1", graph: mx.FeatureGraph | None = None) -> MultimodalFeatures:
    """Define the demo's features in ``graph`` (default: a new graph).

    Args:
        audio_code_version: code version of ``video/raw``'s ``audio`` field (the audio decoder).
        graph: where to register the features; pass ``mx.graph`` to make them visible to ``mx``
            commands and ``dagster dev`` processes.
    """
    graph = graph if graph is not None else mx.FeatureGraph()
    with graph.use():

        class Raw(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="video/raw",
                id_columns=["video_id"],
                fields=[
                    mx.FieldSpec(key="audio", code_version=audio_code_version),
                    mx.FieldSpec(key="frames", code_version="1"),
                ],
            ),
        ):
            """Raw clips on disk: a WAV file (field ``audio``) and a PNG frame strip (``frames``)."""

            __metaxy_project__ = PROJECT
            video_id: str
            channel: str
            audio_path: str
            frames_path: str
            duration_s: float

        class Chunks(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="video/chunks",
                id_columns=["video_id", "chunk"],
                deps=[mx.FeatureDep(feature=Raw, select=(), lineage=mx.LineageRelationship.expansion(on=["video_id"]))],
                fields=[mx.FieldSpec(key="loudness", deps=[mx.FieldDep(feature=Raw, fields=["audio"])])],
            ),
        ):
            """Half-second audio chunks of each clip (one clip expands into several chunks)."""

            __metaxy_project__ = PROJECT
            video_id: str
            chunk: int
            start_s: float
            rms_dbfs: float
            path: str

        class Transcript(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="video/transcript",
                id_columns=["video_id"],
                deps=[mx.FeatureDep(feature=Raw, select=("channel",))],
                fields=[mx.FieldSpec(key="text", deps=[mx.FieldDep(feature=Raw, fields=["audio"])])],
                # early cutoff: the data version is what is said, so re-encoded audio that sings the
                # same words recomputes the transcript but none of its downstream samples
                data_version_columns=["text", "words"],
            ),
        ):
            """The syllables sung in each clip, from voice activity and pitch (audio only)."""

            __metaxy_project__ = PROJECT
            video_id: str
            channel: str
            text: str
            words: int
            loudness_dbfs: float
            path: str

        class Faces(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="video/faces",
                id_columns=["video_id"],
                deps=[mx.FeatureDep(feature=Raw, select=())],
                fields=[mx.FieldSpec(key="boxes", deps=[mx.FieldDep(feature=Raw, fields=["frames"])])],
            ),
        ):
            """Per-frame brightness, contrast and face boxes of each clip (frames only)."""

            __metaxy_project__ = PROJECT
            video_id: str
            face_frames: int
            path: str

        class Summary(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="video/summary",
                id_columns=["video_id"],
                deps=[
                    mx.FeatureDep(feature=Transcript, select=("channel",)),
                    mx.FeatureDep(feature=Faces, select=()),
                ],
                fields=["summary"],  # no name match upstream: depends on every upstream field
            ),
        ):
            """One record per clip combining its transcript and its faces."""

            __metaxy_project__ = PROJECT
            video_id: str
            channel: str
            words: int
            face_frames: int
            path: str

        class Report(
            mx.BaseFeature,
            spec=mx.FeatureSpec(
                key="channel/report",
                id_columns=["channel"],
                deps=[
                    mx.FeatureDep(
                        feature=Summary, select=("channel",), lineage=mx.LineageRelationship.aggregation(on=["channel"])
                    )
                ],
                fields=["report"],
            ),
        ):
            """Per channel: clips, words and on-screen ratio over all its clips' summaries."""

            __metaxy_project__ = PROJECT
            channel: str
            clips: int
            words: int
            face_ratio: float
            path: str

    return MultimodalFeatures(graph, audio_code_version, Raw, Chunks, Transcript, Faces, Summary, Report)
