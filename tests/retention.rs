//! Retention on a three-year archive under a policy that mixes presets per
//! tenant: the plan lists exactly the partitions the rules select, runs
//! leave exactly the rows of the partitions that remain, tiering keeps the
//! answers, holds win, a killed run finishes on rerun, and every action is
//! a receipt in `strata_audit`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Months, Utc};
use common::*;
use serde_json::Value;

/// When the tests plan and run: three years of data end on 2025-12-31.
const NOW: &str = "2026-01-15";
/// After the 7-day grace period.
const AFTER_GRACE: &str = "2026-01-23";

type Partition = (String, String, String);

struct Fixture {
    dir: tempfile::TempDir,
    archive: PathBuf,
}

impl Fixture {
    fn cold(&self) -> PathBuf {
        self.dir.path().join("cold")
    }
}

/// 3 years, 4 tenants, ingested as two inputs and left uncompacted, so
/// tiering has files to merge; with the policy set.
fn fixture(events: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    generate(
        &input,
        &[
            "--events",
            events,
            "--tenants",
            "4",
            "--days",
            "1095",
            "--start",
            "2023-01-01",
        ],
    );
    // Alternate lines into two inputs: each partition gets a file from each.
    let text = std::fs::read_to_string(&input).unwrap();
    let halves: Vec<PathBuf> = (0..2)
        .map(|half| {
            let path = dir.path().join(format!("events-{half}.ndjson"));
            let lines: String = text
                .lines()
                .skip(half)
                .step_by(2)
                .map(|line| format!("{line}\n"))
                .collect();
            std::fs::write(&path, lines).unwrap();
            path
        })
        .collect();
    let archive = dir.path().join("archive");
    run_ok(
        strata(&archive)
            .args(["ingest", "--quiet", "--no-compact"])
            .args(&halves),
    );
    let fixture = Fixture { dir, archive };
    let policy = fixture.dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            r#"
grace = "7d"

[cold_stores]
cold = "{}"

[[rule]]
tenant = "*"
family = "*"
presets = ["pci-dss-4"]
tier_after = "3mo"
tier_to = "cold"

[[rule]]
tenant = "acme-health"
family = "*"
presets = ["hipaa", "pci-dss-4"]

[[rule]]
tenant = "globex-bank"
family = "access"
presets = ["sox-7y"]

[[rule]]
tenant = "initech-telecom"
family = "*"
presets = ["gdpr"]
expire_after = "18mo"
"#,
            fixture.cold().display()
        ),
    )
    .unwrap();
    run_ok(
        strata(&fixture.archive)
            .args(["retention", "policy", "set"])
            .arg(&policy)
            .args(["--reason", "test policy"]),
    );
    fixture
}

fn instant(date: &str) -> DateTime<Utc> {
    format!("{date}T00:00:00Z").parse().unwrap()
}

/// What the test's own reading of the policy expects: (expire months, tier months).
fn rule_for(tenant: &str, family: &str) -> (u32, Option<u32>) {
    match (tenant, family) {
        ("acme-health", _) => (72, None),
        ("globex-bank", "access") => (84, None),
        ("initech-telecom", _) => (18, None),
        _ => (12, Some(3)),
    }
}

/// Each partition's newest event, from the catalog.
fn partitions(archive: &Path) -> BTreeMap<Partition, DateTime<Utc>> {
    query(
        archive,
        "SELECT tenant, family, month, max(max_ts) AS newest FROM strata_files GROUP BY 1, 2, 3",
    )
    .iter()
    .map(|r| {
        let text = |k: &str| r[k].as_str().unwrap().to_string();
        let newest: DateTime<Utc> = text("newest").parse().unwrap();
        ((text("tenant"), text("family"), text("month")), newest)
    })
    .collect()
}

/// Rows per partition, as queries see them.
fn rows_by_partition(archive: &Path) -> BTreeMap<Partition, u64> {
    query(
        archive,
        "SELECT tenant, family, to_char(ts, '%Y-%m') AS month, count(*) AS n FROM events GROUP BY 1, 2, 3",
    )
    .iter()
    .map(|r| {
        let text = |k: &str| r[k].as_str().unwrap().to_string();
        ((text("tenant"), text("family"), text("month")), r["n"].as_u64().unwrap())
    })
    .collect()
}

