//! `strata verify`: replays the catalog and checks it against its signed
//! checkpoints and against the objects in the store.
//!
//! The orchestration and the report are here; `replay` replays the log and
//! compares snapshots, `checkpoints` checks signed checkpoints, heartbeats
//! and a trusted checkpoint against the replayed tree, and `data` checks the
//! stored objects against the catalog and rehashes data files, and `wal`
//! checks the servers' write-ahead segments against their recorded progress.

mod checkpoints;
mod data;
mod delta;
mod replay;
mod wal;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use serde::Serialize;
use strata_integrity::VerifierKey;
use strata_store::{LOG_PREFIX, SNAPSHOT_PREFIX, entry_path, get_if_exists, seq_of};

use crate::{Code, Finding, VerifyError};
use checkpoints::{check_checkpoints, check_heartbeats, check_trusted};
use data::check_data;
use delta::DeltaCheck;
use replay::replay_log;
pub use wal::WalSummary;

/// What to check an archive against.
pub struct Options {
    /// The key that must have signed every checkpoint.
    pub key: VerifierKey,
    /// A checkpoint kept outside the archive (`--trusted`): the log must
    /// still contain it and extend it.
    pub trusted: Option<Trusted>,
    /// Rehash every data file; otherwise rehash `sample` random ones.
    pub deep: bool,
    /// Data files rehashed when not `deep`.
    pub sample: usize,
}

/// A checkpoint note from outside the archive.
pub struct Trusted {
    /// Where it came from, for findings.
    pub source: String,
    /// The signed note.
    pub note: String,
}

/// Hears about the hashing of data files, for progress bars.
pub trait Observer: Sync {
    /// Hashing starts: this many files and bytes.
    fn hashing(&self, _files: u64, _bytes: u64) {}
    /// This many more bytes were hashed.
    fn hashed(&self, _bytes: u64) {}
}

impl Observer for () {}

/// How data files were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashMode {
    /// Every file's size, and its bytes' SHA-256.
    Deep,
    /// Every file's size, and the SHA-256 of a random sample.
    Sample,
}

/// Totals of one verification.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The archive's checkpoint origin.
    pub origin: String,
    /// Catalog entries read.
    pub entries: u64,
    /// Merkle root over all entries, hex.
    pub root: String,
    /// Largest tree size covered by a valid signed checkpoint.
    pub signed_size: u64,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
    /// Signed heartbeats checked (the retention daemon signs one at least hourly).
    pub heartbeats: u64,
    /// The time of the newest valid heartbeat.
    pub last_heartbeat: Option<String>,
    /// Snapshots compared with the replayed log.
    pub snapshots: u64,
    /// Live data files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Whether all or a sample of the files were rehashed.
    pub hash_mode: HashMode,
    /// Files rehashed.
    pub files_hashed: u64,
    /// Bytes rehashed.
    pub bytes_hashed: u64,
    /// Hashing throughput, MB/s.
    pub hash_mb_per_s: f64,
    /// Files removed by a commit (compaction, tiering, expiry) whose objects
    /// are still there, waiting to be swept.
    pub removed_not_yet_deleted: u64,
    /// Partitions whose files were removed by retention expiry.
    pub partitions_expired: u64,
    /// The servers' write-ahead logs.
    pub wal: WalSummary,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Every finding and the totals.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Problems found; empty when the archive is intact.
    pub findings: Vec<Finding>,
    /// Totals.
    pub summary: Summary,
}

