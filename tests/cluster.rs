//! Acceptance 4 of issue 15: a Ballista cluster started with `strata
//! cluster` (a scheduler and two executors on loopback) answers
//! `strata sql --cluster` exactly as `strata sql` answers in-process: audit
//! queries, the benchmark's five queries, the catalog's tables, tiered files
//! and a tenant encrypted at rest; and a client principal of a server whose
//! queries run on the cluster sees only its tenant, its events in memory
//! included.

mod common;
#[path = "common/serve.rs"]
#[allow(dead_code)] // the server tests use the rest
mod serve_client;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serve_client::ServerProcess;

/// The retention run's day: months before 2025-04 are tiered to the cold store.
const NOW: &str = "2025-07-15";

/// A scheduler and its executors, stopped when dropped.
struct Cluster {
    processes: Vec<Child>,
    /// `df://127.0.0.1:PORT`.
    url: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits until something listens on `port` of the loopback.
fn wait_for_port(port: u16, process: &mut Child) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = process.try_wait().unwrap() {
            panic!("a cluster process exited ({status}) before listening on {port}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `strata cluster scheduler` and `executors` executors for `archive`.
fn start_cluster(archive: &Path, executors: usize) -> Cluster {
    let port = free_port();
    let spawn = |args: &[String]| {
        strata(archive)
            .arg("cluster")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("strata cluster starts")
    };
    let mut cluster = Cluster {
        processes: vec![spawn(&[
            "scheduler".into(),
            "--bind".into(),
            format!("127.0.0.1:{port}"),
        ])],
        url: format!("df://127.0.0.1:{port}"),
    };
    wait_for_port(port, &mut cluster.processes[0]);
    for _ in 0..executors {
        let (flight, grpc) = (free_port(), free_port());
        let mut executor = spawn(&[
            "executor".into(),
            "--scheduler".into(),
            format!("127.0.0.1:{port}"),
            "--flight-port".into(),
            flight.to_string(),
            "--grpc-port".into(),
            grpc.to_string(),
            "--concurrent-tasks".into(),
            "2".into(),
        ]);
        wait_for_port(flight, &mut executor);
        cluster.processes.push(executor);
    }
    cluster
}

/// `sql`'s CSV answer from `strata sql`, on `cluster` if given.
fn answer(archive: &Path, cluster: Option<&str>, sql: &str) -> String {
    let mut cmd = strata(archive);
    cmd.args(["sql", "--format", "csv"]);
    if let Some(cluster) = cluster {
        cmd.args(["--cluster", cluster]);
    }
    run_ok(cmd.arg(sql))
}

/// Whether two CSV answers hold the same rows, in any order (the cluster
/// may order rows that tie differently), floats equal to 1e-9 relative
/// (sums are added in another order).
fn same_rows(a: &str, b: &str) -> bool {
    let rows = |text: &str| {
        let mut rows: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        rows.sort();
        rows
    };
    let (a, b) = (rows(a), rows(b));
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            x.len() == y.len()
                && x.iter().zip(y).all(|(u, v)| {
                    u == v
                        || matches!((u.parse::<f64>(), v.parse::<f64>()),
                            (Ok(p), Ok(q)) if (p - q).abs() <= 1e-9 * p.abs().max(q.abs()))
                })
        })
}

/// An archive of a year of four tenants, the first encrypted at rest and
/// the months before April tiered to a cold store; returns the tenants.
fn archive_with_encrypted_and_tiered(dir: &Path) -> (std::path::PathBuf, Vec<String>) {
    let input = dir.join("events.ndjson");
    let events = [
        "--events",
        "12000",
        "--tenants",
        "4",
        "--days",
        "365",
        "--start",
        "2025-01-01",
    ];
    generate(&input, &events);
    let archive = dir.join("archive");
    run_ok(strata(&archive).args(["ingest", "--quiet"]).arg(&input));
    let tenants: Vec<String> = query(&archive, "SELECT DISTINCT tenant FROM events ORDER BY 1")
        .iter()
        .map(|row| row["tenant"].as_str().unwrap().to_string())
        .collect();
    let policy = dir.join("policy.toml");
    let rules = format!(
        r#"
[cold_stores]
cold = "{cold}"
[[rule]]
tenant = "*"
family = "*"
expire_after = "10y"
tier_after = "3mo"
tier_to = "cold"
[[rule]]
tenant = "{encrypted}"
family = "*"
expire_after = "10y"
encrypt_after = "0d"
tier_after = "3mo"
tier_to = "cold"
"#,
        cold = dir.join("cold").display(),
        encrypted = tenants[0],
    );
    std::fs::write(&policy, rules).unwrap();
    run_ok(
        strata(&archive)
            .args(["retention", "policy", "set"])
            .arg(&policy),
    );
    run_ok(strata(&archive).args(["retention", "run", "--quiet", "--now", NOW]));
    (archive, tenants)
}

#[test]
fn a_ballista_cluster_answers_as_strata_sql_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, tenants) = archive_with_encrypted_and_tiered(dir.path());
    let located = |sql: &str| count(&archive, sql);
    assert!(located("SELECT count(*) AS n FROM strata_files WHERE key_version IS NOT NULL") > 0);
    assert!(located("SELECT count(*) AS n FROM strata_files WHERE location IS NOT NULL") > 0);
    let cluster = start_cluster(&archive, 2);

    let tenant = &tenants[0];
    let resource = query(
        &archive,
        &format!(
            "SELECT resource FROM events WHERE tenant = '{tenant}' AND resource IS NOT NULL
             GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        ),
    )[0]["resource"]
        .as_str()
        .unwrap()
        .to_string();
    let queries = [
        // The benchmark's five audit queries (benches/harness.py).
        format!(
            "SELECT user, count(*) AS failures FROM events WHERE family = 'access'
             AND action = 'login_failed' AND tenant = '{tenant}' AND ts >= '2025-03-01'
             AND ts < '2025-04-01' GROUP BY user ORDER BY failures DESC, user LIMIT 10"
        ),
        format!(
            "SELECT ts, user, action, outcome FROM events WHERE tenant = '{tenant}'
             AND resource = '{resource}' ORDER BY ts"
        ),
        "SELECT CAST(ts AS DATE) AS day, family, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2"
            .to_string(),
        "SELECT DISTINCT tenant, user FROM events WHERE family = 'data_usage' AND action = 'export'
         AND ts >= '2025-04-01' AND ts < '2025-07-01'
         AND (date_part('hour', ts) < 8 OR date_part('hour', ts) >= 19) ORDER BY 1, 2"
            .to_string(),
        "SELECT count(*) FROM events WHERE message LIKE '%denied%'
         AND ts >= '2025-04-01' AND ts < '2025-07-01'"
            .to_string(),
        // Audit queries over every table and view.
        "SELECT tenant, family, count(*), sum(bytes), sum(records), avg(duration_ms),
         min(ts), max(ts), count(DISTINCT user) FROM events GROUP BY 1, 2".to_string(),
        "SELECT family, count(*) FROM access GROUP BY 1 UNION ALL
         SELECT family, count(*) FROM data_usage GROUP BY 1 UNION ALL
         SELECT family, count(*) FROM technical GROUP BY 1".to_string(),
        "SELECT to_char(date_trunc('month', ts), '%Y-%m') AS m, tenant, count(*) FROM events
         WHERE outcome = 'failure' GROUP BY 1, 2".to_string(),
        "SELECT user, count(*) AS n FROM data_usage WHERE action = 'export'
         GROUP BY user HAVING count(*) >= 3 ORDER BY n DESC, user LIMIT 20".to_string(),
        "SELECT event_id, bytes FROM events WHERE bytes IS NOT NULL
         ORDER BY bytes DESC, event_id LIMIT 10".to_string(),
        "SELECT attrs['mfa'] AS mfa, count(*) FROM access GROUP BY 1".to_string(),
        // A join and a subquery: rows cross executors through a shuffle.
        "SELECT a.tenant, count(*) FROM access a JOIN
         (SELECT DISTINCT tenant, user FROM data_usage WHERE action = 'export') e
         ON a.tenant = e.tenant AND a.user = e.user WHERE a.action = 'login_failed' GROUP BY 1"
            .to_string(),
        "SELECT tenant, user, n FROM (SELECT tenant, user, count(*) AS n,
         rank() OVER (PARTITION BY tenant ORDER BY count(*) DESC, user) AS r
         FROM events GROUP BY 1, 2) WHERE r <= 3".to_string(),
        format!("SELECT count(*), sum(bytes) FROM events WHERE tenant = '{tenant}'"),
        "SELECT tenant, family, month, count(*), sum(rows), count(location), count(key_version)
         FROM strata_files GROUP BY 1, 2, 3".to_string(),
        "SELECT operation, count(*) FROM strata_audit GROUP BY 1".to_string(),
    ];
    for sql in &queries {
        let local = answer(&archive, None, sql);
        let distributed = answer(&archive, Some(&cluster.url), sql);
        assert!(local.lines().count() > 1, "{sql} answers nothing:\n{local}");
        assert!(
            same_rows(&local, &distributed),
            "{sql}\nin-process:\n{local}\non the cluster:\n{distributed}"
        );
    }
    // Nothing falls back to in-process: without a scheduler a query fails,
    // naming the cluster.
    let nowhere = format!("df://127.0.0.1:{}", free_port());
    let failed = run_expect(
        strata(&archive).args(["sql", "--cluster", &nowhere, "SELECT 1 FROM events"]),
        1,
    );
    let error = String::from_utf8_lossy(&failed.stderr);
    assert!(error.contains("127.0.0.1"), "{error}");

    client_of_a_clustered_server_sees_only_its_tenant(&archive, &cluster, tenant);
}

