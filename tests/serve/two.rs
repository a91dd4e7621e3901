//! Two servers with their own node ids on one archive, a folder and a
//! real S3 server, ingesting at once with write-outs and compactions
//! racing each other's commits: no event lost or doubled, and the archive
//! verifies. Included by tests/serve.rs.

use std::process::Command;

use super::*;
use crate::s3_server::start_s3;

const BUCKET: &str = "audit-logs";

#[test]
fn two_servers_on_one_archive_folder_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    two_servers(|| strata(&archive));
    for node in ["east", "west"] {
        assert_eq!(wal_segments(&archive, node), 0, "{node}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_s3_archive_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    std::fs::create_dir_all(root.join(BUCKET)).unwrap();
    let addr = start_s3(&root, S3_KEY, S3_SECRET).await;
    let on_s3 = move || on_s3(&format!("s3://{BUCKET}/prod"), addr);
    tokio::task::spawn_blocking(move || two_servers(on_s3))
        .await
        .unwrap();
}

/// Runs two servers on the archive `command` opens, sending to both for
/// four seconds, and checks the archive after both stopped.
fn two_servers(command: impl Fn() -> Command + Sync) {
    let mut add = command();
    add.args([
        "users", "add", "shipper", "--role", "ingest", "--tenant", "acme",
    ]);
    let shipper = run_ok(&mut add).lines().last().unwrap().to_string();
    let servers: Vec<ServerProcess> = ["east", "west"]
        .map(|node| {
            let args = ["--node-id", node, "--write-out-secs", "1"];
            ServerProcess::start_with(command(), &args)
        })
        .into();
    let acknowledged: u64 = std::thread::scope(|scope| {
        let senders: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(i, server)| {
                let shipper = &shipper;
                scope.spawn(move || {
                    let started = Instant::now();
                    let mut acknowledged = 0;
                    let mut n = 0;
                    while started.elapsed() < Duration::from_secs(4) {
                        let body = batch(&format!("s{i}-{n}"), 40);
                        let response = server.post("/v1/events", shipper, body.as_bytes());
                        assert_eq!(response.status, 200, "{}", response.text());
                        acknowledged += response.json()["accepted"].as_u64().unwrap();
                        n += 1;
                    }
                    acknowledged
                })
            })
            .collect();
        senders.into_iter().map(|s| s.join().unwrap()).sum()
    });
    for server in servers {
        assert!(server.terminate().success());
    }
    assert!(acknowledged > 0);
    let sql = "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events";
    let out = run_ok(command().args(["sql", "--format", "ndjson", sql]));
    let row: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        (row["n"].as_u64(), row["ids"].as_u64()),
        (Some(acknowledged), Some(acknowledged)),
        "{out}"
    );
    let report = run_ok(command().args(["verify", "--deep"]));
    assert!(report.contains("result:     intact"), "{report}");
}
