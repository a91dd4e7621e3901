//! The servers' write-ahead logs: segments after a node's committed
//! progress hold acknowledged events not yet written out, and must decode;
//! segments up to it are committed and only wait to be deleted; anything
//! else under the prefix is not an object strata writes.

use object_store::ObjectStore;
use serde::Serialize;
use strata_store::Snapshot;
use strata_wal::{Durability, PROBE_NAME, WAL_PREFIX, Wal, WalError, segment_seq, source_id};

use super::list;
use crate::{Code, Finding, VerifyError};

/// What the write-ahead logs hold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WalSummary {
    /// Segments of acknowledged events not yet committed to the archive.
    pub pending_segments: u64,
    /// The events in them.
    pub pending_events: u64,
    /// Segments already committed, waiting for their server to delete them.
    pub committed_segments: u64,
}

/// Checks every node's segments against the progress `state` records.
pub(super) async fn check_wal(
    store: &std::sync::Arc<dyn ObjectStore>,
    state: &Snapshot,
    findings: &mut Vec<Finding>,
) -> Result<WalSummary, VerifyError> {
    let mut summary = WalSummary::default();
    for path in list(store.as_ref(), WAL_PREFIX).await? {
        let parts: Vec<&str> = path.as_ref().split('/').collect();
        let (node, name) = match parts.as_slice() {
            [_, _, node, name] => (*node, *name),
            _ => ("", ""),
        };
        // A put cut off by a crash leaves its staging file (`<segment>#…`),
        // which nothing reads and the node's next start removes.
        let staging = name
            .split_once('#')
            .is_some_and(|(s, _)| segment_seq(s).is_some());
        if name == PROBE_NAME || staging {
            continue;
        }
        let Some(seq) = segment_seq(name) else {
            findings.push(Finding::new(
                Code::Unsealed,
                path.as_ref(),
                None,
                "is not a write-ahead segment strata writes",
            ));
            continue;
        };
        let committed = state.sources.get(&source_id(node)).map_or(0, |p| p.lines);
        if seq <= committed {
            summary.committed_segments += 1;
            continue;
        }
        let wal = Wal::new(store.clone(), Durability::ObjectStore, node);
        match wal.read(seq).await {
            Ok(records) => {
                summary.pending_segments += 1;
                summary.pending_events += records.iter().map(|r| line_count(&r.lines)).sum::<u64>();
            }
            Err(WalError::Damaged { source, .. }) => findings.push(Finding::new(
                Code::Modified,
                path.as_ref(),
                None,
                &format!("{source}: the acknowledged events in it cannot be replayed"),
            )),
            Err(WalError::Store { source, .. }) => return Err(source.into()),
            Err(other) => {
                return Err(VerifyError::Io {
                    path: path.to_string(),
                    source: std::io::Error::other(other.to_string()),
                });
            }
        }
    }
    Ok(summary)
}

/// Lines in `bytes` (each ends in `\n`).
fn line_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::super::tests::{archive, codes, run};
    use super::*;
    use bytes::Bytes;
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutPayload};
    use strata_store::{Draft, SourceProgress};
    use strata_wal::Record;

    #[tokio::test]
    async fn pending_segments_are_counted_committed_ones_tolerated_and_damage_found() {
        let (store, catalog, key) = archive(1).await;
        let dyn_store: std::sync::Arc<dyn ObjectStore> = store.clone();
        let wal = Wal::new(dyn_store, Durability::ObjectStore, "n1");
        let record = Record {
            ingested_at: 1,
            principal: "p".into(),
            lines: Bytes::from_static(b"{}\n{}\n"),
        };
        for seq in 1..=3 {
            wal.put(seq, wal.encode(&[&record])).await.unwrap();
        }
        // Segment 1 is committed (the server stopped before deleting it).
        let mut snapshot = catalog.load().await.unwrap();
        let progress = SourceProgress {
            id: source_id("n1"),
            path: "_strata/wal/n1".into(),
            lines: 1,
            rejected: 0,
            accepted: 2,
            complete: false,
        };
        let draft = Draft {
            operation: "serve".into(),
            actor: "p".into(),
            sources: vec![(progress, 0)],
            ..Default::default()
        };
        catalog.commit(&mut snapshot, draft).await.unwrap();
        let report = run(store.clone(), &key).await;
        assert_eq!(codes(&report), []);
        let wal_summary = &report.summary.wal;
        assert_eq!(
            (
                wal_summary.pending_segments,
                wal_summary.pending_events,
                wal_summary.committed_segments
            ),
            (2, 4, 1)
        );

        let third = Path::from(wal.segment_path(3));
        store
            .put(&third, PutPayload::from_static(b"garbage"))
            .await
            .unwrap();
        let stray = Path::from("_strata/wal/n1/notes.txt");
        store
            .put(&stray, PutPayload::from_static(b"hi"))
            .await
            .unwrap();
        let report = run(store, &key).await;
        assert_eq!(
            codes(&report),
            [
                (Code::Modified, third.to_string()),
                (Code::Unsealed, stray.to_string()),
            ]
        );
    }
}
