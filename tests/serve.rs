//! `strata serve` end to end: the binary started on a real archive, spoken
//! to over HTTP, stopped by SIGTERM or killed with `kill -9`, and the
//! archive read back with `strata sql` and checked with `strata verify`.

#[path = "serve/analyst.rs"]
mod analyst;
mod common;
#[path = "serve/config.rs"]
mod config;
#[path = "common/faulty_proxy.rs"]
mod faulty_proxy;
#[path = "serve/files.rs"]
mod files;
#[path = "serve/hostile.rs"]
mod hostile;
#[path = "serve/observe.rs"]
mod observe;
#[path = "serve/pg.rs"]
mod pg;
#[path = "serve/query.rs"]
mod query;
#[path = "serve/query_log.rs"]
mod query_log;
#[path = "serve/s3_faults.rs"]
mod s3_faults;
#[path = "common/s3_server.rs"]
mod s3_server;
#[path = "common/serve.rs"]
mod serve_client;
#[path = "serve/syslog.rs"]
mod syslog;
#[path = "serve/tenants.rs"]
mod tenants;
#[path = "serve/two.rs"]
mod two;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serve_client::ServerProcess;

/// The archive's segments of node `node` still in the write-ahead log
/// (not the staging files a put cut off by `kill -9` leaves, `….wal#N`,
/// which the store never lists).
fn wal_segments(archive: &Path, node: &str) -> usize {
    std::fs::read_dir(archive.join("_strata/wal").join(node))
        .map(|dir| {
            dir.filter(|entry| {
                let entry = entry.as_ref().expect("readable folder");
                entry.file_name().to_string_lossy().ends_with(".wal")
            })
            .count()
        })
        .unwrap_or(0)
}

/// Server flags for tests that need many write-outs: one a second, and
/// segments stored every 20 ms.
const FREQUENT_WRITE_OUTS: [&str; 6] = [
    "--node-id",
    "n1",
    "--write-out-secs",
    "1",
    "--wal-interval-ms",
    "20",
];

/// The value of the metric line starting with `series` (name and labels)
/// in Prometheus text, 0 when absent.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn verify_deep(archive: &Path) {
    let out = run_ok(strata(archive).args(["verify", "--deep"]));
    assert!(out.contains("result:     intact"), "{out}");
}

#[test]
fn serve_refuses_to_start_on_an_archive_without_principals() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let out = run_expect(strata(&archive).args(["serve", "--http", "127.0.0.1:0"]), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no principals"), "{stderr}");
    assert!(stderr.contains("users add admin --role admin"), "{stderr}");
}

