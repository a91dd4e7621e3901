//! `strata verify` against hand-made tampering: each change to the stored
//! objects is reported with the right code and path, and an untouched archive
//! verifies clean.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;
use strata_integrity::{Checkpoint, SigningKey};

/// A sealed archive with a witness: one ingest in small chunks (several
/// commits, then compaction), then a second ingest without compaction.
struct Fixture {
    _dir: tempfile::TempDir,
    archive: PathBuf,
    witness: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let witness = dir.path().join("witness");
    // 1 MiB chunks: the first input (2.5 MB) takes several commits and a
    // compaction, the second (0.8 MB) one commit, so the newest entry adds files.
    for (seed, events, extra) in [("1", "6000", None), ("2", "2000", Some("--no-compact"))] {
        let input = dir.path().join(format!("events-{seed}.ndjson"));
        generate(
            &input,
            &[
                "--events",
                events,
                "--tenants",
                "3",
                "--days",
                "90",
                "--seed",
                seed,
            ],
        );
        run_ok(
            strata(&archive)
                .env("STRATA_WITNESS", &witness)
                .args(["ingest", "--chunk-mib", "1"])
                .args(extra)
                .arg(&input),
        );
    }
    Fixture {
        _dir: dir,
        archive,
        witness,
    }
}

/// A fresh copy of `src` in a new temporary folder, with its keyring.
fn copy_of(src: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("archive");
    strata_faults::copy_folder(src, &dst).unwrap();
    std::fs::copy(keyring(src), keyring(&dst)).unwrap();
    (dir, dst)
}

/// Runs `strata verify --deep --json` plus `args`; returns the exit status and report.
fn verify(archive: &Path, args: &[&str]) -> (i32, Value) {
    let out = strata(archive)
        .args(["verify", "--deep", "--json"])
        .args(args)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), report)
}

/// The (code, path, seq) of every finding.
fn findings(report: &Value) -> Vec<(String, String, Option<u64>)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
                f["seq"].as_u64(),
            )
        })
        .collect()
}

/// Asserts verification fails with exactly one finding, of `code` at `path`.
fn assert_single(archive: &Path, args: &[&str], code: &str, path: &str) -> Value {
    let (status, report) = verify(archive, args);
    assert_eq!(status, 2, "{report:#}");
    let found = findings(&report);
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        (code, path),
        "{report:#}"
    );
    report
}

/// Verifies `archive`, which must fail; returns the report and its `CHAIN_BROKEN` findings.
fn chain_findings(archive: &Path) -> (Value, Vec<(String, String, Option<u64>)>) {
    let (status, report) = verify(archive, &[]);
    assert_eq!(status, 2, "{report:#}");
    let chain = findings(&report)
        .into_iter()
        .filter(|f| f.0 == "CHAIN_BROKEN")
        .collect();
    (report, chain)
}

fn entry_name(seq: u64) -> String {
    format!("_strata/log/{seq:020}.json")
}

fn checkpoint_name(seq: u64) -> String {
    format!("_strata/checkpoints/{seq:020}.note")
}

fn entries(archive: &Path) -> u64 {
    std::fs::read_dir(archive.join("_strata/log"))
        .unwrap()
        .count() as u64
}

/// Paths of data files, relative to the archive.
fn data_files(archive: &Path) -> Vec<String> {
    // Files a commit replaced wait for deletion; they are not the archive's.
    let waiting = awaiting_deletion(archive);
    let on_disk = common::data_files(archive).into_iter();
    on_disk.filter(|p| !waiting.contains(p)).collect()
}

