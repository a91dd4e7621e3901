//! The catalog: a hash-chained log of commits under `_strata/log/`, written
//! create-only, with periodic checkpoints under `_strata/checkpoints/`.
//!
//! Commit `n` is the object `_strata/log/<n, 20 digits>.json`. A writer that
//! loses the race for `n` (the store answers `AlreadyExists` to its
//! `PutMode::Create`) reads the entries it missed, checks its draft still
//! holds (the files it removes are still there, the sources it advances were
//! not advanced by someone else) and tries `n + 1`. Each entry carries the
//! SHA-256 of the previous entry's bytes, so the log is a hash chain.
//! The entries are also the leaves of an RFC 6962 Merkle tree: with a signing
//! key, every commit is followed by a signed C2SP checkpoint of the tree at
//! `_strata/checkpoints/<n>.note` (and, if asked, a copy at a witness).
//! Every `snapshot_interval` commits the whole state is written to
//! `_strata/snapshots/<n>.json` and `_strata/_last_snapshot` points at
//! it, so loading reads one snapshot and the few entries after it.
//!
//! This module holds the [`Catalog`] (loading, refreshing, committing) and
//! its errors; `entry` what a commit says, `snapshot` the state and its
//! stored snapshots, `seal` the signing of entries, checkpoints and
//! heartbeats, and `paths` where each catalog object is stored.

mod entry;
mod filing;
mod paths;
mod seal;
mod snapshot;

use std::sync::Arc;

use chrono::Utc;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};
use strata_integrity::SigningKey;

pub use entry::{Draft, ENTRY_FORMAT, Entry, FileMeta, SourceProgress, Untrusted};
pub use filing::{FiledIndex, FiledShard, SOURCES_PREFIX, index_path, shard_of, shard_path};
pub(crate) use paths::put_create;
pub use paths::{
    CHECKPOINT_PREFIX, HEARTBEAT_PREFIX, LOG_PREFIX, SNAPSHOT_NOTE_PREFIX, SNAPSHOT_PREFIX,
    WITNESS_HEARTBEAT, WITNESS_LATEST, checkpoint_name, checkpoint_path, entry_path, get_if_exists,
    seq_of, snapshot_note_path, snapshot_path,
};
use seal::Seal;
pub use snapshot::{SNAPSHOT_FORMAT, Snapshot};

/// The operation of sweeps: commits that delete partitions marked for
/// expiry once their grace period is over (stored as `expire` since the
/// first format; marks are `expire-mark`).
pub const SWEEP_OPERATION: &str = "expire";

