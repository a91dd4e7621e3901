//! Every statement through the server, answered or not, is recorded in the
//! archive before its answer: field by field, in each tenant it read and in
//! the system tenant, each client reading only the records about its
//! tenants, and nothing lost to `kill -9`. Included by tests/serve.rs.

use std::collections::BTreeMap;

use super::*;
use serde_json::Value;

const SYSTEM: &str = "strata-system";

/// One statement run, and what its records must say.
struct Run {
    token: String,
    user: &'static str,
    role: &'static str,
    sql: &'static str,
    status: u16,
    /// `answered`, `denied` or `failed`.
    result: &'static str,
    /// The tenants it reads.
    read: &'static [&'static str],
    /// Words its reason holds, when refused.
    reason: &'static str,
}

fn post_sql(server: &ServerProcess, token: &str, sql: &str) -> serve_client::Response {
    let body = serde_json::json!({ "sql": sql }).to_string();
    server.post("/v1/query", token, body.as_bytes())
}

/// The query records `token` reads, by tenant copy.
fn records(server: &ServerProcess, token: &str) -> Vec<Value> {
    let sql = "SELECT tenant, action, outcome, severity, user, role, app, \
               CAST(src_ip AS VARCHAR) AS src_ip, session_id, message, event_id, bytes, records, \
               duration_ms, attrs['query_id'] AS query_id, attrs['result'] AS result, \
               attrs['tenants'] AS tenants, attrs['reason'] AS reason, \
               attrs['fingerprint'] AS fingerprint, attrs['interface'] AS interface \
               FROM access WHERE action LIKE 'archive_query%'";
    let answer = post_sql(server, token, sql);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json().as_array().unwrap().clone()
}