#[test]
fn events_are_authenticated_acknowledged_and_committed_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let admin = add_user(&archive, "ops", "admin", &[]);
    let shipper = add_user(&archive, "vpn-gateway", "ingest", &["acme"]);
    let auditor = add_user(&archive, "auditor", "auditor", &[]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);

    assert_eq!(server.request("GET", "/health/live", &[], b"").status, 200);
    assert_eq!(server.request("GET", "/health/ready", &[], b"").status, 200);

    // Who may send: no token, a wrong one, a role without the right.
    let line =
        br#"{"ts":"2026-03-01T10:00:00Z","tenant":"acme","family":"access","action":"login"}"#;
    let missing = server.request("POST", "/v1/events", &[], line);
    assert_eq!(missing.status, 401);
    assert!(
        missing.text().contains("Authorization: Bearer"),
        "{}",
        missing.text()
    );
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .contains("Bearer")
    );
    let wrong = server.post("/v1/events", "strata_not-a-token", line);
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("not valid"), "{}", wrong.text());
    let forbidden = server.post("/v1/events", &auditor, line);
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.text().contains("auditor"), "{}", forbidden.text());

    // Each bad line alone is refused, with its number and reason.
    let body = concat!(
        r#"{"ts":"2026-03-01T10:00:00.123456Z","tenant":"acme","family":"access","action":"login","outcome":"failure","severity":"warning","user":"j.doe","src_ip":"10.1.2.3","bytes":42,"duration_ms":1.5,"event_id":"e-1","message":"bad password","attrs":{"mfa":"totp"}}"#,
        "\n",
        r#"{"ts":"2026-03-01T10:00:01Z","tenant":"globex","family":"access","action":"login"}"#,
        "\n",
        r#"{"ts":"2026-03-02T08:00:00Z","family":"data_usage","action":"export","user":"a.b","records":7}"#,
        "\n",
        "{not json\n",
    );
    let response = server.post("/v1/events", &shipper, body.as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    let outcome = response.json();
    assert_eq!(outcome["accepted"], 2, "{outcome}");
    assert_eq!(outcome["rejected"], 2, "{outcome}");
    assert_eq!(outcome["errors"][0]["line"], 2);
    assert!(
        outcome["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("globex")
    );
    assert_eq!(outcome["errors"][1]["line"], 4);
    assert!(
        outcome["errors"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );

    // Every line refused: 400, nothing stored.
    let refused = server.post("/v1/events", &shipper, b"{\"ts\":1}\n");
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["accepted"], 0);

    // Compressed bodies, and the token as a Basic password.
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(br#"{"ts":"2026-04-01T00:00:00Z","tenant":"acme","family":"technical","action":"restart","host":"db1"}"#).unwrap();
        e.finish().unwrap()
    };
    let auth = format!("Bearer {shipper}");
    let post_encoded = |encoding: &str, body: &[u8]| {
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Encoding", encoding),
        ];
        server.request("POST", "/v1/events", &headers, body)
    };
    let gzipped = post_encoded("gzip", &gz);
    assert_eq!(gzipped.json()["accepted"], 1, "{}", gzipped.text());
    let zst = zstd::encode_all(
        &br#"{"ts":"2026-04-01T00:00:01Z","tenant":"acme","family":"technical","action":"stop"}"#[..],
        3,
    )
    .unwrap();
    let zstd = post_encoded("zstd", &zst);
    assert_eq!(zstd.json()["accepted"], 1, "{}", zstd.text());
    let basic = format!("Basic {}", base64_encode(&format!("elastic:{shipper}")));
    let by_basic = server.request("POST", "/v1/events", &[("Authorization", &basic)], line);
    assert_eq!(by_basic.json()["accepted"], 1, "{}", by_basic.text());
    assert_eq!(post_encoded("br", line).status, 415);

    // Metrics: admin only.
    assert_eq!(server.request("GET", "/metrics", &[], b"").status, 401);
    assert_eq!(server.post("/metrics", &shipper, b"").status, 405);
    let metrics = server.request(
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {admin}"))],
        b"",
    );
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.contains("strata_events_accepted_total{protocol=\"ndjson\",tenant=\"acme\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("strata_events_rejected_total{protocol=\"ndjson\",tenant=\"globex\"} 1"),
        "{text}"
    );

    // Nothing is written out before SIGTERM (the age is ten minutes), and
    // SIGTERM commits everything.
    assert_eq!(count(&archive, "SELECT count(*) AS n FROM events"), 0);
    assert!(server.terminate().success());
    assert_eq!(
        wal_segments(&archive, "n1"),
        0,
        "committed segments are deleted"
    );
    let rows = query(
        &archive,
        "SELECT CAST(ts AS VARCHAR) AS ts, tenant, family, action, outcome, severity, user, \
         CAST(src_ip AS VARCHAR) AS src_ip, bytes, duration_ms, event_id, message, \
         attrs['mfa'] AS mfa, records, host \
         FROM events WHERE action NOT LIKE 'archive_query%' ORDER BY ts",
    );
    assert_eq!(rows.len(), 5, "{rows:?}");
    let first = &rows[0];
    assert_eq!(first["ts"], "2026-03-01T10:00:00.123456Z");
    assert_eq!(first["tenant"], "acme");
    assert_eq!(first["family"], "access");
    assert_eq!(first["action"], "login");
    assert_eq!(first["outcome"], "failure");
    assert_eq!(first["severity"], "warning");
    assert_eq!(first["user"], "j.doe");
    assert_eq!(first["src_ip"], "10.1.2.3");
    assert_eq!(first["bytes"], 42);
    assert_eq!(first["duration_ms"], 1.5);
    assert_eq!(first["event_id"], "e-1");
    assert_eq!(first["message"], "bad password");
    assert_eq!(first["mfa"], "totp");
    // The event without a tenant took the sender's only tenant.
    let export = rows.iter().find(|r| r["action"] == "export").unwrap();
    assert_eq!(
        (&export["tenant"], &export["records"]),
        (&"acme".into(), &7.into())
    );
    let restart = rows.iter().find(|r| r["action"] == "restart").unwrap();
    assert_eq!(restart["host"], "db1");
    let audit = query(
        &archive,
        "SELECT DISTINCT actor FROM strata_audit WHERE operation = 'serve'",
    );
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        audit[0]["actor"], "vpn-gateway",
        "the sender is the actor of the commit"
    );
    verify_deep(&archive);
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A batch of `n` events for tenant `acme` with event ids `{tag}-0`...
fn batch(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"ts":"2026-05-0{}T10:00:00Z","tenant":"acme","family":"access","action":"login","event_id":"{tag}-{i}"}}"#,
                1 + i % 9
            ) + "\n"
        })
        .collect()
}