/// `prev` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const DEFAULT_SNAPSHOT_INTERVAL: u64 = 100;
const MAX_COMMIT_ATTEMPTS: usize = 100;

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Errors reading or writing the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The object store failed.
    #[error("catalog storage error: {0}")]
    Store(#[from] object_store::Error),
    /// A catalog object is not valid JSON of the expected shape.
    #[error("catalog object {path} is corrupt: {source}")]
    Corrupt {
        /// The object.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// An entry does not follow on from the state before it, or says
    /// something strata never writes (a malformed path, month or time).
    #[error("catalog entry {} is refused: {reason}", entry_path(*seq))]
    Inconsistent {
        /// The entry.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// `_last_snapshot` names a snapshot that is not there.
    #[error("catalog snapshot {path} is missing (named by _strata/_last_snapshot)")]
    MissingSnapshot {
        /// The snapshot object.
        path: String,
    },
    /// A shard of completed inputs named by the snapshot cannot be used.
    #[error("catalog object {path} {reason}; run `strata verify`")]
    Shard {
        /// The shard object.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A cold store named by the catalog could not be opened.
    #[error(transparent)]
    Location(#[from] crate::archive::ArchiveError),
    /// This writer's signing key is not one the archive trusts.
    #[error(
        "this writer's signing key {key} is not trusted by the archive: a trusted writer must run `strata keys trust {key} --reason …` first"
    )]
    UntrustedWriter {
        /// The writer's verifier key.
        key: String,
    },
    /// A writer could not renew its lease in time: others may already treat
    /// it as dead, so it stops before creating or orphaning anything more.
    #[error(
        "writer {writer} could not renew its lease in time and stopped; rerun the command (what it uploaded is cleaned up once its lease has run out)"
    )]
    LeaseLost {
        /// The writer's instance id.
        writer: String,
    },
    /// A concurrent commit invalidated this one.
    #[error("commit conflict: {0}")]
    Conflict(#[from] Conflict),
    /// A heartbeat could not be signed.
    #[error("cannot sign a heartbeat: {0}")]
    Heartbeat(String),
    /// The commit landed but its signed checkpoint could not be stored; the
    /// next commit's checkpoint will cover it.
    #[error("commit {seq} landed but its checkpoint could not be written: {source}")]
    Seal {
        /// The commit.
        seq: u64,
        /// The cause.
        source: object_store::Error,
    },
}

/// Why a draft can no longer be committed on top of the current state
/// (delta-rs's `CommitConflictError` is the model): the caller decides
/// whether to plan again (a compaction that lost a race) or to report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A file the draft removes was removed by another commit.
    #[error("{path} was removed by another commit")]
    FileRemoved {
        /// The file.
        path: String,
    },
    /// An input the draft advances was advanced by another ingest.
    #[error(
        "{path} was advanced to line {current} by another ingest (this one expected line {expected})"
    )]
    SourceAdvanced {
        /// The input's path.
        path: String,
        /// Where the catalog has it now.
        current: u64,
        /// Where the draft expected it.
        expected: u64,
    },
    /// A policy, hold, expiry or key change no longer applies (a hold
    /// placed meanwhile, a mark already made, ...).
    #[error("{0}")]
    Governance(String),
    /// Other writers kept committing first.
    #[error("gave up after {0} concurrent commits")]
    TooManyAttempts(usize),
}

/// The catalog of one archive.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(crate) store: Arc<dyn ObjectStore>,
    snapshot_interval: u64,
    seal: Option<Arc<Seal>>,
}

impl Catalog {
    /// The catalog in `store` (rooted at the archive).
    pub fn new(store: Arc<dyn ObjectStore>) -> Catalog {
        Catalog {
            store,
            snapshot_interval: DEFAULT_SNAPSHOT_INTERVAL,
            seal: None,
        }
    }

    /// Writes a snapshot every `interval` commits instead of every 100.
    pub fn with_snapshot_interval(mut self, interval: u64) -> Catalog {
        self.snapshot_interval = interval.max(1);
        self
    }

    /// Signs a checkpoint with `key` after every commit, and copies it to
    /// `witness` (as `<size>.note` and [`WITNESS_LATEST`]) when given.
    pub fn with_seal(mut self, key: SigningKey, witness: Option<Arc<dyn ObjectStore>>) -> Catalog {
        self.seal = Some(Arc::new(Seal { key, witness }));
        self
    }

    async fn get(&self, path: &Path) -> Result<Option<bytes::Bytes>, CatalogError> {
        Ok(get_if_exists(&*self.store, path).await?)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        path: &Path,
        bytes: &[u8],
    ) -> Result<T, CatalogError> {
        serde_json::from_slice(bytes).map_err(|source| CatalogError::Corrupt {
            path: path.to_string(),
            source,
        })
    }

