"""The multimodal demo as a Dagster code location.

    dagster dev -f examples/multimodal/definitions.py

Six metaxified assets (``video/raw``, ``video/chunks``, ``video/transcript``, ``video/faces``,
``video/summary``, ``channel/report``) and their Metaxy checks over generated WAV clips and PNG
frame strips, with the metadata in an embedded DuckDB store. After ``mx demo --workdir DIR``, run
``METAXY_DEMO_WORKDIR=DIR DAGSTER_HOME=DIR/dagster dagster dev -f examples/multimodal/definitions.py``
to see the demo's three rounds (the instance they ran in) and their check results. The pipeline itself lives in ``metaxy._demo`` (so that
``mx demo`` works from an installed wheel); this file only wires it to a working directory:

* ``METAXY_DEMO_WORKDIR`` — the working directory (default: ``examples/multimodal/.work``). When it
  holds the ``metaxy.toml`` that ``mx demo`` writes, that store and audio code version are used;
  otherwise the store is ``<workdir>/metadata.duckdb``.
* ``METAXY_DEMO_AUDIO_CODE_VERSION`` — code version of the ``audio`` field, i.e. the audio decoder
  (``1`` or ``2``; default: the workdir's, else ``1``). Change it and reload the code location to
  see transcripts, chunks, summaries and reports become new while faces stay up to date.
* ``METAXY_DEMO_CLIPS`` / ``METAXY_DEMO_SEED`` — clips generated on the first run (default 300 / 0).
"""

import os
from pathlib import Path

import metaxy as mx
from metaxy._demo.assets import build_definitions
from metaxy._demo.features import build_features
from metaxy._demo.workdir import Workdir

WORKDIR = Workdir(Path(os.environ.get("METAXY_DEMO_WORKDIR") or Path(__file__).parent / ".work").resolve())

config = mx.MetaxyConfig.load(WORKDIR.toml) if WORKDIR.toml.exists() else WORKDIR.config()
mx.MetaxyConfig.set(config)  # MetaxyStoreFromConfigResource builds the configured default store

AUDIO_CODE_VERSION = os.environ.get("METAXY_DEMO_AUDIO_CODE_VERSION") or str(
    config.ext.get("demo", {}).get("audio_code_version", "1")
)
features = build_features(AUDIO_CODE_VERSION, graph=mx.current_graph())

defs = build_definitions(
    features,
    WORKDIR.root,
    clips=int(os.environ.get("METAXY_DEMO_CLIPS", "300")),
    seed=int(os.environ.get("METAXY_DEMO_SEED", "0")),
)
