"""Benchmark strata against DuckDB: ingest, on-disk size and audit queries.

Run through benches/run.sh, which builds strata and prepares the Python venv.
The harness generates synthetic events with `strata gen`, ingests them with strata
on one and two cores, converts the same NDJSON to the same Parquet layout with
DuckDB, then runs five audit queries with both engines over the Parquet files
strata wrote. It prints a markdown report and writes it to --out.

Exit status: 0 when every step ran and both engines agreed on every query
(targets may still FAIL: that is a result, not an error); 1 when a tool is
missing, a command fails, or the engines disagree.
"""

import argparse
import csv
import datetime
import io
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psutil

BENCHES = Path(__file__).resolve().parent
REPO = BENCHES.parent
# Where run.sh's `cargo build --release` put the binary (CARGO_TARGET_DIR, as cargo reads it).
STRATA = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target").resolve() / "release" / "strata"
DUCKDB_CONVERT = BENCHES / "duckdb_convert.py"
SEED = 42

FULL_EVENTS = 2_500_000
FULL_BIG_EVENTS = 25_000_000
FULL_REPS = 5
QUICK_EVENTS = 200_000
QUICK_REPS = 3

# Results with at most this many rows are compared row by row, not just counted.
SMALL_RESULT_ROWS = 100_000
# Size of the buckets lines are dealt into when shuffling an input.
SHUFFLE_BUCKET_BYTES = 512 * 2**20
# Interval between two RSS samples when /usr/bin/time is not available.
RSS_POLL_SECONDS = 0.02

TARGET_MBPS_ONE_CORE = 100.0
TARGET_TWO_CORE_SPEEDUP = 1.7
TARGET_COMPRESSION = 8.0
TARGET_PEAK_RSS_MIB = 512.0
TARGET_S3_SHARE = 0.70
TARGET_PLAN_MS = 200.0

# The criterion benchmark (benches/hot_paths.rs) that the planning target is judged by.
CATALOG_PLAN = "catalog, 100k files/open a session and plan a tenant-month query"
# A criterion result: the benchmark's name, then `time: [low median high]` and maybe `thrpt: [...]`.
CRITERION_RESULT = re.compile(
    r"^(?P<name>\S[^\n]*?)\s+time:\s+\[\S+ \S+ (?P<time>[0-9.]+) (?P<unit>\S+) \S+ \S+\]"
    r"(?:\s+thrpt:\s+\[\S+ \S+ (?P<thrpt>[0-9.]+ \S+) \S+ \S+\])?",
    re.MULTILINE,
)
# `catalog of 100000 files: the one-tenant one-month plan keeps 3`, printed by hot_paths.
CATALOG_LINE = re.compile(r"catalog of (?P<files>\d+) files: the one-tenant one-month plan keeps (?P<kept>\d+)")
MILLISECONDS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}

# `local 1.23 s 456.7 MB/s | s3 1.50 s 370.0 MB/s | s3/local 0.82`, from benches/s3_ingest.rs.
S3_LINE = re.compile(r"local (?P<local>[0-9.]+) s .*\| s3 (?P<s3>[0-9.]+) s .*\| s3/local (?P<share>[0-9.]+)")

# `N rows in 0.123 s; files: A scanned of B in the catalog (C pruned); row groups: ...;
# X read from storage`, printed on stderr by `strata sql --stats`.
STATS_LINE = re.compile(
    r"^(?P<rows>\d+) rows in (?P<seconds>[0-9.]+) s; "
    r"files: (?P<scanned>\d+) scanned of (?P<total>\d+) in the catalog .*; "
    r"(?P<read>[0-9.]+ [kMGT]?B) read from storage$",
    re.MULTILINE,
)


class BenchError(Exception):
    """A failure that stops the benchmark: missing tool, failed command, mismatch."""


