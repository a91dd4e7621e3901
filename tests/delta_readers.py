"""Reads an archive's Delta table with three readers no strata code wrote:
the `deltalake` package (delta-rs), Polars' `read_delta`, and DuckDB's
`delta_scan` (delta-kernel-rs) from the `duckdb-extension-delta` wheel,
loaded from the wheel's own folder with downloads off.

usage: delta_readers.py ARCHIVE [--where COLUMN OP VALUE]... VERSION...
       delta_readers.py ARCHIVE --adds VERSION
       delta_readers.py ARCHIVE --attrs VERSION

Prints one JSON object: for each reader, for each version, the rows as
[tenant, family, month, count, sum of bytes] sorted, or {"error": "..."},
of the rows where every condition holds (OP is =, != or >, on text).
With --adds, the paths of the files the `deltalake` package lists at VERSION.
With --attrs, for each reader, every attribute at VERSION as sorted
[event_id, key, value] triples: the `attrs` map's entries and the values of
the shredded `attrs__<key>` columns.
"""

import json
import os
import sys

import deltalake
import duckdb
import duckdb_extension_delta
import polars as pl


def duckdb_connection():
    folder = os.path.join(os.path.dirname(duckdb_extension_delta.__file__), "extensions")
    path = os.path.join(folder, f"v{duckdb.__version__}", "delta.duckdb_extension")
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "extension_directory": folder,
        }
    )
    con.execute(f"LOAD '{path}'")
    con.execute("SET TimeZone = 'UTC'")
    return con


def rows(pairs):
    return sorted([list(key) + [count, int(total or 0)] for key, count, total in pairs])


def with_deltalake(root, version, where):
    table = deltalake.DeltaTable(root, version=version)
    data = table.to_pyarrow_table(filters=where or None)
    grouped = data.group_by(["tenant", "family", "month"]).aggregate(
        [("ts", "count"), ("bytes", "sum")]
    )
    keys = zip(*(grouped.column(c).to_pylist() for c in ["tenant", "family", "month"]))
    return rows(
        zip(keys, grouped.column("ts_count").to_pylist(), grouped.column("bytes_sum").to_pylist())
    )


def with_polars(root, version, where):
    frame = pl.scan_delta(root, version=version)
    tests = {"=": lambda c, v: c == v, "!=": lambda c, v: c != v, ">": lambda c, v: c > v}
    for column, op, value in where:
        frame = frame.filter(tests[op](pl.col(column), value))
    grouped = (
        frame.group_by("tenant", "family", "month")
        .agg(pl.len().alias("n"), pl.col("bytes").sum().alias("b"))
        .collect()
    )
    return rows(((r[0], r[1], r[2]), r[3], r[4]) for r in grouped.iter_rows())


def with_duckdb(con, root, version, where):
    condition = " AND ".join(f"{column} {op} '{value}'" for column, op, value in where)
    condition = f"WHERE {condition}" if condition else ""
    result = con.sql(
        f"SELECT tenant, family, month, count(*), sum(bytes) "
        f"FROM delta_scan('{root}', version => {version}) {condition} GROUP BY ALL"
    ).fetchall()
    return rows(((r[0], r[1], r[2]), r[3], r[4]) for r in result)


def attribute_triples(table):
    """[event_id, key, value] of a pyarrow table's `attrs` map (a map, or a
    list of key/value structs as Polars gives it) and `attrs__` columns."""
    triples = []
    ids = table.column("event_id").to_pylist()
    for entries, event_id in zip(table.column("attrs").to_pylist(), ids):
        for entry in entries or []:
            key, value = (entry["key"], entry["value"]) if isinstance(entry, dict) else entry
            triples.append([event_id, key, value])
    for name in table.column_names:
        if name.startswith("attrs__"):
            for value, event_id in zip(table.column(name).to_pylist(), ids):
                if value is not None:
                    triples.append([event_id, name[len("attrs__"):], value])
    return sorted(triples)


def attributes(root, version):
    con = duckdb_connection()
    readers = {
        "deltalake": lambda: deltalake.DeltaTable(root, version=version).to_pyarrow_table(),
        "polars": lambda: pl.read_delta(root, version=version).to_arrow(),
        "duckdb": lambda: con.sql(f"SELECT * FROM delta_scan('{root}', version => {version})").fetch_arrow_table(),
    }
    out = {}
    for name, read in readers.items():
        try:
            out[name] = attribute_triples(read())
        except Exception as e:  # reported by the test
            out[name] = {"error": f"{type(e).__name__}: {e}"}
    return out


def main():
    args = sys.argv[1:]
    root = os.path.abspath(args.pop(0))
    if args[0] == "--adds":
        table = deltalake.DeltaTable(root, version=int(args[1]))
        adds = table.get_add_actions(flatten=True)
        json.dump(sorted(adds.column("path").to_pylist()), sys.stdout)
        return
    if args[0] == "--attrs":
        json.dump(attributes(root, int(args[1])), sys.stdout)
        return
    where = []
    while args[0] == "--where":
        where.append(tuple(args[1:4]))
        args = args[4:]
    versions = [int(v) for v in args]
    con = duckdb_connection()
    readers = {
        "deltalake": lambda v: with_deltalake(root, v, where),
        "polars": lambda v: with_polars(root, v, where),
        "duckdb": lambda v: with_duckdb(con, root, v, where),
    }
    out = {}
    for name, read in readers.items():
        out[name] = {}
        for version in versions:
            try:
                out[name][str(version)] = read(version)
            except Exception as e:  # the test asserts which versions fail
                out[name][str(version)] = {"error": f"{type(e).__name__}: {e}"}
    json.dump(out, sys.stdout)


main()
