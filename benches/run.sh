#!/usr/bin/env bash
# Benchmarks strata against DuckDB: builds the release binary, prepares a Python
# venv in benches/.venv with pinned DuckDB, psutil and pytz (DuckDB needs it to
# return timestamps with a time zone), then runs benches/harness.py
# with the given arguments (none: the full benchmark; --quick: a fast check;
# --help: every option). STRATA_BENCH_SKIP_BUILD=1 skips the build.
set -euo pipefail
BENCHES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCHES")"
PACKAGES=(duckdb==2.0.0 psutil==7.2.2 pytz==2026.6)

need() {
  command -v "$1" >/dev/null || { echo "run.sh: $1 not found: $2" >&2; exit 1; }
}

if [[ "${STRATA_BENCH_SKIP_BUILD:-}" != 1 ]]; then
  need cargo "install Rust (rust-toolchain.toml pins the version)"
  # One invocation, so the binary and the benches share one set of features
  # (built separately, the benches' dev-dependencies would rebuild DataFusion).
  (cd "$ROOT" && cargo build --release --bin strata --bench s3_ingest --bench hot_paths)
fi

need python3 "install Python 3 with venv"
source "$BENCHES/venv.sh"
pinned_venv "$BENCHES/.venv" "${PACKAGES[@]}"

exec "$BENCHES/.venv/bin/python" "$BENCHES/harness.py" "$@"
