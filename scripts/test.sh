#!/usr/bin/env bash
# Runs every test: installs DuckDB for Python into .venv (the tests compare
# query answers with it), then the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
DUCKDB_VERSION=2.0.0
if ! .venv/bin/python -c "import duckdb; assert duckdb.__version__ == '$DUCKDB_VERSION'" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
fi
export STRATA_TEST_PYTHON="$PWD/.venv/bin/python"
# Doctests first: the run should close on the summary of the real test binaries.
cargo test --workspace --doc "$@"
cargo test --workspace --all-targets "$@"
