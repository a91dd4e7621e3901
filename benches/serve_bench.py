"""Benchmark of `strata serve` against `strata ingest` on the same events.

Run by benches/serve.sh (which builds the release binary and the venv).
Measures, in one run and on one core for the server (`taskset -c 0`; the
client runs on the other core):

1. `strata ingest` of the events into a fresh archive: the one-core MB/s
   the server is compared with.
2. The same events sent to a fresh server as NDJSON (`POST /v1/events`),
   Elasticsearch `_bulk` and OTLP/HTTP protobuf (`POST /v1/logs`) by
   CONNECTIONS connections back to back, then SIGTERM: MB/s is the events' NDJSON bytes
   over the time from the first request to the server's exit, which
   includes writing everything out as Parquet and committing it, as
   ingest's time does. The acknowledgement latency of those saturating
   requests is reported too. Rounds alternate 1 and 2 (ingest, then each
   protocol), and each figure is the median over the rounds.
3. Acknowledgement latency at a steady half of the NDJSON rate.
4. A soak at a steady half rate with write-outs every few seconds: RSS and
   files per partition-month sampled over time.

The report is a markdown file (default benches/serve-results.md) whose
table goes into benches/README.md.
"""

import argparse
import http.client
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

BENCHES = Path(__file__).resolve().parent
ROOT = BENCHES.parent
BODY_EVENTS = 4000  # events per request
CONNECTIONS = 16
SAMPLE_SECONDS = 2.0


def log(message):
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=400_000, help="events (default 400000)")
    parser.add_argument("--soak-seconds", type=int, default=600, help="soak length (default 600)")
    parser.add_argument("--soak-memory-mib", type=int, default=512,
                        help="the soaking server's --memory-mib (default 512)")
    parser.add_argument("--soak-write-out-secs", type=int, default=10,
                        help="write-out age during the soak (default 10: an hour of 10-minute write-outs every minute)")
    parser.add_argument("--work", type=Path, default=BENCHES / "work", help="work folder (default benches/work)")
    parser.add_argument("--out", type=Path, default=BENCHES / "serve-results.md", help="markdown report")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of ingest and of each protocol; the median is reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="100000 events, a 60 s soak, one run each")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
        args.events = min(args.events, 100_000)
        args.soak_seconds = min(args.soak_seconds, 60)
        args.soak_write_out_secs = min(args.soak_write_out_secs, 5)
    return args


def strata_binary():
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "release" / "strata"
    if not binary.exists():
        raise SystemExit(f"{binary} not found: run benches/serve.sh, which builds it")
    return binary


class Strata:
    def __init__(self, binary, work):
        self.binary = binary
        self.env = dict(os.environ, STRATA_KEYRING=str(work / "serve-keyring.json"), STRATA_LOG="error")

    def run(self, archive, *args, cpus=None):
        cmd = [str(self.binary), "--archive", str(archive), *map(str, args)]
        if cpus is not None:
            cmd = ["taskset", "-c", cpus, *cmd]
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if out.returncode not in (0, 3):
            raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr}")
        return out.stdout


def generate(strata, args):
    path = args.work / "serve-events.ndjson"
    params = args.work / "serve-events.params.json"
    wanted = {"events": args.events, "tenants": 20, "days": 365, "seed": 42}
    if not (path.exists() and params.exists() and json.loads(params.read_text()) == wanted):
        log(f"generating {args.events} events")
        subprocess.run([str(strata.binary), "gen", "--events", str(args.events), "--tenants", "20",
                        "--days", "365", "--seed", "42", "-o", str(path)], check=True)
        params.write_text(json.dumps(wanted))
    return path.read_bytes().splitlines(keepends=True)


# Where the runs' archives go: each run gets a new folder, and all are removed only at the end.
# Deleting an archive just before a run slowed that run's file creation by up to a fifth on
# this machine's ext4 (inode allocation skips inodes freed in the last seconds, checking each),
# which made `strata ingest` look slower than it is.
RUNS = "runs"