    /// Loads the current state: the newest snapshot plus the entries after it.
    ///
    /// A catalog that signs ([`Catalog::with_seal`]) also signs the head when
    /// it has no checkpoint, and publishes its Delta version when it has
    /// none: a writer stopped between storing its entry and signing or
    /// publishing it, and rerunning that writer may leave nothing to commit
    /// (the next commit would have covered the entry all the same).
    pub async fn load(&self) -> Result<Snapshot, CatalogError> {
        let mut snapshot = self
            .latest_snapshot()
            .await?
            .unwrap_or_else(Snapshot::empty);
        self.refresh(&mut snapshot).await?;
        if self.seal.is_some()
            && snapshot.seq > 0
            && self.get(&checkpoint_path(snapshot.seq)).await?.is_none()
        {
            self.seal(&snapshot)
                .await
                .map_err(|source| CatalogError::Seal {
                    seq: snapshot.seq,
                    source,
                })?;
        }
        // Likewise its Delta version: versions are written in order, so the
        // head's being there means every one before it is.
        let head_version = crate::delta::delta_version_path(snapshot.seq);
        if self.seal.is_some() && snapshot.seq > 0 && self.get(&head_version).await?.is_none() {
            // As after a commit, a failed publication stops nothing: it is
            // tried again by the next writer, and `verify` shows what is missing.
            if let Err(e) = self.publish(&snapshot).await {
                tracing::warn!("the catalog's Delta versions could not be published: {e}");
            }
        }
        Ok(snapshot)
    }

    /// Applies every entry committed after `snapshot.seq`.
    pub async fn refresh(&self, snapshot: &mut Snapshot) -> Result<(), CatalogError> {
        self.replay_to(snapshot, u64::MAX).await
    }

    /// The state as of entry `seq` (a past state: for publishing the Delta
    /// versions after it): the stored snapshot of the last multiple of 100
    /// at or before it when there is a trusted one, then the entries up to `seq`.
    pub async fn load_at(&self, seq: u64) -> Result<Snapshot, CatalogError> {
        let base = seq - seq % DEFAULT_SNAPSHOT_INTERVAL;
        let mut snapshot = match base {
            0 => None,
            _ => self.stored_snapshot(base).await?,
        }
        .unwrap_or_else(Snapshot::empty);
        self.replay_to(&mut snapshot, seq).await?;
        Ok(snapshot)
    }

    /// Applies the entries after `snapshot.seq` up to `until` or the last.
    async fn replay_to(&self, snapshot: &mut Snapshot, until: u64) -> Result<(), CatalogError> {
        while snapshot.seq < until {
            let path = entry_path(snapshot.seq + 1);
            let Some(bytes) = self.get(&path).await? else {
                return Ok(());
            };
            let entry: Entry = Self::decode(&path, &bytes)?;
            let refused = |reason: String| CatalogError::Inconsistent {
                seq: snapshot.seq + 1,
                reason: format!("{reason}; run `strata verify`"),
            };
            // Nothing is built on an entry that does not chain or that no
            // trusted writer signed.
            if entry.prev != snapshot.head {
                return Err(refused(format!(
                    "its prev is not the hash of entry {}",
                    snapshot.seq
                )));
            }
            snapshot
                .authenticate(&entry)
                .map_err(|e| refused(e.to_string()))?;
            snapshot.apply(&entry, &bytes)?;
        }
        Ok(())
    }

    /// Whether an input `draft` starts was completed and filed meanwhile (a
    /// snapshot written since the draft was planned moved it out of
    /// `snapshot.sources`, where [`Snapshot::conflict`] looks).
    async fn filed_conflict(
        &self,
        snapshot: &Snapshot,
        draft: &Draft,
    ) -> Result<Option<Conflict>, CatalogError> {
        for (source, expected) in &draft.sources {
            if snapshot.sources.contains_key(&source.id) {
                continue;
            }
            if let Some(filed) = self.source(snapshot, &source.id).await? {
                return Ok(Some(Conflict::SourceAdvanced {
                    path: source.path.clone(),
                    current: filed.lines,
                    expected: *expected,
                }));
            }
        }
        Ok(None)
    }

    /// Reads entry `seq` and the hash of its bytes, if it exists.
    pub async fn read_entry(&self, seq: u64) -> Result<Option<(Entry, String)>, CatalogError> {
        let entry = self.read_entry_bytes(seq).await?;
        Ok(entry.map(|(entry, bytes)| (entry, sha256_hex(&bytes))))
    }

