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

    let records: Vec<serde_json::Value> = read_rejects(&rejects);
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

/// An access event with `event_id` `g{i}`.
fn good_line(i: u32) -> String {
    format!(
        r#"{{"ts":"2025-06-0{}T10:00:00Z","tenant":"acme","family":"access","action":"login","event_id":"g{i}"}}"#,
        i % 9 + 1
    )
}

/// The `rejected <input>:<line>: <reason>` line of `stderr` for `line`.
fn shown_reject<'a>(stderr: &'a str, input: &std::path::Path, line: u64) -> &'a str {
    let prefix = format!("rejected {}:{line}: ", input.display());
    stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{stderr}"))
}

#[test]
fn a_line_over_the_maximum_length_is_rejected_by_number_and_its_neighbours_committed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long-line.ndjson");
    // Line 4 is a valid event of 3 MiB, without a newline anywhere in it.
    let long = format!(
        r#"{{"ts":"2025-06-01T10:00:00Z","tenant":"acme","family":"access","action":"login","event_id":"long","message":"{}"}}"#,
        "m".repeat(3 << 20)
    );
    let lines: Vec<String> = (1..=3)
        .map(good_line)
        .chain([long.clone()])
        .chain((4..=6).map(good_line))
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();

    for (flags, max) in [
        (&[][..], "1024 KiB"),
        (&["--max-line-kib", "2048"][..], "2048 KiB"),
    ] {
        let archive = dir.path().join(format!("archive-{max}"));
        let rejects = dir.path().join(format!("rejects-{max}.ndjson"));
        let out = run_expect(
            strata(&archive)
                .arg("ingest")
                .args(flags)
                .arg("--rejects")
                .arg(&rejects)
                .arg(&input),
            3,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let shown = shown_reject(&stderr, &input, 4);
        assert!(
            shown.ends_with(&format!(
                "line is longer than the maximum of {max} (--max-line-kib)"
            )),
            "{shown}"
        );
        assert!(
            stderr.contains("ingested 6 events, rejected 1 lines"),
            "{stderr}"
        );
        let records: Vec<serde_json::Value> = read_rejects(&rejects);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["line"], 4);
        let text = records[0]["text"].as_str().unwrap();
        assert_eq!(text, &long[..256], "only the line's start is kept");
        let ids = query(&archive, "SELECT event_id FROM events ORDER BY event_id");
        let ids: Vec<&str> = ids
            .iter()
            .map(|r| r["event_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["g1", "g2", "g3", "g4", "g5", "g6"]);
    }

    // A maximum above the line's length takes it like any other.
    let archive = dir.path().join("archive-4096");
    run_ok(
        strata(&archive)
            .args(["ingest", "--max-line-kib", "4096"])
            .arg(&input),
    );
    assert_eq!(
        count(
            &archive,
            "SELECT length(message) AS n FROM events WHERE event_id = 'long'"
        ),
        3 << 20
    );
    // A maximum the memory budget cannot hold is refused before reading.
    let out = run_expect(
        strata(&archive)
            .args(["ingest", "--memory-mib", "64", "--max-line-kib", "4096"])
            .arg(&input),
        1,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at most 2048 KiB"), "{stderr}");
}

#[test]
fn a_gzip_bomb_of_one_endless_line_is_rejected_within_the_memory_budget() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bomb.ndjson.gz");
    // 200 MiB of `x` between two good lines, compressed to about 200 kB.
    let mut gz = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(std::fs::File::create(&input).unwrap()),
        flate2::Compression::default(),
    );
    writeln!(gz, "{}", good_line(1)).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..200 {
        gz.write_all(&chunk).unwrap();
    }
    writeln!(gz, "\n{}", good_line(2)).unwrap();
    gz.finish().unwrap().flush().unwrap();
    assert!(std::fs::metadata(&input).unwrap().len() < 1 << 20);

    let archive = dir.path().join("archive");
    let out = run_expect(
        strata(&archive)
            .args(["ingest", "--memory-mib", "64"])
            .arg(&input),
        3,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = shown_reject(&stderr, &input, 2);
    assert!(shown.contains("longer than the maximum"), "{shown}");
    assert!(
        stderr.contains("ingested 2 events, rejected 1 lines"),
        "{stderr}"
    );
    assert_eq!(count(&archive, "SELECT count(*) AS n FROM events"), 2);
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

/// The records of a `--rejects` file.
fn read_rejects(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
