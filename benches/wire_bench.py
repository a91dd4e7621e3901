"""Benchmark of the query surfaces of `strata serve` against `strata sql`.

Run by benches/wire.sh (which builds the release binary and the venv).
On one archive of `strata gen --seed 42` events (ingested once, reused while
its parameters match) and one server (`--http`, `--pg`, an auditor
principal), it measures:

1. Wire overhead: the five audit queries of benches/harness.py, each run
   --reps times, alternating the surfaces in every rep:
   - `strata sql --stats --format csv`: the in-process time of its
     `--stats` line and the whole process (start, catalog, query, output);
   - HTTP `POST /v1/query` with `Accept: text/csv` on a kept-alive
     connection: request to last byte;
   - psql over the PostgreSQL wire: `\\timing` of the statement in one warm
     session (every rep in the same session), and a whole `psql -c` process
     (connection, SCRAM login, session, query);
   HTTP's answers are checked to hold the same rows as `strata sql`'s,
   psql's as many (it prints timestamps its own way).
   The server records every statement before answering it (one write-ahead
   put), which is part of what a query through it costs.
2. Rows per second of a large result (every event, seven columns) over the
   PostgreSQL wire (psql reading it whole), over HTTP as an Arrow IPC stream
   (read and decoded by pyarrow) and as CSV, and `strata sql` writing CSV,
   medians of --reps alternated runs.

The report is a markdown file (default benches/wire-results.md) whose table
goes into benches/README.md.
"""

import argparse
import csv
import http.client
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.ipc

import harness
from harness import STRATA, BenchError, log, run

# Every event but the records of the queries, which grow as the benchmark runs.
LARGE_RESULT = ("SELECT ts, tenant, family, action, user, src_ip, bytes FROM events "
                "WHERE action NOT LIKE 'archive_query%'")
TIMING = re.compile(r"^Time: (?P<ms>[0-9.]+) ms", re.M)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_500_000, help="events (default 2500000)")
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each measurement (default 5)")
    parser.add_argument("--work", type=Path, default=harness.BENCHES / "work")
    parser.add_argument("--out", type=Path, default=harness.BENCHES / "wire-results.md")
    parser.add_argument("--quick", action="store_true", help="200000 events, 3 reps")
    args = parser.parse_args()
    if args.quick:
        args.events, args.reps = 200_000, 3
    args.work.mkdir(parents=True, exist_ok=True)
    return args


