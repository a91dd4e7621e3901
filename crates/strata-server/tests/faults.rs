//! A server restarted after a crash, interrupted at each of its store calls
//! in turn: replaying the write-ahead log, writing the events out,
//! committing them and deleting the committed segments. Every rerun must
//! end with each acknowledged event in the archive exactly once, no
//! segment left, and `verify --deep` clean.

use std::path::Path;

use bytes::Bytes;
use strata_access::{NewPrincipal, Role, add_principal};
use strata_faults::{Scenario, World, enumerate};
use strata_integrity::SigningKey;
use strata_server::{ServeOptions, Server};
use strata_store::Archive;
use strata_wal::{Durability, Record, Wal, source_id};

const NODE: &str = "n1";

/// Events per segment, and segments left by the crashed server.
const EVENTS: u64 = 40;
const SEGMENTS: u64 = 3;

/// A world whose archive has a principal and the segments a server killed
/// before its first write-out leaves: events of two tenants over two months.
async fn crashed_server(dir: &Path, key: &SigningKey) -> World {
    let world = World::new(dir, key.clone());
    let archive = world.archive();
    let new = NewPrincipal {
        name: "shipper".into(),
        role: Role::Ingest,
        tenants: vec![],
        reason: "test".into(),
    };
    add_principal(&archive, new, "test").await.unwrap();
    let wal = Wal::new(archive.store.clone(), Durability::ObjectStore, NODE);
    for seq in 1..=SEGMENTS {
        let lines: String = (0..EVENTS)
            .map(|i| {
                format!(
                    "{{\"ts\":\"2025-0{}-{:02}T10:00:00Z\",\"tenant\":\"t{}\",\"family\":\"access\",\"action\":\"login\",\"event_id\":\"s{seq}-{i}\"}}\n",
                    1 + i % 2,
                    1 + i % 28,
                    i % 2
                )
            })
            .collect();
        let record = Record {
            ingested_at: 1_700_000_000_000_000 + seq as i64,
            principal: "shipper".into(),
            lines: Bytes::from(lines),
        };
        wal.put(seq, wal.encode(&[&record])).await.unwrap();
    }
    world
}

/// Restarting the server and stopping it: replay, write-out, commit, prune.
struct Restart;

impl Scenario for Restart {
    /// Rows in the archive, the log's committed progress, segments left.
    type Shape = (u64, u64, usize);

    async fn run(&self, archive: &Archive, _world: &Path) -> Result<(), String> {
        let options = ServeOptions {
            node_id: NODE.into(),
            ..ServeOptions::default()
        };
        let server = Server::start(archive.clone(), options)
            .await
            .map_err(|e| e.to_string())?;
        server.finish().await.map_err(|e| e.to_string())
    }

    async fn shape(&self, archive: &Archive, _world: &Path) -> Self::Shape {
        let snapshot = archive.catalog.load().await.unwrap();
        let progress = snapshot
            .sources
            .get(&source_id(NODE))
            .map_or(0, |p| p.lines);
        let wal = Wal::new(archive.store.clone(), Durability::ObjectStore, NODE);
        let left = wal.list().await.unwrap().len();
        (snapshot.total_rows(), progress, left)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_interrupted_at_any_store_call_converges_when_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate("strata-test").unwrap();
    let world = crashed_server(dir.path(), &key).await;
    world.save();
    let done = enumerate(&world, &Restart).await;
    assert!(done.cases > 20, "{done:?}");
    let shape = Restart.shape(&world.archive(), world.path()).await;
    assert_eq!(shape, (EVENTS * SEGMENTS, SEGMENTS, 0));
}

/// A write-out whose commit landed but which failed afterwards (here,
/// deleting its writer record) is retried by the same server: the retry
/// must see its own commit and add nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_out_retried_after_its_commit_landed_commits_nothing_twice() {
    use std::sync::Arc;
    use strata_faults::{Fault, FaultyStore, Kind};
    use strata_store::Stores;

    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate("strata-test").unwrap();
    let world = crashed_server(dir.path(), &key).await;
    let mut archive = world.archive();
    let store = FaultyStore::new(archive.store.clone());
    archive.store = store.clone();
    archive.stores = Stores::new(store.clone());
    archive.catalog = strata_store::Catalog::new(store.clone()).with_seal(key, None);
    let options = ServeOptions {
        node_id: NODE.into(),
        ..ServeOptions::default()
    };
    let server = Server::start(archive, options).await.unwrap();
    // The first delete of the write-out is its writer record's, after the commit.
    store.arm(Kind::Delete, 1, Fault::Fail);
    let shared = Arc::clone(server.shared());
    let failed =
        strata_server::writeout::write_out_and_compact(&shared, strata_server::merging::Merge::Due)
            .await;
    assert!(failed.is_err(), "the record's deletion failed");
    store.disarm();
    strata_server::writeout::write_out_and_compact(&shared, strata_server::merging::Merge::Due)
        .await
        .unwrap();
    server.finish().await.unwrap();
    let shape = Restart.shape(&world.archive(), world.path()).await;
    assert_eq!(shape, (EVENTS * SEGMENTS, SEGMENTS, 0));
}
