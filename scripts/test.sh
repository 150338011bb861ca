#!/usr/bin/env bash
# Fresh machine -> whole test suite: install into .venv, then run pytest on 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -n 2 -q "$@"