#[test]
fn every_statement_is_recorded_field_by_field_and_each_client_reads_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "shipper", "ingest", &[]);
    let auditor = add_user(&archive, "auditor", "auditor", &[]);
    let acme = add_user(&archive, "acme-reader", "client", &["acme"]);
    let globex = add_user(&archive, "globex-reader", "client", &["globex"]);
    let analyst = add_user(&archive, "analyst", "analyst", &[]);
    // The system tenant is the server's own: no principal is given it.
    let reserved = run_expect(
        strata(&archive).args(["users", "add", "x", "--role", "client", "--tenant", SYSTEM]),
        1,
    );
    assert!(String::from_utf8_lossy(&reserved.stderr).contains("reserved"));
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);

    let mut lines = String::new();
    for (tenant, n) in [("acme", 3), ("globex", 4)] {
        for i in 0..n {
            lines += &format!(
                "{{\"ts\":\"2026-03-0{d}T10:00:00Z\",\"tenant\":\"{tenant}\",\"family\":\"access\",\"action\":\"login\",\"event_id\":\"{tenant}-{i}\"}}\n",
                d = i + 1
            );
        }
    }
    // Nor may a shipper send events for it.
    lines += &format!(
        "{{\"ts\":\"2026-03-01T10:00:00Z\",\"tenant\":\"{SYSTEM}\",\"family\":\"access\",\"action\":\"archive_query\"}}\n"
    );
    let sent = server.post("/v1/events", &shipper, lines.as_bytes());
    assert_eq!(sent.json()["accepted"], 7, "{}", sent.text());
    let rejected = sent.json()["errors"][0]["reason"].to_string();
    assert!(rejected.contains("reserved"), "{rejected}");

    let runs = [
        Run {
            token: auditor.clone(),
            user: "auditor",
            role: "auditor",
            sql: "SELECT tenant, count(*) AS n FROM events WHERE tenant IN ('acme', 'globex') \
                  AND action = 'login' GROUP BY tenant",
            status: 200,
            result: "answered",
            read: &["acme", "globex"],
            reason: "",
        },
        Run {
            token: auditor.clone(),
            user: "auditor",
            role: "auditor",
            sql: "SELECT event_id FROM access WHERE tenant = 'globex' AND action = 'login'",
            status: 200,
            result: "answered",
            read: &["globex"],
            reason: "",
        },
        Run {
            token: acme.clone(),
            user: "acme-reader",
            role: "client",
            sql: "SELECT event_id FROM events WHERE (tenant = 'globex' OR 1 = 1) AND action = 'login'",
            status: 200,
            result: "answered",
            read: &["acme"],
            reason: "",
        },
        Run {
            token: acme.clone(),
            user: "acme-reader",
            role: "client",
            sql: "SET datafusion.execution.target_partitions = 1",
            status: 400,
            result: "denied",
            read: &[],
            reason: "Statement not supported",
        },
        Run {
            token: acme.clone(),
            user: "acme-reader",
            role: "client",
            sql: "SELECT no_such_column FROM events",
            status: 400,
            result: "failed",
            read: &[],
            reason: "no_such_column",
        },
        Run {
            token: shipper.clone(),
            user: "shipper",
            role: "ingest",
            sql: "SELECT count(*) AS n FROM events",
            status: 403,
            result: "denied",
            read: &[],
            reason: "may not run SQL",
        },
        Run {
            token: analyst.clone(),
            user: "analyst",
            role: "analyst",
            sql: "SELECT user, count(*) AS n FROM events GROUP BY user",
            status: 200,
            result: "answered",
            // Every tenant but the server's own.
            read: &["acme", "globex"],
            reason: "",
        },
        Run {
            token: globex.clone(),
            user: "globex-reader",
            role: "client",
            sql: "SELECT path FROM strata_files",
            status: 200,
            result: "answered",
            read: &[],
            reason: "",
        },
        Run {
            token: globex.clone(),
            user: "globex-reader",
            role: "client",
            sql: "SELECT count(*) AS n FROM events WHERE ts > '2000-01-01T00:00:00Z' AND action = 'login'",
            status: 200,
            result: "answered",
            read: &["globex"],
            reason: "",
        },
    ];
    let mut answered_rows = Vec::new();
    for run in &runs {
        let answer = post_sql(&server, &run.token, run.sql);
        assert_eq!(answer.status, run.status, "{}: {}", run.sql, answer.text());
        let rows = (answer.status == 200).then(|| answer.json().as_array().unwrap().len());
        answered_rows.push(rows);
    }

    // Each client reads the records of the statements that read its
    // tenant (checked against the auditor's below), and no other tenant's
    // name anywhere in them.
    let mut seen_by = BTreeMap::new();
    for (token, tenant, other) in [(&acme, "acme", "globex"), (&globex, "globex", "acme")] {
        let seen = records(&server, token);
        assert!(seen.iter().all(|r| r["tenant"] == tenant), "{seen:?}");
        let text = serde_json::to_string(&seen).unwrap();
        assert!(!text.contains(other), "{tenant} read {other}: {text}");
        let mut ids: Vec<String> = seen
            .iter()
            .map(|r| r["query_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids.dedup();
        seen_by.insert(tenant, ids);
    }

    // The auditor reads every record: one system copy of each statement
    // with its text, one copy per tenant read with its fingerprint; an
    // end record for each answered one.
    let all = records(&server, &auditor);
    let by_query: BTreeMap<String, Vec<&Value>> = all.iter().fold(BTreeMap::new(), |mut m, r| {
        m.entry(r["query_id"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
        m
    });
    for (run, rows) in runs.iter().zip(&answered_rows) {
        let system_start = all
            .iter()
            .filter(|r| {
                r["tenant"] == SYSTEM && r["action"] == "archive_query" && r["message"] == run.sql
            })
            .collect::<Vec<_>>();
        assert_eq!(system_start.len(), 1, "{}: {all:#?}", run.sql);
        let query_id = system_start[0]["query_id"].as_str().unwrap();
        let records = &by_query[query_id];
        let copies = run.read.len() + 1;
        let expected = if run.result == "answered" {
            2 * copies
        } else {
            copies
        };
        assert_eq!(records.len(), expected, "{}: {records:#?}", run.sql);
        for record in records {
            let tenant = record["tenant"].as_str().unwrap();
            let end = record["action"] == "archive_query_end";
            assert_eq!(record["user"], run.user);
            assert_eq!(record["role"], run.role);
            assert_eq!(record["app"], "strata serve");
            assert_eq!(record["interface"], "http");
            assert_eq!(record["src_ip"], "127.0.0.1");
            let event_id = if end {
                format!("{query_id}.end")
            } else {
                query_id.to_string()
            };
            assert_eq!(record["event_id"], event_id);
            let result = if end || run.result != "answered" {
                run.result
            } else {
                "answering"
            };
            assert_eq!(record["result"], result, "{record}");
            let outcome = match result {
                "answered" => "success",
                "answering" => "unknown",
                _ => "failure",
            };
            assert_eq!(record["outcome"], outcome, "{record}");
            if tenant == SYSTEM {
                assert_eq!(record["message"], run.sql);
                assert_eq!(record["tenants"], run.read.join(","));
                if !run.reason.is_empty() {
                    let reason = record["reason"].as_str().unwrap_or_default();
                    assert!(reason.contains(run.reason), "{reason}");
                }
            } else {
                assert!(run.read.contains(&tenant), "{record}");
                assert_eq!(record["message"], record["fingerprint"]);
                assert_eq!(record["tenants"], tenant);
                assert!(record["reason"].is_null(), "{record}");
            }
            if end {
                assert_eq!(record["records"], rows.unwrap() as u64, "{record}");
                assert!(record["duration_ms"].as_f64().unwrap() > 0.0, "{record}");
            } else {
                assert!(record["records"].is_null(), "{record}");
            }
        }
    }
    // The fingerprint keeps the statement's shape, not its values.
    let first = by_query
        .values()
        .flatten()
        .find(|r| r["message"] == runs[0].sql)
        .unwrap();
    assert_eq!(
        first["fingerprint"],
        "SELECT tenant, count(*) AS ? FROM events WHERE tenant IN (?, ?) AND action = ? GROUP BY tenant"
    );

    for (tenant, seen) in &seen_by {
        let mut expected: Vec<String> = (runs.iter())
            .filter(|run| run.read.contains(tenant))
            .map(|run| {
                let system = all.iter().find(|r| {
                    r["tenant"] == SYSTEM
                        && r["action"] == "archive_query"
                        && r["message"] == run.sql
                });
                system.unwrap()["query_id"].as_str().unwrap().to_string()
            })
            .collect();
        expected.sort();
        assert_eq!(seen, &expected, "{tenant}");
    }
    // The clients' readings of the log are recorded too, in their tenant.
    let run_ids: Vec<&str> = (runs.iter())
        .map(|run| {
            let system = all.iter().find(|r| {
                r["tenant"] == SYSTEM && r["action"] == "archive_query" && r["message"] == run.sql
            });
            system.unwrap()["query_id"].as_str().unwrap()
        })
        .collect();
    for (user, tenant) in [("acme-reader", "acme"), ("globex-reader", "globex")] {
        let mut reads: Vec<&str> = (all.iter())
            .filter(|r| r["user"] == user && r["tenant"] == tenant)
            .map(|r| r["query_id"].as_str().unwrap())
            .filter(|id| !run_ids.contains(id))
            .collect();
        reads.dedup();
        assert_eq!(reads.len(), 1, "{user}: {reads:?}");
    }

    // A record is durable before its answer: killed right after one, the
    // server loses no record.
    let last = "SELECT 42 AS answer";
    assert_eq!(post_sql(&server, &auditor, last).status, 200);
    server.kill9();
    wait_for_leases();
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);
    let kept = records(&server, &auditor);
    let last_start = kept
        .iter()
        .filter(|r| r["message"] == last && r["action"] == "archive_query")
        .count();
    assert_eq!(last_start, 1, "{kept:#?}");
    assert!(server.terminate().success());
    // Written out, the records are the archive's like any events.
    let stored = count(
        &archive,
        "SELECT count(*) AS n FROM events WHERE action = 'archive_query' AND message = 'SELECT 42 AS answer'",
    );
    assert_eq!(stored, 1);
    verify_deep(&archive);
}

#[test]
fn strata_sql_records_its_statements_in_a_governed_archive_unless_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let events = dir.path().join("events.ndjson");
    let lines: String = (0..5)
        .map(|i| {
            let tenant = if i < 3 { "acme" } else { "globex" };
            format!(
                "{{\"ts\":\"2026-03-0{d}T10:00:00Z\",\"tenant\":\"{tenant}\",\"family\":\"access\",\"action\":\"login\"}}\n",
                d = i + 1
            )
        })
        .collect();
    std::fs::write(&events, lines).unwrap();
    run_ok(strata(&archive).arg("ingest").arg(&events));
    let looks = "SELECT count(*) AS n FROM events WHERE action LIKE 'archive_query%'";
    // An archive without principals is its owner's copy: nothing recorded.
    assert_eq!(count(&archive, "SELECT count(*) AS n FROM events"), 5);
    assert_eq!(count(&archive, looks), 0);

    add_user(&archive, "auditor", "auditor", &[]);
    let asked = "SELECT count(*) AS n FROM events WHERE tenant = 'acme' AND action = 'login'";
    let out = run_ok(
        strata(&archive)
            .env("STRATA_ACTOR", "ops@desk")
            .args(["sql", "-f", "csv", asked]),
    );
    assert_eq!(out, "n\n3\n");
    let failed = run_expect(
        strata(&archive)
            .env("STRATA_ACTOR", "ops@desk")
            .args(["sql", "SELECT nope FROM events"]),
        1,
    );
    assert!(String::from_utf8_lossy(&failed.stderr).contains("nope"));

    let fields = "SELECT tenant, action, user, role, app, message, records, \
                  attrs['interface'] AS interface, attrs['result'] AS result, \
                  attrs['tenants'] AS tenants FROM events WHERE user = 'ops@desk' \
                  ORDER BY action, tenant, ts";
    let recorded = query(&archive, fields);
    let summary: Vec<String> = (recorded.iter())
        .map(|r| {
            let field = |k: &str| r[k].as_str().map_or(r[k].to_string(), str::to_string);
            assert_eq!(
                (field("role"), field("app"), field("interface")),
                ("operator".into(), "strata sql".into(), "cli".into())
            );
            format!(
                "{} {} {} {}",
                field("action"),
                field("tenant"),
                field("result"),
                field("tenants")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "archive_query acme answering acme",
            "archive_query strata-system answering acme",
            "archive_query strata-system failed ",
            "archive_query_end acme answered acme",
            "archive_query_end strata-system answered acme",
        ],
        "{recorded:#?}"
    );
    let system_end = &recorded[4];
    assert_eq!(system_end["message"], asked);
    assert_eq!(system_end["records"], 1);
    assert_eq!(
        recorded[0]["message"],
        "SELECT count(*) AS ? FROM events WHERE tenant = ? AND action = ?"
    );

    // Whoever cannot write the archive (here: no signing key) reads
    // without a record, and is told so.
    let stranger = strata(&archive)
        .env("STRATA_KEYRING", dir.path().join("empty-keyring.json"))
        .args(["sql", "-f", "csv", asked])
        .output()
        .unwrap();
    assert!(stranger.status.success());
    assert_eq!(String::from_utf8_lossy(&stranger.stdout), "n\n3\n");
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("without a record"));
    let recorded_by = |user: &str| {
        count(
            &archive,
            &format!(
                "SELECT count(*) AS n FROM events WHERE tenant = 'strata-system' \
                 AND user = '{user}' AND message = '{}'",
                asked.replace('\'', "''")
            ),
        )
    };
    assert_eq!(recorded_by("test"), 0);
    assert_eq!(recorded_by("ops@desk"), 2);
    // Each record is a small commit of small files; compaction merges them.
    for _ in 0..4 {
        run_ok(strata(&archive).args(["sql", "-f", "csv", asked]));
    }
    let system_files = "SELECT count(*) AS n FROM strata_files WHERE tenant = 'strata-system'";
    assert!(count(&archive, system_files) > 8);
    run_ok(strata(&archive).arg("compact"));
    assert!(count(&archive, system_files) <= 2);
    assert_eq!(recorded_by("test"), 2 * 4);
    verify_deep(&archive);
}