fn plan(archive: &Path, now: &str) -> Value {
    let out = run_ok(strata(archive).args(["retention", "plan", "--format", "json", "--now", now]));
    serde_json::from_str(&out).unwrap()
}

fn planned(plan: &Value, kind: &str) -> BTreeSet<Partition> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .map(|a| {
            let p = &a["partition"];
            let text = |k: &str| p[k].as_str().unwrap().to_string();
            (text("tenant"), text("family"), text("month"))
        })
        .collect()
}

fn retention_run(archive: &Path, now: &str) {
    run_ok(strata(archive).args(["retention", "run", "--quiet", "--now", now]));
}

fn count_audit(archive: &Path, action: &str) -> u64 {
    count(
        archive,
        &format!("SELECT count(*) AS n FROM strata_audit WHERE action = '{action}'"),
    )
}

fn assert_intact(archive: &Path) {
    let report = run_ok(strata(archive).args(["verify", "--deep"]));
    assert!(report.contains("result:     intact"), "{report}");
}

#[test]
fn the_plan_selects_exactly_the_due_partitions_and_runs_leave_exactly_the_rest() {
    let fixture = fixture("12000");
    let archive = &fixture.archive;
    let now = instant(NOW);
    let newest = partitions(archive);
    let rows_before = rows_by_partition(archive);
    let tiered_answer = |archive: &Path| {
        query(
            archive,
            "SELECT tenant, family, count(DISTINCT event_id) AS events, sum(bytes) AS bytes, \
             min(ts) AS first, max(ts) AS last, count(user) AS users FROM events \
             WHERE ts >= '2025-01-01' AND tenant <> 'acme-health' GROUP BY 1, 2 ORDER BY 1, 2",
        )
    };
    let answer_before = tiered_answer(archive);
    let hot_files_before = count(archive, "SELECT count(*) AS n FROM strata_files");
    let files_per_partition: BTreeMap<Partition, u64> = query(
        archive,
        "SELECT tenant, family, month, count(*) AS n FROM strata_files GROUP BY 1, 2, 3",
    )
    .iter()
    .map(|r| {
        let text = |k: &str| r[k].as_str().unwrap().to_string();
        (
            (text("tenant"), text("family"), text("month")),
            r["n"].as_u64().unwrap(),
        )
    })
    .collect();

    let mut expect_expired = BTreeSet::new();
    let mut expect_tiered = BTreeSet::new();
    for (partition, newest) in &newest {
        let (expire, tier) = rule_for(&partition.0, &partition.1);
        if *newest + Months::new(expire) <= now {
            expect_expired.insert(partition.clone());
        } else if tier.is_some_and(|t| *newest + Months::new(t) <= now) {
            expect_tiered.insert(partition.clone());
        }
    }
    assert!(expect_expired.len() > 50 && expect_tiered.len() > 20);
    let plan = plan(archive, NOW);
    assert_eq!(planned(&plan, "mark"), expect_expired);
    assert_eq!(planned(&plan, "tier"), expect_tiered);
    assert_eq!(planned(&plan, "sweep"), BTreeSet::new());

    // Planning changes nothing.
    assert_eq!(rows_by_partition(archive), rows_before);

    retention_run(archive, NOW);
    let expected_rows: BTreeMap<Partition, u64> = rows_before
        .iter()
        .filter(|(p, _)| !expect_expired.contains(*p))
        .map(|(p, n)| (p.clone(), *n))
        .collect();
    assert_eq!(
        rows_by_partition(archive),
        expected_rows,
        "marked partitions are hidden"
    );
    assert_eq!(
        planned(&self::plan(archive, NOW), "mark"),
        BTreeSet::new(),
        "run is idempotent"
    );

    // Tiered partitions live in the cold store, one compacted file each.
    let cold = count(
        archive,
        "SELECT count(*) AS n FROM strata_files WHERE location IS NOT NULL",
    );
    assert_eq!(cold, expect_tiered.len() as u64);
    let cold_objects = files_under(&fixture.cold()).len() as u64;
    assert_eq!(cold_objects, cold);
    let replaced = count(
        archive,
        "SELECT count(*) AS n FROM strata_audit WHERE operation = 'tier' AND action = 'remove'",
    );
    assert!(
        replaced > cold,
        "{replaced} hot files became {cold} cold ones"
    );
    assert_eq!(
        tiered_answer(archive),
        answer_before,
        "same answers across tiers"
    );

    // After the grace period the sweep deletes the marked partitions' objects.
    let sweep = self::plan(archive, AFTER_GRACE);
    assert_eq!(planned(&sweep, "sweep"), expect_expired);
    retention_run(archive, AFTER_GRACE);
    assert_eq!(rows_by_partition(archive), expected_rows);
    // Tiering's hot copies wait for readers of older states; the swept
    // partitions' files, and the copies of them compaction replaced, are gone.
    let waiting = awaiting_deletion(archive);
    let on_disk = data_files(archive).difference(&waiting).count() as u64;
    let cold_objects = data_files(&fixture.cold()).len() as u64;
    assert_eq!(
        on_disk + cold_objects,
        count(archive, "SELECT count(*) AS n FROM strata_files"),
        "exactly the catalogued objects remain"
    );
    let swept: Vec<&String> = (waiting.iter())
        .filter(|p| {
            expect_expired
                .iter()
                .any(|(t, f, m)| p.starts_with(&format!("tenant={t}/family={f}/month={m}/")))
        })
        .collect();
    assert!(
        swept.is_empty(),
        "swept partitions keep no replaced copies: {swept:?}"
    );
    assert!(waiting.iter().all(|p| archive.join(p).exists()));
    assert!(on_disk + cold_objects < hot_files_before);

    // Every action is a receipt.
    assert_eq!(count_audit(archive, "policy_set"), 1);
    assert_eq!(
        count_audit(archive, "expiry_marked"),
        expect_expired.len() as u64
    );
    assert_eq!(
        count_audit(archive, "expiry_swept"),
        expect_expired.len() as u64
    );
    let expired_files = files_per_partition
        .iter()
        .filter(|(p, _)| expect_expired.contains(*p))
        .map(|(_, n)| n)
        .sum::<u64>();
    assert_eq!(
        count(
            archive,
            "SELECT count(*) AS n FROM strata_audit WHERE operation = 'expire' AND action = 'remove' \
             AND sha256 IS NOT NULL AND policy_version = 1 AND actor = 'test'"
        ),
        expired_files,
        "one receipt, with its hash, per expired file"
    );
    assert_eq!(
        count(
            archive,
            "SELECT count(*) AS n FROM strata_audit WHERE operation = 'tier' AND action = 'add' \
             AND location IS NOT NULL"
        ),
        cold_objects
    );

    // A freshly ingested, tiered and partly expired archive verifies clean.
    assert_intact(archive);
    let report = run_ok(strata(archive).args(["verify"]));
    assert!(
        report.contains(&format!(
            "{} partitions expired by policy",
            expect_expired.len()
        )),
        "{report}"
    );
}

