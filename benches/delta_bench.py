"""The Delta publication's share of a commit (see benches/README.md).

Ingests an ordered year of generated events as K separate inputs (one
commit each, touching the partitions of its stretch of days, as a shipper's
hourly files do), timing each; then deletes `_delta_log/` and times `strata
publish` writing every version again, less a `strata publish` that has
nothing to do (process start, catalog load). Publication per version is
that difference over K; it is compared with the median commit.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run(strata, archive, *args, stdin=None):
    env = dict(os.environ, STRATA_ARCHIVE=archive)
    started = time.perf_counter()
    subprocess.run([strata, *args], check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, stdin=stdin)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--reps", type=int, default=5, help="timed publications")
    parser.add_argument("--quick", action="store_true", help="20000 events, 120 commits, 3 reps")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "delta-results.md"))
    args = parser.parse_args()
    if args.quick:
        args.events, args.commits, args.reps = 20_000, 120, 3
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    strata = os.path.join(target, "release", "strata")
    work = tempfile.mkdtemp(prefix="strata-delta-bench-")
    try:
        os.environ["STRATA_KEYRING"] = os.path.join(work, "keyring.json")
        events = os.path.join(work, "events.ndjson")
        subprocess.run([strata, "gen", "--events", str(args.events), "--tenants", "20",
                        "--days", "365", "-o", events], check=True, stderr=subprocess.DEVNULL)
        lines = open(events, "rb").read().splitlines(keepends=True)
        archive = os.path.join(work, "archive")
        size = -(-len(lines) // args.commits)
        commits = []
        for i in range(args.commits):
            part = os.path.join(work, "part.ndjson")
            with open(part, "wb") as out:
                out.writelines(lines[i * size:(i + 1) * size])
            commits.append(run(strata, archive, "ingest", "--quiet", "--no-compact", part))
            print(f"\rcommit {i + 1}/{args.commits}", end="", file=sys.stderr)
        print(file=sys.stderr)
        log = os.path.join(archive, "_delta_log")
        log_bytes = sum(os.path.getsize(os.path.join(log, f)) for f in os.listdir(log))
        versions = len([f for f in os.listdir(log) if f.endswith(".json")]) - 1
        files = sum(1 for folder, _, names in os.walk(archive) for n in names
                    if n.endswith(".parquet") and "_delta_log" not in folder)
        idle, full = [], []
        for _ in range(args.reps):
            idle.append(run(strata, archive, "publish"))
            shutil.rmtree(log)
            full.append(run(strata, archive, "publish"))
        per_version = (statistics.median(full) - statistics.median(idle)) / versions
        commit = statistics.median(commits)
        report = f"""# Delta publication benchmark

{args.events:,} generated events (20 tenants, a year, in time order) ingested as {versions}
inputs, one commit each ({files:,} data files in all, about {files / versions:.0f} per commit), on
the local disk, release build; medians.

| measure | value |
|---|---|
| `strata ingest` of one input (one commit, Delta version included), wall | {commit * 1000:.1f} ms |
| `strata publish` of all {versions} versions + {versions // 100} checkpoints, wall | {statistics.median(full) * 1000:.0f} ms |
| `strata publish` with nothing to do (process, catalog load), wall | {statistics.median(idle) * 1000:.0f} ms |
| publication per version (the difference / {versions}) | {per_version * 1000:.2f} ms |
| share of a commit | {per_version / commit * 100:.1f} % |
| Delta log size per version (JSON versions and checkpoints) | {log_bytes / versions / 1024:.1f} KiB |
"""
        with open(args.out, "w") as out:
            out.write(report)
        print(report)
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()