/// The data paths entry `seq` adds.
fn added_by(archive: &Path, seq: u64) -> Vec<String> {
    let entry: Value =
        serde_json::from_slice(&std::fs::read(archive.join(entry_name(seq))).unwrap()).unwrap();
    entry["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_untouched_archive_verifies_clean_against_its_witness() {
    let fixture = fixture();
    let n = entries(&fixture.archive);
    assert!(n >= 4, "the fixture makes several commits, got {n}");
    let trusted = fixture.witness.join("latest.note");
    let (status, report) = verify(&fixture.archive, &["--trusted", trusted.to_str().unwrap()]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(report["intact"], true);
    let summary = &report["summary"];
    assert_eq!(summary["entries"], n);
    assert_eq!(summary["signed_size"], n);
    assert_eq!(summary["checkpoints"], n);
    assert_eq!(summary["files"], data_files(&fixture.archive).len() as u64);
    assert_eq!(summary["files_hashed"], summary["files"]);
    assert_eq!(summary["hash_mode"], "deep");

    // The default run checks every size but rehashes a sample, and says so.
    let text = run_ok(strata(&fixture.archive).args(["verify", "--sample", "3"]));
    assert!(text.contains("a random sample of 3"), "{text}");
    assert!(text.contains("intact"), "{text}");

    // Auditors pin the key printed by `keys show`; another key fails every checkpoint.
    let pinned = run_ok(strata(&fixture.archive).args(["keys", "show"]));
    let (status, _) = verify(&fixture.archive, &["--key", pinned.trim()]);
    assert_eq!(status, 0);
    let stranger = SigningKey::generate("strata-elsewhere")
        .unwrap()
        .verifier()
        .to_string();
    let (status, report) = verify(&fixture.archive, &["--key", &stranger]);
    assert_eq!(status, 2);
    let found = findings(&report);
    assert!(found.iter().all(|f| f.0 == "BAD_SIGNATURE"), "{report:#}");
    assert_eq!(found.len() as u64, n);
}

#[test]
fn tampered_data_files_are_named() {
    let fixture = fixture();
    let files = data_files(&fixture.archive);

    let (_dir, archive) = copy_of(&fixture.archive);
    let flipped = archive.join(&files[0]);
    let mut bytes = std::fs::read(&flipped).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&flipped, bytes).unwrap();
    let report = assert_single(&archive, &[], "MODIFIED", &files[0]);
    assert!(
        report["findings"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("SHA-256"),
        "{report:#}"
    );

    let (_dir, archive) = copy_of(&fixture.archive);
    std::fs::remove_file(archive.join(&files[1])).unwrap();
    assert_single(&archive, &[], "MISSING", &files[1]);

    let (_dir, archive) = copy_of(&fixture.archive);
    let source = Path::new(&files[2]);
    let slipped = source
        .with_file_name("part-20250101T000000-0000000000000000.parquet")
        .to_string_lossy()
        .into_owned();
    std::fs::copy(archive.join(source), archive.join(&slipped)).unwrap();
    assert_single(&archive, &[], "UNSEALED", &slipped);
    // The slipped-in file is never read by queries either.
    assert_eq!(
        count(&archive, "SELECT count(*) AS n FROM events"),
        count(&fixture.archive, "SELECT count(*) AS n FROM events")
    );
}

#[test]
fn malformed_catalog_content_is_refused_naming_the_entry() {
    let fixture = fixture();
    let n = entries(&fixture.archive);
    type Edit = fn(&mut Value);
    let edits: [(&str, Edit); 6] = [
        ("a bad month", |e| e["add"][0]["month"] = "2025-13".into()),
        ("a family not in the contract", |e| {
            e["add"][0]["family"] = "Access".into()
        }),
        ("an unreadable commit time", |e| {
            e["committed_at"] = "yesterday".into()
        }),
        ("a time outside any month", |e| {
            e["add"][0]["max_ts"] = i64::MAX.into()
        }),
        ("a path outside the partition", |e| {
            e["add"][0]["path"] = "tenant=x/family=access/month=2025-01/../../../.bashrc".into()
        }),
        ("a store no policy names", |e| {
            e["add"][0]["location"] = "/root".into()
        }),
    ];
    for (what, edit) in edits {
        let (_dir, archive) = copy_of(&fixture.archive);
        let path = archive.join(entry_name(n));
        let mut entry: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut entry);
        std::fs::write(&path, serde_json::to_vec_pretty(&entry).unwrap()).unwrap();
        for args in [
            &["sql", "SELECT count(*) FROM events"][..],
            &["retention", "plan"],
            &["compact"],
        ] {
            let out = run_expect(strata(&archive).args(args), 1);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("catalog entry {} is refused", entry_name(n)))
                    && !stderr.contains("panicked"),
                "{what}, strata {}: {stderr}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn a_second_writer_is_refused_until_a_trusted_writer_trusts_its_key() {
    let fixture = fixture();
    let (dir, archive) = copy_of(&fixture.archive);
    let other = dir.path().join("other-keyring.json");
    let as_other =
        |cmd: &mut std::process::Command| cmd.env("STRATA_KEYRING", &other).output().unwrap();
    let key = String::from_utf8(as_other(strata(&archive).args(["keys", "show"])).stdout).unwrap();
    let key = key.trim();
    let input = dir.path().join("more.ndjson");
    generate(
        &input,
        &["--events", "200", "--tenants", "2", "--seed", "9"],
    );

    let files_before = data_files(&archive);
    let refused = as_other(strata(&archive).arg("ingest").arg(&input));
    assert_eq!(
        data_files(&archive),
        files_before,
        "refused before uploading anything"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not trusted by the archive") && stderr.contains(key),
        "{stderr}"
    );

    run_ok(strata(&archive).args(["keys", "trust", key, "--reason", "second ingest host"]));
    let accepted = as_other(strata(&archive).arg("ingest").arg(&input));
    assert_eq!(
        accepted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    // Pinned to the archive's first (root) key, verify accepts the
    // checkpoints of every key the root trusted.
    let (status, report) = verify(&archive, &[]);
    assert_eq!((status, findings(&report)), (0, vec![]), "{report:#}");
    assert_eq!(
        count(
            &archive,
            "SELECT count(*) AS n FROM strata_audit WHERE action = 'key_trusted'"
        ),
        2,
        "the first signed entry's own key, then the second writer's"
    );

    run_ok(strata(&archive).args(["keys", "retire", key, "--reason", "host gone"]));
    let refused =
        as_other(strata(&archive).args(["hold", "add", "--tenant", "acme", "--reason", "x"]));
    assert_eq!(refused.status.code(), Some(1));
}

#[test]
fn commands_that_only_read_sign_nothing() {
    let fixture = fixture();
    let n = entries(&fixture.archive);
    let (_dir, archive) = copy_of(&fixture.archive);
    // An entry nobody vouched for: the head's checkpoint is gone (a forged
    // entry appended with a correct prev looks the same).
    std::fs::remove_file(archive.join(checkpoint_name(n))).unwrap();
    for args in [
        &["hold", "list"][..],
        &["retention", "policy", "show"],
        &["retention", "plan"],
        &["status"],
        &["sql", "SELECT count(*) FROM events"],
    ] {
        strata(&archive).args(args).output().unwrap();
        assert!(
            !archive.join(checkpoint_name(n)).exists(),
            "`strata {}` signed the head",
            args.join(" ")
        );
    }
    assert_single(&archive, &[], "UNSEALED", &entry_name(n));
}

#[test]
fn a_rewrite_refuses_a_source_edited_since_its_commit() {
    let fixture = fixture();
    // Two files of one partition: the second ingest did not compact.
    let rows = query(
        &fixture.archive,
        "SELECT min(path) AS a, max(path) AS b FROM strata_files
         GROUP BY tenant, family, month HAVING count(*) = 2 ORDER BY 1 LIMIT 1",
    );
    let (kept, edited) = (
        rows[0]["a"].as_str().unwrap(),
        rows[0]["b"].as_str().unwrap(),
    );
    let (_dir, archive) = copy_of(&fixture.archive);
    // A readable edit: the partition's other file copied over this one
    // (its rows twice). Merged, it would get a fresh hash and verify clean.
    std::fs::copy(archive.join(kept), archive.join(edited)).unwrap();
    let out = run_expect(strata(&archive).arg("compact"), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("MODIFIED {edited}")), "{stderr}");
    // Nothing was rewritten or deleted: verify still names the edit.
    assert!(archive.join(kept).exists() && archive.join(edited).exists());
    assert_single(&archive, &[], "MODIFIED", edited);
}

#[test]
fn tampered_catalog_entries_break_the_chain_where_they_were_touched() {
    let fixture = fixture();
    let n = entries(&fixture.archive);
    let middle = n / 2;

    // Edit: one number in an entry.
    let (_dir, archive) = copy_of(&fixture.archive);
    let path = archive.join(entry_name(middle));
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"rows\": ", "\"rows\": 1", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let report = assert_single(&archive, &[], "CHAIN_BROKEN", &entry_name(middle));
    assert_eq!(report["findings"][0]["seq"], middle);

    // Edit the newest entry: no successor links to it, the checkpoint catches it.
    let (_dir, archive) = copy_of(&fixture.archive);
    let path = archive.join(entry_name(n));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("\"actor\": \"test\"", "\"actor\": \"mallory\"", 1),
    )
    .unwrap();
    assert_single(&archive, &[], "CHAIN_BROKEN", &entry_name(n));

    // Delete an entry: its files are still committed by nobody's account, so
    // look only at the chain finding.
    let (_dir, archive) = copy_of(&fixture.archive);
    std::fs::remove_file(archive.join(entry_name(middle))).unwrap();
    let (_, chain) = chain_findings(&archive);
    assert_eq!(
        chain,
        [("CHAIN_BROKEN".to_string(), entry_name(middle), Some(middle))]
    );

    // Swap two entries.
    let (_dir, archive) = copy_of(&fixture.archive);
    let (a, b) = (
        archive.join(entry_name(middle)),
        archive.join(entry_name(middle + 1)),
    );
    let swap = archive.join("swap");
    std::fs::rename(&a, &swap).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&swap, &b).unwrap();
    // Replaying the entries out of order may also misplace files; the
    // chain findings come first and start at the first swapped entry.
    let (status, report) = verify(&archive, &[]);
    assert_eq!(status, 2);
    let first = &findings(&report)[0];
    assert_eq!(
        (first.0.as_str(), first.2),
        ("CHAIN_BROKEN", Some(middle)),
        "{report:#}"
    );
}

