//! The server's counters, rendered in the Prometheus text format for
//! `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the acknowledgement latency histogram.
const LATENCY_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Events accepted and rejected, keyed by (protocol, tenant).
type EventCounts = BTreeMap<(&'static str, String), (u64, u64)>;

/// Counters of everything the server does.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events accepted and rejected, per (protocol, tenant).
    events: Mutex<EventCounts>,
    /// Request body bytes received, per protocol.
    bytes: Mutex<BTreeMap<&'static str, u64>>,
    /// Acknowledgement latency: counts per bound (and above), sum in µs.
    latency: Mutex<([u64; LATENCY_BOUNDS.len() + 1], u64)>,
    wal_segments: AtomicU64,
    wal_errors: AtomicU64,
    write_outs: AtomicU64,
    write_out_errors: AtomicU64,
    files_written: AtomicU64,
    rejected_requests: AtomicU64,
    syslog_dropped: AtomicU64,
    deduplicated: AtomicU64,
    compactions: AtomicU64,
    compaction_errors: AtomicU64,
    files_compacted: AtomicU64,
}

/// Gauges read at render time.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Events in memory, not yet written out.
    pub buffered_events: u64,
    /// Their memory.
    pub buffered_bytes: u64,
    /// Write-ahead segments not yet committed to the archive.
    pub wal_backlog: u64,
}

impl Metrics {
    /// Counts a request's outcome: events accepted and rejected per tenant
    /// (rejected events without a known tenant count under `""`).
    pub fn events(
        &self,
        protocol: &'static str,
        accepted: &BTreeMap<String, u64>,
        rejected: &[Option<String>],
    ) {
        let mut events = self.events.lock().expect("metrics lock");
        for (tenant, n) in accepted {
            events.entry((protocol, tenant.clone())).or_default().0 += n;
        }
        for tenant in rejected {
            let tenant = tenant.clone().unwrap_or_default();
            events.entry((protocol, tenant)).or_default().1 += 1;
        }
    }

    /// Counts a request body's bytes as received.
    pub fn bytes(&self, protocol: &'static str, n: usize) {
        *self
            .bytes
            .lock()
            .expect("metrics lock")
            .entry(protocol)
            .or_default() += n as u64;
    }

