"""Stores whose versioning engine is Polars: ``metaxy.ext.polars.handlers.delta``."""
