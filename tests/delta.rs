//! The archive as a Delta Lake table: readers no strata code wrote (the
//! `deltalake` package, Polars, DuckDB's delta extension; `tests/delta_readers.py`)
//! read what strata answers, through ingest, compaction, tiering, expiry
//! marking and sweeping, an encrypted tenant and a writer stopped between
//! its commit and its publication; time travel to a version reads the
//! catalog as it was then.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// Rows of one partition: (tenant, family, month) → (events, sum of bytes).
type Table = BTreeMap<(String, String, String), (u64, i64)>;

/// The encrypted tenant: readers without strata's keys cannot read it.
const ENCRYPTED: &str = "globex-bank";
/// The tiered tenant: its cold files are published at their absolute URL,
/// which the `deltalake` package, Polars and DuckDB's extension do not follow.
const TIERED: &str = "acme-health";
/// The tenant whose old months expire.
const EXPIRING: &str = "initech-telecom";

/// Python with the Delta readers: `STRATA_TEST_DELTA_PYTHON` (set by
/// `scripts/test.sh`), else `.venv-delta/bin/python` in the checkout.
fn delta_python() -> PathBuf {
    let python = std::env::var_os("STRATA_TEST_DELTA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-delta/bin/python"));
    let ok = Command::new(&python)
        .args([
            "-c",
            "import deltalake, polars, duckdb, duckdb_extension_delta",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "Python with deltalake, polars, duckdb and duckdb-extension-delta is needed by this test \
         and was not found at {}: run `scripts/test.sh`, which installs them into .venv-delta, \
         or set STRATA_TEST_DELTA_PYTHON",
        python.display()
    );
    python
}

/// Each reader's answer at each of `versions`: reader → version → table, or
/// the reader's error.
fn readers(
    archive: &Path,
    conditions: &[[&str; 3]],
    versions: &[u64],
) -> BTreeMap<String, BTreeMap<u64, Result<Table, String>>> {
    let mut args: Vec<String> = Vec::new();
    for condition in conditions {
        args.push("--where".into());
        args.extend(condition.map(String::from));
    }
    args.extend(versions.iter().map(u64::to_string));
    let answers: BTreeMap<String, BTreeMap<String, Value>> =
        serde_json::from_value(run_readers(archive, &args)).unwrap();
    let table = |answer: Value| match answer {
        Value::Array(rows) => Ok(rows
            .into_iter()
            .map(|row| {
                let text = |i: usize| row[i].as_str().unwrap().to_string();
                let key = (text(0), text(1), text(2));
                (key, (row[3].as_u64().unwrap(), row[4].as_i64().unwrap()))
            })
            .collect()),
        other => Err(other["error"].as_str().unwrap_or_default().to_string()),
    };
    (answers.into_iter())
        .map(|(reader, by_version)| {
            let by_version = (by_version.into_iter())
                .map(|(v, answer)| (v.parse().unwrap(), table(answer)))
                .collect();
            (reader, by_version)
        })
        .collect()
}

