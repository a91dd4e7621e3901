//! Watching a server: `/metrics` read by the Prometheus Python client's own
//! text parser, and `/health/ready` failing while the write-ahead log cannot
//! be written (and no request acknowledged then). Included by tests/serve.rs.

use super::*;

/// `/metrics` parsed by `prometheus_client`, as `{name: [[labels, value]]}`
/// with each sample's name (counters keep their `_total`).
fn parsed_metrics(server: &ServerProcess, admin: &str) -> serde_json::Value {
    let auth = format!("Bearer {admin}");
    let response = server.request("GET", "/metrics", &[("Authorization", &auth)], b"");
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.setdefault(s.name, []).append([s.labels, s.value])
print(json.dumps(samples))
"#;
    let mut child = std::process::Command::new(python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&response.body)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused:\n{}",
        response.text()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(metrics: &serde_json::Value, name: &str, labels: &[(&str, &str)]) -> f64 {
    let samples = metrics[name]
        .as_array()
        .unwrap_or_else(|| panic!("no {name} in {metrics}"));
    samples
        .iter()
        .find(|s| labels.iter().all(|(k, v)| s[0][k] == *v))
        .unwrap_or_else(|| panic!("no {name}{labels:?} in {samples:?}"))[1]
        .as_f64()
        .unwrap()
}

#[test]
fn metrics_parse_as_prometheus_text_and_readiness_follows_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let admin = add_user(&archive, "admin", "admin", &[]);
    let shipper = add_user(&archive, "shipper", "ingest", &["acme"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);
    let body = batch("m", 30) + "not json\n";
    assert_eq!(
        server.post("/v1/events", &shipper, body.as_bytes()).status,
        200
    );
    let bulk = "{\"create\":{\"_index\":\"access\"}}\n{\"@timestamp\":\"2026-05-01T10:00:00Z\",\"event.action\":\"login\"}\n";
    let auth = format!("Bearer {shipper}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/x-ndjson"),
    ];
    let response = server.request("POST", "/_bulk?refresh=wait_for", &headers, bulk.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(server.post("/v1/events", "wrong-token", b"{}").status, 401);

    let metrics = parsed_metrics(&server, &admin);
    let ndjson = [("protocol", "ndjson"), ("tenant", "acme")];
    assert_eq!(
        sample(&metrics, "strata_events_accepted_total", &ndjson),
        30.0
    );
    let rejected = [("protocol", "ndjson"), ("tenant", "")];
    assert_eq!(
        sample(&metrics, "strata_events_rejected_total", &rejected),
        1.0
    );
    let elastic = [("protocol", "elasticsearch"), ("tenant", "acme")];
    assert_eq!(
        sample(&metrics, "strata_events_accepted_total", &elastic),
        1.0
    );
    let bytes = sample(
        &metrics,
        "strata_received_bytes_total",
        &[("protocol", "ndjson")],
    );
    assert_eq!(bytes, body.len() as f64);
    assert_eq!(
        sample(&metrics, "strata_ack_latency_seconds_count", &[]),
        2.0
    );
    assert_eq!(
        sample(
            &metrics,
            "strata_ack_latency_seconds_bucket",
            &[("le", "+Inf")]
        ),
        2.0
    );
    assert!(sample(&metrics, "strata_requests_refused_total", &[]) >= 1.0);
    // The bulk request forced a write-out of everything buffered.
    assert_eq!(sample(&metrics, "strata_write_outs_total", &[]), 1.0);
    assert!(sample(&metrics, "strata_files_written_total", &[]) >= 1.0);
    assert_eq!(sample(&metrics, "strata_buffered_events", &[]), 0.0);
    assert_eq!(sample(&metrics, "strata_wal_backlog_segments", &[]), 0.0);
    for counter in [
        "strata_wal_errors_total",
        "strata_write_out_errors_total",
        "strata_compaction_errors_total",
    ] {
        assert_eq!(sample(&metrics, counter, &[]), 0.0, "{counter}");
    }
    // Compaction runs after the write-out, maybe after this reading.
    sample(&metrics, "strata_compactions_total", &[]);

    // The node's log folder replaced by a file: nothing can be written
    // there, root or not. Not ready, and nothing acknowledged.
    assert_eq!(server.request("GET", "/health/ready", &[], b"").status, 200);
    let wal = archive.join("_strata/wal/n1");
    // (Emptied folders may be gone already.)
    let _ = std::fs::remove_dir_all(&wal);
    std::fs::create_dir_all(wal.parent().unwrap()).unwrap();
    std::fs::write(&wal, "in the way").unwrap();
    let ready = server.request("GET", "/health/ready", &[], b"");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("not ready"), "{}", ready.text());
    let refused = server.post("/v1/events", &shipper, batch("lost", 3).as_bytes());
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(server.request("GET", "/health/live", &[], b"").status, 200);
    std::fs::remove_file(&wal).unwrap();
    let ready = server.request("GET", "/health/ready", &[], b"");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(
        server
            .post("/v1/events", &shipper, batch("back", 3).as_bytes())
            .status,
        200
    );
    assert!(server.terminate().success());
    assert_eq!(count(&archive, "SELECT count(*) AS n FROM events"), 34);
    verify_deep(&archive);
}
