"""Polars-engine store integrations (``metaxy.ext.polars.handlers.*``).

Kept free of imports so that importing a handler pulls in only that handler's own module.
"""
