//! `strata sql` as users drive it: output formats, pruning statistics, the
//! interactive shell, and the rule that only committed files are read.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

/// An archive of 3,000 events over 90 days, made once per test.
fn archive(dir: &Path) -> PathBuf {
    let input = dir.join("events.ndjson");
    generate(
        &input,
        &[
            "--events",
            "3000",
            "--tenants",
            "3",
            "--days",
            "90",
            "--seed",
            "5",
        ],
    );
    let archive = dir.join("archive");
    run_ok(strata(&archive).arg("ingest").arg(&input));
    archive
}

#[test]
fn every_output_format_carries_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    let sql = "SELECT tenant, family, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2";
    let ndjson = query(&archive, sql);
    assert_eq!(ndjson.len(), 9);
    let total: u64 = ndjson.iter().map(|r| r["n"].as_u64().unwrap()).sum();
    assert_eq!(total, 3000);

    let csv = run_ok(strata(&archive).args(["sql", "--format", "csv", sql]));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("tenant,family,n"));
    let first = &ndjson[0];
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "{},{},{}",
            first["tenant"].as_str().unwrap(),
            first["family"].as_str().unwrap(),
            first["n"]
        )
    );

    let json: serde_json::Value = serde_json::from_str(&run_ok(
        strata(&archive).args(["sql", "--format", "json", sql]),
    ))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 9);
    assert_eq!(json[0], serde_json::Value::Object(first.clone()));

    let table = run_ok(strata(&archive).args(["sql", sql]));
    assert!(
        table.contains("| tenant") && table.contains(first["tenant"].as_str().unwrap()),
        "{table}"
    );

    let parquet = dir.path().join("out.parquet");
    run_ok(
        strata(&archive)
            .args(["sql", "--format", "parquet", "--output"])
            .arg(&parquet)
            .arg(sql),
    );
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&parquet).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 9);

    // CSV has no maps: attrs is written as text.
    let attrs = run_ok(strata(&archive).args([
        "sql",
        "--format",
        "csv",
        "SELECT attrs FROM events WHERE attrs IS NOT NULL LIMIT 1",
    ]));
    assert!(
        attrs.lines().nth(1).is_some_and(|l| l.contains(':')),
        "{attrs}"
    );

    let err = run_expect(
        strata(&archive).args(["sql", "--format", "parquet", sql]),
        1,
    );
    assert!(String::from_utf8_lossy(&err.stderr).contains("--output"));
}

#[test]
fn stats_show_catalog_pruning_and_bytes_read() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    let files = count(&archive, "SELECT count(*) AS n FROM strata_files");
    assert!(
        files >= 9 * 3,
        "3 tenants x 3 families x 3 months: {files} files"
    );
    let out = run_expect(
        strata(&archive).args([
            "sql",
            "--stats",
            "SELECT count(*) FROM access WHERE tenant = 'acme-health' AND ts >= '2025-02-01' AND ts < '2025-03-01'",
        ]),
        0,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "files: 1 scanned of {files} in the catalog ({} pruned)",
            files - 1
        )),
        "{stderr}"
    );
    assert!(stderr.contains("read from storage"), "{stderr}");

    let everything = run_expect(
        strata(&archive).args(["sql", "--stats", "SELECT count(*) FROM events"]),
        0,
    );
    assert!(
        String::from_utf8_lossy(&everything.stderr)
            .contains(&format!("files: {files} scanned of {files}"))
    );
}

#[test]
fn stray_objects_in_partitions_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    let before = count(&archive, "SELECT count(*) AS n FROM events");
    // A copy of a committed file, and a half-uploaded one, dropped next to it.
    let committed = files_under(&archive)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::copy(
        &committed,
        committed.with_file_name("part-stray-copy.parquet"),
    )
    .unwrap();
    std::fs::write(
        committed.with_file_name("part-half-uploaded.parquet"),
        b"PAR1 truncated",
    )
    .unwrap();
    assert_eq!(count(&archive, "SELECT count(*) AS n FROM events"), before);
}

#[test]
fn interactive_shell_runs_multi_line_statements_and_describes_tables() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    let mut child = strata(&archive)
        .arg("sql")
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\\d\n\\d events\nSELECT family,\n  count(*) AS n\nFROM events GROUP BY family ORDER BY family;\nSELECT nosuch FROM events;\n\\q\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for table in [
        "events",
        "access",
        "data_usage",
        "technical",
        "strata_files",
    ] {
        assert!(stdout.contains(table), "\\d lacks {table}:\n{stdout}");
    }
    assert!(
        stdout.contains("ingested_at") && stdout.contains("Map"),
        "\\d events:\n{stdout}"
    );
    assert!(
        stdout.contains("| access") && stdout.contains("| technical"),
        "{stdout}"
    );
    assert!(
        stderr.contains("nosuch"),
        "errors are reported and the shell goes on:\n{stderr}"
    );
}
