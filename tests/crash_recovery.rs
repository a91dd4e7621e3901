//! Acceptance 4: `kill -9` during ingest, then the same ingest again, stores
//! every line exactly once, and the archive is queryable in between.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn commits(archive: &Path) -> usize {
    // Only finished entries: a local-folder put writes `<entry>.json#N` first
    // and renames it, so counting every name could kill before the commit.
    std::fs::read_dir(archive.join("_strata/log")).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count()
    })
}

/// Starts the ingest and SIGKILLs it once `more` commits beyond the current
/// ones exist. Returns false if it finished first.
fn ingest_and_kill_after(archive: &Path, input: &Path, more: usize) -> bool {
    let target = commits(archive) + more;
    let mut child = strata(archive)
        .args(["ingest", "--quiet", "--chunk-mib", "2"])
        .arg(input)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if commits(archive) >= target {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        assert!(Instant::now() < deadline, "ingest made no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn kill_9_during_ingest_then_rerun_keeps_every_line_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.ndjson");
    let events = 120_000u64;
    generate(
        &input,
        &[
            "--events",
            &events.to_string(),
            "--tenants",
            "6",
            "--days",
            "90",
            "--order",
            "shuffled",
        ],
    );
    let archive = dir.path().join("archive");

    let mut kills = 0;
    for more in [1, 3, 4] {
        if !ingest_and_kill_after(&archive, &input, more) {
            break;
        }
        kills += 1;
        // Between runs the archive is consistent: the rows committed so far, each once.
        let rows = count(&archive, "SELECT count(*) AS n FROM events");
        let distinct = count(&archive, "SELECT count(DISTINCT event_id) AS n FROM events");
        assert!(rows > 0 && rows < events, "after kill {kills}: {rows} rows");
        assert_eq!(rows, distinct, "no duplicates after kill {kills}");
    }
    assert!(
        kills >= 2,
        "the ingest finished before it could be killed twice; make the input larger"
    );

    wait_for_leases();
    let out = run_expect(strata(&archive).arg("ingest").arg(&input), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("resumed after line"));
    assert_eq!(count(&archive, "SELECT count(*) AS n FROM events"), events);
    assert_eq!(
        count(&archive, "SELECT count(DISTINCT event_id) AS n FROM events"),
        events
    );

    // The rerun removed what the killed runs had uploaded but not committed,
    // so the archive verifies clean, every object accounted for.
    assert_no_strays(&archive);
}

/// Every Parquet object is catalogued, or replaced by a commit and
/// recorded for deletion once readers of older states are done, every
/// catalogued file is there, and `strata verify --deep` finds nothing.
fn assert_no_strays(archive: &Path) {
    let on_disk = data_files(archive);
    let rows = query(archive, "SELECT path FROM strata_files");
    let catalogued: BTreeSet<String> = (rows.iter())
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    let replaced = awaiting_deletion(archive);
    let strays: Vec<_> = on_disk
        .difference(&catalogued)
        .filter(|p| !replaced.contains(*p))
        .collect();
    assert!(
        strays.is_empty(),
        "parquet objects neither catalogued nor replaced: {strays:?}"
    );
    let missing: Vec<_> = catalogued.difference(&on_disk).collect();
    assert!(missing.is_empty(), "catalogued files missing: {missing:?}");
    let report = run_ok(strata(archive).args(["verify", "--deep"]));
    assert!(report.contains("result:     intact"), "{report}");
    // A kill during a record's write can leave the local store's staging
    // file (`<id>.json#<n>`), which no listing or read ever sees.
    let records: Vec<_> = std::fs::read_dir(archive.join("_strata/writers"))
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.contains('#'))
        .collect();
    assert!(records.is_empty(), "writer records left: {records:?}");
}

#[test]
fn kill_9_during_compaction_never_loses_or_doubles_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    let events = 60_000u64;
    generate(
        &input,
        &[
            "--events",
            &events.to_string(),
            "--tenants",
            "4",
            "--days",
            "60",
        ],
    );
    let archive = dir.path().join("archive");
    // Many small files per partition, left for compaction.
    run_ok(
        strata(&archive)
            .args(["ingest", "--quiet", "--no-compact", "--chunk-mib", "1"])
            .arg(&input),
    );
    let files_before = count(&archive, "SELECT count(*) AS n FROM strata_files");
    for delay_ms in [30, 120, 400] {
        let mut child = strata(&archive)
            .arg("compact")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL, or nothing if it already finished
        child.wait().unwrap();
        assert_eq!(
            count(&archive, "SELECT count(*) AS n FROM events"),
            events,
            "after a kill at {delay_ms} ms"
        );
        assert_eq!(
            count(&archive, "SELECT count(DISTINCT event_id) AS n FROM events"),
            events
        );
    }
    wait_for_leases();
    run_ok(strata(&archive).arg("compact"));
    let (files_after, partitions) = files_and_partitions(&archive);
    assert_eq!(
        files_after, partitions,
        "compaction finishes: one file per partition"
    );
    assert!(
        files_before > files_after,
        "{files_before} files before, {files_after} after"
    );
    assert_eq!(
        count(&archive, "SELECT count(DISTINCT event_id) AS n FROM events"),
        events
    );
    assert_no_strays(&archive);
}

#[test]
fn concurrent_ingests_and_a_compaction_all_succeed_and_keep_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let inputs: Vec<_> = (1..=4)
        .map(|seed| {
            let input = dir.path().join(format!("events-{seed}.ndjson"));
            generate(
                &input,
                &[
                    "--events",
                    "8000",
                    "--tenants",
                    "3",
                    "--days",
                    "60",
                    "--seed",
                    &seed.to_string(),
                ],
            );
            input
        })
        .collect();
    // Small files for the compaction to merge while the others ingest.
    run_ok(
        strata(&archive)
            .args(["ingest", "--quiet", "--no-compact", "--chunk-mib", "1"])
            .arg(&inputs[0]),
    );
    let mut children: Vec<_> = inputs[1..]
        .iter()
        .map(|input| {
            strata(&archive)
                .args(["ingest", "--quiet", "--chunk-mib", "1"])
                .arg(input)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children.push(
        strata(&archive)
            .arg("compact")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "every concurrent command succeeds:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(count(&archive, "SELECT count(*) AS n FROM events"), 32_000);
    assert_eq!(
        count(&archive, "SELECT count(DISTINCT event_id) AS n FROM events"),
        32_000
    );
    assert_no_strays(&archive);
}