pub(super) async fn get(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<bytes::Bytes>, VerifyError> {
    Ok(get_if_exists(store, path).await?)
}

pub(super) async fn list(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<Path>, VerifyError> {
    let prefix = Path::from(prefix);
    Ok(store
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await?)
}

/// Splits the objects under `prefix` into those named by sequence number and
/// strays, reported as unsealed.
pub(super) async fn numbered(
    store: &dyn ObjectStore,
    prefix: &str,
    findings: &mut Vec<Finding>,
) -> Result<BTreeMap<u64, Path>, VerifyError> {
    let mut numbered = BTreeMap::new();
    for path in list(store, prefix).await? {
        match seq_of(&path) {
            Some(seq) => {
                numbered.insert(seq, path);
            }
            None => findings.push(Finding::new(
                Code::Unsealed,
                path.as_ref(),
                None,
                "is not a catalog object strata writes",
            )),
        }
    }
    Ok(numbered)
}

/// Verifies the archive in `store`.
pub async fn verify(
    store: Arc<dyn ObjectStore>,
    options: &Options,
    observer: &dyn Observer,
) -> Result<Report, VerifyError> {
    let started = Instant::now();
    let mut findings = Vec::new();
    let archive = store.clone();
    let store = &*store;

    let entries = numbered(store, LOG_PREFIX, &mut findings).await?;
    let snapshots = numbered(store, SNAPSHOT_PREFIX, &mut findings).await?;
    let mut delta = DeltaCheck::list(store, &mut findings).await?;
    let replay = replay_log(store, &entries, &snapshots, &mut delta, &mut findings).await?;
    let entry_count = entries.keys().next_back().copied().unwrap_or(0);
    // An edited entry changes its own hash, so it is judged from the entry before it.
    let broken_from = (findings.iter())
        .filter(|f| f.code == Code::ChainBroken)
        .filter_map(|f| f.seq)
        .chain(replay.link_breaks.iter().map(|&seq| seq.saturating_sub(1)))
        .chain(replay.untrusted.iter().map(|(seq, _)| *seq))
        .min();
    delta.finish(entry_count, broken_from, &mut findings);
    let beyond_log = (Bound::Excluded(entry_count), Bound::Unbounded);
    for (&seq, path) in snapshots.range(beyond_log) {
        findings.push(Finding::new(
            Code::Modified,
            path.as_ref(),
            Some(seq),
            &format!("a snapshot of entry {seq}, but the log has {entry_count} entries"),
        ));
    }

    let checkpoints =
        check_checkpoints(store, options, &replay, entry_count, &mut findings).await?;
    // Entries after the newest checkpoint object have none at all; a bad or
    // mismatching checkpoint is reported by itself. After a missing entry the
    // tree is unknown, so coverage cannot be judged.
    if replay.tree_complete && checkpoints.newest_within_log < entry_count {
        let first = checkpoints.newest_within_log + 1;
        let which = if first == entry_count {
            format!("entry {first} is")
        } else {
            format!("entries {first} to {entry_count} are")
        };
        findings.push(Finding::new(
            Code::Unsealed,
            entry_path(first).as_ref(),
            Some(first),
            &format!(
                "{which} not covered by any checkpoint signed by {} (a writer stopped before \
                 signing, or entries were added by someone without the key)",
                options.key.name()
            ),
        ));
    }
    if let Some(trusted) = &options.trusted {
        check_trusted(trusted, options, &replay, entry_count, &mut findings);
    }
    let heartbeats = check_heartbeats(store, options, &replay, entry_count, &mut findings).await?;

    let wal = wal::check_wal(&archive, &replay.state, &mut findings).await?;
    let data = check_data(archive, options, &replay, observer, &mut findings).await?;
    // Catalog findings first, in log order, then data objects by path.
    findings.sort_by_key(|f| (f.seq.is_none(), f.seq, f.path.clone()));
    let seconds = started.elapsed().as_secs_f64();
    Ok(Report {
        findings,
        summary: Summary {
            origin: replay.state.origin.clone(),
            entries: entry_count,
            root: hex::encode(replay.tree.root()),
            signed_size: checkpoints.signed_size,
            heartbeats: heartbeats.count,
            last_heartbeat: heartbeats.last,
            checkpoints: checkpoints.count,
            snapshots: snapshots.len() as u64,
            files: replay.state.files.len() as u64,
            bytes: replay.state.total_bytes(),
            hash_mode: if options.deep {
                HashMode::Deep
            } else {
                HashMode::Sample
            },
            files_hashed: data.files_hashed,
            bytes_hashed: data.bytes_hashed,
            hash_mb_per_s: data.bytes_hashed as f64 / 1e6 / data.hash_seconds.max(1e-9),
            removed_not_yet_deleted: data.removed_not_yet_deleted,
            partitions_expired: replay.expired_partitions.len() as u64,
            wal,
            seconds,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};
    use strata_integrity::SigningKey;
    use strata_store::{Catalog, Draft, FileMeta, Snapshot, sha256_hex};

    /// An archive of `commits` sealed commits, each adding one real object.
    pub(super) async fn archive(commits: u64) -> (Arc<InMemory>, Catalog, SigningKey) {
        let store = Arc::new(InMemory::new());
        let key = SigningKey::generate("strata/test").unwrap();
        let catalog = Catalog::new(store.clone())
            .with_snapshot_interval(2)
            .with_seal(key.clone(), None);
        let mut snapshot = catalog.load().await.unwrap();
        for i in 0..commits {
            add_file(&store, &catalog, &mut snapshot, &data_path(i)).await;
        }
        (store, catalog, key)
    }

    /// The path of the `i`th test file.
    pub(super) fn data_path(i: u64) -> String {
        format!("tenant=t/family=access/month=1970-01/part-f{i}.parquet")
    }

    pub(super) async fn add_file(
        store: &InMemory,
        catalog: &Catalog,
        snapshot: &mut Snapshot,
        path: &str,
    ) {
        let bytes = format!("contents of {path}");
        store
            .put(
                &Path::from(path),
                PutPayload::from(bytes.clone().into_bytes()),
            )
            .await
            .unwrap();
        let file = FileMeta {
            path: path.to_string(),
            tenant: "t".into(),
            family: "access".into(),
            month: "1970-01".into(),
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes.as_bytes()),
            rows: 1,
            min_ts: 0,
            max_ts: 0,
            location: None,
            key_version: None,
            shredded: Vec::new(),
        };
        let draft = Draft {
            operation: "ingest".into(),
            actor: "test".into(),
            add: vec![file],
            ..Default::default()
        };
        catalog.commit(snapshot, draft).await.unwrap();
    }

    pub(super) async fn run(store: Arc<InMemory>, key: &SigningKey) -> Report {
        let options = Options {
            key: key.verifier(),
            trusted: None,
            deep: true,
            sample: 0,
        };
        verify(store, &options, &()).await.unwrap()
    }

    pub(super) fn codes(report: &Report) -> Vec<(Code, String)> {
        report
            .findings
            .iter()
            .map(|f| (f.code, f.path.clone()))
            .collect()
    }

    #[tokio::test]
    async fn a_sealed_archive_is_intact() {
        let (store, _, key) = archive(5).await;
        let report = run(store, &key).await;
        assert_eq!(codes(&report), []);
        assert_eq!(report.summary.entries, 5);
        assert_eq!(report.summary.signed_size, 5);
        assert_eq!(report.summary.snapshots, 2);
        assert_eq!(report.summary.files_hashed, 5);
    }

    #[tokio::test]
    async fn a_stray_object_among_the_entries_is_unsealed() {
        let (store, _, key) = archive(3).await;
        store
            .put(&Path::from("_strata/log/notes.txt"), "hi".into())
            .await
            .unwrap();
        let report = run(store, &key).await;
        assert_eq!(
            codes(&report),
            [(Code::Unsealed, "_strata/log/notes.txt".to_string())]
        );
    }
}
