//! The PostgreSQL wire (`--pg`) with the real `psql`: logins by SCRAM,
//! answers equal to HTTP's, `\d`, a client's tenant boundary, statements
//! that are refused, and every statement recorded. Included by
//! tests/serve.rs.

use std::process::{Command, Output};

use super::*;

/// Runs `psql` as `user` with `token` against `server`'s PostgreSQL
/// listener, with `args` (`-c SQL`, …), unaligned and without headers.
fn psql(server: &ServerProcess, user: &str, token: &str, args: &[&str]) -> Output {
    psql_over(server, "sslmode=disable", user, token, args)
}

/// [`psql`] with `ssl` settings (`sslmode=…`, `sslrootcert=…`).
fn psql_over(server: &ServerProcess, ssl: &str, user: &str, token: &str, args: &[&str]) -> Output {
    let (host, port) = server.listener("postgresql").rsplit_once(':').unwrap();
    let conninfo = format!("host={host} port={port} user={user} dbname=strata {ssl}");
    Command::new("psql")
        .env("PGPASSWORD", token)
        .env("PGCONNECT_TIMEOUT", "10")
        .args([
            "-X",
            "-A",
            "-t",
            "-F",
            ",",
            "-v",
            "ON_ERROR_STOP=1",
            &conninfo,
        ])
        .args(args)
        .output()
        .expect("psql runs (scripts/test.sh installs postgresql-client)")
}

/// `sql`'s answer through psql, one line per row.
pub(super) fn psql_rows(server: &ServerProcess, user: &str, token: &str, sql: &str) -> Vec<String> {
    let out = psql(server, user, token, &["-c", sql]);
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    rows.sort();
    rows
}

