//! Acceptance 4 of the retention issue: encrypted partitions hold no
//! plaintext, answer queries exactly as before, fail clearly without the
//! right key, rotate without rewriting, and crypto-shredding makes one
//! tenant unreadable for good while the others stay untouched.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const NOW: &str = "2025-11-15";

struct Fixture {
    dir: tempfile::TempDir,
    archive: PathBuf,
    input: PathBuf,
}

/// Ten months of events, encrypted by policy (and the older ones tiered).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    generate(
        &input,
        &[
            "--events",
            "6000",
            "--tenants",
            "3",
            "--days",
            "300",
            "--start",
            "2025-01-01",
        ],
    );
    let archive = dir.path().join("archive");
    run_ok(strata(&archive).args(["ingest", "--quiet"]).arg(&input));
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            r#"
[cold_stores]
cold = "{}"

[[rule]]
tenant = "*"
family = "*"
presets = ["pci-dss-4"]
encrypt_after = "0d"
tier_after = "3mo"
tier_to = "cold"
"#,
            dir.path().join("cold").display()
        ),
    )
    .unwrap();
    run_ok(
        strata(&archive)
            .args(["retention", "policy", "set"])
            .arg(&policy),
    );
    Fixture {
        dir,
        archive,
        input,
    }
}

const QUERIES: [&str; 3] = [
    "SELECT tenant, family, count(*) AS n, count(DISTINCT user) AS users, sum(bytes) AS b \
     FROM events GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT user, count(*) AS n FROM access WHERE action = 'login_failed' \
     GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
    "SELECT message, count(*) AS n FROM events WHERE message LIKE '%export%' GROUP BY 1 ORDER BY 1",
];

fn answers(archive: &Path) -> Vec<Vec<serde_json::Map<String, serde_json::Value>>> {
    QUERIES.iter().map(|q| query(archive, q)).collect()
}

/// Values of `field` in the input longer than 10 characters, to look for in raw bytes.
fn plaintexts(input: &Path, field: &str) -> Vec<String> {
    let text = std::fs::read_to_string(input).unwrap();
    let mut values: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let event: serde_json::Value = serde_json::from_str(l).unwrap();
            event[field].as_str().map(String::from)
        })
        .filter(|v| v.len() > 10)
        .collect();
    values.sort();
    values.dedup();
    values.truncate(40);
    assert!(values.len() >= 10, "{field}: {values:?}");
    values
}

fn stderr_of(cmd: &mut std::process::Command) -> String {
    String::from_utf8_lossy(&run_expect(cmd, 1).stderr).into_owned()
}