#[test]
fn a_hold_keeps_a_tenant_past_expiry_until_released() {
    let fixture = fixture("6000");
    let archive = &fixture.archive;
    let globex = |archive: &Path| {
        count(
            archive,
            "SELECT count(*) AS n FROM events WHERE tenant = 'globex-bank'",
        )
    };
    let all_globex = globex(archive);

    let out = run_ok(strata(archive).args([
        "hold",
        "add",
        "--tenant",
        "globex-bank",
        "--reason",
        "SEC inquiry 117",
    ]));
    assert!(out.contains("hold 1 placed"), "{out}");
    let held_plan = plan(archive, NOW);
    let held: BTreeSet<String> = held_plan["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["partition"]["tenant"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(held, BTreeSet::from(["globex-bank".to_string()]));
    assert!(
        planned(&held_plan, "mark")
            .iter()
            .all(|p| p.0 != "globex-bank")
    );
    retention_run(archive, NOW);
    retention_run(archive, AFTER_GRACE);
    assert_eq!(
        globex(archive),
        all_globex,
        "the held tenant keeps every row past expiry"
    );

    let list = run_ok(strata(archive).args(["hold", "list"]));
    assert!(
        list.contains("SEC inquiry 117") && list.contains("globex-bank"),
        "{list}"
    );
    let out = run_expect(
        strata(archive).args(["hold", "release", "7", "--reason", "x"]),
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("hold 7 is not active"));
    run_ok(strata(archive).args(["hold", "release", "1", "--reason", "inquiry closed"]));

    retention_run(archive, AFTER_GRACE);
    let remaining = globex(archive);
    assert!(remaining < all_globex, "released: the expired months go");
    assert_eq!(
        remaining,
        count(
            archive,
            "SELECT count(*) AS n FROM events WHERE tenant = 'globex-bank' \
             AND (family = 'access' OR ts >= '2025-01-01')"
        ),
        "what remains is the 7-year access family and the last 12 months"
    );

    // A hold placed on marked partitions brings them back; a cancel does too,
    // and the same policy version does not mark them again.
    run_ok(strata(archive).args([
        "hold",
        "add",
        "--tenant",
        "globex-bank",
        "--from",
        "2024-01-01",
        "--to",
        "2024-12-31",
        "--reason",
        "matter 88",
    ]));
    retention_run(archive, "2026-02-01");
    let held_2024 = "SELECT count(*) AS n FROM events WHERE tenant = 'globex-bank' \
                     AND ts >= '2024-01-01' AND ts < '2025-01-01' AND family <> 'access'";
    assert!(
        count(archive, held_2024) > 0,
        "held 2024 months are visible again"
    );
    let marked_before_cancel = planned(&plan(archive, "2026-03-01"), "mark");
    let initech: Vec<_> = marked_before_cancel
        .iter()
        .filter(|p| p.0 == "initech-telecom")
        .collect();
    assert!(!initech.is_empty());
    retention_run(archive, "2026-03-01");
    let hidden = count(
        archive,
        "SELECT count(*) AS n FROM events WHERE tenant = 'initech-telecom'",
    );
    run_ok(strata(archive).args([
        "retention",
        "cancel",
        "--tenant",
        "initech-telecom",
        "--reason",
        "auditor asked",
    ]));
    assert!(
        count(
            archive,
            "SELECT count(*) AS n FROM events WHERE tenant = 'initech-telecom'"
        ) > hidden
    );
    assert!(
        planned(&plan(archive, "2026-03-01"), "mark")
            .iter()
            .all(|p| p.0 != "initech-telecom")
    );

    for action in [
        "hold_added",
        "hold_released",
        "expiry_cancelled",
        "expiry_marked",
    ] {
        assert!(
            count_audit(archive, action) > 0,
            "{action} is in strata_audit"
        );
    }
    assert_intact(archive);
}

/// Partition contents as queries see them, and where their files are.
fn state(archive: &Path) -> (BTreeMap<Partition, u64>, Vec<Value>) {
    let files = query(
        archive,
        "SELECT tenant, family, month, location IS NULL AS hot, count(*) AS files, sum(rows) AS rows \
         FROM strata_files GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    )
    .into_iter()
    .map(Value::Object)
    .collect();
    (rows_by_partition(archive), files)
}

#[test]
fn kill_9_during_a_run_then_rerun_ends_as_an_uninterrupted_run() {
    // The reference: uninterrupted runs on an archive of the same events.
    let reference = fixture("40000");
    retention_run(&reference.archive, NOW);
    retention_run(&reference.archive, AFTER_GRACE);
    let expected = state(&reference.archive);

    let fixture = fixture("40000");
    let archive = &fixture.archive;
    let whole = rows_by_partition(archive);
    let mut kills = 0;
    for now in [NOW, AFTER_GRACE] {
        for delay_ms in [40, 150, 400] {
            let mut child = strata(archive)
                .args(["retention", "run", "--quiet", "--now", now])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay_ms));
            if child.try_wait().unwrap().is_none() {
                kills += 1;
            }
            let _ = child.kill();
            child.wait().unwrap();
            // Between kills queries work and see each partition whole or not at all.
            for (partition, n) in rows_by_partition(archive) {
                assert_eq!(Some(&n), whole.get(&partition), "{partition:?}");
            }
        }
        wait_for_leases();
        retention_run(archive, now);
    }
    assert!(
        kills >= 2,
        "the runs finished before they could be killed; make the input larger"
    );
    assert_eq!(state(archive), expected);
    assert_intact(archive);
}

