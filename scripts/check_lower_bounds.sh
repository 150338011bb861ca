#!/usr/bin/env bash
# Install the *lower bounds* declared in pyproject.toml (core + delta; each `pkg>=X.Y` becomes
# `pkg==X.Y.*`) into a throwaway venv and run the test suite without Dagster there.
# Usage: bash scripts/check_lower_bounds.sh [pytest args]   (default: the store/versioning suites)
# Not part of scripts/test.sh (it installs a second environment, ~15 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
VENV=${LOWER_BOUNDS_VENV:-.venv-lower-bounds}
[ -x "$VENV/bin/python" ] || .venv/bin/uv venv -q "$VENV"
mapfile -t PINS < <(.venv/bin/python - <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
for req in [*project["dependencies"], *extras["delta"], "pytest", "hypothesis", "pandas", "pytest-xdist"]:
    m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)>=([0-9.]+)", req.split(";")[0].strip())
    print(f"{m.group(1)}=={m.group(2)}.*" if m else req)
PY
)
.venv/bin/uv pip install -q --python "$VENV/bin/python" "${PINS[@]}"
.venv/bin/uv pip install -q --python "$VENV/bin/python" --no-deps -e .
.venv/bin/uv pip list --python "$VENV/bin/python"
if [ "$#" -eq 0 ]; then
  set -- tests/models tests/versioning tests/metadata_store tests/conformance tests/config tests/cli \
    tests/compat/test_published_values.py
fi
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
