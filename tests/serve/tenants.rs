//! A client principal reads its own tenants and nothing else, whatever SQL
//! it sends: rows in files and in memory, file lists, audit receipts,
//! schema listings, plans and errors. Included by tests/serve.rs.

use super::*;

/// What only the other tenant's events hold: no answer to the client may
/// contain it.
const SECRET: &str = "globex-secret";

/// One event line of `tenant`, numbered `n`, in `family`.
fn event(tenant: &str, family: &str, n: usize) -> String {
    let marker = if tenant == "globex" {
        SECRET
    } else {
        "acme-note"
    };
    format!(
        r#"{{"ts":"2026-0{month}-0{day}T10:00:00Z","tenant":"{tenant}","family":"{family}","action":"login","user":"{marker}-user-{n}","message":"{marker} {n}","event_id":"{tenant}-{family}-{n}"}}"#,
        month = 3 + n % 3,
        day = 1 + n % 9,
    )
}

/// Events of both tenants in every family, `per` of each.
fn both_tenants(per: usize, offset: usize) -> String {
    let mut lines = String::new();
    for tenant in ["acme", "globex"] {
        for family in ["access", "data_usage", "technical"] {
            for n in offset..offset + per {
                lines += &event(tenant, family, n);
                lines.push('\n');
            }
        }
    }
    lines
}

pub(super) fn ask(server: &ServerProcess, token: &str, sql: &str) -> serve_client::Response {
    let body = serde_json::json!({ "sql": sql }).to_string();
    server.post("/v1/query", token, body.as_bytes())
}

pub(super) fn rows(server: &ServerProcess, token: &str, sql: &str) -> Vec<serde_json::Value> {
    let response = ask(server, token, sql);
    assert_eq!(response.status, 200, "{sql}: {}", response.text());
    response.json().as_array().unwrap().clone()
}

/// The distinct values of the single column of `sql`'s answer.
fn values(server: &ServerProcess, token: &str, sql: &str) -> Vec<String> {
    let mut values: Vec<String> = rows(server, token, sql)
        .iter()
        .map(|row| {
            let only = row.as_object().unwrap().values().next().unwrap();
            only.as_str().map_or(only.to_string(), str::to_string)
        })
        .collect();
    values.sort();
    values.dedup();
    values
}

