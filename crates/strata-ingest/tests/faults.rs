//! Every object-store call of a compaction, interrupted in turn: the run
//! fails (or finishes, when the call was best effort), the rerun converges to
//! what an uninterrupted compaction leaves (every row once, one file per
//! partition), and `verify --deep` finds nothing.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use strata_faults::{Fault, FaultyStore, Kind, copy_folder};
use strata_ingest::{CompactOptions, IngestOptions, Input, compact, ingest};
use strata_integrity::SigningKey;
use strata_store::{Archive, Catalog, Missing, Snapshot, open_archive, open_location};

/// An archive of three ingests of two tenants over two months: three small
/// files in each of four partitions, for compaction to merge.
async fn base(dir: &Path, key: &SigningKey) -> PathBuf {
    let location = dir.join("base");
    let archive = sealed_archive(&location, key);
    for part in 0..3 {
        let lines: String = (0..40)
            .map(|i| {
                let day = 1 + (i * 7 + part * 3) % 55;
                let (month, day) = if day > 31 { (2, day - 31) } else { (1, day) };
                format!(
                    "{{\"ts\":\"2025-{month:02}-{day:02}T10:{i:02}:00Z\",\"tenant\":\"t{}\",\"family\":\"access\",\"action\":\"login\",\"event_id\":\"p{part}-{i}\"}}\n",
                    i % 2
                )
            })
            .collect();
        let input = dir.join(format!("part-{part}.ndjson"));
        std::fs::write(&input, lines).unwrap();
        ingest(
            &archive,
            vec![Input::File(input)],
            IngestOptions::default(),
            (),
        )
        .await
        .unwrap();
    }
    location
}

/// The archive at `location`, sealed with `key`.
fn sealed_archive(location: &Path, key: &SigningKey) -> Archive {
    let mut archive = open_archive(location.to_str().unwrap(), Missing::Create).unwrap();
    archive.catalog = archive.catalog.with_seal(key.clone(), None);
    archive
}

/// The archive at `location` through a [`FaultyStore`].
fn faulty_archive(location: &Path, key: &SigningKey) -> (Archive, Arc<FaultyStore>) {
    let store = FaultyStore::new(open_location(location.to_str().unwrap(), Missing::Fail).unwrap());
    let archive = Archive {
        store: store.clone(),
        location: location.display().to_string(),
        catalog: Catalog::new(store.clone()).with_seal(key.clone(), None),
    };
    (archive, store)
}

/// Lets the lease of every writer recorded in `location` run out, as time
/// would after a crash.
fn expire_leases(location: &Path) {
    let Ok(records) = std::fs::read_dir(location.join("_strata/writers")) else {
        return;
    };
    for record in records {
        let path = record.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(mut record) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue; // a staging file the crash left mid-write
        };
        record["lease_until"] = "2000-01-01T00:00:00Z".into();
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    }
}

/// Rows, partitions and inputs of `snapshot`, and its files if `files`
/// (an interrupted ingest resumes in other chunks, so into other files).
fn shape(snapshot: &Snapshot, files: bool) -> (u64, usize, usize, Option<usize>) {
    let partitions: std::collections::BTreeSet<_> = (snapshot.files.values())
        .map(|f| (&f.tenant, &f.family, &f.month))
        .collect();
    let complete = snapshot.sources.values().filter(|s| s.complete).count();
    let files = files.then_some(snapshot.files.len());
    (snapshot.total_rows(), partitions.len(), complete, files)
}

async fn assert_verified(location: &Path, key: &SigningKey, what: &str) {
    let store = open_location(location.to_str().unwrap(), Missing::Fail).unwrap();
    let options = strata_verify::Options {
        key: key.verifier(),
        trusted: None,
        deep: true,
        sample: 0,
    };
    let report = strata_verify::verify(store, &options, &()).await.unwrap();
    assert!(report.findings.is_empty(), "{what}: {:?}", report.findings);
}

/// A command under test, run on an archive.
type Command = for<'a> fn(&'a Archive) -> Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;