/// A server whose queries run on `cluster`: its client principal of
/// `tenant` reads that tenant alone, files and events in memory alike, and
/// an auditor reads everything.
fn client_of_a_clustered_server_sees_only_its_tenant(
    archive: &Path,
    cluster: &Cluster,
    tenant: &str,
) {
    let shipper = add_user(archive, "shipper", "ingest", &[]);
    let auditor = add_user(archive, "auditor", "auditor", &[]);
    let client = add_user(archive, "reader", "client", &[tenant]);
    // With principals, statements are recorded, those on the cluster too,
    // with the tenants they read (found by pruning, as in-process).
    let marked = format!("SELECT count(*) AS marked FROM events WHERE tenant = '{tenant}'");
    run_ok(strata(archive).args(["sql", "--cluster", &cluster.url, &marked]));
    let records = query(
        archive,
        "SELECT attrs['tenants'] AS tenants FROM events WHERE tenant = 'strata-system'
         AND message LIKE '%AS marked%' AND action = 'archive_query_end'",
    );
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["tenants"], tenant);

    // Every query of a tenant adds its records to the tenant's events:
    // counts leave them out.
    let logged = "action NOT LIKE 'archive_query%'";
    let in_files = count(
        archive,
        &format!("SELECT count(*) AS n FROM events WHERE tenant = '{tenant}' AND {logged}"),
    );
    let everything = count(
        archive,
        &format!("SELECT count(*) AS n FROM events WHERE {logged}"),
    );
    let server = ServerProcess::start(archive, &["--node-id", "n1", "--cluster", &cluster.url]);
    let mut fresh = String::new();
    for (n, who) in [tenant, "someone-else", tenant].iter().enumerate() {
        fresh += &format!(
            r#"{{"ts":"2025-12-0{day}T10:00:00Z","tenant":"{who}","family":"access","action":"login","user":"u{n}","event_id":"fresh-{n}"}}"#,
            day = n + 1
        );
        fresh.push('\n');
    }
    let sent = server.post("/v1/events", &shipper, fresh.as_bytes());
    assert_eq!(sent.json()["accepted"], 3, "{}", sent.text());

    let ask = |token: &str, sql: &str| {
        let body = serde_json::json!({ "sql": sql }).to_string();
        let response = server.post("/v1/query", token, body.as_bytes());
        assert_eq!(response.status, 200, "{sql}: {}", response.text());
        response.json().as_array().unwrap().clone()
    };
    let per_tenant = ask(
        &client,
        &format!("SELECT tenant, count(*) AS n FROM events WHERE {logged} GROUP BY tenant"),
    );
    assert_eq!(per_tenant.len(), 1, "{per_tenant:?}");
    assert_eq!(per_tenant[0]["tenant"], tenant);
    assert_eq!(per_tenant[0]["n"], in_files + 2, "{per_tenant:?}");
    let files = ask(&client, "SELECT DISTINCT tenant FROM strata_files");
    assert_eq!(files, vec![serde_json::json!({ "tenant": tenant })]);
    let all = ask(
        &auditor,
        &format!("SELECT count(*) AS n FROM events WHERE {logged}"),
    );
    assert_eq!(all[0]["n"], everything + 3, "{all:?}");
    assert!(server.terminate().success());
}
