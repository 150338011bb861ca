"""``import metaxy`` stays light: no store drivers, Dagster, Ray or CLI at import; explicit ``__all__``."""

from __future__ import annotations

import json
import subprocess
import sys

import metaxy as mx

HEAVY = (
    "dagster",
    "duckdb",
    "deltalake",
    "lancedb",
    "lance",
    "psycopg",
    "ray",
    "clickhouse_connect",
    "ibis",
    "cyclopts",
    "rich",
)


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_pulls_in_no_heavy_module() -> None:
    out = _fresh(f"import sys, json, metaxy; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_lazy_names_resolve_without_importing_drivers() -> None:
    out = _fresh(
        "import sys, json, metaxy as mx; mx.MetadataStore; mx.InMemoryMetadataStore; mx.MetaxyConfig; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_public_names_exist() -> None:
    missing = [name for name in mx.__all__ if not hasattr(mx, name) and name != "metaxify"]
    assert missing == []
    assert mx.InMemoryMetadataStore.__name__ == "InMemoryMetadataStore"
