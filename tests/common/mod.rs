//! Helpers shared by the end-to-end tests: running the `strata` binary, and
//! DuckDB (through the Python package that `scripts/test.sh` installs).

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The keyring of the archive at `archive`, kept out of the home folder:
/// `keyring.json` beside it (each test's temporary folder has its own), or
/// one per test binary for archives that are not local folders.
pub fn keyring(archive: &Path) -> PathBuf {
    match archive.parent() {
        Some(dir) if dir.is_dir() => dir.join("keyring.json"),
        _ => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(concat!(env!("CARGO_CRATE_NAME"), "-keyring.json")),
    }
}

/// Writer leases in tests, in seconds: short, so that a rerun after a
/// `kill -9` can clean up without waiting the default two minutes.
pub const LEASE_SECS: u64 = 3;

/// Waits until the lease of every writer killed so far has run out.
pub fn wait_for_leases() {
    std::thread::sleep(std::time::Duration::from_millis(LEASE_SECS * 1000 + 300));
}

/// A `strata` command on the archive at `archive`.
pub fn strata(archive: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.env("STRATA_ARCHIVE", archive)
        .env("STRATA_WRITER_LEASE_SECS", LEASE_SECS.to_string())
        .env("STRATA_KEYRING", keyring(archive))
        .env_remove("STRATA_WITNESS")
        .env_remove("STRATA_KEEP_REPLACED_SECS")
        .env("STRATA_ACTOR", "test")
        .env_remove("STRATA_LOG");
    cmd
}

/// Adds principal `name` of `role` (over `tenants`) and returns its token.
pub fn add_user(archive: &Path, name: &str, role: &str, tenants: &[&str]) -> String {
    let mut cmd = strata(archive);
    cmd.args(["users", "add", name, "--role", role]);
    for tenant in tenants {
        cmd.args(["--tenant", tenant]);
    }
    run_ok(&mut cmd).lines().last().unwrap().to_string()
}

/// Credentials of the in-process S3 server of the tests.
pub const S3_KEY: &str = "strata-test-key";
/// Its secret.
pub const S3_SECRET: &str = "strata-test-secret";

