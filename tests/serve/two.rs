//! Two servers with their own node ids on one archive folder, ingesting at
//! once with write-outs and compactions racing each other's commits: no
//! event lost or doubled, and the archive verifies. Included by
//! tests/serve.rs.

use super::*;

#[test]
fn two_servers_on_one_archive_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "shipper", "ingest", &["acme"]);
    let servers: Vec<ServerProcess> = ["east", "west"]
        .map(|node| ServerProcess::start(&archive, &["--node-id", node, "--write-out-secs", "1"]))
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
    let rows = count(&archive, "SELECT count(*) AS n FROM events");
    let distinct = count(&archive, "SELECT count(DISTINCT event_id) AS n FROM events");
    assert_eq!((rows, distinct), (acknowledged, acknowledged));
    for node in ["east", "west"] {
        assert_eq!(wal_segments(&archive, node), 0, "{node}");
    }
    verify_deep(&archive);
}