def clear_runs(args):
    runs = args.work / RUNS
    if runs.exists():
        shutil.rmtree(runs)
        log("waiting 31 s so that the inodes just freed are not in the way")
        time.sleep(31)


def fresh_archive(strata, args, name):
    archive = args.work / RUNS / f"{name}-{time.monotonic_ns()}"
    token = strata.run(archive, "users", "add", "bench", "--role", "admin", "--reason", "benchmark")
    return archive, token.strip().splitlines()[-1]


# --- request bodies ------------------------------------------------------------------------

def ndjson_bodies(lines):
    return [b"".join(lines[i:i + BODY_EVENTS]) for i in range(0, len(lines), BODY_EVENTS)]


def bulk_bodies(lines):
    action = b'{"create":{}}\n'
    return [b"".join(action + line for line in lines[i:i + BODY_EVENTS]) for i in range(0, len(lines), BODY_EVENTS)]


def any_value(value):
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def otlp_bodies(lines):
    """Each event as a log record: `message` as body, `ts` as time, every
    other field an attribute under its contract name (which the mapping
    takes as it is), and each of `attrs` an attribute of its own."""
    bodies = []
    for i in range(0, len(lines), BODY_EVENTS):
        records = []
        for line in lines[i:i + BODY_EVENTS]:
            event = json.loads(line)
            ts = datetime.fromisoformat(event.pop("ts").replace("Z", "+00:00"))
            record = LogRecord(time_unix_nano=int(ts.timestamp() * 1e9))
            if "message" in event:
                record.body.CopyFrom(AnyValue(string_value=event.pop("message")))
            for key, value in event.pop("attrs", {}).items():
                record.attributes.append(KeyValue(key=key, value=any_value(value)))
            for key, value in event.items():
                record.attributes.append(KeyValue(key=key, value=any_value(value)))
            records.append(record)
        request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])])
        bodies.append(request.SerializeToString())
    return bodies


PROTOCOLS = {
    "NDJSON": ("/v1/events", "application/x-ndjson", ndjson_bodies),
    "_bulk": ("/_bulk", "application/x-ndjson", bulk_bodies),
    "OTLP protobuf": ("/v1/logs", "application/x-protobuf", otlp_bodies),
}


# --- the server ----------------------------------------------------------------------------