/// Runs `tests/delta_readers.py` on `archive` with `args`.
fn run_readers(archive: &Path, args: &[String]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/delta_readers.py");
    let out = Command::new(delta_python())
        .arg(script)
        .arg(archive)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the Delta readers failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The paths the `deltalake` package lists in the table at `version`.
fn delta_paths(archive: &Path, version: u64) -> BTreeSet<String> {
    let paths = run_readers(archive, &["--adds".to_string(), version.to_string()]);
    serde_json::from_value(paths).unwrap()
}

/// Strata's answer now, over every tenant but the `excluded` ones.
fn strata_answer(archive: &Path, excluded: &[&str]) -> Table {
    // '' is no tenant: the list is never empty.
    let excluded: Vec<String> = [""]
        .iter()
        .chain(excluded)
        .map(|t| format!("'{t}'"))
        .collect();
    let rows = query(
        archive,
        &format!(
            "SELECT tenant, family, to_char(ts, '%Y-%m') AS month, count(*) AS n,
                    coalesce(sum(bytes), 0) AS b
             FROM events WHERE tenant NOT IN ({}) GROUP BY 1, 2, 3",
            excluded.join(", ")
        ),
    );
    (rows.iter())
        .map(|row| {
            let text = |k: &str| row[k].as_str().unwrap().to_string();
            let key = (text("tenant"), text("family"), text("month"));
            (
                key,
                (row["n"].as_u64().unwrap(), row["b"].as_i64().unwrap()),
            )
        })
        .collect()
}

/// The catalog's newest entry.
fn head(archive: &Path) -> u64 {
    let log = std::fs::read_dir(archive.join("_strata/log")).unwrap();
    log.count() as u64
}

/// The files visible at catalog entry `seq`, replayed from the log by the
/// test itself (the files each entry adds and removes, hidden while their
/// partition is marked for expiry): path in the table → (partition, events).
fn catalog_files(archive: &Path, seq: u64) -> BTreeMap<String, ((String, String, String), u64)> {
    let mut files = BTreeMap::new();
    let mut marked = BTreeSet::new();
    let key = |v: &Value| {
        let text = |k: &str| v[k].as_str().unwrap().to_string();
        (text("tenant"), text("family"), text("month"))
    };
    let table_path = |file: &Value| match file["location"].as_str() {
        Some(cold) => format!("file://{cold}/{}", file["path"].as_str().unwrap()),
        None => file["path"].as_str().unwrap().to_string(),
    };
    for n in 1..=seq {
        let path = archive.join(format!("_strata/log/{n:020}.json"));
        let entry: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for file in entry["remove"].as_array().unwrap() {
            files.remove(&table_path(file));
        }
        for file in entry["add"].as_array().unwrap() {
            let rows = file["rows"].as_u64().unwrap();
            files.insert(table_path(file), (key(file), rows));
        }
        for change in entry["changes"].as_array().into_iter().flatten() {
            match change["change"].as_str().unwrap() {
                "expiry_marked" => {
                    marked.insert(key(&change["mark"]["partition"]));
                }
                "expiry_cancelled" | "expiry_swept" => {
                    marked.remove(&key(&change["partition"]));
                }
                _ => {}
            }
        }
    }
    files.retain(|_, (partition, _)| !marked.contains(partition));
    files
}

/// Events per partition at catalog entry `seq`, over every tenant but the
/// `excluded` ones.
fn catalog_rows(
    archive: &Path,
    seq: u64,
    excluded: &[&str],
) -> BTreeMap<(String, String, String), u64> {
    let mut rows = BTreeMap::new();
    for (partition, n) in catalog_files(archive, seq).into_values() {
        if !excluded.contains(&partition.0.as_str()) {
            *rows.entry(partition).or_default() += n;
        }
    }
    rows
}

/// Every reader reads the newest version as strata answers now, and each
/// of `versions` as the catalog was then, over every tenant but the
/// `excluded` ones; the `deltalake` package lists exactly the files the
/// catalog shows at the newest version.
fn assert_readers_agree(
    archive: &Path,
    versions: std::ops::Range<u64>,
    excluded: &[&str],
    step: &str,
) {
    let now = head(archive);
    let visible: BTreeSet<String> = catalog_files(archive, now).into_keys().collect();
    assert_eq!(
        delta_paths(archive, now),
        visible,
        "{step}: the files of version {now}"
    );
    let expected = strata_answer(archive, excluded);
    let conditions: Vec<[&str; 3]> = excluded.iter().map(|t| ["tenant", "!=", t]).collect();
    let answers = readers(archive, &conditions, &[now]);
    assert_eq!(answers.len(), 3, "{step}: three readers");
    for (reader, by_version) in &answers {
        let newest = by_version[&now].as_ref();
        assert_eq!(newest, Ok(&expected), "{step}: {reader} at version {now}");
    }
    assert_travel(archive, versions, excluded, step);
}

/// Every reader reads each of `versions` (time travel) as the catalog was
/// at that entry, over every tenant but the `excluded` ones.
fn assert_travel(archive: &Path, versions: std::ops::Range<u64>, excluded: &[&str], step: &str) {
    let asked: Vec<u64> = versions.collect();
    if asked.is_empty() {
        return;
    }
    let conditions: Vec<[&str; 3]> = excluded.iter().map(|t| ["tenant", "!=", t]).collect();
    for (reader, by_version) in readers(archive, &conditions, &asked) {
        for version in &asked {
            let counts: BTreeMap<_, u64> = (by_version[version].as_ref())
                .unwrap_or_else(|e| panic!("{step}: {reader} at version {version}: {e}"))
                .iter()
                .map(|(k, (n, _))| (k.clone(), *n))
                .collect();
            let catalog = catalog_rows(archive, *version, excluded);
            assert_eq!(counts, catalog, "{step}: {reader} at version {version}");
        }
    }
}

fn write_policy(dir: &Path) -> PathBuf {
    let policy = dir.join("policy.toml");
    let text = format!(
        r#"
grace = "7d"

[cold_stores]
cold = "{}"

[[rule]]
tenant = "*"
family = "*"
presets = ["pci-dss-4"]

[[rule]]
tenant = "{TIERED}"
family = "*"
presets = ["pci-dss-4"]
tier_after = "3mo"
tier_to = "cold"

[[rule]]
tenant = "{ENCRYPTED}"
family = "*"
presets = ["pci-dss-4"]
encrypt_after = "0d"

[[rule]]
tenant = "{EXPIRING}"
family = "*"
presets = ["gdpr"]
expire_after = "6mo"
"#,
        dir.join("cold").display()
    );
    std::fs::write(&policy, text).unwrap();
    policy
}

#[test]
fn delta_readers_read_what_strata_answers_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    let spec = ["--tenants", "3", "--days", "200", "--start", "2025-06-15"];
    generate(&input, &[&["--events", "3000"], &spec[..]].concat());
    let text = std::fs::read_to_string(&input).unwrap();
    let archive = dir.path().join("archive");
    // Each version is read by every reader right after the command that
    // made it, and the newest as strata answers then.
    let mut checked = 0;
    let check = |checked: &mut u64, excluded: &[&str], step: &str| {
        assert_readers_agree(&archive, *checked..head(&archive), excluded, step);
        *checked = head(&archive) + 1;
    };

    // Ingest in parts without compaction: each part is a commit.
    const PARTS: usize = 4;
    for part in 0..PARTS {
        let path = dir.path().join(format!("part-{part}.ndjson"));
        let lines: String = (text.lines().skip(part).step_by(PARTS))
            .map(|line| format!("{line}\n"))
            .collect();
        std::fs::write(&path, lines).unwrap();
        run_ok(
            strata(&archive)
                .args(["ingest", "--quiet", "--no-compact"])
                .arg(&path),
        );
    }
    let ingested = head(&archive);
    check(&mut checked, &[], "ingest");
    run_ok(strata(&archive).arg("compact"));
    check(&mut checked, &[], "compaction");

    let policy = write_policy(dir.path());
    run_ok(
        strata(&archive)
            .args(["retention", "policy", "set"])
            .arg(&policy)
            .args(["--reason", "t"]),
    );
    run_ok(strata(&archive).args(["retention", "run", "--quiet", "--now", "2026-01-15"]));
    let count = |sql: &str| query(&archive, sql)[0]["n"].as_u64().unwrap();
    let tiered = count("SELECT count(*) AS n FROM strata_files WHERE location IS NOT NULL");
    let marked = count("SELECT count(*) AS n FROM strata_audit WHERE action = 'expiry_marked'");
    assert!(
        tiered > 0 && marked > 0,
        "files were tiered ({tiered}) and marked ({marked})"
    );
    // Tiered files are published at the cold store's absolute URL
    // (file:///… here, listed by the `deltalake` package above), which these
    // readers join to the table root instead of following: the tiered
    // tenant is compared by its listing only.
    check(
        &mut checked,
        &[ENCRYPTED, TIERED],
        "encryption, tiering and marking",
    );
    // Files the run replaced stay for readers of older versions: the
    // ingest's versions still read as they did (the encrypted tenant's
    // plaintext is deleted at once, as erasure wants).
    assert_travel(&archive, 1..ingested + 1, &[ENCRYPTED], "travel back");

    // Readers without strata's keys fail on the encrypted tenant.
    let now = head(&archive);
    let encrypted = readers(&archive, &[["tenant", "=", ENCRYPTED]], &[now]);
    for (reader, by_version) in &encrypted {
        let answer = &by_version[&now];
        assert!(
            answer.is_err(),
            "{reader} read encrypted files without keys: {answer:?}"
        );
    }

    // A writer stopped between its commit and its publication: readers see
    // the version before; `strata publish` writes the missing one.
    let version = |n: u64| archive.join(format!("_delta_log/{n:020}.json"));
    std::fs::remove_file(version(now)).unwrap();
    let stale = readers(&archive, &[], &[now]);
    assert!(
        stale["deltalake"][&now].is_err(),
        "version {now} is not there yet"
    );
    run_ok(strata(&archive).arg("publish"));
    check(
        &mut checked,
        &[ENCRYPTED, TIERED],
        "publish after a stopped writer",
    );
    // The next writer catches up by itself.
    std::fs::remove_file(version(now)).unwrap();
    let late = dir.path().join("late.ndjson");
    std::fs::write(
        &late,
        format!("{{\"ts\":\"2025-12-30T10:00:00Z\",\"tenant\":\"{EXPIRING}\",\"family\":\"access\",\"action\":\"login\",\"bytes\":7}}\n"),
    )
    .unwrap();
    run_ok(strata(&archive).args(["ingest", "--quiet"]).arg(&late));
    checked = now;
    check(
        &mut checked,
        &[ENCRYPTED, TIERED],
        "the next writer after a stopped one",
    );

    // The sweep deletes the marked partitions, which readers stopped seeing
    // when they were marked.
    run_ok(strata(&archive).args(["retention", "run", "--quiet", "--now", "2026-01-23"]));
    check(&mut checked, &[ENCRYPTED, TIERED], "sweep");
    run_ok(strata(&archive).args(["verify", "--deep"]));
}

/// Issue 16 acceptance 4: Delta readers find every attribute, in the map or
/// in the shredded `attrs__<key>` columns the table's schema gained when the
/// first file shredding them was published.
#[test]
fn delta_readers_find_shredded_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("attrs.ndjson");
    let expected = attribute_events(&input, 4_000);
    let archive = dir.path().join("archive");
    run_ok(strata(&archive).args(["ingest", "--quiet"]).arg(&input));
    let answers = run_readers(
        &archive,
        &["--attrs".to_string(), head(&archive).to_string()],
    );
    let expected: Vec<[String; 3]> = expected.into_iter().map(|(e, k, v)| [e, k, v]).collect();
    for (reader, triples) in answers.as_object().unwrap() {
        let triples: Vec<[String; 3]> = serde_json::from_value(triples.clone())
            .unwrap_or_else(|_| panic!("{reader} failed: {triples}"));
        assert!(
            triples == expected,
            "{reader} finds other attributes than were ingested"
        );
    }
    // The values were read from shredded columns, declared by a metaData action.
    let log: String = (files_under(&archive.join("_delta_log")).iter())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        log.contains(r#"\"name\":\"attrs__channel\""#),
        "no shredded column in the schema"
    );
}
