#!/usr/bin/env bash
# Benchmarks year-scan queries in-process against a Ballista cluster of two
# executors on this machine: builds the release binary, then runs
# benches/cluster_bench.py with the given arguments (--quick: a fast check;
# --help: every option). Needs only python3. STRATA_BENCH_SKIP_BUILD=1 skips the build.
set -euo pipefail
BENCHES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCHES")"
if [[ "${STRATA_BENCH_SKIP_BUILD:-}" != 1 ]]; then
  (cd "$ROOT" && cargo build --release --bin strata)
fi
exec python3 "$BENCHES/cluster_bench.py" "$@"
