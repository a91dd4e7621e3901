"""Bytes stored by strata and by DuckDB on differently shaped data (see benches/README.md).

For each data set (strata gen's events; `wide`: UUIDs, free text, many
attribute keys; `long`: few tenants, large months) it ingests the NDJSON with
strata (and with a baseline strata binary when --baseline is given,
alternating), converts it with DuckDB to the same tenant/family/month layout
with zstd, and reports bytes, ratios, bytes per column and footers, ingest
MB/s, and query medians of the five audit queries plus `attrs['key']` queries.
"""

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

import duckdb

import harness
from harness import BenchError, log, sql_string

GENERATOR = harness.BENCHES / "storage_gen.py"
SHAPES = {
    "gen": "strata gen: 20 tenants, a year, its vocabulary",
    "wide": "UUID ids, free-text messages, many attribute keys, 20 tenants, a year",
    "long": "3 tenants, four months: large month partitions",
}
TARGET_VS_DUCKDB = 1.1
TARGET_WIDE_VS_NDJSON = 8.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="events per data set (default 500000; --quick 50000)")
    parser.add_argument("--reps", type=int, help="timed runs of each query (default 5; --quick 3)")
    parser.add_argument("--ingest-reps", type=int, default=3, help="ingests per binary and data set")
    parser.add_argument("--baseline", type=Path, help="an older strata binary to compare ingest and queries with")
    parser.add_argument("--shapes", default="gen,wide,long", help="comma-separated data sets")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work", type=Path, default=harness.BENCHES / "work" / "storage")
    parser.add_argument("--out", type=Path, default=harness.BENCHES / "storage-results.md")
    args = parser.parse_args()
    args.events = args.events or (50_000 if args.quick else 500_000)
    args.reps = args.reps or (3 if args.quick else 5)
    args.shapes = args.shapes.split(",")
    for shape in args.shapes:
        if shape not in SHAPES:
            parser.error(f"unknown data set {shape!r}; known: {', '.join(SHAPES)}")
    (args.work / "logs").mkdir(parents=True, exist_ok=True)
    return args


def generate(shape, args):
    """work/<shape>-<events>.ndjson, made once per shape and size."""
    path = args.work / f"{shape}-{args.events}.ndjson"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    log(f"generating {shape} data: {args.events} events")
    if shape == "gen":
        harness.run([harness.STRATA, "gen", "--events", args.events, "--tenants", 20, "--days", 365,
                     "--seed", harness.SEED, "-o", partial])
    else:
        harness.run([sys.executable, GENERATOR, shape, args.events, harness.SEED, partial])
    partial.rename(path)
    return path


def ingest(binary, events, archive, args, tools):
    """strata ingest into a fresh archive; returns (wall, peak RSS)."""
    shutil.rmtree(archive, ignore_errors=True)
    env = dict(os.environ, STRATA_KEYRING=str(args.work / "keyring.json"))
    result = harness.run_measured([binary, "ingest", "--archive", archive, events],
                                  args.work / "logs" / f"{archive.name}.log", tools, env)
    harness.check_row_count(archive, args.events)
    return result


def column_bytes(folder):
    """{column: compressed bytes} of the Parquet files under folder, plus 'footers and headers'."""
    pattern = sql_string(str(folder / "**" / "*.parquet"))
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT split_part(path_in_schema, ',', 1) AS col, sum(total_compressed_size) "
            f"FROM parquet_metadata({pattern}) GROUP BY 1").fetchall()
    sizes = {column: int(size) for column, size in rows}
    total, _ = harness.parquet_size(folder)
    sizes["(footers, headers)"] = total - sum(sizes.values())
    return sizes


def strata_query(binary, archive, sql, args):
    env = dict(os.environ, STRATA_KEYRING=str(args.work / "keyring.json"))
    return harness.run_strata_query(archive, sql, env, binary)


