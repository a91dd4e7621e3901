#!/usr/bin/env bash
# Benchmarks the query surfaces of `strata serve` (HTTP, the PostgreSQL
# wire through psql) against `strata sql` on the same archive: builds the
# release binary, prepares benches/.venv-wire with pinned DuckDB (to pick
# the queries' parameters as benches/harness.py does), psutil and pyarrow,
# then runs benches/wire_bench.py with the given arguments (--quick: a fast
# check; --help: every option). STRATA_BENCH_SKIP_BUILD=1 skips the build.
set -euo pipefail
BENCHES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCHES")"
PACKAGES=(duckdb==2.0.0 psutil==7.2.2 pytz==2026.6 pyarrow==26.0.1)

if [[ "${STRATA_BENCH_SKIP_BUILD:-}" != 1 ]]; then
  (cd "$ROOT" && cargo build --release --bin strata)
fi
command -v psql >/dev/null || { echo "wire.sh: psql not found (apt-get install postgresql-client)" >&2; exit 1; }
source "$BENCHES/venv.sh"
pinned_venv "$BENCHES/.venv-wire" "${PACKAGES[@]}"
exec "$BENCHES/.venv-wire/bin/python" "$BENCHES/wire_bench.py" "$@"
