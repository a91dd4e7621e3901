//! Files stay few under sustained ingest: write-outs every second into a
//! current and a closed month, with the files per partition-month sampled
//! throughout. Included by tests/serve.rs.

use super::*;

/// The largest number of files any partition-month holds, as the server
/// answers.
fn most_files(server: &ServerProcess, admin: &str) -> u64 {
    let sql = "SELECT count(*) AS files FROM strata_files GROUP BY tenant, family, month ORDER BY files DESC LIMIT 1";
    let body = serde_json::json!({ "sql": sql }).to_string();
    let response = server.post("/v1/query", admin, body.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()[0]["files"].as_u64().unwrap_or(0)
}

#[test]
fn compaction_keeps_four_files_per_partition_month_and_a_closed_month_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let admin = add_user(&archive, "admin", "admin", &[]);
    let shipper = add_user(&archive, "shipper", "ingest", &["acme"]);
    let server = ServerProcess::start(&archive, &FREQUENT_WRITE_OUTS);
    let now = chrono::Utc::now();
    let started = Instant::now();
    let (mut sent, mut most) = (0, 0);
    while started.elapsed() < Duration::from_secs(10) {
        let mut body = String::new();
        for i in 0..20 {
            let ts = (now + chrono::Duration::milliseconds(sent + i)).to_rfc3339();
            body += &format!(
                "{{\"ts\":\"{ts}\",\"family\":\"access\",\"action\":\"login\",\"event_id\":\"now-{sent}-{i}\"}}\n\
                 {{\"ts\":\"2025-12-15T10:00:00Z\",\"family\":\"technical\",\"action\":\"error\",\"event_id\":\"dec-{sent}-{i}\"}}\n"
            );
        }
        let response = server.post("/v1/events", &shipper, body.as_bytes());
        assert_eq!(response.json()["accepted"], 40, "{}", response.text());
        sent += 20;
        most = most.max(most_files(&server, &admin));
        std::thread::sleep(Duration::from_millis(100));
    }
    let auth = format!("Bearer {admin}");
    let metrics = server
        .request("GET", "/metrics", &[("Authorization", &auth)], b"")
        .text();
    let write_outs = metric(&metrics, "strata_write_outs_total");
    let compacted = metric(&metrics, "strata_files_compacted_total");
    assert!(write_outs >= 3 && compacted >= 4, "{metrics}");
    // docs/serve.md's bound: a partition-month is merged at its fourth small file.
    assert!(most <= 4, "a partition-month held {most} files");
    assert!(server.terminate().success());

    let files = query(
        &archive,
        "SELECT month, count(*) AS files, sum(rows) AS rows FROM strata_files WHERE tenant <> 'strata-system' GROUP BY month ORDER BY month",
    );
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(
        (&files[0]["month"], &files[0]["files"]),
        (&"2025-12".into(), &1.into())
    );
    assert_eq!(files[0]["rows"], files[1]["rows"]);
    assert_eq!(files[0]["rows"].as_u64(), Some(sent as u64));
    assert_eq!(
        files[1]["files"], 1,
        "the current month after the last write-out"
    );
    verify_deep(&archive);
}