/// The events a server said it replayed on start.
fn replayed_count(banner: &str) -> u64 {
    let (before, _) = banner.split_once(" events replayed").expect(banner);
    before.rsplit(' ').next().unwrap().parse().expect(banner)
}

/// Sends batches of `protocol` (`ndjson` for tenant acme, `bulk` for
/// globex) until the server dies; returns the event ids it acknowledged.
fn send_until_killed(
    server: &ServerProcess,
    token: &str,
    protocol: &str,
    round: usize,
) -> Vec<String> {
    let auth = format!("Bearer {token}");
    let mut acknowledged = Vec::new();
    for n in 0.. {
        let ids: Vec<String> = (0..25)
            .map(|i| format!("{protocol}-{round}-{n}-{i}"))
            .collect();
        let (path, body) = match protocol {
            "ndjson" => {
                let lines = ids.iter().map(|id| {
                    format!(r#"{{"ts":"2026-05-01T10:00:00Z","tenant":"acme","family":"access","action":"login","event_id":"{id}"}}"#)
                });
                ("/v1/events", lines.collect::<Vec<_>>().join("\n"))
            }
            _ => {
                let items = ids.iter().map(|id| {
                    format!("{{\"create\":{{\"_index\":\"access\",\"_id\":\"{id}\"}}}}\n{{\"@timestamp\":\"2026-05-01T10:00:00Z\",\"organization.id\":\"globex\",\"event.action\":\"login\"}}\n")
                });
                ("/_bulk", items.collect::<String>())
            }
        };
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/x-ndjson"),
        ];
        let Ok(response) =
            serve_client::try_request(&server.addr, "POST", path, &headers, body.as_bytes())
        else {
            return acknowledged;
        };
        assert_eq!(response.status, 200, "{}", response.text());
        let answer = response.json();
        match protocol {
            "ndjson" => assert_eq!(answer["accepted"], 25, "{answer}"),
            _ => assert_eq!(answer["errors"], false, "{answer}"),
        }
        acknowledged.extend(ids);
    }
    unreachable!()
}

