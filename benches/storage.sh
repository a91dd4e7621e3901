#!/usr/bin/env bash
# Benchmarks bytes stored against DuckDB on three differently shaped data sets,
# with ingest speed and query medians (against an older strata binary given by
# --baseline): builds the release binary, prepares benches/.venv (as run.sh),
# then runs benches/storage_bench.py with the given arguments (--quick: a fast
# check; --help: every option). STRATA_BENCH_SKIP_BUILD=1 skips the build.
set -euo pipefail
BENCHES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCHES")"
PACKAGES=(duckdb==2.0.0 psutil==7.2.2 pytz==2026.6)
if [[ "${STRATA_BENCH_SKIP_BUILD:-}" != 1 ]]; then
  (cd "$ROOT" && cargo build --release --bin strata)
fi
source "$BENCHES/venv.sh"
pinned_venv "$BENCHES/.venv" "${PACKAGES[@]}"
exec "$BENCHES/.venv/bin/python" "$BENCHES/storage_bench.py" "$@"
