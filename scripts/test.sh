#!/usr/bin/env bash
# Runs every test: installs DuckDB, pyarrow, cryptography, the official
# Elasticsearch client, the OpenTelemetry SDK with its OTLP/HTTP exporter and
# the Prometheus client (its text parser reads /metrics), psycopg and SQLAlchemy
# (PostgreSQL wire clients) for Python into .venv (the tests compare query answers with DuckDB, read
# encrypted files with pyarrow, and send events to `strata serve` as real
# shippers do), the syslog shippers `logger` (util-linux) and rsyslog with
# omelasticsearch, curl and openssl for the TLS tests, and psql (postgresql-client)
# for the PostgreSQL wire, from Debian packages; the Delta Lake readers (deltalake,
# Polars, DuckDB with its delta extension) into .venv-delta; Apache Spark
# (pyspark, run on Debian's OpenJDK 17) into .venv-spark; then the whole
# workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(duckdb==2.0.0 pyarrow==26.0.1 cryptography==50.0.2 elasticsearch==9.5.1
  opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2
  prometheus-client==0.26.0 psycopg==3.3.9 psycopg-binary==3.3.9 SQLAlchemy==2.1.9
  adbc-driver-manager==1.13.0 adbc-driver-postgresql==1.13.0)
# The Delta Lake readers (delta-rs, Polars, DuckDB's delta extension, which pins its own
# DuckDB) live in a venv of their own.
DELTA_PACKAGES=(deltalake==1.6.6 polars==2.1.0 duckdb==1.5.5 duckdb-extension-delta==1.5.5
  pyarrow==26.0.1)
install_venv() {
  local venv=$1
  shift
  if ! "$venv/bin/python" -c '
import importlib.metadata, sys
for spec in sys.argv[1:]:
    name, version = spec.split("==")
    assert importlib.metadata.version(name) == version, spec
' "$@" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
  fi
}
install_venv .venv "${PACKAGES[@]}"
install_venv .venv-delta "${DELTA_PACKAGES[@]}"
install_venv .venv-spark pyspark==4.0.5
DEBIAN_PACKAGES=(bsdutils rsyslog rsyslog-elasticsearch curl openssl postgresql-client
  openjdk-17-jre-headless)
if ! dpkg -s "${DEBIAN_PACKAGES[@]}" >/dev/null 2>&1; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq "${DEBIAN_PACKAGES[@]}" >/dev/null ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${DEBIAN_PACKAGES[@]}" >/dev/null; }
fi
export STRATA_TEST_PYTHON="$PWD/.venv/bin/python"
export STRATA_TEST_DELTA_PYTHON="$PWD/.venv-delta/bin/python"
export STRATA_TEST_SPARK_PYTHON="$PWD/.venv-spark/bin/python"
# Doctests first: the run should close on the summary of the real test binaries.
cargo test --workspace --doc "$@"
cargo test --workspace --all-targets "$@"
