"""Year-scan queries in-process and on a Ballista cluster (see benches/README.md).

Generates and ingests a year of events, starts `strata cluster scheduler`
and two `strata cluster executor`s on loopback, then runs each query with
`strata sql` in-process and with `strata sql --cluster`, alternating, and
reports the median wall time of each (whole commands: process start,
catalog load, planning, execution, output) and their ratio.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

QUERIES = [
    ("daily counts by family, whole year",
     "SELECT CAST(ts AS DATE) AS day, family, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2"),
    ("bytes and users per tenant-month, whole year",
     "SELECT tenant, date_trunc('month', ts) AS m, sum(bytes), count(DISTINCT user) FROM events "
     "GROUP BY 1, 2 ORDER BY 1, 2"),
    ("LIKE '%denied%' on message, whole year",
     "SELECT count(*) FROM events WHERE message LIKE '%denied%'"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, process):
    started = time.monotonic()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() - started > 60:
                raise SystemExit(f"a cluster process did not listen on {port}")
            time.sleep(0.05)


def timed(cmd, env):
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--reps", type=int, default=5, help="timed runs of each query and mode")
    parser.add_argument("--quick", action="store_true", help="100000 events, 3 reps")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "cluster-results.md"))
    args = parser.parse_args()
    if args.quick:
        args.events, args.reps = 100_000, 3
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    strata = os.path.join(target, "release", "strata")
    work = tempfile.mkdtemp(prefix="strata-cluster-bench-")
    processes = []
    try:
        archive = os.path.join(work, "archive")
        env = dict(os.environ, STRATA_ARCHIVE=archive, STRATA_KEYRING=os.path.join(work, "keyring.json"))
        events = os.path.join(work, "events.ndjson")
        subprocess.run([strata, "gen", "--events", str(args.events), "--tenants", "20",
                        "--days", "365", "-o", events], check=True, env=env, stderr=subprocess.DEVNULL)
        subprocess.run([strata, "ingest", "--quiet", events], check=True, env=env)
        os.remove(events)
        files = subprocess.run([strata, "sql", "--format", "csv", "SELECT count(*), sum(size) FROM strata_files"],
                               check=True, env=env, capture_output=True, text=True).stdout.split("\n")[1]
        port = free_port()
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(subprocess.Popen([strata, "cluster", "scheduler", "--bind", f"127.0.0.1:{port}"],
                                          env=env, **quiet))
        wait_for(port, processes[0])
        for _ in range(2):
            flight = free_port()
            executor = subprocess.Popen([strata, "cluster", "executor", "--scheduler", f"127.0.0.1:{port}",
                                         "--flight-port", str(flight), "--grpc-port", str(free_port())],
                                        env=env, **quiet)
            processes.append(executor)
            wait_for(flight, executor)
        cluster = f"df://127.0.0.1:{port}"
        rows = []
        for name, sql in QUERIES:
            local, remote = [], []
            timed([strata, "sql", "--format", "csv", sql], env)  # warm the page cache
            timed([strata, "sql", "--format", "csv", "--cluster", cluster, sql], env)
            for _ in range(args.reps):
                local.append(timed([strata, "sql", "--format", "csv", sql], env))
                remote.append(timed([strata, "sql", "--format", "csv", "--cluster", cluster, sql], env))
            rows.append((name, statistics.median(local), statistics.median(remote)))
            print(f"{name}: {rows[-1][1]:.3f} s in-process, {rows[-1][2]:.3f} s on the cluster", file=sys.stderr)
        count, size = files.split(",")
        table = "\n".join(f"| {name} | {l:.3f} | {r:.3f} | {r / l:.2f} |" for name, l, r in rows)
        report = f"""# Year-scan queries in-process and on Ballista

`benches/cluster.sh{' --quick' if args.quick else ''}`: {args.events:,} generated events (20 tenants,
365 days) in {count} files ({int(size) / 1e6:.1f} MB), on this machine's local disk; a scheduler and two
executors (`strata cluster`, each one task per core) on loopback; release build; whole `strata sql`
commands, median of {args.reps} alternated runs after one warm-up each.

| query | in-process, s | cluster, s | cluster / in-process |
|---|---|---|---|
{table}
"""
        with open(args.out, "w") as out:
            out.write(report)
        print(report)
    finally:
        for process in processes:
            process.kill()
            process.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