class Server:
    """`strata serve` on loopback with HTTP and the PostgreSQL wire, and an auditor's token."""

    def __init__(self, archive, env, token):
        self.env, self.token = env, token
        self.process = subprocess.Popen(
            [STRATA, "serve", "--archive", archive, "--node-id", "wire-bench",
             "--http", "127.0.0.1:0", "--pg", "127.0.0.1:0"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        banner = self.process.stdout.readline()
        if "listening on " not in banner:
            raise BenchError(f"strata serve did not start: {banner}")
        listeners = dict(part.split("://", 1) for part in banner.split("listening on ")[1].split(", "))
        self.http = listeners["http"].split()[0]
        self.pg_host, self.pg_port = listeners["postgresql"].split()[0].rsplit(":", 1)
        self.connection = None

    def send(self, connection, sql, accept):
        """Sends `sql` as `POST /v1/query` on `connection`; the 200 response, headers read."""
        body = json.dumps({"sql": sql})
        headers = {"Authorization": f"Bearer {self.token}", "Accept": accept,
                   "Content-Type": "application/json"}
        connection.request("POST", "/v1/query", body, headers)
        response = connection.getresponse()
        if response.status != 200:
            raise BenchError(f"HTTP {response.status} for {sql}: {response.read()[:500]!r}")
        return response

    def new_connection(self):
        host, port = self.http.rsplit(":", 1)
        return http.client.HTTPConnection(host, int(port), timeout=600)

    def post(self, sql, accept):
        """One query on the kept-alive connection: (seconds to the last byte, body)."""
        if self.connection is None:
            self.connection = self.new_connection()
        start = time.perf_counter()
        data = self.send(self.connection, sql, accept).read()
        return time.perf_counter() - start, data

    def arrow_rows(self, sql):
        """The query as an Arrow IPC stream decoded by pyarrow: (seconds, rows)."""
        connection = self.new_connection()
        start = time.perf_counter()
        response = self.send(connection, sql, "application/vnd.apache.arrow.stream")
        rows = sum(batch.num_rows for batch in pyarrow.ipc.open_stream(response))
        seconds = time.perf_counter() - start
        connection.close()
        return seconds, rows

    def psql_command(self):
        conninfo = f"host={self.pg_host} port={self.pg_port} user=auditor dbname=strata sslmode=disable"
        env = dict(self.env, PGPASSWORD=self.token)
        return ["psql", "-X", "-A", "-t", "-F", ",", "-v", "ON_ERROR_STOP=1", conninfo], env

    def psql(self, *args):
        """psql as the auditor with `args`: (wall seconds, stdout)."""
        cmd, env = self.psql_command()
        wall, stdout, _ = run(cmd + list(args), env)
        return wall, stdout

    def psql_session(self, script):
        """Runs `script` in one psql session read from stdin; its stdout (rows go to /dev/null)."""
        cmd, env = self.psql_command()
        done = subprocess.run(cmd + ["-o", os.devnull], input=script, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"psql failed: {done.stderr[-2000:]}")
        return done.stdout

    def stop(self):
        if self.connection is not None:
            self.connection.close()
        self.process.terminate()
        self.process.wait(timeout=120)


def prepare_archive(args, env):
    """An archive of the generated events with an auditor, reused while its input matches."""
    events = harness.generate_input(argparse.Namespace(
        events=args.events, tenants=args.tenants, days=args.days, work=args.work))
    archive = args.work / f"wire-archive-{args.events}"
    stamp = archive.parent / f"{archive.name}.token"
    if archive.exists() and stamp.exists() and json.loads(stamp.read_text()).get("input") == str(events):
        log(f"reusing {archive}")
        return archive, json.loads(stamp.read_text())["token"]
    shutil.rmtree(archive, ignore_errors=True)
    log(f"ingesting {events} into {archive}")
    run([STRATA, "ingest", "--archive", archive, "--quiet", events], env)
    _, stdout, _ = run([STRATA, "users", "add", "--archive", archive, "auditor", "--role", "auditor",
                        "--reason", "wire benchmark"], env)
    token = stdout.strip().splitlines()[-1]
    stamp.write_text(json.dumps({"input": str(events), "token": token}) + "\n")
    return archive, token


def without_today(rows):
    """`rows` sorted, but those of today (UTC): every query through any surface adds its
    records to the archive, so a count per day differs there from one run to the next."""
    today = f"{datetime.now(timezone.utc):%Y-%m-%d}"
    return sorted(r for r in rows if not any(c.startswith(today) for c in r))


def csv_rows(text, header):
    rows = list(csv.reader(io.StringIO(text)))
    return without_today(rows[1:] if header else rows)


def reader_env(env):
    """`env` with a keyring that holds no signing key: `strata sql` then reads without a record."""
    return dict(env, STRATA_KEYRING=str(Path(env["STRATA_KEYRING"]).with_name("reader-keyring.json")))


def bench_queries(server, archive, queries, reps, env):
    """Each query through every surface, alternated in every rep: medians."""
    results = []
    for name, sql in queries:
        times = {k: [] for k in ("strata", "strata_wall", "unrecorded", "http", "psql", "psql_wall")}
        expected = None
        # The warm psql session: every rep of the query in one connection.
        script = "\\timing on\n" + "".join(f"{sql};\n" for _ in range(reps))
        for rep in range(reps):
            answer = harness.run_strata_query(archive, sql, env)
            times["strata"].append(answer["seconds"])
            times["strata_wall"].append(answer["wall"])
            rows = without_today(answer["rows"])
            # The same process reading without a record (a keyring without the archive's key).
            times["unrecorded"].append(harness.run_strata_query(archive, sql, reader_env(env))["seconds"])
            if expected is None:
                expected = rows
            seconds, body = server.post(sql, "text/csv")
            times["http"].append(seconds)
            if csv_rows(body.decode(), header=True) != expected:
                raise BenchError(f"HTTP answered other rows than strata sql: {name}")
            wall, stdout = server.psql("-c", sql)
            times["psql_wall"].append(wall)
            # psql prints timestamps its own way: the rows are counted.
            if len(csv_rows(stdout, header=False)) != len(expected):
                raise BenchError(f"psql answered another number of rows than strata sql: {name}")
        stdout = server.psql_session(script)
        times["psql"] = [float(m["ms"]) / 1000 for m in TIMING.finditer(stdout)][-reps:]
        if len(times["psql"]) != reps:
            raise BenchError(f"psql's \\timing gave {len(times['psql'])} times for {name}")
        medians = {k: statistics.median(v) for k, v in times.items()}
        results.append({"name": name, "rows": len(expected), **medians})
        log(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in medians.items()))
    return results


def bench_large_result(server, archive, reps, env, expected_rows):
    """Rows per second of LARGE_RESULT over each surface, alternated: medians."""
    times = {k: [] for k in ("pgwire (psql)", "HTTP Arrow IPC (pyarrow)", "HTTP CSV", "strata sql CSV")}
    for rep in range(reps):
        wall, _ = server.psql("-o", "/dev/null", "-c", LARGE_RESULT)
        times["pgwire (psql)"].append(wall)
        seconds, rows = server.arrow_rows(LARGE_RESULT)
        if rows != expected_rows:
            raise BenchError(f"the Arrow stream held {rows} rows, not {expected_rows}")
        times["HTTP Arrow IPC (pyarrow)"].append(seconds)
        seconds, body = server.post(LARGE_RESULT, "text/csv")
        if body.count(b"\n") - 1 != expected_rows:
            raise BenchError("the CSV answer does not hold every row")
        times["HTTP CSV"].append(seconds)
        wall, _, _ = run([STRATA, "sql", "--archive", archive, "--format", "csv", "-o", os.devnull,
                          LARGE_RESULT], env)
        times["strata sql CSV"].append(wall)
        log(f"large result, rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    return [(k, statistics.median(v)) for k, v in times.items()]


def render(args, picked, query_rows, large_rows, expected_rows):
    lines = [
        "# Query surfaces of strata serve against strata sql",
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. {args.events} events (`strata gen --seed 42`, "
        f"{args.tenants} tenants, {args.days} days), {args.reps} reps alternating the surfaces, medians. "
        f"Two cores shared by the server and its clients. tenant `{picked['tenant']}`, month "
        f"{picked['month']:%Y-%m}, resource `{picked['resource']}`, quarter from {picked['quarter']}.",
        "",
        "strata sql s: in-process (`--stats`), which includes committing the statement's two records (the "
        "archive has principals); wall: the whole process; unrecorded: in-process, run by a reader whose keyring "
        "cannot sign (so without a record), the engine alone. HTTP: `POST /v1/query` as CSV on a "
        "kept-alive connection, request to last byte. psql: `\\timing` in one warm session; psql wall: a whole "
        "`psql -c` (connect, SCRAM login, session, query). The server stores each statement's record "
        "before answering it.",
        "",
        "| query | rows | strata sql s | strata sql wall s | unrecorded s | HTTP s | psql s | psql wall s "
        "| HTTP / unrecorded | psql / unrecorded |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in query_rows:
        lines.append(
            f"| {r['name']} | {r['rows']} | {r['strata']:.3f} | {r['strata_wall']:.3f} | {r['unrecorded']:.3f} | "
            f"{r['http']:.3f} | {r['psql']:.3f} | {r['psql_wall']:.3f} | {r['http'] / r['unrecorded']:.2f} | "
            f"{r['psql'] / r['unrecorded']:.2f} |")
    lines += [
        "",
        f"Large result: `{LARGE_RESULT}` ({expected_rows} rows).",
        "",
        "| surface | s | rows/s |",
        "|---|---|---|",
    ]
    for name, seconds in large_rows:
        lines.append(f"| {name} | {seconds:.2f} | {expected_rows / seconds:,.0f} |")
    return "\n".join(lines) + "\n"


def main():
    args = parse_args()
    if shutil.which("psql") is None:
        raise BenchError("psql not found (Debian: apt-get install postgresql-client)")
    env = dict(os.environ, STRATA_KEYRING=str(args.work / "keyring.json"), STRATA_ACTOR="wire-bench")
    archive, token = prepare_archive(args, env)
    picked = harness.pick_query_parameters(harness.duckdb_connection(archive))
    queries = harness.audit_queries(picked)
    count = f"SELECT count(*) FROM ({LARGE_RESULT})"
    expected_rows = int(harness.run_strata_query(archive, count, env)["rows"][0][0])
    server = Server(archive, env, token)
    try:
        query_rows = bench_queries(server, archive, queries, args.reps, env)
        large_rows = bench_large_result(server, archive, args.reps, env, expected_rows)
    finally:
        server.stop()
    report = render(args, picked, query_rows, large_rows, expected_rows)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"wire_bench: {e}", file=sys.stderr)
        sys.exit(1)