    /// Counts a request refused whole (authentication, size, pressure, ...).
    pub fn refused_request(&self) {
        self.rejected_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a compaction pass and the files it merged away (or a failure).
    pub fn compaction(&self, result: Result<usize, ()>) {
        match result {
            Ok(files) => {
                self.compactions.fetch_add(1, Ordering::Relaxed);
                self.files_compacted
                    .fetch_add(files as u64, Ordering::Relaxed);
            }
            Err(()) => {
                self.compaction_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts events not stored again: retries of events still buffered.
    pub fn deduplicated(&self, n: usize) {
        self.deduplicated.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts syslog messages dropped unread: UDP datagrams under memory
    /// pressure, or messages a stopping server could not store.
    pub fn syslog_dropped(&self, n: usize) {
        self.syslog_dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts a write-ahead segment stored (or failed).
    pub fn wal_segment(&self, ok: bool) {
        let counter = if ok {
            &self.wal_segments
        } else {
            &self.wal_errors
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the time from receiving a request to acknowledging it.
    pub fn acknowledged(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let slot = LATENCY_BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BOUNDS.len());
        let mut latency = self.latency.lock().expect("metrics lock");
        latency.0[slot] += 1;
        latency.1 += took.as_micros() as u64;
    }

    /// Counts a write-out that committed `files` files (or failed).
    pub fn write_out(&self, result: Result<usize, ()>) {
        match result {
            Ok(files) => {
                self.write_outs.fetch_add(1, Ordering::Relaxed);
                self.files_written
                    .fetch_add(files as u64, Ordering::Relaxed);
            }
            Err(()) => {
                self.write_out_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let events = self.events.lock().expect("metrics lock").clone();
        for (name, help, pick) in [
            ("strata_events_accepted_total", "Events acknowledged.", 0),
            (
                "strata_events_rejected_total",
                "Events refused with a reason.",
                1,
            ),
        ] {
            header(&mut out, name, help, "counter");
            for ((protocol, tenant), counts) in &events {
                let n = if pick == 0 { counts.0 } else { counts.1 };
                let _ = writeln!(
                    out,
                    "{name}{{protocol=\"{protocol}\",tenant=\"{}\"}} {n}",
                    escape(tenant)
                );
            }
        }
        header(
            &mut out,
            "strata_received_bytes_total",
            "Request body bytes received.",
            "counter",
        );
        for (protocol, n) in self.bytes.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "strata_received_bytes_total{{protocol=\"{protocol}\"}} {n}"
            );
        }
        let (counts, sum) = *self.latency.lock().expect("metrics lock");
        let name = "strata_ack_latency_seconds";
        header(
            &mut out,
            name,
            "Time from receiving a request to acknowledging it.",
            "histogram",
        );
        let mut cumulative = 0;
        for (bound, n) in LATENCY_BOUNDS.iter().zip(counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += counts[LATENCY_BOUNDS.len()];
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {}", sum as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {cumulative}");
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for (name, help, kind, value) in [
            (
                "strata_requests_refused_total",
                "Requests refused whole.",
                "counter",
                load(&self.rejected_requests),
            ),
            (
                "strata_compactions_total",
                "Compaction passes run after write-outs.",
                "counter",
                load(&self.compactions),
            ),
            (
                "strata_compaction_errors_total",
                "Compaction passes that failed (retried after the next write-out).",
                "counter",
                load(&self.compaction_errors),
            ),
            (
                "strata_files_compacted_total",
                "Files merged away by compaction.",
                "counter",
                load(&self.files_compacted),
            ),
            (
                "strata_events_deduplicated_total",
                "Events acknowledged but not stored again: retries of events still buffered.",
                "counter",
                load(&self.deduplicated),
            ),
            (
                "strata_syslog_dropped_total",
                "Syslog messages dropped: UDP under memory pressure, or unstored at shutdown.",
                "counter",
                load(&self.syslog_dropped),
            ),
            (
                "strata_wal_segments_total",
                "Write-ahead segments stored.",
                "counter",
                load(&self.wal_segments),
            ),
            (
                "strata_wal_errors_total",
                "Write-ahead segments that could not be stored.",
                "counter",
                load(&self.wal_errors),
            ),
            (
                "strata_write_outs_total",
                "Write-outs committed to the archive.",
                "counter",
                load(&self.write_outs),
            ),
            (
                "strata_write_out_errors_total",
                "Write-outs that failed (and are retried).",
                "counter",
                load(&self.write_out_errors),
            ),
            (
                "strata_files_written_total",
                "Parquet files committed by write-outs.",
                "counter",
                load(&self.files_written),
            ),
            (
                "strata_buffered_events",
                "Acknowledged events in memory, not yet written out.",
                "gauge",
                gauges.buffered_events,
            ),
            (
                "strata_buffered_bytes",
                "Memory of the buffered events.",
                "gauge",
                gauges.buffered_bytes,
            ),
            (
                "strata_wal_backlog_segments",
                "Write-ahead segments not yet committed to the archive.",
                "gauge",
                gauges.wal_backlog,
            ),
        ] {
            header(&mut out, name, help, kind);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_as_prometheus_text() {
        let metrics = Metrics::default();
        let accepted = BTreeMap::from([("acme".to_string(), 3)]);
        metrics.events("ndjson", &accepted, &[Some("acme".into()), None]);
        metrics.bytes("ndjson", 100);
        metrics.acknowledged(Duration::from_millis(3));
        metrics.acknowledged(Duration::from_secs(9));
        metrics.write_out(Ok(2));
        let text = metrics.render(&Gauges {
            buffered_events: 5,
            ..Gauges::default()
        });
        for line in [
            "strata_events_accepted_total{protocol=\"ndjson\",tenant=\"acme\"} 3",
            "strata_events_rejected_total{protocol=\"ndjson\",tenant=\"acme\"} 1",
            "strata_events_rejected_total{protocol=\"ndjson\",tenant=\"\"} 1",
            "strata_received_bytes_total{protocol=\"ndjson\"} 100",
            "strata_ack_latency_seconds_bucket{le=\"0.0025\"} 0",
            "strata_ack_latency_seconds_bucket{le=\"0.005\"} 1",
            "strata_ack_latency_seconds_bucket{le=\"+Inf\"} 2",
            "strata_ack_latency_seconds_count 2",
            "strata_files_written_total 2",
            "strata_buffered_events 5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