#[test]
fn a_server_killed_under_two_protocols_keeps_every_acknowledged_event_exactly_once() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "shipper", "ingest", &[]);
    // A write-out every second: the kills fall before, between and after them.
    let args = FREQUENT_WRITE_OUTS;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut acknowledged = Vec::new();
    let mut replayed = 0;
    for round in 0..3 {
        let server = ServerProcess::start(&archive, &args);
        replayed += replayed_count(&server.banner);
        let kill_after = Duration::from_millis(rng.random_range(300..2500));
        std::thread::scope(|scope| {
            let senders: Vec<_> = ["ndjson", "bulk"]
                .map(|protocol| {
                    let (server, shipper) = (&server, &shipper);
                    scope.spawn(move || send_until_killed(server, shipper, protocol, round))
                })
                .into();
            std::thread::sleep(kill_after);
            server.crash();
            for sender in senders {
                acknowledged.extend(sender.join().unwrap());
            }
        });
        server.kill9();
    }
    // Killed servers leave acknowledged events in their log: verify knows
    // them. A kill during a put leaves its staging file, which nothing
    // reads: one is made here so that every run meets it.
    let staging = archive.join("_strata/wal/n1/00000000000000999999.wal#direct");
    std::fs::write(staging, "half a segment").unwrap();
    let report = run_ok(strata(&archive).args(["verify", "--deep"]));
    assert!(report.contains("result:     intact"), "{report}");
    wait_for_leases();
    let server = ServerProcess::start(&archive, &args);
    replayed += replayed_count(&server.banner);
    assert!(replayed > 0, "some kill fell before a write-out");
    assert!(server.terminate().success());
    let stored = query(
        &archive,
        "SELECT event_id, count(*) AS n FROM events GROUP BY event_id",
    );
    let stored: std::collections::HashMap<String, u64> = stored
        .iter()
        .map(|row| {
            (
                row["event_id"].as_str().unwrap().to_string(),
                row["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(stored.values().all(|&n| n == 1), "an event stored twice");
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "acknowledged and lost: {missing:?}");
    // Requests cut off by a kill may land (at most once), never more than one per sender.
    assert!(stored.len() <= acknowledged.len() + 3 * 2 * 25);
    for (tenant, protocol) in [("acme", "ndjson"), ("globex", "bulk")] {
        let sent = acknowledged
            .iter()
            .filter(|id| id.starts_with(protocol))
            .count() as u64;
        let sql = format!("SELECT count(*) AS n FROM events WHERE tenant = '{tenant}'");
        assert!(sent > 0 && count(&archive, &sql) >= sent, "{tenant}");
    }
    assert_eq!(wal_segments(&archive, "n1"), 0);
    // Nothing half-written is left either: a restart removes staging files.
    let left = std::fs::read_dir(archive.join("_strata/wal/n1")).map_or(0, |d| d.count());
    assert_eq!(left, 0);
    verify_deep(&archive);
}

#[test]
fn a_revoked_token_stops_working_within_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    add_user(&archive, "ops", "admin", &[]);
    let shipper = add_user(&archive, "shipper", "ingest", &[]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);
    let line = batch("x", 1);
    assert_eq!(
        server.post("/v1/events", &shipper, line.as_bytes()).status,
        200
    );
    run_ok(strata(&archive).args(["users", "revoke", "shipper", "--reason", "rotated"]));
    let revoked = Instant::now();
    loop {
        let response = server.post("/v1/events", &shipper, line.as_bytes());
        if response.status == 401 {
            break;
        }
        assert_eq!(response.status, 200);
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "still accepted after 5 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A principal added while the server runs is let in as soon.
    let added = add_user(&archive, "shipper2", "ingest", &[]);
    let since = Instant::now();
    while server.post("/v1/events", &added, line.as_bytes()).status != 200 {
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "new principal refused after 5 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.terminate().success());
}

/// The requests Filebeat, Logstash and Vector make before and while
/// sending (their documented sequence), then a bulk request mixing good
/// documents with every kind of bad item.
#[test]
fn elasticsearch_shippers_handshake_then_bulk_answers_each_item_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "filebeat", "ingest", &["acme"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);
    let basic = format!("Basic {}", base64_encode(&format!("elastic:{shipper}")));
    let compat = "application/vnd.elasticsearch+json; compatible-with=8";
    let headers = [("Authorization", basic.as_str()), ("Accept", compat)];

    let info = server.request("GET", "/", &headers, b"");
    assert_eq!(info.status, 200);
    assert_eq!(info.header("x-elastic-product"), Some("Elasticsearch"));
    assert!(
        info.header("content-type")
            .unwrap()
            .contains("compatible-with=8")
    );
    assert!(
        info.json()["version"]["number"]
            .as_str()
            .unwrap()
            .starts_with('8')
    );
    assert_eq!(server.request("HEAD", "/", &headers, b"").status, 200);
    // Refusals come in Elasticsearch's error shape, which its clients parse.
    let anonymous = server.request("GET", "/", &[], b"");
    assert_eq!(anonymous.status, 401);
    let wrong = [
        ("Authorization", "Basic ZWxhc3RpYzp3cm9uZw=="),
        ("Content-Type", "application/x-ndjson"),
    ];
    let bulk = b"{\"create\":{}}\n{\"message\":\"x\"}\n";
    let refused = server.request("POST", "/_bulk", &wrong, bulk);
    for response in [&anonymous, &refused] {
        let error = response.json();
        assert_eq!(error["status"], 401, "{error}");
        assert_eq!(error["error"]["type"], "security_exception", "{error}");
        assert!(
            error["error"]["reason"].as_str().unwrap().contains("token"),
            "{error}"
        );
        assert!(response.header("www-authenticate").is_some());
    }
    let health = server.request("GET", "/_cluster/health", &headers, b"");
    assert_eq!(health.json()["status"], "green");
    for (method, path) in [
        ("GET", "/_license"),
        ("GET", "/_xpack"),
        ("HEAD", "/_index_template/filebeat-8.17.0"),
        ("PUT", "/_index_template/filebeat-8.17.0"),
        ("PUT", "/_ilm/policy/filebeat"),
        (
            "GET",
            "/_ingest/pipeline/filebeat-8.17.0-system-auth-pipeline",
        ),
        ("GET", "/_nodes/_local"),
    ] {
        let response = server.request(method, path, &headers, b"{}");
        assert_eq!(response.status, 200, "{method} {path}: {}", response.text());
        assert_eq!(response.header("x-elastic-product"), Some("Elasticsearch"));
    }

    let bulk = concat!(
        r#"{"create":{"_index":"logs-vpn","_id":"vpn-1"}}"#,
        "\n",
        r#"{"@timestamp":"2026-03-01T10:00:00.5Z","organization":{"id":"acme"},"event":{"action":"vpn_connect","outcome":"success","category":["authentication","network"]},"user":{"name":"j.doe"},"source":{"ip":"198.51.100.7","geo":{"country_iso_code":"DE"}},"host":{"name":"vpn-gw-1"},"log":{"level":"info"},"message":"tunnel up"}"#,
        "\n",
        r#"{"index":{"_index":"logs-vpn"}}"#,
        "\n",
        r#"{"@timestamp":"2026-03-01T10:00:01Z","organization":{"id":"globex"},"event":{"action":"vpn_connect"}}"#,
        "\n",
        r#"{"delete":{"_index":"logs-vpn","_id":"vpn-1"}}"#,
        "\n",
        r#"{"index":{}}"#,
        "\n",
        r#"{"@timestamp":"not a time","event":{"action":"x"}}"#,
        "\n",
        r#"{"update":{"_id":"vpn-1"}}"#,
        "\n",
        r#"{"doc":{"message":"changed"}}"#,
        "\n",
        r#"{"index":{"_index":"data_usage-crm"}}"#,
        "\n",
        r#"{"@timestamp":1772359200000,"event":{"action":"export","id":"crm-9"},"user":{"name":"a.b"},"records":12}"#,
        "\n",
    );
    let bulk_headers = [
        ("Authorization", basic.as_str()),
        ("Accept", compat),
        (
            "Content-Type",
            "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
        ),
    ];
    let response = server.request(
        "POST",
        "/_bulk?refresh=wait_for",
        &bulk_headers,
        bulk.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-elastic-product"), Some("Elasticsearch"));
    let answer = response.json();
    assert_eq!(answer["errors"], true);
    let items = answer["items"].as_array().unwrap();
    let statuses: Vec<(String, u64)> = items
        .iter()
        .map(|item| {
            let (action, result) = item.as_object().unwrap().iter().next().unwrap();
            (action.clone(), result["status"].as_u64().unwrap())
        })
        .collect();
    let expected = [
        ("create", 201),
        ("index", 403),
        ("delete", 400),
        ("index", 400),
        ("update", 400),
        ("index", 201),
    ];
    let expected: Vec<(String, u64)> = expected.iter().map(|(a, s)| (a.to_string(), *s)).collect();
    assert_eq!(statuses, expected, "{answer}");
    assert_eq!(items[0]["create"]["_id"], "vpn-1");
    assert_eq!(items[1]["index"]["error"]["type"], "security_exception");
    assert!(
        items[2]["delete"]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("append-only")
    );
    assert!(
        items[3]["index"]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("ts"),
        "{answer}"
    );

    // refresh=wait_for answered only once the events were committed: a
    // query sees them while the server still runs.
    let rows = query(
        &archive,
        "SELECT CAST(ts AS VARCHAR) AS ts, tenant, family, action, outcome, severity, user, \
         CAST(src_ip AS VARCHAR) AS src_ip, host, message, event_id, records, \
         attrs['source.geo.country_iso_code'] AS country FROM events ORDER BY ts",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    let vpn = &rows[0];
    assert_eq!(vpn["ts"], "2026-03-01T10:00:00.500Z");
    assert_eq!(
        (&vpn["tenant"], &vpn["family"]),
        (&"acme".into(), &"access".into())
    );
    assert_eq!(
        (&vpn["action"], &vpn["outcome"]),
        (&"vpn_connect".into(), &"success".into())
    );
    assert_eq!(
        (&vpn["severity"], &vpn["user"]),
        (&"info".into(), &"j.doe".into())
    );
    assert_eq!(
        (&vpn["src_ip"], &vpn["host"]),
        (&"198.51.100.7".into(), &"vpn-gw-1".into())
    );
    assert_eq!(
        (&vpn["message"], &vpn["event_id"]),
        (&"tunnel up".into(), &"vpn-1".into())
    );
    assert_eq!(vpn["country"], "DE");
    let export = &rows[1];
    assert_eq!(
        (&export["tenant"], &export["family"]),
        (&"acme".into(), &"data_usage".into())
    );
    assert_eq!(
        (&export["event_id"], &export["records"]),
        (&"crm-9".into(), &12.into())
    );
    assert!(server.terminate().success());
    verify_deep(&archive);
}

/// The official Python client's `helpers.bulk`, as an application would use it.
#[test]
fn the_python_elasticsearch_client_stores_every_document_of_helpers_bulk() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "crm", "ingest", &[]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);
    let script = r#"
import json, sys
from elasticsearch import Elasticsearch, helpers
url, token = sys.argv[1], sys.argv[2]
es = Elasticsearch(url, basic_auth=("elastic", token), request_timeout=60)
version = es.info()["version"]["number"]
actions = (
    {
        "_index": "data_usage-crm",
        "_id": f"py-{i}",
        "_source": {
            "@timestamp": f"2026-06-{1 + i % 30:02d}T12:00:00Z",
            "organization": {"id": ["acme", "globex"][i % 2]},
            "event": {"action": "record_read", "outcome": "success"},
            "user": {"name": f"agent{i % 7}"},
            "source": {"ip": "10.0.0.%d" % (i % 250)},
            "records": i,
        },
    }
    for i in range(1000)
)
ok, errors = helpers.bulk(es, actions, chunk_size=250, refresh="wait_for")
print(json.dumps({"version": version, "ok": ok, "errors": errors}))
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script, &format!("http://{}", server.addr), &shipper])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (&result["ok"], &result["errors"]),
        (&1000.into(), &serde_json::json!([]))
    );
    assert!(server.terminate().success());
    let rows = query(
        &archive,
        "SELECT tenant, family, count(*) AS n, count(DISTINCT event_id) AS ids, sum(records) AS records \
         FROM events GROUP BY tenant, family ORDER BY tenant",
    );
    let expected = serde_json::json!([
        {"tenant": "acme", "family": "data_usage", "n": 500, "ids": 500, "records": 249500},
        {"tenant": "globex", "family": "data_usage", "n": 500, "ids": 500, "records": 250000},
    ]);
    assert_eq!(
        serde_json::Value::from(
            rows.into_iter()
                .map(serde_json::Value::Object)
                .collect::<Vec<_>>()
        ),
        expected
    );
    let sample = query(
        &archive,
        "SELECT user, CAST(src_ip AS VARCHAR) AS ip, action FROM events WHERE event_id = 'py-8'",
    );
    assert_eq!(sample[0]["user"], "agent1");
    assert_eq!(sample[0]["ip"], "10.0.0.8");
    assert_eq!(sample[0]["action"], "record_read");
}