/// psql's error for `sql`, which must fail.
fn psql_error(server: &ServerProcess, user: &str, token: &str, sql: &str) -> String {
    let out = psql(server, user, token, &["-c", sql]);
    assert!(!out.status.success(), "{sql} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The same answer over HTTP, as psql prints it.
pub(super) fn http_rows(server: &ServerProcess, token: &str, sql: &str) -> Vec<String> {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let headers = [
        ("Authorization", &*format!("Bearer {token}")),
        ("Accept", "text/csv"),
    ];
    let answer = server.request("POST", "/v1/query", &headers, body.as_bytes());
    assert_eq!(answer.status, 200, "{sql}: {}", answer.text());
    let mut rows: Vec<String> = answer.text().lines().skip(1).map(String::from).collect();
    rows.sort();
    rows
}

/// Connects with psycopg 3 as `auditor` to host `argv[1]`, port `argv[2]`,
/// runs `argv[3]` with ("acme", "login") bound on the server, twice as a
/// prepared statement, and prints each answer, SQLAlchemy's table list,
/// `events`' columns, its reflection of every table and a count through it,
/// the answer of the ADBC driver into pyarrow (without COPY, parameters
/// `$1`, `$2`) and through a psycopg named (server-side) cursor fetching a
/// row at a time, as JSON lines.
const PSYCOPG: &str = r#"
import json, os, sys
import psycopg, sqlalchemy
host, port, sql = sys.argv[1:4]
token = os.environ["TOKEN"]
with psycopg.connect(host=host, port=port, user="auditor", password=token,
                     dbname="strata", sslmode="disable") as conn:
    for prepare in (True, True):
        rows = conn.execute(sql, ("acme", "login"), prepare=prepare).fetchall()
        print(json.dumps([[user, int(b)] for user, b in rows]))
url = f"postgresql+psycopg://auditor:{token}@{host}:{port}/strata?sslmode=disable"
engine = sqlalchemy.create_engine(url)
inspector = sqlalchemy.inspect(engine)
print(json.dumps(sorted(inspector.get_table_names())))
print(json.dumps([[c["name"], c["nullable"]] for c in inspector.get_columns("events")]))
metadata = sqlalchemy.MetaData()
metadata.reflect(engine, views=True)
events = metadata.tables["events"]
with engine.connect() as conn:
    acme = (events.c.tenant == "acme") & (events.c.action == "login")
    query = sqlalchemy.select(sqlalchemy.func.count()).where(acme)
    print(json.dumps([sorted(metadata.tables), conn.execute(query).scalar()]))
import adbc_driver_postgresql.dbapi as adbc
with adbc.connect(f"postgresql://auditor:{token}@{host}:{port}/strata?sslmode=disable") as conn:
    cur = conn.cursor()
    cur.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
    cur.execute(sql.replace("%s", "$1", 1).replace("%s", "$2", 1), ("acme", "login"))
    table = cur.fetch_arrow_table()
    users, sums = (table.column(i).to_pylist() for i in (0, 1))
    print(json.dumps([[user, int(b)] for user, b in zip(users, sums)]))
with psycopg.connect(host=host, port=port, user="auditor", password=token,
                     dbname="strata", sslmode="disable") as conn:
    with conn.cursor(name="by_user") as cursor:
        cursor.itersize = 1
        cursor.execute(sql, ("acme", "login"))
        print(json.dumps([[user, int(b)] for user, b in cursor]))
"#;

#[test]
fn psql_logs_in_by_scram_reads_what_its_role_sees_and_every_statement_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "shipper", "ingest", &[]);
    let auditor = add_user(&archive, "auditor", "auditor", &[]);
    let client = add_user(&archive, "acme-reader", "client", &["acme"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1", "--pg", "127.0.0.1:0"]);

    let mut lines = String::new();
    for (tenant, n) in [("acme", 5), ("globex", 7)] {
        for i in 0..n {
            lines += &format!(
                "{{\"ts\":\"2026-03-0{d}T10:00:00Z\",\"tenant\":\"{tenant}\",\"family\":\"access\",\"action\":\"login\",\"user\":\"{tenant}-u{u}\",\"bytes\":{i},\"event_id\":\"{tenant}-{i}\"}}\n",
                d = 1 + i % 5,
                u = i % 3
            );
        }
    }
    let sent = server.post("/v1/events", &shipper, lines.as_bytes());
    assert_eq!(sent.json()["accepted"], 12, "{}", sent.text());

    // Answers over the wire equal HTTP's, for the auditor and the client.
    let queries = [
        "SELECT tenant, count(*) AS n FROM events WHERE action = 'login' GROUP BY tenant",
        "SELECT user, sum(bytes) AS b FROM access WHERE action = 'login' GROUP BY user",
        "SELECT event_id, CAST(ts AS VARCHAR) AS ts FROM events WHERE action = 'login' AND ts >= '2026-03-03'",
    ];
    let mut auditor_answers = Vec::new();
    for sql in queries {
        for (user, token) in [("auditor", &auditor), ("acme-reader", &client)] {
            let wire = psql_rows(&server, user, token, sql);
            if user == "auditor" {
                auditor_answers.push((sql, wire.clone()));
            }
            assert!(!wire.is_empty(), "{sql}");
            assert_eq!(wire, http_rows(&server, token, sql), "{user}: {sql}");
        }
    }
    let tenants = psql_rows(
        &server,
        "acme-reader",
        &client,
        "SELECT DISTINCT tenant FROM events",
    );
    assert_eq!(tenants, ["acme"]);

    // psql's \d lists the session's tables; the client's names no other tenant.
    let listing = psql(&server, "acme-reader", &client, &["-c", "\\d"]);
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    for table in [
        "events",
        "access",
        "data_usage",
        "technical",
        "strata_files",
        "strata_audit",
    ] {
        assert!(text.contains(table), "\\d lacks {table}: {text}");
    }
    let columns = psql(&server, "auditor", &auditor, &["-c", "\\d events"]);
    let text = String::from_utf8_lossy(&columns.stdout);
    assert!(
        columns.status.success(),
        "{}",
        String::from_utf8_lossy(&columns.stderr)
    );
    assert!(text.contains("timestamp with time zone"), "{text}");
    assert!(text.contains("src_ip"), "{text}");

    // Only queries run, and the client's boundary holds on the wire too.
    for sql in [
        "SET datafusion.execution.target_partitions = 1",
        "CREATE VIEW v AS SELECT * FROM events",
        "COPY (SELECT * FROM events) TO '/tmp/strata-pg-copy.parquet'",
    ] {
        let error = psql_error(&server, "acme-reader", &client, sql);
        assert!(error.contains("ERROR"), "{sql}: {error}");
        assert!(!error.contains("globex"), "{sql}: {error}");
    }
    assert!(!Path::new("/tmp/strata-pg-copy.parquet").exists());
    let count = psql_rows(
        &server,
        "acme-reader",
        &client,
        "SELECT count(*) FROM events WHERE (tenant = 'globex' OR 1 = 1) AND action = 'login'",
    );
    assert_eq!(count, ["5"]);
    // Client settings are the client's own.
    let shown = psql(
        &server,
        "auditor",
        &auditor,
        &[
            "-c",
            "SET application_name = 'audit-2026'",
            "-c",
            "SHOW application_name",
        ],
    );
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );

    // Logins: a wrong token, a stranger, and a role that may not query.
    for (user, token) in [
        ("auditor", "wrong"),
        ("nobody", "strata_x"),
        ("shipper", &*shipper),
    ] {
        let error = psql_error(&server, user, token, "SELECT 1").to_lowercase();
        assert!(
            error.contains("password authentication failed") || error.contains("may not run sql"),
            "{user}: {error}"
        );
    }

    // Python: psycopg 3 binds parameters on the server (extended protocol,
    // prepared statements), SQLAlchemy lists the tables.
    let (host, port) = server.listener("postgresql").rsplit_once(':').unwrap();
    let by_user = "SELECT user, sum(bytes) AS b FROM access \
                   WHERE tenant = %s AND action = %s GROUP BY user ORDER BY user";
    let out = Command::new(python())
        .env("TOKEN", &auditor)
        .args(["-c", PSYCOPG, host, port, by_user])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let literal = by_user
        .replacen("%s", "'acme'", 1)
        .replacen("%s", "'login'", 1);
    let expected: Vec<serde_json::Value> = http_rows(&server, &auditor, &literal)
        .iter()
        .map(|row| {
            let (user, bytes) = row.split_once(',').unwrap();
            serde_json::json!([user, bytes.parse::<u64>().unwrap()])
        })
        .collect();
    assert_eq!(answers[0], serde_json::json!(expected), "{stdout}");
    assert_eq!(answers[1], answers[0], "prepared, run again");
    let tables: Vec<&str> = answers[2]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tables, ["events", "strata_audit", "strata_files"]);
    let columns = "SELECT column_name, CASE WHEN is_nullable = 'YES' THEN 'true' ELSE 'false' END \
                   FROM information_schema.columns WHERE table_name = 'events'";
    let mut reflected: Vec<String> = (answers[3].as_array().unwrap().iter())
        .map(|c| format!("{},{}", c[0].as_str().unwrap(), c[1]))
        .collect();
    assert_eq!(reflected[0], "ts,false", "in the table's order");
    reflected.sort();
    assert_eq!(reflected.len(), 21, "{reflected:?}");
    assert_eq!(
        reflected,
        http_rows(&server, &auditor, columns),
        "SQLAlchemy's columns"
    );
    let acme = http_rows(
        &server,
        &auditor,
        "SELECT count(*) FROM events WHERE tenant = 'acme' AND action = 'login'",
    );
    assert_eq!(
        answers[4],
        serde_json::json!([
            [
                "access",
                "data_usage",
                "events",
                "strata_audit",
                "strata_files",
                "technical"
            ],
            acme[0].parse::<u64>().unwrap()
        ]),
        "SQLAlchemy's reflection of every table, and a query through it"
    );
    assert_eq!(answers[5], answers[0], "ADBC into pyarrow");
    assert_eq!(answers[6], answers[0], "psycopg's named cursor");

    // A correlated subquery over the archive is answered, not nulled by
    // the catalog queries' compatibility rewrite.
    let correlated = "SELECT DISTINCT tenant, (SELECT count(*) FROM events e2 \
                      WHERE e2.tenant = e.tenant AND e2.action = 'login') AS n FROM events e \
                      WHERE action = 'login'";
    let over_http = http_rows(&server, &auditor, correlated);
    assert!(
        over_http.iter().all(|row| !row.ends_with(',')),
        "{over_http:?}"
    );
    assert_eq!(
        psql_rows(&server, "auditor", &auditor, correlated),
        over_http
    );

    // SQL cursors, as psql reads a large result (FETCH_COUNT): the same
    // rows, and the DECLARE recorded with every row fetched.
    let logins = "SELECT tenant, user FROM access WHERE action = 'login'";
    let expected = http_rows(&server, &auditor, logins);
    let fetched = psql(
        &server,
        "auditor",
        &auditor,
        &["-v", "FETCH_COUNT=2", "-c", logins],
    );
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    let mut fetched: Vec<String> = (String::from_utf8_lossy(&fetched.stdout).lines())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    fetched.sort();
    assert_eq!(fetched, expected);
    let by_hand = [
        "BEGIN",
        "DECLARE logins CURSOR FOR SELECT tenant, user FROM access WHERE action = 'login'",
        "FETCH 5 FROM logins",
        "FETCH NEXT FROM logins",
        "FETCH ALL FROM logins",
        "CLOSE logins",
        "COMMIT",
    ];
    let args: Vec<&str> = by_hand.iter().flat_map(|c| ["-c", *c]).collect();
    let out = psql(&server, "auditor", &auditor, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = String::from_utf8_lossy(&out.stdout);
    let rows = rows.lines().filter(|l| l.contains(',')).count();
    assert_eq!(rows, expected.len());
    let backward = "BEGIN; DECLARE c CURSOR FOR SELECT 1; FETCH BACKWARD 1 FROM c";
    assert!(psql_error(&server, "auditor", &auditor, backward).contains("forward only"));
    let closed = psql_error(&server, "auditor", &auditor, "FETCH 1 FROM logins");
    assert!(closed.contains("does not exist"), "{closed}");
    let declare_ends = http_rows(
        &server,
        &auditor,
        "SELECT records FROM events WHERE tenant = 'strata-system' \
         AND action = 'archive_query_end' AND message LIKE 'DECLARE %login%'",
    );
    let all_rows = expected.len().to_string();
    assert_eq!(declare_ends, [all_rows.clone(), all_rows]);

    // Every statement over the wire is recorded, as over HTTP.
    let recorded = http_rows(
        &server,
        &auditor,
        "SELECT user, attrs['result'] AS result, message FROM events \
         WHERE action = 'archive_query' AND tenant = 'strata-system' AND attrs['interface'] = 'pg'",
    );
    for sql in queries {
        let line = format!("acme-reader,answering,{sql}");
        let quoted = format!("acme-reader,answering,\"{sql}\"");
        assert!(
            recorded.iter().any(|r| *r == line || *r == quoted),
            "{sql} not recorded: {recorded:#?}"
        );
    }
    assert!(
        recorded
            .iter()
            .any(|r| r.starts_with("acme-reader,denied,SET datafusion")),
        "{recorded:#?}"
    );
    assert!(server.terminate().success());

    // And equal to `strata sql`'s over the archive the server wrote out.
    for (sql, wire) in auditor_answers {
        let csv = run_ok(strata(&archive).args(["sql", "--format", "csv", sql]));
        let mut cli: Vec<String> = csv.lines().skip(1).map(String::from).collect();
        cli.sort();
        assert_eq!(wire, cli, "{sql}");
    }
    // psycopg's and ADBC's answers too.
    let csv = run_ok(strata(&archive).args(["sql", "--format", "csv", &literal]));
    let cli: Vec<serde_json::Value> = (csv.lines().skip(1))
        .map(|row| {
            let (user, bytes) = row.split_once(',').unwrap();
            serde_json::json!([user, bytes.parse::<u64>().unwrap()])
        })
        .collect();
    assert_eq!(answers[0], serde_json::json!(cli), "psycopg");
    assert_eq!(answers[5], serde_json::json!(cli), "ADBC");
}

#[test]
fn with_tls_psql_verifies_the_server_and_plaintext_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let auditor = add_user(&archive, "auditor", "auditor", &[]);
    let (cert, key) = super::hostile::self_signed(dir.path(), "server");
    let (other, _) = super::hostile::self_signed(dir.path(), "other");
    let (cert, key, other) = (cert.display(), key.display(), other.display());
    let (cert_arg, key_arg) = (cert.to_string(), key.to_string());
    let tls = ["--tls-cert", &cert_arg, "--tls-key", &key_arg];
    let args = [&["--node-id", "n1", "--pg", "127.0.0.1:0"][..], &tls].concat();
    let server = ServerProcess::start(&archive, &args);
    assert!(server.banner.contains("(TLS only)"), "{}", server.banner);

    // The token goes in cleartext, inside TLS to a verified server.
    for ssl in [
        format!("sslmode=verify-full sslrootcert={cert}"),
        "sslmode=require".to_string(),
    ] {
        let out = psql_over(&server, &ssl, "auditor", &auditor, &["-c", "SELECT 40 + 2"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{ssl}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    }
    // A server the client cannot verify, and a client without TLS.
    let untrusted = format!("sslmode=verify-full sslrootcert={other}");
    let out = psql_over(
        &server,
        &untrusted,
        "auditor",
        &auditor,
        &["-c", "SELECT 1"],
    );
    assert!(!out.status.success());
    let out = psql_over(
        &server,
        "sslmode=disable",
        "auditor",
        &auditor,
        &["-c", "SELECT 1"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("TLS"), "{stderr}");
    assert!(server.terminate().success());
}

#[test]
fn startup_queries_of_dbeaver_metabase_and_grafana_are_answered_within_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "shipper", "ingest", &[]);
    let client = add_user(&archive, "acme-reader", "client", &["acme"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1", "--pg", "127.0.0.1:0"]);
    let lines = "{\"ts\":\"2026-03-01T10:00:00Z\",\"tenant\":\"acme\",\"family\":\"access\",\"action\":\"login\"}\n\
                 {\"ts\":\"2026-03-01T10:00:00Z\",\"tenant\":\"globex\",\"family\":\"access\",\"action\":\"login\"}\n";
    assert_eq!(
        server.post("/v1/events", &shipper, lines.as_bytes()).status,
        200
    );

    let startup: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(include_str!("clients/startup.json")).unwrap();
    for (tool, queries) in &startup {
        let mut args = Vec::new();
        for query in queries.as_array().unwrap() {
            args.extend(["-c", query.as_str().unwrap()]);
        }
        // One connection, as the tool opens it; psql stops at the first error.
        let out = psql(&server, "acme-reader", &client, &args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{tool}: {stderr}");
        assert!(!stdout.contains("globex"), "{tool}: {stdout}");
    }
    // psql's own listings.
    let listings = [
        "\\d",
        "\\dt",
        "\\dv",
        "\\dn",
        "\\d access",
        "\\l",
        "\\d+",
        "\\dt+",
        "\\dv+",
        "\\d+ access",
        "\\d+ events",
        "\\df",
        "\\l+",
    ];
    for command in listings {
        let out = psql(&server, "acme-reader", &client, &["-c", command]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command}: {stderr}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("globex"),
            "{command}"
        );
    }
    assert!(server.terminate().success());
}

#[test]
fn fifty_concurrent_psql_sessions_answer_and_a_timed_out_one_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "shipper", "ingest", &[]);
    let auditor = add_user(&archive, "auditor", "auditor", &[]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1", "--pg", "127.0.0.1:0"]);
    let lines: String = (0..200)
        .map(|i| {
            format!(
                "{{\"ts\":\"2026-03-01T10:00:00Z\",\"tenant\":\"t{}\",\"family\":\"access\",\"action\":\"login\",\"bytes\":{i}}}\n",
                i % 3
            )
        })
        .collect();
    assert_eq!(
        server.post("/v1/events", &shipper, lines.as_bytes()).status,
        200
    );

    // More sessions than the principal's slots (4): they wait their turn.
    let sql = "SELECT count(*), sum(bytes) FROM events WHERE action = 'login'";
    let answers: Vec<Vec<String>> = std::thread::scope(|scope| {
        let sessions: Vec<_> = (0..50)
            .map(|_| scope.spawn(|| psql_rows(&server, "auditor", &auditor, sql)))
            .collect();
        // Meanwhile one session's statement runs past its own timeout.
        let out = psql(
            &server,
            "auditor",
            &auditor,
            &[
                "-c",
                "SET statement_timeout = 1",
                "-c",
                "SELECT count(*) FROM generate_series(1, 2000000000)",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("statement timeout"), "{stderr}");
        sessions.into_iter().map(|s| s.join().unwrap()).collect()
    });
    for answer in &answers {
        assert_eq!(answer, &["200,19900"]);
    }
    assert!(server.terminate().success());
}