def log(message):
    """Print a progress line on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def sql_string(text):
    """Quote text as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def parse_args():
    """Parse the command line; --quick changes the defaults of --events and --reps."""
    parser = argparse.ArgumentParser(
        description="Benchmark strata against DuckDB (ingest, size, audit queries)."
    )
    parser.add_argument("--events", type=int, help=f"events to generate (default {FULL_EVENTS}, quick {QUICK_EVENTS})")
    parser.add_argument("--tenants", type=int, default=20, help="tenants (default 20)")
    parser.add_argument("--days", type=int, default=365, help="days covered (default 365)")
    parser.add_argument("--reps", type=int, help=f"repetitions of each query (default {FULL_REPS}, quick {QUICK_REPS})")
    parser.add_argument("--ingest-reps", type=int, default=1, help="repetitions of each ingest and conversion (default 1)")
    parser.add_argument("--work", type=Path, default=BENCHES / "work", help="work folder (default benches/work)")
    parser.add_argument("--big-events", type=int,
                        help=f"events of the memory run's large input (default {FULL_BIG_EVENTS}, about 10.6 GB; "
                             "quick and 0: no large input)")
    parser.add_argument("--quick", action="store_true", help=f"fast check: {QUICK_EVENTS} events, {QUICK_REPS} query reps")
    parser.add_argument("--out", type=Path, default=BENCHES / "results.md", help="markdown report (default benches/results.md)")
    args = parser.parse_args()
    if args.events is None:
        args.events = QUICK_EVENTS if args.quick else FULL_EVENTS
    if args.reps is None:
        args.reps = QUICK_REPS if args.quick else FULL_REPS
    if args.big_events is None:
        args.big_events = 0 if args.quick else FULL_BIG_EVENTS
    if args.big_events < 0:
        parser.error("--big-events must be at least 0")
    for name in ("events", "tenants", "days", "reps", "ingest_reps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    args.work = args.work.resolve()
    args.out = args.out.resolve()
    return args


def find_tools():
    """Check the strata binary exists; find taskset and GNU time (both optional)."""
    if not os.access(STRATA, os.X_OK):
        raise BenchError(f"{STRATA} not found: run benches/run.sh (it builds it) or `cargo build --release`")
    return {"taskset": shutil.which("taskset"), "time": shutil.which("time")}


def run(cmd, env=None):
    """Run cmd, returning (wall seconds, stdout, stderr); raise BenchError on failure."""
    cmd = [str(arg) for arg in cmd]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(
            f"command failed with status {proc.returncode}: {' '.join(cmd)}\n{proc.stderr.strip()}"
        )
    return wall, proc.stdout, proc.stderr


def run_measured(cmd, log_path, tools, env=None):
    """Run cmd with output to log_path; return (wall seconds, peak RSS bytes).

    Peak RSS is the kernel's maximum resident set of the process, read by
    GNU time (`-f %M`) when it is installed; otherwise psutil samples the
    process's RSS every RSS_POLL_SECONDS.
    """
    cmd = [str(arg) for arg in cmd]
    with open(log_path, "w") as out, tempfile.NamedTemporaryFile("r") as rss_file:
        if tools["time"]:
            full_cmd = [tools["time"], "-f", "%M", "-o", rss_file.name, *cmd]
        else:
            full_cmd = cmd
        start = time.perf_counter()
        proc = subprocess.Popen(full_cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = 0
        if not tools["time"]:
            watched = psutil.Process(proc.pid)
            while proc.poll() is None:
                try:
                    peak = max(peak, watched.memory_info().rss)
                except psutil.NoSuchProcess:
                    break
                time.sleep(RSS_POLL_SECONDS)
        status = proc.wait()
        wall = time.perf_counter() - start
        if tools["time"]:
            # GNU time may print a note such as "Command exited with non-zero status" first.
            peak = int(rss_file.read().split()[-1]) * 1024
    if status != 0:
        raise BenchError(
            f"command failed with status {status}: {' '.join(cmd)}\n"
            f"{Path(log_path).read_text()[-2000:]}"
        )
    return wall, peak


def generate_input(args, events=None, name="events"):
    """Write work/<name>.ndjson with strata gen, reusing it when its parameters match."""
    events = events or args.events
    path = args.work / f"{name}.ndjson"
    params_file = args.work / f"{name}.params.json"
    params = {"events": events, "tenants": args.tenants, "days": args.days, "seed": SEED}
    if path.exists() and params_file.exists():
        saved = json.loads(params_file.read_text())
        if saved.get("params") == params and saved.get("bytes") == path.stat().st_size:
            log(f"reusing {path} ({saved['bytes'] / 1e6:.1f} MB)")
            return path
    log(f"generating {events} events into {path}")
    params_file.unlink(missing_ok=True)
    run([STRATA, "gen", "--events", events, "--tenants", args.tenants, "--days", args.days,
         "--seed", SEED, "-o", path])
    params_file.write_text(json.dumps({"params": params, "bytes": path.stat().st_size}, indent=2) + "\n")
    return path


def shuffled_input(events, args):
    """Write <events>-shuffled.ndjson: the same lines in a random (seeded) order.

    Lines are dealt at random into buckets of about SHUFFLE_BUCKET_BYTES,
    then each bucket is shuffled in memory and appended: a uniform random
    order in bounded memory, whatever the input's size.
    """
    shuffled = events.with_name(events.stem + "-shuffled.ndjson")
    if shuffled.exists() and shuffled.stat().st_size == events.stat().st_size \
            and shuffled.stat().st_mtime >= events.stat().st_mtime:
        log(f"reusing {shuffled}")
        return shuffled
    log(f"shuffling {events} into {shuffled}")
    rng = random.Random(SEED)
    count = max(1, -(-events.stat().st_size // SHUFFLE_BUCKET_BYTES))
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        buckets = [open(Path(tmp) / f"{i}", "wb") for i in range(count)]
        with open(events, "rb") as lines:
            for line in lines:
                buckets[rng.randrange(count)].write(line)
        for bucket in buckets:
            bucket.close()
        with open(shuffled, "wb") as out:
            for i in range(count):
                lines = (Path(tmp) / f"{i}").read_bytes().splitlines(keepends=True)
                rng.shuffle(lines)
                out.write(b"".join(lines))
    return shuffled


def parquet_size(folder):
    """Return (total bytes, file count) of the *.parquet files under folder."""
    files = list(Path(folder).rglob("*.parquet"))
    return sum(f.stat().st_size for f in files), len(files)


def check_row_count(folder, expected):
    """Fail unless the *.parquet files under folder hold exactly `expected` rows."""
    pattern = sql_string(str(Path(folder) / "**" / "*.parquet"))
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT count(*) FROM read_parquet({pattern})").fetchone()[0]
    if rows != expected:
        raise BenchError(f"{folder} holds {rows} rows, expected {expected}")


def summarize(tool, threads, walls, peaks, folder, input_bytes):
    """One ingest-table row from the repetitions of one tool at one thread count."""
    wall = statistics.median(walls)
    out_bytes, files = parquet_size(folder)
    return {
        "tool": tool, "threads": threads, "wall": wall, "mbps": input_bytes / 1e6 / wall,
        "peak_mib": max(peaks) / 2**20, "out_bytes": out_bytes, "files": files,
        "ratio": input_bytes / out_bytes,
    }


def strata_archive(args, threads):
    """The archive folder strata's ingest with `threads` threads writes."""
    return args.work / f"strata-t{threads}"


def bench_strata_ingest(events, threads, args, tools, label="", rows=None):
    """Ingest events into a fresh archive per rep; return an ingest row, or None without taskset."""
    if threads == 1 and not tools["taskset"]:
        log("taskset not found: strata's one-core ingest is n/a")
        return None
    archive = strata_archive(args, threads) if not label else args.work / f"strata-{label.replace(' ', '-')}"
    env = dict(os.environ, STRATA_KEYRING=str(args.work / "keyring.json"))
    pin = [tools["taskset"], "-c", "0"] if threads == 1 else []
    walls, peaks = [], []
    for rep in range(args.ingest_reps):
        shutil.rmtree(archive, ignore_errors=True)
        log(f"strata ingest {label}, {threads} thread(s), rep {rep + 1}/{args.ingest_reps}")
        wall, peak = run_measured([*pin, STRATA, "ingest", "--archive", archive, events],
                                  args.work / "logs" / f"strata-ingest-t{threads}{label.replace(' ', '-')}.log",
                                  tools, env)
        walls.append(wall)
        peaks.append(peak)
        check_row_count(archive, rows or args.events)
    tool = f"strata, {label} input" if label else "strata"
    row = summarize(tool, threads, walls, peaks, archive, events.stat().st_size)
    if label:
        shutil.rmtree(archive)  # only the main archives are queried
    return row


def bench_duckdb_convert(events, threads, args, tools):
    """Convert events to Parquet with DuckDB (SET threads) in a subprocess; return an ingest row."""
    out_dir = args.work / f"duckdb-t{threads}"
    walls, peaks = [], []
    for rep in range(args.ingest_reps):
        shutil.rmtree(out_dir, ignore_errors=True)
        log(f"DuckDB conversion, {threads} thread(s), rep {rep + 1}/{args.ingest_reps}")
        wall, peak = run_measured([sys.executable, DUCKDB_CONVERT, events, out_dir, threads],
                                  args.work / "logs" / f"duckdb-convert-t{threads}.log", tools)
        walls.append(wall)
        peaks.append(peak)
        check_row_count(out_dir, args.events)
    return summarize("DuckDB", threads, walls, peaks, out_dir, events.stat().st_size)


def bench_s3_ingest(events, args):
    """strata ingest into the in-process S3 server against the local folder (benches/s3_ingest.rs)."""
    log("strata ingest into S3 (s3s-fs over HTTP, in process) and into a local folder, alternating")
    cmd = ["cargo", "bench", "--quiet", "--bench", "s3_ingest", "--", str(events), str(max(args.ingest_reps, 1))]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    match = S3_LINE.search(done.stdout)
    if done.returncode != 0 or not match:
        raise BenchError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr[-2000:]}")
    seconds = {key: float(match[key]) for key in ("local", "s3")}
    mb = events.stat().st_size / 1e6
    return {"local": seconds["local"], "s3": seconds["s3"], "local_mbps": mb / seconds["local"],
            "s3_mbps": mb / seconds["s3"], "share": float(match["share"])}


def bench_hot_paths():
    """Run the criterion micro-benchmarks (benches/hot_paths.rs); return their medians.

    Returns {"times": {name: milliseconds}, "throughput": {name: text},
    "catalog_files": N, "catalog_kept": K}.
    """
    log("criterion micro-benchmarks: decode, encode, catalog of 100k files (about two minutes)")
    cmd = ["cargo", "bench", "--quiet", "--bench", "hot_paths"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    output = done.stdout + done.stderr
    catalog = CATALOG_LINE.search(output)
    results = list(CRITERION_RESULT.finditer(done.stdout))
    if done.returncode != 0 or not catalog or not results:
        raise BenchError(f"{' '.join(cmd)} failed ({done.returncode}):\n{output[-3000:]}")
    return {
        "times": {m["name"].strip(): float(m["time"]) * MILLISECONDS[m["unit"]] for m in results},
        "throughput": {m["name"].strip(): m["thrpt"] for m in results if m["thrpt"]},
        "catalog_files": int(catalog["files"]),
        "catalog_kept": int(catalog["kept"]),
    }


def duckdb_connection(archive):
    """A DuckDB connection (UTC) with a view `events` over the archive's Parquet files."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    pattern = sql_string(str(archive / "**" / "*.parquet"))
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet({pattern}, hive_partitioning = true)")
    return con


def add_months(day, months):
    """The first day of the month `months` after day's month."""
    index = day.year * 12 + day.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


def ts_literal(day):
    """A TIMESTAMP literal both engines accept, at midnight UTC of day."""
    return f"TIMESTAMP '{day:%Y-%m-%d} 00:00:00'"


def pick_query_parameters(con):
    """Choose the tenant, month, resource and quarter of the queries from the data.

    tenant: the first tenant in name order; month: that tenant's month with the
    most failed logins; resource: that tenant's most touched resource; quarter:
    the calendar quarter holding the month.
    """
    tenant = con.execute("SELECT min(tenant) FROM events").fetchone()[0]
    month = con.execute(
        "SELECT CAST(date_trunc('month', ts) AS DATE) AS m, count(*) AS n FROM events "
        "WHERE tenant = ? AND family = 'access' AND action = 'login_failed' "
        "GROUP BY 1 ORDER BY n DESC, m LIMIT 1", [tenant]).fetchone()
    resource = con.execute(
        "SELECT resource, count(*) AS n FROM events WHERE tenant = ? AND resource IS NOT NULL "
        "GROUP BY 1 ORDER BY n DESC, resource LIMIT 1", [tenant]).fetchone()
    if tenant is None or month is None or resource is None:
        raise BenchError("the data has no tenant, failed login or resource to query")
    month = month[0]
    quarter = datetime.date(month.year, (month.month - 1) // 3 * 3 + 1, 1)
    return {"tenant": tenant, "month": month, "resource": resource[0], "quarter": quarter}


def audit_queries(p):
    """The five audit queries as (name, SQL), for the picked parameters p."""
    tenant, resource = sql_string(p["tenant"]), sql_string(p["resource"])
    month_from, month_to = ts_literal(p["month"]), ts_literal(add_months(p["month"], 1))
    quarter_from, quarter_to = ts_literal(p["quarter"]), ts_literal(add_months(p["quarter"], 3))
    return [
        ("Q1 failed logins per user, tenant-month",
         "SELECT user, count(*) AS failures FROM events WHERE family = 'access' "
         f"AND action = 'login_failed' AND tenant = {tenant} AND ts >= {month_from} AND ts < {month_to} "
         "GROUP BY user ORDER BY failures DESC, user LIMIT 10"),
        ("Q2 one resource, one tenant, all year",
         f"SELECT ts, user, action, outcome FROM events WHERE tenant = {tenant} AND resource = {resource} "
         "ORDER BY ts"),
        ("Q3 daily counts by family",
         "SELECT CAST(ts AS DATE) AS day, family, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2"),
        ("Q4 out-of-hours exporters, quarter",
         "SELECT DISTINCT tenant, user FROM events WHERE family = 'data_usage' AND action = 'export' "
         f"AND ts >= {quarter_from} AND ts < {quarter_to} "
         "AND (date_part('hour', ts) < 8 OR date_part('hour', ts) >= 19) ORDER BY 1, 2"),
        ("Q5 LIKE '%denied%' on message, quarter",
         "SELECT count(*) FROM events WHERE message LIKE '%denied%' "
         f"AND ts >= {quarter_from} AND ts < {quarter_to}"),
    ]


def run_strata_query(archive, sql, env, binary=STRATA):
    """Run one query with `strata sql --stats --format csv`; return timings, stats and CSV rows."""
    wall, stdout, stderr = run([binary, "sql", "--archive", archive, "--stats", "--format", "csv", sql], env)
    stats = STATS_LINE.search(stderr)
    if stats is None:
        raise BenchError(f"no --stats line in strata's stderr for: {sql}\n{stderr.strip()}")
    rows = list(csv.reader(io.StringIO(stdout)))[1:]
    return {
        "wall": wall, "seconds": float(stats["seconds"]), "rows": rows,
        "files": f"{stats['scanned']} / {stats['total']}", "read": stats["read"],
    }


def run_duckdb_query(con, sql):
    """Run one query on the warm DuckDB connection; return (seconds, rows)."""
    start = time.perf_counter()
    rows = con.execute(sql).fetchall()
    return time.perf_counter() - start, rows


def parse_cell(cell, like):
    """Convert a strata CSV cell to the Python type of DuckDB's value `like`.

    CSV writes NULL as an empty field, so an empty cell is None (and
    compare_results reads DuckDB's empty strings as None too).
    """
    if cell == "":
        return None
    if isinstance(like, datetime.datetime):
        return datetime.datetime.fromisoformat(cell)
    if isinstance(like, datetime.date):
        return datetime.date.fromisoformat(cell)
    if isinstance(like, bool):
        return cell == "true"
    if isinstance(like, int):
        return int(cell)
    if isinstance(like, float):
        return float(cell)
    return cell


def compare_results(strata_rows, duck_rows):
    """Return None when both engines returned the same rows, else what differs.

    Row counts are always compared; results of at most SMALL_RESULT_ROWS rows
    are also compared value by value, after sorting (ties in ORDER BY may come
    in any order).
    """
    if len(strata_rows) != len(duck_rows):
        return f"strata returned {len(strata_rows)} rows, DuckDB {len(duck_rows)}"
    if len(duck_rows) > SMALL_RESULT_ROWS or not duck_rows:
        return None
    columns = len(duck_rows[0])
    duck_rows = [tuple(None if value == "" else value for value in row) for row in duck_rows]
    likes = [next((row[i] for row in duck_rows if row[i] is not None), None) for i in range(columns)]
    typed = [tuple(parse_cell(cell, likes[i]) for i, cell in enumerate(row)) for row in strata_rows]

    def order(row):
        return [(value is None, str(value)) for value in row]

    for ours, theirs in zip(sorted(typed, key=order), sorted(duck_rows, key=order)):
        if ours != theirs:
            return f"first differing row: strata {ours}, DuckDB {theirs}"
    return None


def bench_queries(archive, queries, args):
    """Run each query --reps times alternating strata and DuckDB; return one row per query."""
    env = dict(os.environ, STRATA_KEYRING=str(args.work / "keyring.json"))
    con = duckdb_connection(archive)
    results = []
    for name, sql in queries:
        strata_runs, duck_times, mismatch = [], [], None
        for _ in range(args.reps):
            strata_run = run_strata_query(archive, sql, env)
            duck_time, duck_rows = run_duckdb_query(con, sql)
            strata_runs.append(strata_run)
            duck_times.append(duck_time)
            mismatch = mismatch or compare_results(strata_run["rows"], duck_rows)
        row = {
            "name": name, "sql": sql,
            "strata": statistics.median(r["seconds"] for r in strata_runs),
            "strata_wall": statistics.median(r["wall"] for r in strata_runs),
            "duckdb": statistics.median(duck_times),
            "files": strata_runs[-1]["files"], "read": strata_runs[-1]["read"],
            "rows": len(strata_runs[-1]["rows"]), "mismatch": mismatch,
        }
        log(f"{name}: strata {row['strata']:.3f} s (wall {row['strata_wall']:.3f} s), "
            f"DuckDB {row['duckdb']:.3f} s, {row['rows']} rows" + (f"  MISMATCH: {mismatch}" if mismatch else ""))
        results.append(row)
    con.close()
    return results


def read_first(path, prefix):
    """The text after `prefix` on the first line of path starting with it, or 'unknown'."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line[len(prefix):].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def machine_description():
    """CPU, cores, memory, OS and the strata build, as (label, value) pairs."""
    cpu = read_first("/proc/cpuinfo", "model name").lstrip(": ")
    mem_kib = read_first("/proc/meminfo", "MemTotal:").split()[0]
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    built = datetime.datetime.fromtimestamp(STRATA.stat().st_mtime, datetime.timezone.utc)
    build_note = ("build skipped (STRATA_BENCH_SKIP_BUILD=1): the binary may predate the commit"
                  if os.environ.get("STRATA_BENCH_SKIP_BUILD") == "1" else "built by run.sh")
    return [
        ("CPU", cpu),
        ("cores", f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable)"),
        ("memory", f"{int(mem_kib) / 2**20:.1f} GiB" if mem_kib.isdigit() else "unknown"),
        ("OS", f"{read_first('/etc/os-release', 'PRETTY_NAME=')}, Linux {platform.release()}"),
        ("strata", f"{run([STRATA, '--version'])[1].strip()}, commit {commit}; "
                   f"binary from {built:%Y-%m-%d %H:%M} UTC, {build_note}"),
        ("DuckDB", f"{duckdb.__version__} (Python {platform.python_version()})"),
    ]


def pass_fail(ok):
    """PASS or FAIL for a boolean, n/a for None."""
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def targets(ingest_rows, query_rows, s3_row, hot):
    """The issue's targets as (target, measured, PASS/FAIL/n/a) rows."""
    measured = [row for row in ingest_rows if not row.get("na")]
    strata = {row["threads"]: row for row in measured if row["tool"] == "strata"}
    one, two = strata.get(1), strata.get(2)
    every_strata = [row for row in measured if row["tool"].startswith("strata")]
    worst_ratio = min(row["ratio"] for row in every_strata)
    peak = max(row["peak_mib"] for row in every_strata)
    rows = [
        (f"strata ingest >= {TARGET_MBPS_ONE_CORE:.0f} MB/s on one core",
         f"{one['mbps']:.1f} MB/s" if one else "n/a (no taskset)",
         pass_fail(one["mbps"] >= TARGET_MBPS_ONE_CORE if one else None)),
        (f"strata ingest on 2 cores >= {TARGET_TWO_CORE_SPEEDUP}x one core",
         f"{two['mbps'] / one['mbps']:.2f}x" if one else "n/a (no taskset)",
         pass_fail(two["mbps"] / one["mbps"] >= TARGET_TWO_CORE_SPEEDUP if one else None)),
        (f"strata output >= {TARGET_COMPRESSION:.0f}x smaller than NDJSON",
         f"{worst_ratio:.1f}x", pass_fail(worst_ratio >= TARGET_COMPRESSION)),
        (f"strata ingest peak RSS <= {TARGET_PEAK_RSS_MIB:.0f} MiB",
         f"{peak:.0f} MiB", pass_fail(peak <= TARGET_PEAK_RSS_MIB)),
    ]
    rows.append((f"strata ingest into S3 >= {TARGET_S3_SHARE:.0%} of the local rate",
                 f"{s3_row['share']:.0%} ({s3_row['s3_mbps']:.1f} vs {s3_row['local_mbps']:.1f} MB/s)",
                 pass_fail(s3_row["share"] >= TARGET_S3_SHARE)))
    plan = hot["times"].get(CATALOG_PLAN)
    rows.append((f"plan a one-tenant one-month query over {hot['catalog_files']} catalogued files "
                 f"<= {TARGET_PLAN_MS:.0f} ms, keeping only that month's files",
                 f"{plan:.1f} ms, {hot['catalog_kept']} files kept" if plan else "n/a",
                 pass_fail(plan <= TARGET_PLAN_MS if plan else None)))
    for q in query_rows:
        rows.append((f"{q['name'].split()[0]} strata median <= DuckDB median",
                     f"{q['strata']:.3f} s vs {q['duckdb']:.3f} s", pass_fail(q["strata"] <= q["duckdb"])))
    return rows


def table(header, rows):
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_report(args, machine, input_bytes, rss_method, ingest_rows, s3_row, picked, query_rows, hot, loads):
    """The markdown report."""
    hot_table = [(name, f"{ms:.3f}", hot["throughput"].get(name, "")) for name, ms in hot["times"].items()]
    mode = "quick run (--quick)" if args.quick else "full run"
    now = datetime.datetime.now(datetime.timezone.utc)
    ingest_table = []
    for row in ingest_rows:
        if row.get("na"):
            ingest_table.append((row["tool"], row["threads"], "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"))
        else:
            ingest_table.append((row["tool"], row["threads"], f"{row['wall']:.2f}", f"{row['mbps']:.1f}",
                                 f"{row['peak_mib']:.0f}", f"{row['out_bytes'] / 1e6:.1f}",
                                 row["files"], f"{row['ratio']:.1f}x"))
    query_table = [
        (q["name"], f"{q['strata']:.3f}", f"{q['strata_wall']:.3f}", f"{q['duckdb']:.3f}",
         f"{q['strata'] / q['duckdb']:.2f}", q["files"], q["read"], q["rows"],
         "MISMATCH" if q["mismatch"] else "yes")
        for q in query_rows
    ]
    sql = "\n".join(f"-- {q['name']}\n{q['sql']};" for q in query_rows)
    return f"""# Strata vs DuckDB benchmark: {mode}

{now:%Y-%m-%d %H:%M} UTC. Load average (1 min) {loads[0]:.2f} at the start, {loads[1]:.2f} at the end.

## Machine

{table(("", "value"), machine)}

## Parameters

{args.events} events, {args.tenants} tenants, {args.days} days, seed {SEED}: {input_bytes / 1e6:.1f} MB of NDJSON.
Ingest and conversion: {args.ingest_reps} rep(s), median wall. Queries: {args.reps} reps alternating strata and DuckDB, medians.
Peak RSS: {rss_method}. MB = 10^6 bytes, MiB = 2^20 bytes.

## Ingest

strata 1 thread runs under `taskset -c 0`; DuckDB uses `SET threads`. DuckDB's RSS includes its Python interpreter.
strata's times include the compaction its ingest runs at the end. The shuffled rows ingest the same lines in
a random order (seeded), the worst case for memory: every partition is written to all along. The large rows
({args.big_events} events) show that memory does not grow with the input.

{table(("tool", "threads", "wall s", "MB/s", "peak RSS MiB", "output MB", "files", "ratio"), ingest_table)}

Into S3 (`benches/s3_ingest.rs`: an in-process `s3s-fs` server over HTTP on loopback, sharing the two cores;
{max(args.ingest_reps, 1)} rep(s) alternating with a local ingest, medians, two threads):

{table(("target", "wall s", "MB/s"), [("local folder", f"{s3_row['local']:.2f}", f"{s3_row['local_mbps']:.1f}"), ("S3", f"{s3_row['s3']:.2f}", f"{s3_row['s3_mbps']:.1f}")])}

## Queries

Over strata's 2-thread archive. tenant `{picked['tenant']}`, month {picked['month']:%Y-%m}, resource `{picked['resource']}`,
quarter from {picked['quarter']}. strata s: in-process time from `--stats`; wall: the whole `strata sql` process.
DuckDB s: `execute().fetchall()` on a warm connection over the same Parquet files.

{table(("query", "strata s", "strata wall s", "DuckDB s", "strata/DuckDB", "files scanned / total", "read", "rows", "same rows"), query_table)}

## Micro-benchmarks

`cargo bench --bench hot_paths` (criterion, medians). Throughput counts NDJSON bytes. The catalog
benchmarks run over {hot['catalog_files']} catalogued files (seven years, 20 tenants, 3 families);
the tenant-month plan keeps {hot['catalog_kept']} of them.

{table(("benchmark", "median ms", "throughput"), hot_table)}

## Targets

{table(("target", "measured", "result"), targets(ingest_rows, query_rows, s3_row, hot))}

## SQL

```sql
{sql}
```
"""


def main():
    """Run the benchmark and write the report; return the exit status."""
    args = parse_args()
    tools = find_tools()
    loads = [os.getloadavg()[0]]
    (args.work / "logs").mkdir(parents=True, exist_ok=True)
    rss_method = ("GNU time (%M, the kernel's maximum RSS)" if tools["time"]
                  else f"psutil sampling every {RSS_POLL_SECONDS * 1000:.0f} ms")
    events = generate_input(args)
    input_bytes = events.stat().st_size

    ingest_rows = []
    for threads in (1, 2):
        row = bench_strata_ingest(events, threads, args, tools)
        ingest_rows.append(row or {"tool": "strata", "threads": threads, "na": True})
        ingest_rows.append(bench_duckdb_convert(events, threads, args, tools))
    # The same lines in random order: every partition is written to all along.
    ingest_rows.append(bench_strata_ingest(shuffled_input(events, args), 2, args, tools, "shuffled"))
    if args.big_events:
        big = generate_input(args, args.big_events, "events-big")
        size = f"{big.stat().st_size / 1e9:.1f} GB"
        ingest_rows.append(bench_strata_ingest(big, 2, args, tools, size, args.big_events))
        ingest_rows.append(bench_strata_ingest(shuffled_input(big, args), 2, args, tools,
                                               f"{size} shuffled", args.big_events))

    s3_row = bench_s3_ingest(events, args)
    archive = strata_archive(args, 2)

    con = duckdb_connection(archive)
    picked = pick_query_parameters(con)
    con.close()
    query_rows = bench_queries(archive, audit_queries(picked), args)
    hot = bench_hot_paths()
    loads.append(os.getloadavg()[0])

    report = render_report(args, machine_description(), input_bytes, rss_method,
                           ingest_rows, s3_row, picked, query_rows, hot, loads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    log(f"report written to {args.out}")
    mismatches = [q for q in query_rows if q["mismatch"]]
    for q in mismatches:
        log(f"MISMATCH in {q['name']}: {q['mismatch']}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"[bench] ERROR: {error}", file=sys.stderr)
        sys.exit(1)
