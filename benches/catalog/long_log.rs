//! Opening a session on a long log: archives of 1,000 to 1,000,000 commits
//! whose live state is the same size (a compaction every 50 commits keeps
//! one partition's files few; every commit completes one input, filed out of
//! the snapshot when it is written), so the time to load depends on the
//! state, not on how many commits made it.

use std::sync::Arc;
use std::time::Instant;

use object_store::memory::InMemory;
use strata_store::{Catalog, Draft, FileMeta, Snapshot, SourceProgress, sha256_hex};

/// Commits between compactions.
const COMPACT_EVERY: u64 = 50;

fn file(n: u64) -> FileMeta {
    FileMeta {
        path: format!("tenant=acme/family=access/month=2025-01/part-{n:08}.parquet"),
        tenant: "acme".into(),
        family: "access".into(),
        month: "2025-01".into(),
        size: 1 << 20,
        sha256: sha256_hex(&n.to_le_bytes()),
        rows: 1000,
        min_ts: 1_735_689_600_000_000,
        max_ts: 1_735_689_600_000_001,
        location: None,
        key_version: None,
        shredded: Vec::new(),
    }
}

/// An in-memory archive of `commits` commits, and how long building it took.
pub fn build(runtime: &tokio::runtime::Runtime, commits: u64) -> Catalog {
    let catalog = Catalog::new(Arc::new(InMemory::new()));
    let started = Instant::now();
    runtime.block_on(async {
        let mut snapshot = catalog.load().await.expect("load");
        let mut next = 0;
        while snapshot.seq < commits {
            let draft = match snapshot.seq % COMPACT_EVERY == COMPACT_EVERY - 1 {
                true => compaction(&snapshot, &mut next),
                false => ingest(&mut next),
            };
            catalog.commit(&mut snapshot, draft).await.expect("commit");
        }
    });
    eprintln!(
        "built {commits} commits in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    catalog
}

fn ingest(next: &mut u64) -> Draft {
    *next += 1;
    let input = SourceProgress {
        id: format!("blake3:{:064x}", *next),
        path: format!("in-{next}.ndjson"),
        lines: 1000,
        rejected: 0,
        accepted: 1000,
        complete: true,
    };
    Draft {
        operation: "ingest".into(),
        actor: "bench".into(),
        add: vec![file(*next)],
        sources: vec![(input, 0)],
        ..Default::default()
    }
}

fn compaction(snapshot: &Snapshot, next: &mut u64) -> Draft {
    *next += 1;
    Draft {
        operation: "compact".into(),
        actor: "bench".into(),
        remove: snapshot.files.values().cloned().collect(),
        add: vec![file(*next)],
        ..Default::default()
    }
}