/// Splunk HEC as Vector and the Splunk logging libraries send it: the
/// health check, events concatenated and in arrays, raw lines, and
/// indexer acknowledgement polled until the events are committed.
#[test]
fn splunk_hec_events_are_acknowledged_by_ack_id_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "hec", "ingest", &["acme"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);
    let health = server.request("GET", "/services/collector/health", &[], b"");
    assert_eq!(
        (health.status, health.json()["code"].clone()),
        (200, 17.into())
    );

    let events = concat!(
        r#"{"time":1772359200.5,"host":"crm-1","source":"crm","sourcetype":"crm:audit","index":"data_usage","event":{"action":"export","user":"a.b","records":12}}"#,
        r#"{"time":"1772359201","sourcetype":"access","fields":{"user":"j.doe"},"event":"login failed"}"#,
        "\n",
        r#"[{"time":1772359202,"event":{"action":"login","family":"access"}},{"time":1}]"#,
    );
    let channel = "7B3A5D35-0C10-4BD4-A8DB-4B1C1F7C2A10";
    assert_eq!(
        server
            .request("POST", "/services/collector/event", &[], b"{}")
            .json()["code"],
        2
    );
    let wrong = server.request(
        "POST",
        "/services/collector",
        &[("Authorization", "Splunk strata_nope")],
        b"{}",
    );
    assert_eq!(
        (wrong.status, wrong.json()["code"].clone()),
        (403, 4.into())
    );
    let splunk = format!("Splunk {shipper}");
    let headers = [
        ("Authorization", splunk.as_str()),
        ("X-Splunk-Request-Channel", channel),
    ];
    let response = server.request(
        "POST",
        "/services/collector/event",
        &headers,
        events.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let answer = response.json();
    assert_eq!(
        (&answer["code"], &answer["ackId"]),
        (&0.into(), &0.into()),
        "{answer}"
    );
    assert_eq!(answer["rejected"][0]["event"], 3, "{answer}");
    assert!(
        answer["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("Event field is required")
    );

    let raw = server.request(
        "POST",
        "/services/collector/raw?channel=7B3A5D35-0C10-4BD4-A8DB-4B1C1F7C2A10&sourcetype=syslog&host=fw-1&index=technical",
        &[("Authorization", splunk.as_str())],
        b"Dec  2 10:00:00 fw-1 kernel: link down\n\nDec  2 10:00:05 fw-1 kernel: link up\n",
    );
    assert_eq!(raw.json()["ackId"], 1, "{}", raw.text());
    let nothing = server.request("POST", "/services/collector/event", &headers, b"  ");
    assert_eq!(
        (nothing.status, nothing.json()["code"].clone()),
        (400, 5.into())
    );
    let invalid = server.request(
        "POST",
        "/services/collector/event",
        &headers,
        br#"{"time":1}"#,
    );
    assert_eq!(
        (invalid.status, invalid.json()["code"].clone()),
        (400, 6.into())
    );

    // Polling the acks commits the events; true comes once they are in the archive.
    let started = Instant::now();
    let mut pending = vec![0, 1];
    while !pending.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "acks {pending:?} still false"
        );
        let body = serde_json::json!({ "acks": pending }).to_string();
        let acks = server
            .request("POST", "/services/collector/ack", &headers, body.as_bytes())
            .json();
        pending.retain(|id| acks["acks"][id.to_string()] != true);
        std::thread::sleep(Duration::from_millis(100));
    }
    let rows = query(
        &archive,
        "SELECT CAST(ts AS VARCHAR) AS ts, tenant, family, action, user, host, app, message, records, \
         attrs['sourcetype'] AS sourcetype FROM events ORDER BY ts, message",
    );
    assert_eq!(rows.len(), 5, "{rows:?}");
    let export = &rows[0];
    assert_eq!(export["ts"], "2026-03-01T10:00:00.500Z");
    assert_eq!(
        (&export["tenant"], &export["family"]),
        (&"acme".into(), &"data_usage".into())
    );
    assert_eq!(
        (&export["action"], &export["user"]),
        (&"export".into(), &"a.b".into())
    );
    assert_eq!(
        (&export["host"], &export["app"]),
        (&"crm-1".into(), &"crm".into())
    );
    assert_eq!(
        (&export["records"], &export["sourcetype"]),
        (&12.into(), &"crm:audit".into())
    );
    let failed = &rows[1];
    assert_eq!(
        (&failed["message"], &failed["user"]),
        (&"login failed".into(), &"j.doe".into())
    );
    assert_eq!(failed["action"], "access");
    assert_eq!(rows[2]["family"], "access");
    // Raw lines carry no time: they take the time received.
    let link: Vec<_> = rows[3..]
        .iter()
        .map(|r| (r["message"].clone(), r["host"].clone(), r["family"].clone()))
        .collect();
    assert!(
        link.iter()
            .all(|(m, h, f)| m.as_str().unwrap().contains("fw-1 kernel")
                && h == "fw-1"
                && f == "technical"),
        "{link:?}"
    );
    assert!(server.terminate().success());
    verify_deep(&archive);
}