    /// Reads entry `seq` and its bytes, if it exists.
    pub(crate) async fn read_entry_bytes(
        &self,
        seq: u64,
    ) -> Result<Option<(Entry, bytes::Bytes)>, CatalogError> {
        let path = entry_path(seq);
        match self.get(&path).await? {
            Some(bytes) => Ok(Some((Self::decode(&path, &bytes)?, bytes))),
            None => Ok(None),
        }
    }

    /// Commits `draft` on top of `snapshot`, retrying after concurrent commits
    /// as long as the draft still holds, and advances `snapshot` past it.
    /// Returns the new entry's sequence number.
    pub async fn commit(&self, snapshot: &mut Snapshot, draft: Draft) -> Result<u64, CatalogError> {
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            if let Some(why) = snapshot.conflict(&draft) {
                return Err(CatalogError::Conflict(why));
            }
            if let Some(why) = self.filed_conflict(snapshot, &draft).await? {
                return Err(CatalogError::Conflict(why));
            }
            let mut entry = Entry {
                seq: snapshot.seq + 1,
                format: ENTRY_FORMAT,
                prev: snapshot.head.clone(),
                committed_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                actor: draft.actor.clone(),
                operation: draft.operation.clone(),
                reason: draft.reason.clone(),
                add: draft.add.clone(),
                remove: draft.remove.clone(),
                sources: draft.sources.iter().map(|(s, _)| s.clone()).collect(),
                changes: draft.changes.clone(),
                policy_version: draft.policy_version,
                signature: None,
            };
            self.sign(snapshot, &mut entry)?;
            let bytes = serde_json::to_vec_pretty(&entry).expect("entries serialize");
            let options = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            let put = self
                .store
                .put_opts(
                    &entry_path(entry.seq),
                    PutPayload::from(bytes.clone()),
                    options,
                )
                .await;
            // A put reported as failed (a timeout, or `AlreadyExists` on a
            // retried request) may have landed: then the entry there is ours.
            let landed = match put {
                Ok(_) => true,
                Err(e) => match self.get(&entry_path(entry.seq)).await {
                    Ok(Some(stored)) if stored == bytes => true,
                    Ok(Some(_)) if matches!(e, object_store::Error::AlreadyExists { .. }) => false,
                    _ => return Err(e.into()),
                },
            };
            if !landed {
                self.refresh(snapshot).await?;
                continue;
            }
            let marks_before = snapshot.governance.marks.clone();
            snapshot.apply(&entry, &bytes)?;
            if entry.seq.is_multiple_of(self.snapshot_interval) {
                self.write_snapshot(snapshot).await;
            }
            // The commit stands without its checkpoint: the next writer to
            // load the catalog signs the head, and verify says UNSEALED until then.
            if let Err(e) = self.seal(snapshot).await {
                tracing::warn!(
                    seq = entry.seq,
                    "commit {} landed but its checkpoint could not be written: {e}",
                    entry.seq
                );
            }
            // Nor does it need its Delta version: the next commit, or
            // `strata publish`, writes what is missing.
            let hash = snapshot.head.clone();
            if let Err(e) = self
                .publish_commit(&marks_before, &entry, &hash, snapshot)
                .await
            {
                tracing::warn!(
                    seq = entry.seq,
                    "commit {} landed but its Delta version could not be published: {e}",
                    entry.seq
                );
            }
            return Ok(entry.seq);
        }
        Err(Conflict::TooManyAttempts(MAX_COMMIT_ATTEMPTS).into())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    /// The path of a data file of tenant `t`, January 2025, named `name`.
    pub(crate) fn path(name: &str) -> String {
        format!("tenant=t/family=access/month=2025-01/part-{name}.parquet")
    }

    /// 2025-01-01T00:00:00Z in microseconds.
    const JANUARY_2025: i64 = 1_735_689_600_000_000;

