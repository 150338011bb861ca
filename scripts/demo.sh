#!/usr/bin/env bash
# Fresh machine -> demo: install into .venv, then run the example pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python examples/quickstart.py "$@"