class Server:
    def __init__(self, strata, archive, *flags):
        cmd = ["taskset", "-c", "0", str(strata.binary), "--archive", str(archive), "serve",
               "--http", "127.0.0.1:0", "--node-id", "bench", *map(str, flags)]
        self.proc = subprocess.Popen(cmd, env=strata.env, stdout=subprocess.PIPE, text=True)
        banner = self.proc.stdout.readline()
        if "listening on http://" not in banner:
            raise SystemExit(f"strata serve did not start: {banner}")
        self.addr = banner.split("listening on http://")[1].split(",")[0].strip()
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        if self.proc.wait() != 0:
            raise SystemExit("strata serve did not stop cleanly")

    def connection(self):
        host, port = self.addr.rsplit(":", 1)
        return http.client.HTTPConnection(host, int(port), timeout=600)

    def metric(self, token, name):
        """The sum of a /metrics counter over its labels."""
        conn = self.connection()
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        text = conn.getresponse().read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.split("{")[0].split(" ")[0] == name)

    def query(self, token, sql):
        conn = self.connection()
        conn.request("POST", "/v1/query", json.dumps({"sql": sql}),
                     {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"query failed: {body[:500]}")
        return json.loads(body)


def send(conn, path, content_type, token, body):
    """Sends one request until it is acknowledged (retrying on 429/503);
    returns the seconds the acknowledged attempt took."""
    while True:
        start = time.perf_counter()
        conn.request("POST", path, body, {"Authorization": f"Bearer {token}", "Content-Type": content_type})
        response = conn.getresponse()
        response.read()
        took = time.perf_counter() - start
        if response.status == 200:
            return took
        if response.status not in (429, 503):
            raise SystemExit(f"{path} answered {response.status}")
        time.sleep(float(response.getheader("Retry-After", "1")))


def saturate(server, token, protocol, bodies):
    """Sends every body over CONNECTIONS connections back to back; returns the latencies."""
    path, content_type, _ = PROTOCOLS[protocol]
    work = queue.Queue()
    for body in bodies:
        work.put(body)
    latencies = []

    def worker():
        conn = server.connection()
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            latencies.append(send(conn, path, content_type, token, body))

    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def steady(server, token, bodies, rate_mbs, seconds, sample=None):
    """Sends NDJSON bodies (cycling) at `rate_mbs` for `seconds` from one
    connection per in-flight request; returns the latencies."""
    path, content_type, _ = PROTOCOLS["NDJSON"]
    latencies = []
    lock = threading.Lock()
    pending = []
    start = time.perf_counter()
    sent_bytes = 0
    next_sample = start
    i = 0
    while time.perf_counter() - start < seconds:
        due = start + sent_bytes / (rate_mbs * 1e6)
        now = time.perf_counter()
        if sample and now >= next_sample:
            sample(now - start)
            next_sample = now + SAMPLE_SECONDS
        if now < due:
            time.sleep(min(due - now, 0.05))
            continue
        body = bodies[i % len(bodies)]
        i += 1
        sent_bytes += len(body)

        def one(body=body):
            took = send(server.connection(), path, content_type, token, body)
            with lock:
                latencies.append(took)

        thread = threading.Thread(target=one)
        thread.start()
        pending.append(thread)
        pending = [t for t in pending if t.is_alive()]
    for thread in pending:
        thread.join()
    return latencies


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"


# --- the run -------------------------------------------------------------------------------

def main():
    args = parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    clear_runs(args)
    os.sched_setaffinity(0, {1})  # the client keeps off the server's core
    strata = Strata(strata_binary(), args.work)
    lines = generate(strata, args)
    input_bytes = sum(map(len, lines))
    input_file = args.work / "serve-events.ndjson"
    rows = []

    # Rounds alternate ingest and every protocol, so that the host's drift
    # over the run (page cache, other tenants of the VM) weighs on all alike.
    bodies = {protocol: make(lines) for protocol, (_, _, make) in PROTOCOLS.items()}
    ingest_rates, runs, latencies = [], {p: [] for p in PROTOCOLS}, {p: [] for p in PROTOCOLS}
    for run in range(args.repeats):
        archive, _ = fresh_archive(strata, args, "serve-ingest")
        log(f"round {run + 1} of {args.repeats}: strata ingest on one core")
        start = time.perf_counter()
        strata.run(archive, "ingest", input_file, cpus="0")
        ingest_rates.append(input_bytes / (time.perf_counter() - start) / 1e6)
        for protocol in PROTOCOLS:
            archive, token = fresh_archive(strata, args, "serve-archive")
            server = Server(strata, archive, "--memory-mib", 2048)
            log(f"round {run + 1}: {protocol}, {len(bodies[protocol])} requests over {CONNECTIONS} connections")
            start = time.perf_counter()
            latencies[protocol] += saturate(server, token, protocol, bodies[protocol])
            server.stop()
            wall = time.perf_counter() - start
            stored = int(strata.run(archive, "sql", "--format", "csv", "SELECT count(*) FROM events").split()[-1])
            if stored != len(lines):
                raise SystemExit(f"{protocol}: {stored} events stored of {len(lines)}")
            runs[protocol].append(input_bytes / wall / 1e6)
    ingest_mbs = statistics.median(ingest_rates)
    rows.append(("strata ingest (file)", f"{ingest_mbs:.1f}", "1.00", "", "", ""))
    rates = {}
    for protocol in PROTOCOLS:
        rates[protocol] = statistics.median(runs[protocol])
        rows.append((f"strata serve, {protocol}", f"{rates[protocol]:.1f}", f"{rates[protocol] / ingest_mbs:.2f}",
                     ms(percentile(latencies[protocol], 0.5)), ms(percentile(latencies[protocol], 0.99)), "saturation"))

    half = rates["NDJSON"] / 2
    archive, token = fresh_archive(strata, args, "serve-archive")
    server = Server(strata, archive, "--memory-mib", 2048)
    log(f"NDJSON at a steady {half:.1f} MB/s for 60 s")
    latencies = steady(server, token, bodies["NDJSON"], half, 60)
    server.stop()
    rows.append(("strata serve, NDJSON", f"{half:.1f} (steady)", f"{half / ingest_mbs:.2f}",
                 ms(percentile(latencies, 0.5)), ms(percentile(latencies, 0.99)), "half of saturation"))

    archive, token = fresh_archive(strata, args, "serve-archive")
    server = Server(strata, archive, "--memory-mib", args.soak_memory_mib,
                    "--write-out-secs", args.soak_write_out_secs)
    watched = psutil.Process(server.proc.pid)
    samples = []

    def sample(at):
        files = server.query(token, "SELECT count(*) AS files FROM strata_files "
                                    "GROUP BY tenant, family, month ORDER BY files DESC LIMIT 1")
        samples.append((at, watched.memory_info().rss, files[0]["files"] if files else 0))

    log(f"soak: {half:.1f} MB/s for {args.soak_seconds} s, write-outs every {args.soak_write_out_secs} s")
    latencies = steady(server, token, bodies["NDJSON"], half, args.soak_seconds, sample)
    refused = server.metric(token, "strata_requests_refused_total")
    server.stop()
    third = max(1, len(samples) // 3)
    rss_first = statistics.median(s[1] for s in samples[:third]) / 2**20
    rss_last = statistics.median(s[1] for s in samples[-third:]) / 2**20
    rss_max = max(s[1] for s in samples) / 2**20
    files_max = max(s[2] for s in samples)

    report = [
        "# strata serve benchmark",
        "",
        f"{len(lines)} events ({input_bytes / 1e6:.0f} MB of NDJSON) from `strata gen --seed 42`; the "
        f"server on one core (`taskset -c 0`), the client on the other; {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB. MB/s counts the events' NDJSON bytes for "
        "every protocol, from the first request to the server's exit after SIGTERM (everything "
        f"written out and committed), like ingest's wall time; the median of {args.repeats} rounds, "
        "each round running ingest then every protocol (alternated, so that the host's drift weighs "
        "on all alike), every run on a new archive folder, acknowledgement latencies pooled over "
        "the rounds.",
        "",
        "| run | MB/s | × ingest | ack p50 | ack p99 | load |",
        "|---|---|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
        f"Targets: NDJSON ≥ 0.80 × ingest: **{'PASS' if rates['NDJSON'] >= 0.8 * ingest_mbs else 'FAIL'}** "
        f"({rates['NDJSON'] / ingest_mbs:.2f}); `_bulk` and OTLP ≥ 0.40 × ingest: "
        f"**{'PASS' if min(rates['_bulk'], rates['OTLP protobuf']) >= 0.4 * ingest_mbs else 'FAIL'}**.",
        "",
        f"Soak ({args.soak_seconds} s at {half:.1f} MB/s, `--memory-mib {args.soak_memory_mib}`, write-outs every "
        f"{args.soak_write_out_secs} s, {len(samples)} samples): RSS median {rss_first:.0f} MiB in the "
        f"first third, {rss_last:.0f} MiB in the last, {rss_max:.0f} MiB at most; at most "
        f"{files_max} files in a partition-month at any sample; ack p50 {ms(percentile(latencies, 0.5))}, "
        f"p99 {ms(percentile(latencies, 0.99))}; {refused:.0f} of {len(latencies)} requests were "
        "first refused under memory pressure and acknowledged on a retry.",
        "",
        "| t (s) | RSS (MiB) | most files in a partition-month |",
        "|---|---|---|",
        *(f"| {at:.0f} | {rss / 2**20:.0f} | {files} |" for at, rss, files in samples[:: max(1, len(samples) // 12)]),
    ]
    shutil.rmtree(args.work / RUNS)
    args.out.write_text("\n".join(report) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