def attrs_queries(archive, args):
    """Queries on the most frequent attribute key of the data (none when it has no attrs)."""
    top = strata_query(harness.STRATA, archive,
                       "SELECT k, count(*) AS n FROM (SELECT unnest(map_keys(attrs)) AS k FROM events) "
                       "GROUP BY k ORDER BY n DESC, k LIMIT 1", args)["rows"]
    if not top:
        return []
    key = sql_string(top[0][0])
    value = strata_query(harness.STRATA, archive,
                         f"SELECT attrs[{key}] AS v, count(*) AS n FROM events WHERE attrs[{key}] IS NOT NULL "
                         "GROUP BY v ORDER BY n DESC, v LIMIT 1", args)["rows"][0][0]
    return [
        (f"A1 top values of attrs[{key}]",
         f"SELECT attrs[{key}] AS v, count(*) AS n FROM events GROUP BY v ORDER BY n DESC, v LIMIT 10"),
        (f"A2 count where attrs[{key}] = {sql_string(value)}",
         f"SELECT count(*) FROM events WHERE attrs[{key}] = {sql_string(value)}"),
    ]


def bench_queries(archives, queries, args):
    """Median --stats seconds per binary, alternating; fails when the binaries' answers differ."""
    rows = []
    for name, sql in queries:
        runs = {label: [] for label in archives}
        for _ in range(args.reps):
            for label, (binary, archive) in archives.items():
                runs[label].append(strata_query(binary, archive, sql, args))
        answers = {tuple(sorted(map(tuple, results[-1]["rows"]))) for results in runs.values()}
        if len(answers) != 1:
            raise BenchError(f"strata binaries disagree on {name}: {sql}")
        row = {"name": name}
        for label, results in runs.items():
            row[label] = statistics.median(r["seconds"] for r in results)
            row[f"{label} read"] = results[-1]["read"]
        log(f"  {name}: " + ", ".join(f"{label} {row[label]:.3f} s" for label in runs))
        rows.append(row)
    return rows


def bench_shape(shape, args, tools):
    events = generate(shape, args)
    ndjson = events.stat().st_size
    binaries = {"strata": harness.STRATA}
    if args.baseline:
        binaries["baseline"] = args.baseline
    archives = {label: (binary, args.work / f"{shape}-{label}") for label, binary in binaries.items()}
    walls = {label: [] for label in binaries}
    peaks = {label: [] for label in binaries}
    for rep in range(args.ingest_reps):
        for label, (binary, archive) in archives.items():
            log(f"{shape}: {label} ingest, rep {rep + 1}/{args.ingest_reps}")
            wall, peak = ingest(binary, events, archive, args, tools)
            walls[label].append(wall)
            peaks[label].append(peak)
    threads = os.cpu_count()
    duck = harness.bench_duckdb_convert(events, threads, args, tools)
    duck_dir = args.work / f"duckdb-t{threads}"
    sizes = {}
    for label, (_, archive) in archives.items():
        out, files = harness.parquet_size(archive)
        sizes[label] = {"bytes": out, "files": files, "wall": statistics.median(walls[label]),
                        "peak_mib": max(peaks[label]) / 2**20}
    con = harness.duckdb_connection(duck_dir)
    queries = harness.audit_queries(harness.pick_query_parameters(con))
    con.close()
    queries += attrs_queries(archives["strata"][1], args)
    return {
        "shape": shape, "ndjson": ndjson, "sizes": sizes,
        "duckdb": {"bytes": duck["out_bytes"], "files": duck["files"], "wall": duck["wall"]},
        "columns": {"strata": column_bytes(archives["strata"][1]), "DuckDB": column_bytes(duck_dir)},
        "queries": bench_queries(archives, queries, args),
    }