#[test]
fn verify_ends_on_an_entry_named_with_the_largest_sequence_number() {
    let fixture = fixture();
    let n = entries(&fixture.archive);
    let (_dir, archive) = copy_of(&fixture.archive);
    // Read one number at a time, the gap before it took 2^64 reads.
    std::fs::copy(
        archive.join(entry_name(n)),
        archive.join(entry_name(u64::MAX)),
    )
    .unwrap();
    let (report, chain) = chain_findings(&archive);
    // The gap is one finding, and the stray object is named too.
    assert_eq!(
        chain,
        [
            ("CHAIN_BROKEN".to_string(), entry_name(n + 1), Some(n + 1)),
            (
                "CHAIN_BROKEN".to_string(),
                entry_name(u64::MAX),
                Some(u64::MAX)
            )
        ],
        "{report:#}"
    );
    let detail = report["findings"][0]["detail"].as_str().unwrap_or_default();
    assert_eq!(
        detail,
        format!("entries {} to {} are missing", n + 1, u64::MAX - 1)
    );
}

/// Replaces the signed note at `path` with the same text signed by another
/// key of the same name.
fn forge_signature(path: &Path) {
    let note = std::fs::read_to_string(path).unwrap();
    let text = &note[..note.find("\n\n").unwrap() + 1];
    assert!(Checkpoint::parse(text).is_ok(), "{note}");
    let signer = note.rsplit("\u{2014} ").next().unwrap();
    let name = signer.split(' ').next().unwrap();
    let forged = SigningKey::generate(name).unwrap().sign(text).unwrap();
    std::fs::write(path, forged).unwrap();
}

