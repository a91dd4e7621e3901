//! Every object-store call of a retention run (each phase: unmark, sweep,
//! mark, encrypt, tier, shred), of a key rotation and of scheduling a
//! shred, interrupted in turn, the cold stores' calls included: the rerun
//! converges to what an uninterrupted run leaves, and `verify --deep` finds
//! nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use strata_faults::{Scenario, World, data_files, enumerate};
use strata_ingest::{IngestOptions, Input, ingest};
use strata_integrity::SigningKey;
use strata_keys::envelope::{KeyProvider, LocalKeys};
use strata_retention::{HoldRequest, add_hold, rotate_key, run, schedule_shred, set_policy};
use strata_store::{Archive, Change, Entry, FileMeta};

const TENANTS: [&str; 3] = ["t0", "t1", "t2"];

fn instant(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn keys(world: &Path) -> Arc<dyn KeyProvider> {
    Arc::new(LocalKeys::open(&world.join("keyring.json")).unwrap())
}

/// Ingests, for each tenant, three events on each of `days` (`YYYY-MM-DD`).
async fn ingest_days(archive: &Archive, world: &Path, name: &str, tenants: &[&str], days: &[&str]) {
    let mut lines = String::new();
    for tenant in tenants {
        for day in days {
            for hour in [8, 12, 16] {
                lines += &format!(
                    "{{\"ts\":\"{day}T{hour:02}:00:00Z\",\"tenant\":\"{tenant}\",\"family\":\"access\",\"action\":\"login\",\"user\":\"u{hour}\"}}\n"
                );
            }
        }
    }
    let input = world.join(name);
    std::fs::write(&input, lines).unwrap();
    ingest(
        archive,
        vec![Input::File(input)],
        IngestOptions::default(),
        (),
    )
    .await
    .unwrap();
}

/// A policy that encrypts after 30 days, tiers to `world/cold` after 3
/// months and expires after 12, with 7 days of grace.
async fn set_lifecycle_policy(archive: &Archive, world: &Path) {
    let policy = format!(
        "grace = \"7d\"\n\n[cold_stores]\ncold = {:?}\n\n[[rule]]\ntenant = \"*\"\nfamily = \"*\"\nencrypt_after = \"30d\"\ntier_after = \"3mo\"\ntier_to = \"cold\"\nexpire_after = \"12mo\"\n",
        world.join("cold").display().to_string()
    );
    set_policy(archive, &policy, "test", "lifecycle")
        .await
        .unwrap();
}

/// What a retention command leaves: each partition's rows and where and
/// how its files are stored, the governance state, the live key versions,
/// and any data file stored but not catalogued (a leftover).
#[derive(Debug, PartialEq)]
struct Retained {
    partitions: BTreeMap<String, (u64, Vec<Stored>)>,
    marks: Vec<String>,
    cancelled: BTreeMap<String, u64>,
    shreds: BTreeMap<String, String>,
    shredded: BTreeMap<String, Vec<u32>>,
    live_keys: BTreeMap<String, Vec<u32>>,
    leftovers: Vec<String>,
}

/// Where a file is stored (its cold store) and under which key version.
type Stored = (Option<String>, Option<u32>);

async fn retained(archive: &Archive, world: &Path) -> Retained {
    let snapshot = archive.catalog.load().await.unwrap();
    let mut partitions: BTreeMap<String, (u64, Vec<_>)> = BTreeMap::new();
    for file in snapshot.files.values() {
        let key = strata_store::PartitionRecord::of(file).key();
        let partition = partitions.entry(key).or_default();
        partition.0 += file.rows;
        partition.1.push((file.location.clone(), file.key_version));
        partition.1.sort();
    }
    let keys = keys(world);
    let live_keys = (TENANTS.iter())
        .map(|t| (t.to_string(), keys.live_versions(t).unwrap()))
        .collect();
    let catalogued = |file: &FileMeta| (file.location.clone(), file.path.clone());
    let catalogued: Vec<_> = snapshot.files.values().map(catalogued).collect();
    // Files a commit replaced wait for readers of older states (or, when the
    // writer stopped before recording them, were deleted by the rerun).
    let waiting = awaiting_deletion(&world.join("archive"));
    let mut leftovers = Vec::new();
    for (folder, location) in [
        (world.join("archive"), None),
        (
            world.join("cold"),
            Some(world.join("cold").display().to_string()),
        ),
    ] {
        for path in data_files(&folder) {
            let object = (location.clone(), path.clone());
            if !catalogued.contains(&object) && !waiting.contains(&object) {
                leftovers.push(format!("{} in {}", path, folder.display()));
            }
        }
    }
    let governance = snapshot.governance;
    Retained {
        partitions,
        marks: governance.marks.into_keys().collect(),
        cancelled: governance.cancelled,
        shreds: governance.shreds,
        shredded: governance.shredded,
        live_keys,
        leftovers,
    }
}

/// The objects the `_strata/replaced/` records of `archive` name.
fn awaiting_deletion(archive: &Path) -> Vec<(Option<String>, String)> {
    let Ok(records) = std::fs::read_dir(archive.join("_strata/replaced")) else {
        return Vec::new();
    };
    let mut objects = Vec::new();
    for record in records {
        let bytes = std::fs::read(record.unwrap().path()).unwrap();
        let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        for object in record["objects"].as_array().unwrap() {
            let location = object["location"].as_str().map(String::from);
            objects.push((location, object["path"].as_str().unwrap().to_string()));
        }
    }
    objects
}

/// `strata retention run --now at`.
struct RetentionRun {
    at: DateTime<Utc>,
}

impl Scenario for RetentionRun {
    type Shape = Retained;

    async fn run(&self, archive: &Archive, world: &Path) -> Result<(), String> {
        let keys = keys(world);
        run(archive, self.at, "test", Some(&keys), &mut ())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn shape(&self, archive: &Archive, world: &Path) -> Retained {
        retained(archive, world).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_run_interrupted_at_any_store_call_in_any_phase_converges_when_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path(), SigningKey::generate("strata-test").unwrap());
    let (archive, path) = (world.archive(), world.path().to_path_buf());
    set_lifecycle_policy(&archive, &path).await;
    let months = [
        "2024-05-10",
        "2024-06-10",
        "2025-03-10",
        "2025-05-10",
        "2025-07-02",
    ];
    ingest_days(&archive, &path, "first.ndjson", &TENANTS[..2], &months).await;
    // A first run marks 2024-05 and 2024-06, encrypts up to 2025-05 and
    // tiers 2025-03.
    RetentionRun {
        at: instant("2025-07-15T00:00:00Z"),
    }
    .run(&archive, &path)
    .await
    .unwrap();
    // Then t1 is put under a hold (its marks are to be cancelled) and late
    // events arrive for 2024-07 (due for marking) and 2025-06 (plaintext in
    // a partition due for encryption).
    let hold = HoldRequest {
        tenant: "t1".into(),
        family: None,
        from: None,
        to: None,
        reason: "case 42".into(),
    };
    add_hold(&archive, hold, "counsel").await.unwrap();
    ingest_days(
        &archive,
        &path,
        "late.ndjson",
        &TENANTS[..2],
        &["2024-07-10", "2025-06-10"],
    )
    .await;
    world.save();

    // Six weeks later: t1's marks are cancelled, t0's swept, 2024-07 marked
    // (t0) or blocked (t1), 2025-06 and 2025-07 encrypted, 2025-05 tiered.
    let later = RetentionRun {
        at: instant("2025-08-26T00:00:00Z"),
    };
    let done = enumerate(&world, &later).await;
    let shape = later.shape(&world.archive(), &path).await;
    assert_eq!(shape.marks, ["tenant=t0/family=access/month=2024-07"]);
    assert_eq!(shape.cancelled.len(), 2, "{shape:?}");
    let cold = Some(path.join("cold").display().to_string());
    let tiered = &shape.partitions["tenant=t0/family=access/month=2025-05"];
    assert!(
        tiered
            .1
            .iter()
            .all(|(at, key)| *at == cold && key.is_some()),
        "{tiered:?}"
    );
    let partition = |tenant: &str, month: &str| {
        let key = format!("tenant={tenant}/family=access/month={month}");
        shape.partitions.get(&key).map(|(_, files)| files.clone())
    };
    for month in ["2024-05", "2024-06"] {
        assert_eq!(partition("t0", month), None, "{month} of t0 is swept");
        assert!(partition("t1", month).is_some(), "{month} of t1 is held");
    }
    for month in ["2025-06", "2025-07"] {
        for tenant in ["t0", "t1"] {
            let files = partition(tenant, month).unwrap();
            assert!(
                files.iter().all(|f| f.1.is_some()),
                "{tenant} {month}: {files:?}"
            );
        }
    }
    assert!(done.cases > 100, "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shredding_run_interrupted_at_any_store_call_converges_when_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path(), SigningKey::generate("strata-test").unwrap());
    let (archive, path) = (world.archive(), world.path().to_path_buf());
    set_lifecycle_policy(&archive, &path).await;
    ingest_days(
        &archive,
        &path,
        "first.ndjson",
        &TENANTS,
        &["2025-05-10", "2025-06-01"],
    )
    .await;
    RetentionRun {
        at: instant("2025-07-15T00:00:00Z"),
    }
    .run(&archive, &path)
    .await
    .unwrap();
    schedule_shred(
        &archive,
        "t2",
        "erasure request 7",
        "dpo",
        instant("2025-07-15T00:00:00Z"),
    )
    .await
    .unwrap();
    // Plaintext that arrived after the scheduling, not yet due for
    // encryption: the erasure must cover it too.
    ingest_days(&archive, &path, "late.ndjson", &["t2"], &["2025-07-20"]).await;
    world.save();

    let shredding = RetentionRun {
        at: instant("2025-07-23T00:00:00Z"),
    };
    let done = enumerate(&world, &shredding).await;
    let shape = shredding.shape(&world.archive(), &path).await;
    assert_eq!(shape.shredded.keys().collect::<Vec<_>>(), ["t2"]);
    assert_eq!(shape.live_keys["t2"], Vec::<u32>::new());
    assert_eq!(shape.live_keys["t0"], [1]);
    assert!(
        shape
            .partitions
            .iter()
            .all(|(key, (_, files))| !key.contains("t2") || files.iter().all(|f| f.1.is_some()))
    );
    assert!(done.cases > 20, "{done:?}");
}

/// `strata keys shred t2`.
struct ScheduleShred;

impl Scenario for ScheduleShred {
    type Shape = Retained;

    async fn run(&self, archive: &Archive, _world: &Path) -> Result<(), String> {
        let now = instant("2025-07-15T00:00:00Z");
        schedule_shred(archive, "t2", "erasure request 7", "dpo", now)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn shape(&self, archive: &Archive, world: &Path) -> Retained {
        retained(archive, world).await
    }
}

/// `strata keys rotate t0`. A rotation interrupted after the keyring made
/// its new version and before the catalog recorded it leaves that version
/// unrecorded, and the rerun makes another: what must hold is that the
/// tenant's newest key is newer than before and recorded in the log.
struct Rotation;

impl Scenario for Rotation {
    /// Whether the newest version is recorded, and is past version 1.
    type Shape = (bool, bool);

    async fn run(&self, archive: &Archive, world: &Path) -> Result<(), String> {
        rotate_key(archive, keys(world).as_ref(), "t0", "test")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn shape(&self, _archive: &Archive, world: &Path) -> (bool, bool) {
        let newest = *keys(world).live_versions("t0").unwrap().last().unwrap();
        let mut recorded = None;
        let log = world.join("archive/_strata/log");
        for entry in std::fs::read_dir(log).unwrap() {
            let path = entry.unwrap().path();
            let Ok(entry) = serde_json::from_slice::<Entry>(&std::fs::read(&path).unwrap()) else {
                continue; // a staging file
            };
            for change in entry.changes {
                if let Change::KeyRotated { tenant, version } = change
                    && tenant == "t0"
                {
                    recorded = recorded.max(Some(version));
                }
            }
        }
        (recorded == Some(newest), newest > 1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_and_shred_scheduling_interrupted_at_any_store_call_converge_when_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(dir.path(), SigningKey::generate("strata-test").unwrap());
    let (archive, path) = (world.archive(), world.path().to_path_buf());
    set_lifecycle_policy(&archive, &path).await;
    ingest_days(&archive, &path, "first.ndjson", &TENANTS, &["2025-05-10"]).await;
    RetentionRun {
        at: instant("2025-07-15T00:00:00Z"),
    }
    .run(&archive, &path)
    .await
    .unwrap();
    world.save();

    let rotations = enumerate(&world, &Rotation).await;
    assert_eq!(Rotation.shape(&world.archive(), &path).await, (true, true));
    let schedulings = enumerate(&world, &ScheduleShred).await;
    let shape = ScheduleShred.shape(&world.archive(), &path).await;
    assert_eq!(shape.shreds.keys().collect::<Vec<_>>(), ["t2"]);
    assert!(
        rotations.cases > 3 && schedulings.cases > 3,
        "{rotations:?} {schedulings:?}"
    );
}
