//! `POST /v1/query`: acknowledged events are queryable at once, from
//! memory, and counted once while buffers are written out around the
//! queries. Included by tests/serve.rs.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

fn query_server(server: &ServerProcess, token: &str, sql: &str) -> serde_json::Value {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let response = server.post("/v1/query", token, body.as_bytes());
    assert_eq!(response.status, 200, "{sql}: {}", response.text());
    response.json()
}

/// `(rows, distinct event ids)` in `events` as the server answers.
fn counts(server: &ServerProcess, admin: &str) -> (u64, u64) {
    let sql = "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events WHERE action NOT LIKE 'archive_query%'";
    let rows = query_server(server, admin, sql);
    let row = &rows[0];
    (row["n"].as_u64().unwrap(), row["ids"].as_u64().unwrap())
}

#[test]
fn acknowledged_events_are_queryable_at_once_and_counted_once_across_write_outs() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let admin = add_user(&archive, "admin", "admin", &[]);
    let shipper = add_user(&archive, "shipper", "ingest", &["acme"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);

    let response = server.post("/v1/events", &shipper, batch("first", 100).as_bytes());
    assert_eq!(response.json()["accepted"], 100);
    // No write-out has happened (the age limit is ten minutes): memory answers.
    assert_eq!(counts(&server, &admin), (100, 100));
    let empty = query_server(
        &server,
        &admin,
        "SELECT * FROM events WHERE tenant = 'nobody'",
    );
    assert_eq!(empty, serde_json::json!([]));

    // Queries run continuously while batches are acknowledged and buffers
    // are written out (a bulk request with refresh=wait_for forces one):
    // every answer counts at least what was acknowledged before it was
    // asked, at most what was sent, and each event once.
    let sent = AtomicU64::new(100);
    let acknowledged = AtomicU64::new(100);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut answers = 0;
            while !done.load(Ordering::SeqCst) || answers < 5 {
                let floor = acknowledged.load(Ordering::SeqCst);
                let (rows, ids) = counts(&server, &admin);
                let ceiling = sent.load(Ordering::SeqCst);
                assert!(
                    floor <= rows && rows <= ceiling,
                    "{floor} <= {rows} <= {ceiling}"
                );
                assert_eq!(rows, ids, "an event counted twice");
                answers += 1;
            }
        });
        for round in 0..6 {
            sent.fetch_add(50, Ordering::SeqCst);
            let response = server.post(
                "/v1/events",
                &shipper,
                batch(&format!("r{round}"), 50).as_bytes(),
            );
            assert_eq!(response.status, 200, "{}", response.text());
            acknowledged.fetch_add(50, Ordering::SeqCst);
            sent.fetch_add(1, Ordering::SeqCst);
            let bulk = format!(
                "{{\"create\":{{\"_index\":\"access-vpn\",\"_id\":\"bulk-{round}\"}}}}\n\
                 {{\"@timestamp\":\"2026-05-01T10:00:00Z\",\"event.action\":\"login\"}}\n"
            );
            let auth = format!("Bearer {shipper}");
            let headers = [
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/x-ndjson"),
            ];
            let response =
                server.request("POST", "/_bulk?refresh=wait_for", &headers, bulk.as_bytes());
            assert_eq!(response.status, 200, "{}", response.text());
            acknowledged.fetch_add(1, Ordering::SeqCst);
        }
        done.store(true, Ordering::SeqCst);
    });
    let total = 100 + 6 * 51;
    assert_eq!(counts(&server, &admin), (total, total));

    // Only an administrator queries, and only queries run.
    let body = br#"{"sql":"SELECT 1"}"#;
    assert_eq!(server.post("/v1/query", &shipper, body).status, 403);
    for sql in [
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT 1) TO '/tmp/strata-copy.csv'",
        "SET datafusion.execution.batch_size = 1",
        "SELECT * FROM no_such_table",
    ] {
        let body = serde_json::json!({ "sql": sql }).to_string();
        let response = server.post("/v1/query", &admin, body.as_bytes());
        assert_eq!(response.status, 400, "{sql}: {}", response.text());
    }
    assert!(!Path::new("/tmp/strata-copy.csv").exists());
    assert_eq!(server.post("/v1/query", &admin, b"SELECT 1").status, 400);
    answers_come_in_the_format_asked(&server, &admin, total);

    assert!(server.terminate().success());
    assert_eq!(
        count(
            &archive,
            "SELECT count(*) AS n FROM events WHERE action NOT LIKE 'archive_query%'"
        ),
        total
    );
    verify_deep(&archive);
}

/// The same answer as JSON, NDJSON, CSV and an Arrow IPC stream (by
/// `Accept`), each with every one of `total` rows; 406 for a format not served.
fn answers_come_in_the_format_asked(server: &ServerProcess, admin: &str, total: u64) {
    let sql = "SELECT event_id, tenant, bytes FROM events WHERE action NOT LIKE 'archive_query%' ORDER BY event_id";
    let body = serde_json::json!({ "sql": sql }).to_string();
    let auth = format!("Bearer {admin}");
    let ask = |accept: &str| {
        let headers = [("Authorization", auth.as_str()), ("Accept", accept)];
        let response = server.request("POST", "/v1/query", &headers, body.as_bytes());
        assert_eq!(response.status, 200, "{accept}: {}", response.text());
        response
    };
    let json = ask("application/json").json();
    let ids: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len() as u64, total);
    let ndjson = ask("application/x-ndjson");
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let from_lines: Vec<String> = ndjson
        .text()
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            row["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(from_lines, ids);
    let csv = ask("text/csv").text();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("event_id,tenant,bytes"));
    let from_csv: Vec<String> = lines
        .map(|line| line.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(from_csv, ids);
    let arrow = ask("application/vnd.apache.arrow.stream").body;
    let reader = arrow::ipc::reader::StreamReader::try_new(&arrow[..], None).unwrap();
    let mut from_arrow = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column(0);
        let column = column
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        from_arrow.extend(column.iter().map(|id| id.unwrap().to_string()));
    }
    assert_eq!(from_arrow, ids);
    let headers = [("Authorization", auth.as_str()), ("Accept", "text/html")];
    let refused = server.request("POST", "/v1/query", &headers, body.as_bytes());
    assert_eq!(refused.status, 406, "{}", refused.text());
    assert!(refused.text().contains("text/csv"), "{}", refused.text());
}

