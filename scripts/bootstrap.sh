#!/usr/bin/env bash
# Create .venv (if needed) and install metaxy with every extra needed by the demo and the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip uv
# --compile-bytecode: the .pyc files are written once here, so every later Python process (the
# CLI, spawned writers, Ray workers) loads them even where PYTHONDONTWRITEBYTECODE is set; without
# them each process compiles its ~400 modules again (`mx --help`: 1.5 s instead of 0.6 s).
.venv/bin/uv pip install -q --python .venv/bin/python --compile-bytecode -e '.[all]'
