"""Metaxy + Dagster quick start: two Metaxy features as Dagster assets, plus a regular asset.

Run it with ``dg dev -f src/example_dagster/definitions.py`` from ``examples/example-dagster``
(``metaxy.toml`` there configures a DuckDB store), then materialize all assets: Metaxy computes
which audio clips are new or changed and each asset only processes those.
"""

# --8<-- [start:feature-definitions]
import dagster as dg
import narwhals as nw
import polars as pl

import metaxy as mx
import metaxy.ext.dagster as mxd


class AudioEmbeddings(
    mx.BaseFeature,
    spec=mx.FeatureSpec(key="audio/embeddings", id_columns=["audio_id"], fields=["embedding"]),
):
    """Embeddings of raw audio clips."""

    audio_id: str
    path: str
    embedding_dim: int


class AudioClusters(
    mx.BaseFeature,
    spec=mx.FeatureSpec(key="audio/clusters", id_columns=["audio_id"], deps=[AudioEmbeddings], fields=["cluster"]),
):
    """Cluster assignment of each audio clip, computed from its embedding."""

    audio_id: str
    cluster: int


# --8<-- [end:feature-definitions]


def discover_audio_clips() -> pl.DataFrame:
    """The audio clips to embed, with a content hash per field (made up for the example)."""
    ids = [f"clip_{i}" for i in range(6)]
    return pl.DataFrame(
        {
            "audio_id": ids,
            "path": [f"s3://audio/{i}.wav" for i in ids],
            "metaxy_provenance_by_field": [{"embedding": f"sha256-{i}"} for i in ids],
        }
    )


# --8<-- [start:root-asset]
@mxd.metaxify(feature=AudioEmbeddings)
@dg.asset(io_manager_key="metaxy_io_manager")
def audio_embeddings(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
    """Embed the audio clips that are new or changed since the last run."""
    with store:
        increment = store.resolve_update(AudioEmbeddings, samples=discover_audio_clips())
    todo = pl.concat([increment.new.to_polars(), increment.stale.to_polars()])
    return todo.with_columns(embedding_dim=pl.lit(512))  # stand-in for the real model


# --8<-- [end:root-asset]


# --8<-- [start:downstream-asset]
@mx.metaxify
@dg.asset(metadata={"metaxy/feature": "audio/clusters"}, io_manager_key="metaxy_io_manager")
def audio_clusters(store: dg.ResourceParam[mx.MetadataStore]) -> mxd.MetaxyOutput:
    """Cluster the clips whose embeddings are new or changed."""
    with store:
        increment = store.resolve_update(AudioClusters)
    todo = pl.concat([increment.new.to_polars(), increment.stale.to_polars()])
    clip_number = pl.col("audio_id").str.extract(r"(\d+)").cast(pl.Int64)
    return todo.drop("path").with_columns(cluster=clip_number % 3)


# --8<-- [end:downstream-asset]


# --8<-- [start:non-metaxy-downstream]
@dg.asset(ins={"clusters": dg.AssetIn(key=audio_clusters.key)})
def cluster_report(clusters: nw.LazyFrame) -> dict[int, int]:
    """Clips per cluster: a regular Dagster asset reading a Metaxy feature."""
    counts = clusters.group_by("cluster").agg(nw.len().alias("clips")).collect()
    return dict(zip(counts["cluster"].to_list(), counts["clips"].to_list(), strict=True))


# --8<-- [end:non-metaxy-downstream]


# --8<-- [start:dagster-definitions]
mx.init()  # (1)!

store = mxd.MetaxyStoreFromConfigResource()  # the default store of metaxy.toml

defs = dg.Definitions(
    assets=[audio_embeddings, audio_clusters, cluster_report],
    resources={"store": store, "metaxy_io_manager": mxd.MetaxyIOManager(store=store)},
)
# --8<-- [end:dagster-definitions]