/// A `strata` command on the archive `url` (`s3://bucket/prefix`) of the
/// test S3 server listening on `addr`.
pub fn on_s3(url: &str, addr: std::net::SocketAddr) -> Command {
    let mut cmd = strata(Path::new(url));
    cmd.env("AWS_ENDPOINT_URL", format!("http://{addr}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", S3_KEY)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
    cmd
}

/// Runs `cmd`, panicking with its output unless it exits with `code`.
pub fn run_expect(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().expect("strata runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd`, panicking with its output unless it succeeds; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    String::from_utf8(run_expect(cmd, 0).stdout).expect("utf-8 output")
}

/// Generates events with `strata gen` into `path`.
pub fn generate(path: &Path, args: &[&str]) {
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("gen")
            .args(args)
            .arg("--output")
            .arg(path),
    );
}

/// Runs a query and returns its rows as JSON objects (ndjson output).
pub fn query(archive: &Path, sql: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let out = run_ok(strata(archive).args(["sql", "--format", "ndjson", sql]));
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// A single integer from a query like `SELECT count(*) AS n ...`.
pub fn count(archive: &Path, sql: &str) -> u64 {
    let rows = query(archive, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0]
        .values()
        .next()
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("{sql}: {rows:?}"))
}

/// Catalogued files and distinct (tenant, family, month) partitions of the archive.
pub fn files_and_partitions(archive: &Path) -> (u64, u64) {
    let files = count(archive, "SELECT count(*) AS n FROM strata_files");
    let partitions = count(
        archive,
        "SELECT count(*) AS n FROM (SELECT DISTINCT tenant, family, month FROM strata_files)",
    );
    (files, partitions)
}

/// The Python interpreter with the `duckdb`, `pyarrow` and `cryptography`
/// packages: `STRATA_TEST_PYTHON` (set by `scripts/test.sh`), else
/// `.venv/bin/python` in the checkout.
pub fn python() -> PathBuf {
    let python = std::env::var_os("STRATA_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let ok = Command::new(&python)
        .args([
            "-c",
            "import duckdb, pyarrow, cryptography, elasticsearch, opentelemetry.exporter.otlp.proto.http, prometheus_client, psycopg, sqlalchemy",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "Python with duckdb, pyarrow, cryptography, elasticsearch, the OpenTelemetry OTLP/HTTP \
         exporter, prometheus_client, psycopg and SQLAlchemy is needed by this test and was not found at {}: run `scripts/test.sh`, which \
         installs them into .venv, or set STRATA_TEST_PYTHON",
        python.display()
    );
    python
}

/// Runs `sql` in DuckDB (UTC time zone) and returns its rows as JSON arrays.
pub fn duckdb(sql: &str) -> Vec<Vec<serde_json::Value>> {
    const SCRIPT: &str = r#"
import duckdb, json, sys, decimal
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
def plain(v):
    if isinstance(v, decimal.Decimal):
        return float(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)
for row in con.execute(sys.stdin.read()).fetchall():
    print(json.dumps([plain(v) for v in row]))
"#;
    json_lines(SCRIPT, sql.as_bytes(), &format!("DuckDB failed on\n{sql}"))
}

/// Runs `setup` in DuckDB (UTC time zone), then each of `queries`, and
/// returns each query's first row as JSON.
pub fn duckdb_each(setup: &str, queries: &[String]) -> Vec<Vec<serde_json::Value>> {
    const SCRIPT: &str = r#"
import duckdb, json, sys
job = json.load(sys.stdin)
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute(job["setup"])
for query in job["queries"]:
    print(json.dumps(list(con.execute(query).fetchone())))
"#;
    let job = serde_json::json!({ "setup": setup, "queries": queries }).to_string();
    json_lines(SCRIPT, job.as_bytes(), "DuckDB failed")
}

/// Runs the Python `script` with `input` on its standard input and returns
/// each line it prints, parsed as a JSON array; panics with `what` and its stderr if
/// it fails.
fn json_lines(script: &str, input: &[u8], what: &str) -> Vec<Vec<serde_json::Value>> {
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Lists every file below `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path)
            } else {
                out.push(path)
            }
        }
    }
    out.sort();
    out
}

/// The Parquet data files under `dir` (an archive or a cold store), as paths
/// relative to it; the Delta log's checkpoints are not data files.
pub fn data_files(dir: &Path) -> BTreeSet<String> {
    (strata_faults::data_files(dir).into_iter())
        .filter(|p| !p.starts_with("_delta_log"))
        .collect()
}

/// The data files that commits replaced and that wait, named in
/// `_strata/replaced/` records, until readers of older states are done.
pub fn awaiting_deletion(archive: &Path) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for record in files_under(&archive.join("_strata/replaced")) {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
        for object in record["objects"].as_array().unwrap() {
            paths.insert(object["path"].as_str().unwrap().to_string());
        }
    }
    paths
}

/// Events whose attributes are frequent (shredded into columns), rare (kept
/// in the map), dotted, upper-case or top-level unknown keys, with values
/// that need escaping, and large counts on some; returns every
/// (event_id, key, value) written.
pub fn attribute_events(path: &Path, events: usize) -> BTreeSet<(String, String, String)> {
    let mut expected = BTreeSet::new();
    let mut lines = String::new();
    for i in 0..events {
        let mut attrs = serde_json::Map::new();
        let mut add = |key: &str, value: String| {
            attrs.insert(key.to_string(), serde_json::Value::from(value));
        };
        if i % 10 != 0 {
            add("channel", ["sms", "voice", "chat"][i % 3].to_string());
        }
        if i % 5 < 3 {
            add("http.method", ["GET", "POST"][i % 2].to_string());
        }
        if i % 17 == 0 {
            add("geo_city", format!("city \"{}\" é", i % 7));
        }
        if i % 2 == 0 {
            add("Case", format!("c{}", i % 4));
        }
        let event_id = format!("e{i:06}");
        for (k, v) in &attrs {
            expected.insert((event_id.clone(), k.clone(), v.as_str().unwrap().to_string()));
        }
        let tenant = ["acme-health", "globex-bank"][i % 2];
        let mut line = serde_json::json!({
            "ts": 1_735_689_600_000u64 + (i as u64 % 5_000) * 1_000_000 + i as u64,
            "tenant": tenant,
            "family": "access",
            "action": "login",
            "event_id": event_id,
            "attrs": attrs,
        });
        if i % 3 == 0 {
            // Counts up to 2^43: more than 32 bits, as a Spark `bigint` must hold.
            line["bytes"] = serde_json::Value::from((i as u64) << 30);
            line["records"] = serde_json::Value::from(i as u64);
        }
        if i % 5 < 2 {
            line["shift"] = serde_json::Value::from(["day", "night"][i % 2]);
            expected.insert((event_id, "shift".into(), ["day", "night"][i % 2].into()));
        }
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    std::fs::write(path, lines).unwrap();
    expected
}
