#!/usr/bin/env bash
# Benchmarks `strata serve` against `strata ingest` on the same events:
# builds the release binary, prepares benches/.venv-serve with pinned psutil
# and the OpenTelemetry protobuf classes, then runs benches/serve_bench.py
# with the given arguments (--quick: a fast check; --help: every option).
# STRATA_BENCH_SKIP_BUILD=1 skips the build.
set -euo pipefail
BENCHES="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCHES")"
PACKAGES=(psutil==7.2.2 opentelemetry-proto==1.45.2)

if [[ "${STRATA_BENCH_SKIP_BUILD:-}" != 1 ]]; then
  (cd "$ROOT" && cargo build --release --bin strata)
fi
command -v taskset >/dev/null || { echo "serve.sh: taskset (util-linux) not found" >&2; exit 1; }
source "$BENCHES/venv.sh"
pinned_venv "$BENCHES/.venv-serve" "${PACKAGES[@]}"
exec "$BENCHES/.venv-serve/bin/python" "$BENCHES/serve_bench.py" "$@"
