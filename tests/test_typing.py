"""The public API type-checks: ``mypy`` is clean on ``src/`` and ``tests/`` and infers the overloads' result types.

The tests run mypy in a subprocess with its cache in the system temp directory (shared between
runs, so a re-run takes seconds instead of a minute).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# One xdist worker runs them in turn, so the later runs find the first one's cache.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("mypy"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    from mypy.version import __version__

    cache = Path(tempfile.gettempdir()) / f"metaxy-mypy-cache-{__version__}"
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), "--no-error-summary", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


# The flags of --strict that apply per module (--strict itself would change the global options and
# make mypy re-check everything its cache holds).
SNIPPET = """# mypy: disallow-untyped-defs, disallow-incomplete-defs, disallow-untyped-calls, disallow-any-generics
# mypy: disallow-untyped-decorators, disallow-subclassing-any, warn-return-any, no-implicit-reexport
# mypy: strict-equality, extra-checks
from typing import Any, assert_type

import dagster as dg
import narwhals as nw

import metaxy as mx
import metaxy.ext.dagster as mxd
from metaxy.models.types import CoercibleToFeatureKey


def check(store: mx.MetadataStore, feature: type[mx.BaseFeature], lazy: bool) -> None:
    assert_type(store.resolve_update(feature), mx.Increment)
    assert_type(store.resolve_update("a/b", lazy=False), mx.Increment)
    assert_type(store.resolve_update(["a", "b"], lazy=True), mx.LazyIncrement)
    assert_type(store.resolve_update(mx.FeatureKey("a/b"), lazy=lazy), mx.Increment | mx.LazyIncrement)
    assert_type(store.read(feature), nw.LazyFrame[Any])
    assert_type(store.read(feature, with_store_info=True), tuple[nw.LazyFrame[Any], mx.MetadataStore])
    assert_type(store.write(feature.spec(), store.read(feature)), int)
    assert_type(store.delete(feature, "x > 1", soft=False), int)
    key: CoercibleToFeatureKey = feature
    store.read(key)


def assets(spec: dg.AssetSpec, asset: dg.AssetsDefinition) -> None:
    assert_type(mxd.metaxify(spec), dg.AssetSpec)
    assert_type(mxd.metaxify(asset), dg.AssetsDefinition)
    assert_type(mxd.metaxify(feature="a/b")(asset), dg.AssetsDefinition)
    assert_type(mxd.metaxify(key_prefix="p")([spec, spec]), list[dg.AssetSpec])
"""

WRONG = """
import metaxy as mx


def check(store: mx.MetadataStore) -> None:
    store.resolve_update(42)
    store.resolve_update("a/b", lazy=True).new.collect().to_polars()
    store.resolve_update("a/b").input
"""


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """One mypy run over src/, tests/ and the two snippets (each run costs about a minute on a cold
    cache): its error lines, by the file they are in."""
    snippets = tmp_path_factory.mktemp("typing")
    good, wrong = snippets / "overloads_good.py", snippets / "overloads_wrong.py"
    good.write_text(textwrap.dedent(SNIPPET))
    wrong.write_text(textwrap.dedent(WRONG))
    done = _mypy("src/metaxy", "tests", str(good), str(wrong))
    assert done.returncode in (0, 1) and not done.stderr, done.stdout + done.stderr
    errors: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        if ": error:" in line:
            path = line.split(":")[0]
            name = Path(path).name if Path(path).name.startswith("overloads_") else "project"
            errors.setdefault(name, []).append(line)
    return errors


def test_mypy_is_clean_on_src_and_tests(mypy_errors: dict[str, list[str]]) -> None:
    """One run over both (the tests import ``src``). Files, strictness and plugins come from
    [tool.mypy] in pyproject.toml; helpers pytest imports by bare name (``mxcli``, ``mxd_helpers``,
    ...) resolve through the re-export stubs in tests/_mypy_stubs (``mypy_path``)."""
    assert mypy_errors.get("project", []) == []


def test_the_overloads_give_precise_types_and_reject_wrong_input(mypy_errors: dict[str, list[str]]) -> None:
    assert mypy_errors.get("overloads_good.py", []) == []
    lines = mypy_errors.get("overloads_wrong.py", [])
    assert [line.split(":")[1] for line in lines] == ["6", "8"], lines
    assert '"resolve_update"' in lines[0] and '"Increment" has no attribute "input"' in lines[1]