#[test]
fn a_retried_request_is_stored_once_while_its_first_copy_is_buffered_even_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let admin = add_user(&archive, "admin", "admin", &[]);
    let shipper = add_user(&archive, "shipper", "ingest", &["acme"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);
    let first = batch("retry", 20);
    // The retry repeats the first request and adds events it did not have.
    let retry = first.clone() + &batch("fresh", 5);
    for body in [&first, &retry, &first] {
        let response = server.post("/v1/events", &shipper, body.as_bytes());
        assert_eq!(response.status, 200, "{}", response.text());
    }
    // Without an event id, a repeat is another event.
    let anonymous = r#"{"ts":"2026-05-01T10:00:00Z","family":"access","action":"logout"}"#;
    for _ in 0..2 {
        assert_eq!(
            server
                .post("/v1/events", &shipper, anonymous.as_bytes())
                .status,
            200
        );
    }
    assert_eq!(counts(&server, &admin), (27, 25));
    let auth = format!("Bearer {admin}");
    let metrics = server
        .request("GET", "/metrics", &[("Authorization", &auth)], b"")
        .text();
    assert!(
        metrics.contains("strata_events_deduplicated_total 40"),
        "{metrics}"
    );

    // The first copies are only in the write-ahead log when the server dies.
    server.kill9();
    wait_for_leases();
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);
    assert_eq!(counts(&server, &admin), (27, 25));
    // Still buffered after the replay: a retry now is still a repeat.
    assert_eq!(
        server.post("/v1/events", &shipper, first.as_bytes()).status,
        200
    );
    assert!(server.terminate().success());
    assert_eq!(
        count(
            &archive,
            "SELECT count(*) AS n FROM events WHERE action NOT LIKE 'archive_query%'"
        ),
        27
    );
    verify_deep(&archive);
}

#[test]
fn a_principal_past_its_query_memory_or_concurrency_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let admin = add_user(&archive, "admin", "admin", &[]);
    let auditor = add_user(&archive, "auditor", "auditor", &[]);
    let shipper = add_user(&archive, "shipper", "ingest", &["acme"]);
    let limits = [
        "--node-id",
        "n1",
        "--query-memory-mib",
        "1",
        "--queries-per-principal",
        "1",
    ];
    let server = ServerProcess::start(&archive, &limits);
    // About 5 MB of messages: sorting them all needs more than 1 MiB.
    let events: String = (0..20_000)
        .map(|i| {
            format!(
                r#"{{"ts":"2026-05-01T10:00:00Z","tenant":"acme","family":"access","action":"login","event_id":"m-{i}","message":"{i:0>200}"}}"#
            ) + "\n"
        })
        .collect();
    let sent = server.post("/v1/events", &shipper, events.as_bytes());
    assert_eq!(sent.status, 200, "{}", sent.text());

    let sorted = r#"{"sql":"SELECT message FROM events ORDER BY message DESC"}"#;
    let refused = server.post("/v1/query", &auditor, sorted.as_bytes());
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused
            .text()
            .to_lowercase()
            .contains("resources exhausted"),
        "{}",
        refused.text()
    );
    // The failed query took nothing with it: the same principal and others
    // still get answers.
    let count =
        br#"{"sql":"SELECT count(*) AS n FROM events WHERE action NOT LIKE 'archive_query%'"}"#;
    for token in [&auditor, &admin] {
        let answer = server.post("/v1/query", token, count);
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()[0]["n"], 20_000);
    }

    // A query whose answer is not being read holds the auditor's only slot:
    // its next query waits its turn (429), an admin's does not.
    // Some 60 MB of answer: far more than the sockets' buffers hold.
    let sql = ["SELECT * FROM events"; 10].join(" UNION ALL ");
    let endless = serde_json::json!({ "sql": sql }).to_string();
    let mut unread = std::net::TcpStream::connect(server.listener("http")).unwrap();
    let head = format!(
        "POST /v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {auditor}\r\n\
         Accept: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{endless}",
        endless.len()
    );
    unread.write_all(head.as_bytes()).unwrap();
    // Let it be admitted before the auditor's next query can take the slot.
    std::thread::sleep(Duration::from_millis(300));
    let deadline = Instant::now() + Duration::from_secs(30);
    let busy = loop {
        let answer = server.post("/v1/query", &auditor, count);
        if answer.status == 429 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(busy.status, 429, "{}", busy.text());
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert!(busy.text().contains("auditor"), "{}", busy.text());
    assert_eq!(server.post("/v1/query", &admin, count).status, 200);
    // Once the reader goes away, its query stops and frees the slot.
    drop(unread);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = server.post("/v1/query", &auditor, count);
        if answer.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", answer.text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.terminate().success());
}
