#!/usr/bin/env bash
# Create .venv (if needed) and install metaxy with every extra needed by the demo and the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip uv
.venv/bin/uv pip install -q --python .venv/bin/python -e '.[all]'