    /// A data file of tenant `t`, January 2025, named `name`.
    pub(crate) fn file(name: &str) -> FileMeta {
        FileMeta {
            path: path(name),
            tenant: "t".into(),
            family: "access".into(),
            month: "2025-01".into(),
            size: 10,
            sha256: sha256_hex(name.as_bytes()),
            rows: 3,
            min_ts: JANUARY_2025 + 1,
            max_ts: JANUARY_2025 + 2,
            location: None,
            key_version: None,
            shredded: Vec::new(),
        }
    }

    /// An ingest adding [`file`]s named `paths`.
    pub(crate) fn add(paths: &[&str]) -> Draft {
        Draft {
            operation: "ingest".into(),
            actor: "test".into(),
            add: paths.iter().map(|p| file(p)).collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn commits_chain_and_reload_identically() {
        let catalog = Catalog::new(Arc::new(InMemory::new())).with_snapshot_interval(3);
        let mut snap = catalog.load().await.unwrap();
        for i in 0..7 {
            catalog
                .commit(&mut snap, add(&[&format!("f{i}")]))
                .await
                .unwrap();
        }
        let mut remove = Draft {
            operation: "compact".into(),
            ..Default::default()
        };
        remove.remove = vec![file("f0"), file("f1")];
        catalog.commit(&mut snap, remove).await.unwrap();
        assert_eq!(snap.seq, 8);
        assert_eq!(snap.files.len(), 5);

        let loaded = catalog.load().await.unwrap();
        assert_eq!(loaded.seq, 8);
        assert_eq!(loaded.head, snap.head);
        assert_eq!(loaded.files, snap.files);

        let mut prev = GENESIS_HASH.to_string();
        for seq in 1..=8 {
            let (entry, hash) = catalog.read_entry(seq).await.unwrap().unwrap();
            assert_eq!(entry.prev, prev, "entry {seq} chains to its predecessor");
            prev = hash;
        }
        assert_eq!(prev, loaded.head);
    }

    pub(super) async fn read(store: &dyn ObjectStore, path: &Path) -> String {
        let bytes = store.get(path).await.unwrap().bytes().await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_commit_whose_answer_was_lost_is_a_value_not_an_error() {
        use strata_faults::{Fault, FaultyStore, Kind};
        let store = FaultyStore::new(Arc::new(InMemory::new()));
        let catalog = Catalog::new(store.clone());
        let mut snap = catalog.load().await.unwrap();
        // The entry's put lands, but the writer is told it failed.
        store.arm(Kind::Put, 1, Fault::Lost);
        assert_eq!(catalog.commit(&mut snap, add(&["a"])).await.unwrap(), 1);
        assert!(store.tripped());
        // A put that never landed is an error, and nothing was committed.
        store.arm(Kind::Put, 1, Fault::Fail);
        assert!(catalog.commit(&mut snap, add(&["b"])).await.is_err());
        store.disarm();
        let loaded = catalog.load().await.unwrap();
        assert_eq!((loaded.seq, loaded.files.len()), (1, 1));
    }

    #[tokio::test]
    async fn a_concurrent_writer_loses_cleanly_and_retries_on_top() {
        let catalog = Catalog::new(Arc::new(InMemory::new()));
        let mut a = catalog.load().await.unwrap();
        let mut b = catalog.load().await.unwrap();
        assert_eq!(catalog.commit(&mut a, add(&["a"])).await.unwrap(), 1);
        assert_eq!(catalog.commit(&mut b, add(&["b"])).await.unwrap(), 2);
        assert_eq!(
            b.files.keys().cloned().collect::<Vec<_>>(),
            [path("a"), path("b")]
        );
        assert_eq!(catalog.load().await.unwrap().files.len(), 2);
    }

    #[tokio::test]
    async fn conflicting_source_progress_is_refused() {
        let catalog = Catalog::new(Arc::new(InMemory::new()));
        let mut a = catalog.load().await.unwrap();
        let mut b = catalog.load().await.unwrap();
        let progress = |lines| SourceProgress {
            id: "src".into(),
            path: "in.ndjson".into(),
            lines,
            rejected: 0,
            accepted: lines,
            complete: false,
        };
        let mut first = add(&["a"]);
        first.sources = vec![(progress(10), 0)];
        catalog.commit(&mut a, first).await.unwrap();
        let mut second = add(&["b"]);
        second.sources = vec![(progress(10), 0)];
        let err = catalog.commit(&mut b, second).await.unwrap_err();
        assert!(
            matches!(
                err,
                CatalogError::Conflict(Conflict::SourceAdvanced {
                    current: 10,
                    expected: 0,
                    ..
                })
            ),
            "{err}"
        );
        let loaded = catalog.load().await.unwrap();
        assert_eq!(
            loaded.files.keys().cloned().collect::<Vec<_>>(),
            [path("a")]
        );
        assert_eq!(loaded.sources["src"].lines, 10);
    }

    /// The writers' rules when an append races an expiry (docs/scale-out.md).
    #[tokio::test]
    async fn appends_and_expiries_race_as_if_one_came_after_the_other() {
        use crate::governance::{Change, Mark, PartitionRecord};
        let catalog = Catalog::new(Arc::new(InMemory::new()));
        let mut retention = catalog.load().await.unwrap();
        catalog.commit(&mut retention, add(&["a"])).await.unwrap();
        let mut ingest = retention.clone(); // planned before the mark
        let mut other_retention = retention.clone();
        let partition = PartitionRecord::of(&file("a"));
        let mark = || Draft {
            operation: "expire-mark".into(),
            changes: vec![Change::ExpiryMarked {
                mark: Mark {
                    partition: partition.clone(),
                    marked_at: "2025-03-01T00:00:00Z".into(),
                    sweep_after: "2025-03-01T00:00:00Z".into(),
                    policy_version: 1,
                },
            }],
            ..Default::default()
        };
        catalog.commit(&mut retention, mark()).await.unwrap();

        // An append planned before the mark is retried on the new state: it
        // lands in the marked partition, hidden like an append made after it.
        catalog.commit(&mut ingest, add(&["b"])).await.unwrap();
        assert_eq!((ingest.files.len(), ingest.visible_files().count()), (2, 0));

        // A second mark of the partition is refused (retention then plans
        // again and finds it marked: the two expiries are one).
        let err = catalog.commit(&mut other_retention, mark()).await;
        assert!(
            matches!(err, Err(CatalogError::Conflict(Conflict::Governance(_)))),
            "{err:?}"
        );

        // A sweep planned before the append would leave its file behind,
        // visible: it is refused, and planned again it removes both.
        let sweep = |files: &[&str]| Draft {
            operation: SWEEP_OPERATION.into(),
            remove: files.iter().map(|f| file(f)).collect(),
            changes: vec![Change::ExpirySwept {
                partition: partition.clone(),
            }],
            ..Default::default()
        };
        let err = catalog.commit(&mut retention, sweep(&["a"])).await;
        assert!(
            matches!(err, Err(CatalogError::Conflict(Conflict::Governance(_)))),
            "{err:?}"
        );
        catalog.refresh(&mut retention).await.unwrap();
        catalog
            .commit(&mut retention, sweep(&["a", "b"]))
            .await
            .unwrap();
        assert!(retention.files.is_empty() && retention.governance.marks.is_empty());
    }

    #[tokio::test]
    async fn removing_a_missing_file_is_a_conflict() {
        let catalog = Catalog::new(Arc::new(InMemory::new()));
        let mut snap = catalog.load().await.unwrap();
        let draft = Draft {
            remove: vec![file("nope")],
            ..Default::default()
        };
        assert!(matches!(
            catalog.commit(&mut snap, draft).await,
            Err(CatalogError::Conflict(Conflict::FileRemoved { .. }))
        ));
        assert_eq!(snap.seq, 0);
    }
}
