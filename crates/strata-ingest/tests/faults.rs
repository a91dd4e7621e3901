//! Every object-store call of a compaction and of an ingest, interrupted in
//! turn: the run fails (or finishes, when the call was best effort), the
//! rerun converges to what an uninterrupted run leaves (every row once, every
//! input complete), and `verify --deep` finds nothing.

use std::path::Path;

use strata_faults::{Scenario, World, data_files, enumerate};
use strata_ingest::{CompactOptions, IngestOptions, Input, compact, ingest};
use strata_integrity::SigningKey;
use strata_store::{Archive, PartitionKey, Snapshot};

/// A world whose archive holds three ingests of two tenants over two
/// months: three small files in each of four partitions, for compaction to
/// merge.
async fn three_ingests(dir: &Path) -> World {
    let world = World::new(dir, SigningKey::generate("strata-test").unwrap());
    let archive = world.archive();
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
    world
}

/// Rows, partitions and complete inputs of `snapshot`, and its files if
/// `files` (an interrupted ingest resumes in other chunks, so into other
/// files).
fn shape(snapshot: &Snapshot, files: bool) -> (u64, usize, usize, Option<usize>) {
    let partitions: std::collections::BTreeSet<_> = (snapshot.files.values())
        .map(|f| (&f.tenant, &f.family, &f.month))
        .collect();
    let complete = snapshot.sources.values().filter(|s| s.complete).count();
    let files = files.then_some(snapshot.files.len());
    (snapshot.total_rows(), partitions.len(), complete, files)
}

/// `strata compact`: every partition ends as one file.
struct Compaction;

impl Scenario for Compaction {
    type Shape = (u64, usize, usize, Option<usize>);

    async fn run(&self, archive: &Archive, _world: &Path) -> Result<(), String> {
        compact(archive, CompactOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn shape(&self, archive: &Archive, _world: &Path) -> Self::Shape {
        shape(&archive.catalog.load().await.unwrap(), true)
    }
}

/// `strata ingest` of `late.ndjson` in the world, committed in several chunks.
struct Ingestion;

impl Scenario for Ingestion {
    type Shape = (u64, usize, usize, Option<usize>);

    async fn run(&self, archive: &Archive, world: &Path) -> Result<(), String> {
        let options = IngestOptions {
            chunk_bytes: 8 << 10,
            ..IngestOptions::default()
        };
        let input = Input::File(world.join("late.ndjson"));
        ingest(archive, vec![input], options, ())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn shape(&self, archive: &Archive, _world: &Path) -> Self::Shape {
        shape(&archive.catalog.load().await.unwrap(), false)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_interrupted_at_any_store_call_converges_when_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let world = three_ingests(dir.path()).await;
    world.save();
    let done = enumerate(&world, &Compaction).await;
    assert!(done.cases > 40, "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_interrupted_at_any_store_call_converges_when_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let world = three_ingests(dir.path()).await;
    let lines: String = (0..300)
        .map(|i| {
            format!(
                "{{\"ts\":\"2025-03-{:02}T08:00:00Z\",\"tenant\":\"t{}\",\"family\":\"data_usage\",\"action\":\"export\",\"event_id\":\"late-{i}\"}}\n",
                1 + i % 28,
                i % 3
            )
        })
        .collect();
    std::fs::write(world.path().join("late.ndjson"), lines).unwrap();
    world.save();
    let done = enumerate(&world, &Ingestion).await;
    assert!(done.cases > 20, "{done:?}");
}

/// Another compaction commits one partition while this one is uploading its
/// merges: this one's commit loses, and it leaves that partition to the
/// winner, commits the others, and deletes only its own upload there (the
/// winner's sources are kept for readers of the state before its commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_that_loses_a_race_leaves_the_partition_to_the_winner() {
    let dir = tempfile::tempdir().unwrap();
    let world = three_ingests(dir.path()).await;
    let before = world.archive().catalog.load().await.unwrap();
    let sources: std::collections::BTreeSet<String> = before.files.keys().cloned().collect();
    let contested = PartitionKey::of_file(before.files.values().next().unwrap()).unwrap();

    let (archive, store) = world.faulty_archive();
    let winner = world.archive();
    let only_contested = CompactOptions {
        partitions: Some([contested.clone()].into()),
        ..CompactOptions::default()
    };
    store.before_put("tenant=", move || {
        Box::pin(async move {
            let won = compact(&winner, only_contested).await.unwrap();
            assert_eq!(won.partitions, 1, "{won:?}");
        })
    });
    let report = compact(&archive, CompactOptions::default()).await.unwrap();

    let after = world.archive().catalog.load().await.unwrap();
    assert_eq!(report.partitions, 3, "{report:?}");
    assert_eq!(report.files_removed, 9, "{report:?}");
    assert_eq!(after.total_rows(), before.total_rows());
    assert_eq!(shape(&after, true), (before.total_rows(), 4, 3, Some(4)));
    // On disk: the live files, and every source (kept after its removal);
    // nothing else, so not the losing upload.
    let live: std::collections::BTreeSet<String> = after.files.keys().cloned().collect();
    let expected: std::collections::BTreeSet<String> = live.union(&sources).cloned().collect();
    assert_eq!(data_files(&world.path().join("archive")), expected);
}