/// Runs `command` on a copy of `base` once uninterrupted, then once per
/// store call it made, interrupted there (a crash at every call, a lost
/// answer at every put and delete), each followed, once the lease has run
/// out, by a rerun. Every rerun must end in the uninterrupted `shape`, and
/// verify clean. Returns (interruptions, runs they stopped).
async fn enumerate(
    dir: &Path,
    base: &Path,
    key: &SigningKey,
    command: Command,
    same_files: bool,
) -> (usize, usize) {
    let reference = dir.join("reference");
    copy_folder(base, &reference).unwrap();
    let (uninterrupted, store) = faulty_archive(&reference, key);
    store.disarm();
    command(&uninterrupted).await.unwrap();
    let calls: Vec<(Kind, usize)> = Kind::ALL.iter().map(|&k| (k, store.calls(k))).collect();
    let expected = shape(&uninterrupted.catalog.load().await.unwrap(), same_files);
    std::fs::remove_dir_all(&reference).unwrap();

    let (mut cases, mut failed) = (0, 0);
    for &(kind, count) in &calls {
        let faults: &[Fault] = match kind {
            Kind::Put | Kind::Delete => &[Fault::Crash, Fault::Lost],
            _ => &[Fault::Crash],
        };
        for n in 1..=count {
            for &fault in faults {
                let what = format!("{fault:?} at {kind:?} {n} of {count}");
                let location = dir.join(format!("case-{cases}"));
                cases += 1;
                copy_folder(base, &location).unwrap();
                let (archive, store) = faulty_archive(&location, key);
                store.arm(kind, n, fault);
                if command(&archive).await.is_err() {
                    failed += 1;
                }
                assert!(store.tripped(), "{what}: the call happened");
                store.disarm();
                expire_leases(&location);
                let rerun = sealed_archive(&location, key);
                command(&rerun)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: the rerun failed: {e}"));
                let state = rerun.catalog.load().await.unwrap();
                assert_eq!(shape(&state, same_files), expected, "{what}");
                assert_verified(&location, key, &what).await;
                std::fs::remove_dir_all(&location).unwrap();
            }
        }
    }
    // Best-effort calls (deleting merged sources, snapshots) may fail
    // without failing the run; most interruptions stop it.
    assert!(
        failed * 2 > cases,
        "{failed} of {cases} interrupted runs failed: {calls:?}"
    );
    eprintln!("{cases} interruptions ({failed} stopped the run): {calls:?}");
    (cases, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_interrupted_at_any_store_call_converges_when_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate("strata-test").unwrap();
    let base = base(dir.path(), &key).await;
    let compaction: Command = |archive| {
        Box::pin(async move {
            compact(archive, CompactOptions::default())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    };
    let (cases, _) = enumerate(dir.path(), &base, &key, compaction, true).await;
    assert!(cases > 40, "{cases} interruptions tried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_interrupted_at_any_store_call_converges_when_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate("strata-test").unwrap();
    let base = base(dir.path(), &key).await;
    // One more input, committed in several chunks.
    let lines: String = (0..300)
        .map(|i| {
            format!(
                "{{\"ts\":\"2025-03-{:02}T08:00:00Z\",\"tenant\":\"t{}\",\"family\":\"data_usage\",\"action\":\"export\",\"event_id\":\"late-{i}\"}}\n",
                1 + i % 28,
                i % 3
            )
        })
        .collect();
    std::fs::write(dir.path().join("late.ndjson"), lines).unwrap();
    let ingestion: Command = |archive| {
        Box::pin(async move {
            // The input sits beside the archive's folder.
            let folder = Path::new(&archive.location).parent().unwrap().to_path_buf();
            let input = Input::File(folder.join("late.ndjson"));
            let options = IngestOptions {
                chunk_bytes: 8 << 10,
                ..IngestOptions::default()
            };
            ingest(archive, vec![input], options, ())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    };
    let (cases, _) = enumerate(dir.path(), &base, &key, ingestion, false).await;
    assert!(cases > 20, "{cases} interruptions tried");
}