#[test]
fn a_client_sees_only_its_tenants_in_every_table_plan_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let admin = add_user(&archive, "ops", "admin", &[]);
    let shipper = add_user(&archive, "shipper", "ingest", &[]);
    let auditor = add_user(&archive, "auditor", "auditor", &[]);
    let client = add_user(&archive, "acme-reader", "client", &["acme"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);

    // Some events written out to files (a bulk request with
    // refresh=wait_for forces a write-out), some still in memory.
    let sent = server.post("/v1/events", &shipper, both_tenants(4, 0).as_bytes());
    assert_eq!(sent.json()["accepted"], 24, "{}", sent.text());
    let auth = format!("Bearer {shipper}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/x-ndjson"),
    ];
    let bulk = "{\"create\":{\"_index\":\"access\"}}\n\
                {\"@timestamp\":\"2026-05-01T10:00:00Z\",\"organization.id\":\"globex\",\"message\":\"globex-secret bulk\"}\n";
    let written = server.request("POST", "/_bulk?refresh=wait_for", &headers, bulk.as_bytes());
    assert_eq!(written.status, 200, "{}", written.text());
    let sent = server.post("/v1/events", &shipper, both_tenants(2, 10).as_bytes());
    assert_eq!(sent.json()["accepted"], 12, "{}", sent.text());
    let acme_events = 3 * (4 + 2);
    let all_events = 2 * acme_events + 1;

    // The auditor sees everyone, the client its own tenant only.
    let count = "SELECT count(*) AS n FROM events WHERE action NOT LIKE 'archive_query%'";
    assert_eq!(rows(&server, &auditor, count)[0]["n"], all_events);
    assert_eq!(rows(&server, &client, count)[0]["n"], acme_events);
    let files = "SELECT count(*) AS n FROM strata_files";
    let all_files = rows(&server, &auditor, files)[0]["n"].as_u64().unwrap();
    let acme_files = rows(&server, &client, files)[0]["n"].as_u64().unwrap();
    assert!(
        0 < acme_files && acme_files < all_files,
        "{acme_files} of {all_files}"
    );

    // Queries that try to reach the other tenant answer with the client's
    // rows only (or nothing).
    let acme = vec!["acme".to_string()];
    for sql in [
        "SELECT tenant FROM events",
        "SELECT tenant FROM events WHERE tenant <> 'acme' OR 1 = 1",
        "SELECT tenant FROM access UNION ALL SELECT tenant FROM data_usage UNION ALL SELECT tenant FROM technical",
        "WITH t AS (SELECT * FROM events) SELECT tenant FROM t WHERE tenant IN (SELECT tenant FROM events)",
        "SELECT e.tenant FROM events e JOIN strata_files f ON f.tenant = e.tenant",
        "SELECT tenant FROM strata_files",
        "SELECT tenant FROM strata_audit WHERE tenant IS NOT NULL",
        "SELECT a.tenant FROM strata_audit a JOIN strata_files f ON a.path = f.path",
        "SELECT CASE WHEN count(*) > 0 THEN 'acme' END FROM events WHERE tenant = 'acme'",
    ] {
        assert_eq!(values(&server, &client, sql), acme, "{sql}");
    }
    for sql in [
        "SELECT * FROM events WHERE tenant = 'globex'",
        "SELECT * FROM strata_files WHERE path LIKE '%globex%'",
        "SELECT * FROM strata_audit WHERE tenant = 'globex' OR tenant IS NULL",
    ] {
        assert!(rows(&server, &client, sql).is_empty(), "{sql}");
    }
    // Parameters are values bound into the plan: the other tenant's name
    // as one finds nothing, text that looks like SQL is only text.
    let by_tenant = |token: &str, params: serde_json::Value| {
        let sql = "SELECT count(*) AS n FROM events WHERE tenant = $1 AND ts >= $2 AND action NOT LIKE 'archive_query%'";
        let body = serde_json::json!({ "sql": sql, "params": params }).to_string();
        let response = server.post("/v1/query", token, body.as_bytes());
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()[0]["n"].clone()
    };
    let since = "2026-01-01T00:00:00Z";
    assert_eq!(
        by_tenant(&client, serde_json::json!(["acme", since])),
        acme_events
    );
    assert_eq!(by_tenant(&client, serde_json::json!(["globex", since])), 0);
    assert_eq!(
        by_tenant(&client, serde_json::json!(["x' OR '1'='1", since])),
        0
    );
    assert_eq!(
        by_tenant(&auditor, serde_json::json!(["globex", since])),
        acme_events + 1
    );
    let unbound = ask(&server, &client, "SELECT * FROM events WHERE tenant = $1");
    assert_eq!(unbound.status, 400, "{}", unbound.text());
    let nested = br#"{"sql":"SELECT $1","params":[[1]]}"#;
    let refused = server.post("/v1/query", &client, nested);
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("$1"), "{}", refused.text());
    let paths = values(&server, &client, "SELECT path FROM strata_files");
    assert!(
        paths.iter().all(|p| p.contains("tenant=acme/")),
        "{paths:?}"
    );

    // Everything the client can read or be told names no other tenant:
    // tables, listings, plans (with the files they scan), errors.
    for sql in [
        "SELECT * FROM events",
        "SELECT * FROM strata_files",
        "SELECT * FROM strata_audit",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM information_schema.columns",
        "EXPLAIN SELECT * FROM events",
        "EXPLAIN VERBOSE SELECT * FROM events WHERE message LIKE '%x%'",
        "EXPLAIN ANALYZE SELECT count(*) FROM events",
        "SELECT no_such_column FROM events",
        "SELECT * FROM events WHERE ts = 'not a time'",
        "SELECT * FROM read_parquet('tenant=acme')",
    ] {
        let answer = ask(&server, &client, sql).text();
        assert!(!answer.contains("globex"), "{sql}: {answer}");
    }
    // Statements that would read or write the server's files, or change
    // the session, are refused outright.
    let globex_folder = archive.join("tenant=globex");
    for sql in [
        format!(
            "CREATE EXTERNAL TABLE g STORED AS PARQUET LOCATION '{}'",
            globex_folder.display()
        ),
        "CREATE VIEW v AS SELECT * FROM events".to_string(),
        "COPY (SELECT * FROM events) TO '/tmp/strata-client-copy.parquet'".to_string(),
        "SET datafusion.execution.target_partitions = 1".to_string(),
        "INSERT INTO events SELECT * FROM events".to_string(),
        "DROP TABLE events".to_string(),
    ] {
        let answer = ask(&server, &client, &sql);
        assert_eq!(answer.status, 400, "{sql}: {}", answer.text());
        assert!(!answer.text().contains(SECRET), "{sql}: {}", answer.text());
    }
    assert!(!Path::new("/tmp/strata-client-copy.parquet").exists());
    // The session is built again for every request: nothing a refused
    // statement tried lingers.
    assert_eq!(rows(&server, &client, count)[0]["n"], acme_events);

    // The client's receipts are about its tenant; a commit that also
    // concerned the other tenant shows neither its actor nor its reason.
    let receipts = rows(
        &server,
        &client,
        "SELECT tenant, actor FROM strata_audit WHERE action = 'add'",
    );
    assert_eq!(receipts.len() as u64, acme_files, "{receipts:?}");
    assert!(
        receipts.iter().all(|r| r["tenant"] == "acme"),
        "{receipts:?}"
    );
    assert!(
        receipts.iter().all(|r| r["actor"].is_null()),
        "{receipts:?}"
    );
    let auditor_receipts = rows(
        &server,
        &auditor,
        "SELECT DISTINCT actor FROM strata_audit WHERE action = 'add'",
    );
    assert_eq!(
        auditor_receipts,
        vec![serde_json::json!({"actor": "shipper"})]
    );

    // Roles without query rights are told so; an admin still sees all.
    let refused = ask(&server, &shipper, count);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("ingest"), "{}", refused.text());
    assert_eq!(rows(&server, &admin, count)[0]["n"], all_events);
    assert!(server.terminate().success());
}