#[test]
fn retrying_a_hold_or_a_shred_that_landed_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    generate(
        &input,
        &["--events", "300", "--tenants", "2", "--days", "20"],
    );
    let archive = dir.path().join("archive");
    run_ok(strata(&archive).args(["ingest", "--quiet"]).arg(&input));
    let hold = [
        "hold",
        "add",
        "--tenant",
        "acme-health",
        "--reason",
        "case 7",
    ];
    let first = run_ok(strata(&archive).args(hold));
    let again = run_ok(strata(&archive).args(hold));
    assert_eq!(first, again, "the retry reports the same hold");
    assert_eq!(count_audit(&archive, "hold_added"), 1);
    // A shred needs every file encrypted; an empty tenant has none.
    let shred = [
        "keys",
        "shred",
        "--tenant",
        "nobody-yet",
        "--reason",
        "erasure 9",
    ];
    let first = run_ok(strata(&archive).args(shred).args(["--now", "2025-01-01"]));
    let again = run_ok(strata(&archive).args(shred).args(["--now", "2025-01-02"]));
    assert_eq!(first, again, "the retry reports the same schedule");
    assert_eq!(count_audit(&archive, "shred_scheduled"), 1);
}

#[test]
fn late_events_into_tiered_and_marked_months_leave_them_alone_and_every_command_succeeds() {
    let fixture = fixture("6000");
    let archive = &fixture.archive;
    let plan = self::plan(archive, NOW);
    let (tiered, marked) = (planned(&plan, "tier"), planned(&plan, "mark"));
    retention_run(archive, NOW);
    let cold_files = |archive: &Path| {
        count(
            archive,
            "SELECT count(*) AS n FROM strata_files WHERE location IS NOT NULL",
        )
    };
    let cold_before = cold_files(archive);
    // Late events for one tiered and one marked month (a tenant-family-month
    // each), ingested twice so that compaction has small hot files to merge.
    let late: Vec<&Partition> = [tiered.first(), marked.first()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(late.len(), 2, "the plan tiers and marks");
    for round in 0..2 {
        let lines: String = (late.iter())
            .flat_map(|(tenant, family, month)| {
                (0..5).map(move |i| {
                    format!(
                        "{{\"ts\":\"{month}-03T1{i}:00:00Z\",\"tenant\":\"{tenant}\",\"family\":\"{family}\",\"action\":\"late\",\"user\":\"late-{round}-{i}\"}}\n"
                    )
                })
            })
            .collect();
        let input = fixture.dir.path().join(format!("late-{round}.ndjson"));
        std::fs::write(&input, lines).unwrap();
        run_ok(strata(archive).args(["ingest", "--quiet"]).arg(&input));
    }
    run_ok(strata(archive).arg("compact"));
    assert_eq!(cold_files(archive), cold_before, "tiered files stay cold");
    let (tenant, family, month) = late[0];
    assert_eq!(
        count(
            archive,
            &format!(
                "SELECT count(*) AS n FROM events WHERE action = 'late' AND tenant = '{tenant}' \
                 AND family = '{family}' AND to_char(ts, '%Y-%m') = '{month}'"
            )
        ),
        10,
        "the late events of the tiered month are visible"
    );
    // The marked month stays hidden and is swept whole, late files included.
    retention_run(archive, AFTER_GRACE);
    let (tenant, family, month) = late[1];
    assert_eq!(
        count(
            archive,
            &format!(
                "SELECT count(*) AS n FROM strata_files WHERE tenant = '{tenant}' \
                 AND family = '{family}' AND month = '{month}'"
            )
        ),
        0
    );
    assert_intact(archive);
}