def render(args, results):
    lines = [
        "# Storage benchmark results",
        "",
        f"`benches/storage.sh {' '.join(sys.argv[1:])}`: {args.events} events per data set, "
        f"{args.ingest_reps} ingests per binary (alternating) and DuckDB conversions, {args.reps} runs per query, medians.",
        "",
        "; ".join(f"{label}: {value}" for label, value in harness.machine_description()) + ".",
        "",
    ]
    size_rows, failed = [], False
    for r in results:
        strata = r["sizes"]["strata"]
        vs_duckdb = r["duckdb"]["bytes"] / strata["bytes"]
        vs_ndjson = r["ndjson"] / strata["bytes"]
        ok = vs_duckdb >= TARGET_VS_DUCKDB and (r["shape"] != "wide" or vs_ndjson >= TARGET_WIDE_VS_NDJSON)
        failed |= not ok
        row = [r["shape"], f"{r['ndjson'] / 1e6:.1f}", f"{strata['bytes'] / 1e6:.2f}", str(strata["files"]),
               f"{vs_ndjson:.2f}x", f"{r['duckdb']['bytes'] / 1e6:.2f}", str(r["duckdb"]["files"]),
               f"{r['ndjson'] / r['duckdb']['bytes']:.2f}x", f"{vs_duckdb:.3f}", harness.pass_fail(ok)]
        if "baseline" in r["sizes"]:
            base = r["sizes"]["baseline"]["bytes"]
            row.insert(4, f"{base / 1e6:.2f}")
        size_rows.append(row)
    header = ["data", "NDJSON MB", "strata MB", "files", "vs NDJSON", "DuckDB MB", "files",
              "vs NDJSON", "DuckDB / strata", f"≥ {TARGET_VS_DUCKDB}x DuckDB (wide: ≥ {TARGET_WIDE_VS_NDJSON}x NDJSON)"]
    if "baseline" in results[0]["sizes"]:
        header.insert(4, "baseline MB")
    lines += ["## Bytes stored", "", harness.table(header, size_rows), ""]
    lines += ["Data sets: " + "; ".join(f"`{s}`: {SHAPES[s]}" for s in args.shapes) + ".", ""]

    ingest_rows = []
    for r in results:
        for label, size in r["sizes"].items():
            ingest_rows.append([r["shape"], label, f"{size['wall']:.2f}", f"{r['ndjson'] / 1e6 / size['wall']:.1f}",
                                f"{size['peak_mib']:.0f}"])
        ingest_rows.append([r["shape"], "DuckDB", f"{r['duckdb']['wall']:.2f}",
                            f"{r['ndjson'] / 1e6 / r['duckdb']['wall']:.1f}", ""])
    lines += ["## Ingest (two cores)", "",
              harness.table(["data", "tool", "wall s", "MB/s", "peak MiB"], ingest_rows), ""]

    for r in results:
        strata_cols, duck_cols = r["columns"]["strata"], r["columns"]["DuckDB"]
        total = sum(strata_cols.values())
        ordered = sorted(strata_cols, key=strata_cols.get, reverse=True)
        lines += [f"## Bytes per column: {r['shape']}", "",
                  harness.table(["column", "strata bytes", "share", "DuckDB bytes"],
                                 [[c, str(strata_cols[c]), f"{100 * strata_cols[c] / total:.1f}%",
                                   str(duck_cols.get(c, ""))] for c in ordered]), ""]
        labels = list(r["sizes"])
        lines += [f"## Queries: {r['shape']} (strata --stats seconds, medians)", "",
                  harness.table(["query", *labels, *(f"{label} read" for label in labels)],
                                 [[q["name"], *(f"{q[label]:.3f}" for label in labels),
                                   *(q[f"{label} read"] for label in labels)] for q in r["queries"]]), ""]
    return "\n".join(lines), failed


def main():
    args = parse_args()
    tools = harness.find_tools()
    results = [bench_shape(shape, args, tools) for shape in args.shapes]
    report, failed = render(args, results)
    args.out.write_text(report + "\n")
    print(report)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    try:
        main()
    except BenchError as err:
        sys.exit(f"storage benchmark: {err}")
