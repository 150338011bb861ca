"""Every Python snippet in README.md and docs/ runs, links resolve, and the demo scripts do what they promise."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import metaxy as mx

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
SNIPPET = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\((?!https?://|#)([^)#\s]+)(?:#[^)]*)?\)")


def _snippets() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for i, code in enumerate(SNIPPET.findall(doc.read_text())):
            out.append((f"{doc.relative_to(ROOT)}#{i}", code))
    return out


def _uses_ray(code: str) -> bool:
    return "metaxy.ext.ray" in code or "import ray" in code


@pytest.mark.filterwarnings("ignore:Creating table")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    ("where", "code"),
    [
        pytest.param(where, code, id=where, marks=[pytest.mark.xdist_group("ray")] if _uses_ray(code) else [])
        for where, code in _snippets()
    ],
)
def test_snippet_runs(where: str, code: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Each snippet runs as its own module file, in a fresh feature graph and an empty working directory.
    A snippet that uses Ray runs on the session's local Ray cluster, as ``__main__`` as a user's script
    would (Ray ships ``__main__``'s functions by value; a module named otherwise must be importable)."""
    run_name = "__snippet__"
    if _uses_ray(code):
        request.getfixturevalue("ray_cluster")
        run_name = "__main__"
    script = tmp_path / "snippet.py"
    script.write_text(code)
    with mx.FeatureGraph().use():
        runpy.run_path(str(script), run_name=run_name)


@pytest.mark.parametrize("doc", ["README.md", "docs/concepts.md", "docs/stores.md", "docs/dagster.md"])
def test_docs_teach_with_runnable_snippets(doc: str) -> None:
    assert any(where.startswith(f"{doc}#") for where, _ in _snippets())


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_relative_links_resolve(doc: Path) -> None:
    missing = [target for target in LINK.findall(doc.read_text()) if not (doc.parent / target).exists()]
    assert missing == []


def test_readme_first_command_runs_the_multimodal_demo() -> None:
    first = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert first is not None and first.group(1).strip() == "bash scripts/demo.sh"
    script = (ROOT / "scripts" / "demo.sh").read_text().strip().splitlines()
    assert script[-1] == 'exec .venv/bin/mx demo "$@"'


def test_quickstart_example_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with mx.FeatureGraph().use():
        counts = runpy.run_path(str(ROOT / "examples" / "quickstart.py"))["main"]()
    assert counts["transcript"] == (0, 10, 0)
    assert counts["faces"] == (0, 0, 0)
    assert counts["transcript after audio code bump"] == (100, 0, 0)
    assert counts["faces after audio code bump"] == (0, 0, 0)


def test_quickstart_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "transcript new=0    stale=10" in done.stdout