#[test]
fn encrypted_partitions_hold_no_plaintext_and_answer_as_before() {
    let fixture = fixture();
    let archive = &fixture.archive;
    let before = answers(archive);
    let plaintext_files_before = count(archive, "SELECT count(*) AS n FROM strata_files");
    run_ok(strata(archive).args(["retention", "run", "--quiet", "--now", NOW]));

    let plaintext_files = count(
        archive,
        "SELECT count(*) AS n FROM strata_files WHERE key_version IS NULL",
    );
    assert_eq!(plaintext_files, 0, "every file is encrypted");
    let cold = count(
        archive,
        "SELECT count(*) AS n FROM strata_files WHERE location IS NOT NULL",
    );
    assert!(cold > 0, "some partitions were tiered, encrypted too");

    let mut needles = plaintexts(&fixture.input, "user");
    needles.extend(plaintexts(&fixture.input, "message"));
    let files: Vec<PathBuf> = files_under(fixture.dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(files.len() as u64 >= cold);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds the plaintext {needle:?}",
                file.display()
            );
        }
    }
    assert_eq!(
        answers(archive),
        before,
        "queries match the plaintext answers"
    );

    // pyarrow reads the files too, given the keyring (docs/encryption.md).
    let sample = &query(
        archive,
        "SELECT path, rows FROM strata_files WHERE location IS NULL ORDER BY path LIMIT 1",
    )[0];
    let out = std::process::Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_encrypted.py"))
        .arg(keyring(archive))
        .arg(archive.join(sample["path"].as_str().unwrap()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let (rows, user) = printed.trim().split_once(' ').unwrap();
    assert_eq!(rows, sample["rows"].to_string());
    assert!(user.contains('@'), "a decrypted user name: {printed}");

    // Without the keyring, or with another one, queries fail and say why.
    let elsewhere = fixture.dir.path().join("other-keyring.json");
    let missing = stderr_of(
        strata(archive)
            .env("STRATA_KEYRING", &elsewhere)
            .args(["sql", QUERIES[0]]),
    );
    assert!(
        missing.contains("no master key version 1 for tenant"),
        "{missing}"
    );
    let scratch = fixture.dir.path().join("scratch");
    run_ok(
        strata(&scratch)
            .env("STRATA_KEYRING", &elsewhere)
            .arg("ingest")
            .arg(&fixture.input),
    );
    for tenant in ["acme-health", "globex-bank", "initech-telecom"] {
        run_ok(
            strata(&scratch)
                .env("STRATA_KEYRING", &elsewhere)
                .args(["keys", "rotate", "--tenant", tenant]),
        );
    }
    let wrong = stderr_of(
        strata(archive)
            .env("STRATA_KEYRING", &elsewhere)
            .args(["sql", QUERIES[0]]),
    );
    assert!(wrong.contains("wrong key"), "{wrong}");
    let rewritten = count(
        archive,
        "SELECT count(*) AS n FROM strata_audit WHERE operation IN ('encrypt', 'tier') \
         AND action = 'add' AND policy_version = 1",
    );
    assert_eq!(
        rewritten, plaintext_files_before,
        "one receipt per encrypted partition"
    );
    assert_intact(archive);
}

fn assert_intact(archive: &Path) {
    let report = run_ok(strata(archive).args(["verify", "--deep"]));
    assert!(report.contains("result:     intact"), "{report}");
}

#[test]
fn rotation_keeps_old_files_readable_and_shredding_erases_one_tenant() {
    let fixture = fixture();
    let archive = &fixture.archive;
    run_ok(strata(archive).args(["retention", "run", "--quiet", "--now", NOW]));
    let acme = "SELECT count(*) AS n FROM events WHERE tenant = 'acme-health'";
    let acme_rows = count(archive, acme);

    // Rotate, then add and encrypt more acme data: both generations read.
    let out = run_ok(strata(archive).args(["keys", "rotate", "--tenant", "acme-health"]));
    assert!(out.contains("version 2"), "{out}");
    let more = fixture.dir.path().join("more.ndjson");
    generate(
        &more,
        &[
            "--events",
            "500",
            "--tenants",
            "1",
            "--days",
            "10",
            "--start",
            "2025-11-01",
            "--seed",
            "8",
        ],
    );
    run_ok(strata(archive).args(["ingest", "--quiet"]).arg(&more));
    run_ok(strata(archive).args(["retention", "run", "--quiet", "--now", NOW]));
    let versions = query(
        archive,
        "SELECT DISTINCT key_version AS v FROM strata_files WHERE tenant = 'acme-health' ORDER BY 1",
    );
    let versions: Vec<u64> = versions.iter().map(|r| r["v"].as_u64().unwrap()).collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(count(archive, acme), acme_rows + 500);

    // A hold refuses shredding.
    run_ok(strata(archive).args([
        "hold",
        "add",
        "--tenant",
        "globex-bank",
        "--reason",
        "case 5",
    ]));
    let refused = stderr_of(strata(archive).args([
        "keys",
        "shred",
        "--tenant",
        "globex-bank",
        "--reason",
        "erasure",
    ]));
    assert!(refused.contains("legal hold 1"), "{refused}");

    // Shredding waits for the grace period, then destroys the keys.
    let initech = "SELECT count(*) AS n FROM events WHERE tenant = 'initech-telecom'";
    let initech_rows = count(archive, initech);
    run_ok(strata(archive).args([
        "keys",
        "shred",
        "--tenant",
        "initech-telecom",
        "--reason",
        "GDPR erasure 42",
        "--now",
        NOW,
    ]));
    run_ok(strata(archive).args(["retention", "run", "--quiet", "--now", "2025-11-20"]));
    assert_eq!(
        count(archive, initech),
        initech_rows,
        "not before the grace period"
    );
    run_ok(strata(archive).args(["retention", "run", "--quiet", "--now", "2025-11-23"]));
    let destroyed = stderr_of(strata(archive).args(["sql", initech]));
    assert!(destroyed.contains("key destroyed"), "{destroyed}");
    assert_eq!(
        count(archive, acme),
        acme_rows + 500,
        "other tenants are untouched"
    );
    assert!(
        count(
            archive,
            "SELECT count(*) AS n FROM events WHERE tenant <> 'initech-telecom'"
        ) > 0
    );

    for action in [
        "key_rotated",
        "shred_scheduled",
        "keys_shredded",
        "hold_added",
    ] {
        let n = count(
            archive,
            &format!("SELECT count(*) AS n FROM strata_audit WHERE action = '{action}'"),
        );
        assert!(n > 0, "{action} is in strata_audit");
    }
    assert_intact(archive);
}

#[test]
fn an_erasure_covers_files_ingested_after_it_was_scheduled() {
    let fixture = fixture();
    let archive = &fixture.archive;
    run_ok(strata(archive).args(["retention", "run", "--quiet", "--now", NOW]));
    run_ok(strata(archive).args([
        "keys",
        "shred",
        "--tenant",
        "initech-telecom",
        "--reason",
        "GDPR erasure 43",
        "--now",
        NOW,
    ]));
    // A new policy no longer encrypts, and late events of the tenant
    // arrive in plaintext after the shred was scheduled.
    let policy = fixture.dir.path().join("plain.toml");
    std::fs::write(
        &policy,
        "[[rule]]\ntenant = \"*\"\nfamily = \"*\"\npresets = [\"pci-dss-4\"]\n",
    )
    .unwrap();
    run_ok(
        strata(archive)
            .args(["retention", "policy", "set"])
            .arg(&policy),
    );
    let late = fixture.dir.path().join("late.ndjson");
    let lines: String = (0..20)
        .map(|i| {
            format!(
                "{{\"ts\":\"2025-11-{:02}T10:00:00Z\",\"tenant\":\"initech-telecom\",\"family\":\"access\",\"action\":\"login\",\"user\":\"late-{i}\"}}\n",
                1 + i % 15
            )
        })
        .collect();
    std::fs::write(&late, lines).unwrap();
    run_ok(strata(archive).args(["ingest", "--quiet"]).arg(&late));
    let plaintext = "SELECT count(*) AS n FROM strata_files
                     WHERE tenant = 'initech-telecom' AND key_version IS NULL";
    assert!(count(archive, plaintext) > 0);

    run_ok(strata(archive).args(["retention", "run", "--quiet", "--now", "2025-11-23"]));
    assert_eq!(
        count(archive, plaintext),
        0,
        "every file of the tenant is encrypted"
    );
    let destroyed = stderr_of(strata(archive).args([
        "sql",
        "SELECT count(*) FROM events WHERE \"user\" LIKE 'late-%'",
    ]));
    assert!(destroyed.contains("key destroyed"), "{destroyed}");
    assert_intact(archive);
}
