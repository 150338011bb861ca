#!/usr/bin/env bash
# Fresh machine -> whole test suite: install into .venv, then run pytest on 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
# The PostgreSQL store's tests start a throw-away cluster (initdb + pg_ctl), the ClickHouse server
# transport's tests a throw-away clickhouse-server: Debian's server binaries.
missing=()
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ ! -x /usr/sbin/clickhouse-server ] && ! command -v clickhouse-server >/dev/null 2>&1; then
  missing+=(clickhouse-server)
fi
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q "${missing[@]}"
fi
bash scripts/bootstrap.sh
# The suite starts hundreds of Python processes (the CLI, writer processes, the demo, Ray workers):
# let the first import of src/ and tests/ write its .pyc for all the others.
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest -n 2 --dist loadgroup -q "$@"
