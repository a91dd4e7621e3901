#!/usr/bin/env bash
# Benchmarks the Delta Lake publication's share of a commit: builds the
# release binary, then runs benches/delta_bench.py with the given arguments
# (--quick: a fast check; --help: every option). Needs only python3.
# STRATA_BENCH_SKIP_BUILD=1 skips the build.
set -euo pipefail
BENCHES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCHES")"
if [[ "${STRATA_BENCH_SKIP_BUILD:-}" != 1 ]]; then
  (cd "$ROOT" && cargo build --release --bin strata)
fi
exec python3 "$BENCHES/delta_bench.py" "$@"
