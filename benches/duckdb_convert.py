"""Convert NDJSON events to partitioned zstd Parquet with DuckDB, as strata does.

Run by harness.py in its own process so that the conversion's wall time and peak
memory are measured apart from the harness:

    python duckdb_convert.py EVENTS.ndjson OUT_DIR THREADS

The layout matches strata's: one folder per tenant, family and UTC month
(tenant=.../family=.../month=YYYY-MM/), zstd-compressed.
"""

import sys

import duckdb


def sql_string(text):
    """Quote text as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def convert(events, out_dir, threads):
    """Write events as Parquet partitioned by tenant, family and month into out_dir."""
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "COPY (SELECT *, strftime(ts, '%Y-%m') AS month "
        f"FROM read_json_auto({sql_string(events)}, format = 'newline_delimited')) "
        f"TO {sql_string(out_dir)} "
        "(FORMAT parquet, PARTITION_BY (tenant, family, month), COMPRESSION zstd)"
    )
    con.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: duckdb_convert.py EVENTS.ndjson OUT_DIR THREADS")
    convert(sys.argv[1], sys.argv[2], sys.argv[3])
