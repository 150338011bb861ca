"""The Metaxy + Dagster quick start (``definitions.py``); see the Dagster integration docs."""

__metaxy_project__ = "example_dagster"