#[test]
fn a_checkpoint_signed_by_another_key_is_a_bad_signature() {
    let fixture = fixture();
    let (_dir, archive) = copy_of(&fixture.archive);
    let size = entries(&archive);
    forge_signature(&archive.join(checkpoint_name(size)));
    // The newest commit is now covered by no valid checkpoint, which is also reported.
    let (status, report) = verify(&archive, &[]);
    assert_eq!(status, 2);
    let found = findings(&report);
    assert!(
        found.contains(&(
            "BAD_SIGNATURE".to_string(),
            checkpoint_name(size),
            Some(size)
        )),
        "{report:#}"
    );
    assert!(
        found
            .iter()
            .all(|f| f.0 == "BAD_SIGNATURE" || f.0 == "UNSEALED"),
        "{report:#}"
    );
}

#[test]
fn cutting_off_or_rolling_back_the_log_is_caught_with_a_trusted_checkpoint() {
    let fixture = fixture();
    let trusted = fixture.witness.join("latest.note");
    let trusted = trusted.to_str().unwrap();
    let n = entries(&fixture.archive);

    // Remove the newest entry, its checkpoint and the files it added: the
    // archive is consistent with itself, only the witness knows better.
    let (_dir, archive) = copy_of(&fixture.archive);
    for path in added_by(&archive, n) {
        std::fs::remove_file(archive.join(path)).unwrap();
    }
    std::fs::remove_file(archive.join(entry_name(n))).unwrap();
    std::fs::remove_file(archive.join(checkpoint_name(n))).unwrap();
    std::fs::remove_file(archive.join(format!("_delta_log/{n:020}.json"))).unwrap();
    let (status, report) = verify(&archive, &[]);
    assert_eq!(
        status, 0,
        "without a trusted checkpoint the cut is invisible: {report:#}"
    );
    let report = assert_single(&archive, &["--trusted", trusted], "TRUNCATED", trusted);
    assert!(
        report["findings"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{n} entries")),
        "{report:#}"
    );

    // Restore an older copy of the catalog: the newer files become unsealed,
    // and the witness sees the log went backwards.
    let (_dir, archive) = copy_of(&fixture.archive);
    let (_old_dir, old) = copy_of(&fixture.archive);
    std::fs::remove_file(old.join(entry_name(n))).unwrap();
    std::fs::remove_file(old.join(checkpoint_name(n))).unwrap();
    std::fs::remove_dir_all(archive.join("_strata")).unwrap();
    strata_faults::copy_folder(&old.join("_strata"), &archive.join("_strata")).unwrap();
    let (status, report) = verify(&archive, &[]);
    assert_eq!(status, 2);
    let unsealed: Vec<_> = findings(&report).into_iter().map(|f| f.1).collect();
    // So does its Delta version, which engines would still read.
    let newest = added_by(&fixture.archive, n);
    let newest_version = format!("_delta_log/{n:020}.json");
    let mut expected = newest.clone();
    expected.push(newest_version.clone());
    expected.sort();
    assert_eq!(unsealed, expected, "{report:#}");
    // A thorough attacker takes that version away too.
    std::fs::remove_file(archive.join(&newest_version)).unwrap();

    // Then commit something else on top: the log is as long as the witness's
    // checkpoint again but no longer extends it.
    let input = archive.join("../other.ndjson");
    generate(
        &input,
        &[
            "--events",
            "500",
            "--tenants",
            "2",
            "--days",
            "30",
            "--seed",
            "9",
        ],
    );
    run_ok(
        strata(&archive)
            .args(["ingest", "--no-compact"])
            .arg(&input),
    );
    for path in newest {
        std::fs::remove_file(archive.join(path)).unwrap();
    }
    assert_eq!(entries(&archive), n);
    assert_single(&archive, &["--trusted", trusted], "ROLLED_BACK", trusted);
}

#[test]
fn a_signed_export_verifies_and_any_change_to_it_fails() {
    let fixture = fixture();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("failed-logins");
    let sql = "SELECT tenant, user, count(*) AS failures FROM access \
               WHERE action = 'login_failed' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2";
    run_ok(
        strata(&fixture.archive)
            .args(["sql", "--export"])
            .arg(&export)
            .arg(sql),
    );
    let mut names: Vec<_> = std::fs::read_dir(&export)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["manifest.note", "result.csv", "result.parquet"]);

    // The CSV holds the query's rows; the manifest names the query and the
    // checkpoint of the commit it ran on.
    let csv = std::fs::read_to_string(export.join("result.csv")).unwrap();
    assert_eq!(
        csv.lines().count() as u64,
        1 + query(&fixture.archive, sql).len() as u64
    );
    let manifest = std::fs::read_to_string(export.join("manifest.note")).unwrap();
    assert!(manifest.contains("login_failed"), "{manifest}");
    let latest = std::fs::read_to_string(fixture.witness.join("latest.note")).unwrap();
    let origin_and_size: String = latest.lines().take(2).collect::<Vec<_>>().join("\\n");
    assert!(manifest.contains(&origin_and_size), "{manifest}\n{latest}");

    let out = run_ok(strata(&fixture.archive).arg("verify-export").arg(&export));
    assert!(out.contains("intact"), "{out}");

    // Refuses to overwrite an existing export.
    let out = run_expect(
        strata(&fixture.archive)
            .args(["sql", "--export"])
            .arg(&export)
            .arg(sql),
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let csv_path = export.join("result.csv");
    std::fs::write(&csv_path, csv.replacen(',', ";", 1)).unwrap();
    let out = run_expect(
        strata(&fixture.archive).arg("verify-export").arg(&export),
        2,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("MODIFIED") && text.contains("result.csv"),
        "{text}"
    );
}

#[test]
fn the_daemon_signs_heartbeats_that_verify_checks() {
    let fixture = fixture();
    let archive = &fixture.archive;
    let policy = archive.join("../policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\ntenant = \"*\"\nfamily = \"*\"\nexpire_after = \"100y\"\n",
    )
    .unwrap();
    run_ok(
        strata(archive)
            .args(["retention", "policy", "set"])
            .arg(&policy),
    );
    let mut daemon = strata(archive)
        .env("STRATA_WITNESS", &fixture.witness)
        .args(["retention", "daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let heartbeats = archive.join("_strata/heartbeats");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while files_under(&heartbeats).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let beats = files_under(&heartbeats);
    assert_eq!(beats.len(), 1, "a heartbeat as soon as the daemon starts");
    assert!(fixture.witness.join("heartbeat.note").is_file());

    let (status, report) = verify(archive, &[]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(report["summary"]["heartbeats"], 1);
    assert!(report["summary"]["last_heartbeat"].is_string());

    // A heartbeat signed by someone else is a bad signature.
    forge_signature(&beats[0]);
    let relative = beats[0]
        .strip_prefix(archive)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_single(archive, &[], "BAD_SIGNATURE", &relative);
}
