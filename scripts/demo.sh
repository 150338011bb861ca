#!/usr/bin/env bash
# Fresh machine -> demo: install into .venv, then run the multimodal demo (`mx demo`): generated
# audio/video clips, Dagster assets, an embedded DuckDB metadata store, data and code changes.
# Arguments go to `mx demo` (e.g. --clips 100 --seed 1 --workdir /tmp/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/mx demo "$@"
