//! Acceptance 3: bad lines are rejected with line number and reason, the good
//! lines of the same input are committed, and the exit status is non-zero.

mod common;

use common::*;

#[test]
fn bad_lines_are_rejected_and_good_lines_committed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.ndjson");
    let good = |i: u32| {
        format!(
            r#"{{"ts":"2025-05-0{}T10:00:00Z","tenant":"acme","family":"access","action":"login","event_id":"g{i}"}}"#,
            i % 9 + 1
        )
    };
    let lines = [
        good(1),
        r#"{"ts":"2025-02-30T10:00:00Z","tenant":"acme","family":"access","action":"login"}"#.to_string(),
        good(2),
        r#"{"ts":"2025-05-01T10:00:00Z","tenant":"acme","family":"billing","action":"login"}"#.to_string(),
        r#"{"ts":"2025-05-01T10:00:00Z","tenant":"acme","family":"access","action":"x","bytes":-1}"#.to_string(),
        String::new(),
        r#"{"ts":"2025-05-01T10:00:00Z","tenant":"ACME","family":"access","action":"x"}"#.to_string(),
        r#"{"ts":"2025-05-01T10:00:00Z","tenant":"acme","family":"access","action":"x","src_ip":"300.1.1.1"}"#.to_string(),
        r#"{"tenant":"acme","family":"access","action":"x"}"#.to_string(),
        r#"{"ts":"2025-05-01T10:00:00Z","tenant":"acme","fam"#.to_string(),
        r#"["not", "an", "object"]"#.to_string(),
        good(3),
    ];
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let archive = dir.path().join("archive");
    let rejects = dir.path().join("rejects.ndjson");
    let out = run_expect(
        strata(&archive)
            .arg("ingest")
            .arg("--rejects")
            .arg(&rejects)
            .arg(&input),
        3,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);

    let expected = [
        (2, "field `ts`"),
        (4, "field `family`"),
        (5, "field `bytes`"),
        (7, "field `tenant`"),
        (8, "field `src_ip`"),
        (9, "missing required field `ts`"),
        (10, "truncated JSON"),
        (11, "expected a JSON object"),
    ];
    for (line, reason) in expected {
        let prefix = format!("rejected {}:{line}: ", input.display());
        let shown = stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{stderr}"));
        assert!(shown.contains(reason), "{shown} should mention {reason}");
    }
    assert!(
        stderr.contains("ingested 3 events, rejected 8 lines"),
        "{stderr}"
    );

    let records: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let numbers: Vec<u64> = records
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, expected.map(|(l, _)| l));
    assert_eq!(records[1]["text"], lines[3]);

    let ids = query(&archive, "SELECT event_id FROM events ORDER BY event_id");
    let ids: Vec<&str> = ids
        .iter()
        .map(|r| r["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["g1", "g2", "g3"]);

    // The same input again is recognised as already ingested: nothing doubles.
    let again = run_expect(strata(&archive).arg("ingest").arg(&input), 0);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already ingested"));
    assert_eq!(count(&archive, "SELECT count(*) AS n FROM events"), 3);
}

#[test]
fn unreadable_inputs_and_empty_archives_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let out = run_expect(
        strata(&archive).args(["ingest", "/nonexistent/file.ndjson"]),
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.ndjson"));
    let out = run_expect(strata(&archive).args(["sql", "SELECT 1"]), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing has been committed"));
    let missing = dir.path().join("typo");
    let out = run_expect(strata(&missing).arg("status"), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no archive at"));
    assert!(
        !missing.exists(),
        "reading commands never create the archive folder"
    );
    let out = run_expect(
        strata(&archive).args(["--archive", "ftp://x/y", "status"]),
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("ftp://x/y"));
}

#[test]
fn bad_sql_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("e.ndjson");
    generate(&input, &["--events", "100", "--days", "3"]);
    let archive = dir.path().join("archive");
    run_ok(strata(&archive).arg("ingest").arg(&input));
    let out = run_expect(
        strata(&archive).args(["sql", "SELECT nosuchcolumn FROM events"]),
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuchcolumn"));
}
