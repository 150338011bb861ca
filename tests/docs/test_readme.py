"""Every Python snippet in README.md and docs/ runs, and the demo script prints what it promises."""

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
SNIPPET = re.compile(r"```python\n(.*?)```", re.S)


def _snippets() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for i, code in enumerate(SNIPPET.findall(doc.read_text())):
            out.append((f"{doc.relative_to(ROOT)}#{i}", code))
    return out


@pytest.mark.filterwarnings("ignore:Creating table")
@pytest.mark.parametrize(("where", "code"), _snippets(), ids=[w for w, _ in _snippets()])
def test_snippet_runs(where: str, code: str) -> None:
    with mx.FeatureGraph().use():
        exec(compile(code, where, "exec"), {"__name__": "__snippet__"})


def test_readme_has_python_snippets() -> None:
    assert len(_snippets()) >= 1


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