/// The OpenTelemetry Python SDK's OTLP/HTTP log exporter (protobuf), as an
/// application logging through Python's `logging` would use it, and a JSON
/// export replayed by hand with a record for a tenant the sender may not
/// write, reported through `partial_success`.
#[test]
fn otlp_logs_from_the_python_sdk_and_as_json_are_stored_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "billing", "ingest", &["acme"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1"]);
    let script = r#"
import logging, sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
url, token = sys.argv[1], sys.argv[2]
resource = Resource.create({"service.name": "billing", "host.name": "app-7", "tenant.id": "acme"})
provider = LoggerProvider(resource=resource)
exporter = OTLPLogExporter(endpoint=url + "/v1/logs", headers={"Authorization": "Bearer " + token})
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
log = logging.getLogger("audit")
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
log.setLevel(logging.INFO)
for i in range(300):
    log.warning("export %d refused", i, extra={"enduser.id": f"agent{i % 5}", "event.name": "export", "family": "data_usage", "records": i})
assert provider.force_flush(30_000)
provider.shutdown()
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script, &format!("http://{}", server.addr), &shipper])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Failed to export"), "{stderr}");

    let export = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "vpn"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": "1772359200000000000", "severityText": "INFO", "body": {"stringValue": "tunnel up"},
             "attributes": [{"key": "tenant.id", "value": {"stringValue": "acme"}},
                            {"key": "family", "value": {"stringValue": "access"}},
                            {"key": "event.name", "value": {"stringValue": "vpn_connect"}},
                            {"key": "client.address", "value": {"stringValue": "203.0.113.5"}}]},
            {"timeUnixNano": "1772359201000000000", "body": {"stringValue": "other tenant"},
             "attributes": [{"key": "tenant.id", "value": {"stringValue": "globex"}}]}
        ]}]
    }]});
    let auth = format!("Bearer {shipper}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let response = server.request("POST", "/v1/logs", &headers, export.to_string().as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let partial = &response.json()["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"], 1, "{partial}");
    assert!(
        partial["errorMessage"].as_str().unwrap().contains("globex"),
        "{partial}"
    );
    let garbage = server.request(
        "POST",
        "/v1/logs",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/x-protobuf"),
        ],
        b"\xff\xff\xff",
    );
    assert_eq!(garbage.status, 400, "{}", garbage.text());
    let text = server.request(
        "POST",
        "/v1/logs",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "text/plain"),
        ],
        b"x",
    );
    assert_eq!(text.status, 415);
    assert!(server.terminate().success());

    let rows = query(
        &archive,
        "SELECT tenant, family, action, severity, app, host, count(*) AS n, count(DISTINCT user) AS users, \
         sum(records) AS records FROM events WHERE app = 'billing' GROUP BY ALL",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    let billing = &rows[0];
    assert_eq!(
        (&billing["tenant"], &billing["family"]),
        (&"acme".into(), &"data_usage".into())
    );
    assert_eq!(
        (&billing["action"], &billing["severity"]),
        (&"export".into(), &"warning".into())
    );
    assert_eq!(
        (&billing["host"], &billing["n"]),
        (&"app-7".into(), &300.into())
    );
    assert_eq!(
        (&billing["users"], &billing["records"]),
        (&5.into(), &44850.into())
    );
    let messages = count(
        &archive,
        "SELECT count(*) AS n FROM events WHERE message LIKE 'export % refused'",
    );
    assert_eq!(messages, 300);
    let vpn = query(
        &archive,
        "SELECT CAST(ts AS VARCHAR) AS ts, family, action, severity, CAST(src_ip AS VARCHAR) AS ip, message FROM events WHERE app = 'vpn'",
    );
    assert_eq!(vpn.len(), 1, "{vpn:?}");
    assert_eq!(
        (&vpn[0]["ts"], &vpn[0]["family"]),
        (&"2026-03-01T10:00:00Z".into(), &"access".into())
    );
    assert_eq!(
        (&vpn[0]["action"], &vpn[0]["severity"]),
        (&"vpn_connect".into(), &"info".into())
    );
    assert_eq!(
        (&vpn[0]["ip"], &vpn[0]["message"]),
        (&"203.0.113.5".into(), &"tunnel up".into())
    );
    verify_deep(&archive);
}
