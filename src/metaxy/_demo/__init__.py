"""The multimodal demo behind ``mx demo`` and ``examples/multimodal/`` (not a public API).

A small but real pipeline over synthetic media: WAV clips and PNG frame strips are generated with
numpy, metaxy decides per sample and per field what is new, stale or orphaned, and Dagster assets
(``metaxify``-ed, store-backed through ``MetaxyIOManager``) do cheap but real work on the files.

Modules:
    media: synthetic clips on disk (generate, mutate, scan) and the WAV/PNG codecs.
    analysis: the work the assets do (loudness, chunking, a pitch "transcript", face boxes).
    features: the feature graph, built for a given code version of the ``audio`` field.
    assets: the Dagster assets and ``build_definitions``.
    plan: predict every feature's increment before anything runs (a dry run on a copy).
    runner: the ``mx demo`` scenario (three rounds, rich tables).

It lives inside the package (``examples/`` is not in the wheel) so that ``mx demo`` works after
``pip install 'metaxy[demo]'``; ``examples/multimodal/definitions.py`` imports it.
Needs the ``demo`` extra (Dagster and numpy); ``import metaxy`` never imports this package.
"""
