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

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use strata_integrity::{Checkpoint, Frontier, SigningKey, VerifierKey, leaf_hash};

use crate::governance::{Change, Governance, Partition};
use crate::layout::{CATALOG_PREFIX, partition_of_path};

/// The operation of commits that remove partitions whose retention is over.
pub const EXPIRE_OPERATION: &str = "expire";

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

/// A data file as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Path relative to the archive root.
    pub path: String,
    /// Tenant of every row.
    pub tenant: String,
    /// Family of every row.
    pub family: String,
    /// Partition month, `YYYY-MM`.
    pub month: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// Row count.
    pub rows: u64,
    /// Smallest `ts`, UTC microseconds.
    pub min_ts: i64,
    /// Largest `ts`, UTC microseconds.
    pub max_ts: i64,
    /// The store holding the file when it is not the archive itself: a
    /// cold store's location (folder or `s3://` URL) after tiering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// For an encrypted file, the version of the tenant master key that
    /// wraps its data key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
}

impl FileMeta {
    /// Why this record cannot describe a file strata wrote, if it cannot: its
    /// path is not a data file path of its own tenant, family and month, its
    /// times fall outside that month, or its hash is not a SHA-256.
    pub fn malformed(&self) -> Option<String> {
        let Some(key) = partition_of_path(&self.path) else {
            return Some(format!(
                "{:?} is not a data file path (tenant=…/family=…/month=YYYY-MM/part-….parquet)",
                self.path
            ));
        };
        if key.tenant != self.tenant
            || key.family.as_str() != self.family
            || key.month_label() != self.month
        {
            return Some(format!(
                "{} is recorded as tenant {:?}, family {:?}, month {:?}, not its path's",
                self.path, self.tenant, self.family, self.month
            ));
        }
        let in_month = |ts: i64| {
            chrono::DateTime::from_timestamp_micros(ts).is_some_and(|t| {
                use chrono::Datelike;
                (t.year(), t.month()) == (key.year, key.month)
            })
        };
        if self.min_ts > self.max_ts || !in_month(self.min_ts) || !in_month(self.max_ts) {
            return Some(format!(
                "{} has times {}..{} outside its month {}",
                self.path, self.min_ts, self.max_ts, self.month
            ));
        }
        let is_sha256 = self.sha256.len() == 64
            && (self.sha256.bytes()).all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if !is_sha256 {
            return Some(format!(
                "{} has {:?} as its SHA-256",
                self.path, self.sha256
            ));
        }
        None
    }
}

/// How far one input has been committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceProgress {
    /// The input's identity: `blake3:` and the BLAKE3 hash of its bytes as
    /// stored (compressed or not); a bare hex SHA-256 in catalogs written
    /// before BLAKE3; `stdin-` and a random number for standard input.
    pub id: String,
    /// The input's path when it was ingested.
    pub path: String,
    /// Lines consumed (accepted, rejected or blank) up to this commit.
    pub lines: u64,
    /// Lines rejected up to this commit.
    pub rejected: u64,
    /// Events accepted up to this commit.
    pub accepted: u64,
    /// True once the whole input is committed.
    pub complete: bool,
}

/// The format of entries this version writes: 2, signed by their writer.
/// Entries without a `format` field are format 1 (unsigned).
pub const ENTRY_FORMAT: u32 = 2;

fn legacy_format() -> u32 {
    1
}

/// Why an entry cannot be accepted as written by a writer the archive trusts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    /// Written by a newer strata.
    #[error(
        "entry format {0} is newer than this strata reads (format {ENTRY_FORMAT}): upgrade strata"
    )]
    NewerFormat(u32),
    /// No signature, in an archive that trusts signing keys.
    #[error(
        "the entry is not signed, and the archive accepts only entries signed by its trusted keys"
    )]
    Unsigned,
    /// Signed by a key the archive does not trust.
    #[error("the entry is signed by {signer}, a key the archive does not trust")]
    UnknownSigner {
        /// The signer's name as the signature gives it.
        signer: String,
    },
    /// A trusted key signed other content: the entry was edited after signing.
    #[error("the entry's content is not what its writer signed: it was edited")]
    Edited,
}

/// One commit of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number, from 1, without gaps.
    pub seq: u64,
    /// The entry's format ([`ENTRY_FORMAT`] when written by this version).
    #[serde(default = "legacy_format")]
    pub format: u32,
    /// SHA-256 of the previous entry's bytes ([`GENESIS_HASH`] for the first).
    pub prev: String,
    /// When the commit was made (RFC 3339, UTC).
    pub committed_at: String,
    /// Who made it.
    pub actor: String,
    /// What kind of change: `ingest`, `compact`, ...
    pub operation: String,
    /// Why files were removed, when any were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Files added.
    #[serde(default)]
    pub add: Vec<FileMeta>,
    /// Files removed.
    #[serde(default)]
    pub remove: Vec<FileMeta>,
    /// Input progress recorded with this commit.
    #[serde(default)]
    pub sources: Vec<SourceProgress>,
    /// Policy, hold and expiry changes made by this commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// The retention policy version a retention commit acted under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
    /// The writer's signature: a C2SP signed note of [`Entry::signed_text`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Entry {
    /// What the writer signs: the sequence number and the SHA-256 of the
    /// entry's bytes as stored without its signature.
    pub fn signed_text(&self) -> String {
        let unsigned = Entry {
            signature: None,
            ..self.clone()
        };
        let bytes = serde_json::to_vec_pretty(&unsigned).expect("entries serialize");
        format!(
            "strata catalog entry {}\n{}\n",
            self.seq,
            sha256_hex(&bytes)
        )
    }

    /// The signer named by the signature's last line, for messages.
    fn signer_name(note: &str) -> String {
        note.lines()
            .last()
            .and_then(|line| line.strip_prefix("— "))
            .and_then(|line| line.split_whitespace().next())
            .unwrap_or("nobody")
            .to_string()
    }
}

/// A change to commit.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// What kind of change.
    pub operation: String,
    /// Who makes it.
    pub actor: String,
    /// Why files are removed.
    pub reason: Option<String>,
    /// Files to add.
    pub add: Vec<FileMeta>,
    /// Files to remove; each must still be in the archive when committing.
    pub remove: Vec<FileMeta>,
    /// Source progress to record, each with the `lines` the source must still
    /// be at (0 when new) for the commit to be valid.
    pub sources: Vec<(SourceProgress, u64)>,
    /// Policy, hold and expiry changes; each must still apply when committing.
    pub changes: Vec<Change>,
    /// The retention policy version acted under.
    pub policy_version: Option<u64>,
}

/// The format of snapshots this version writes: 2 since snapshots are
/// signed; 1 for snapshots without a `format` field.
pub const SNAPSHOT_FORMAT: u32 = 2;

/// The archive's content as of one commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The snapshot's format ([`SNAPSHOT_FORMAT`] in memory; older stored
    /// snapshots are read and upgraded).
    #[serde(default = "legacy_format")]
    pub format: u32,
    /// Sequence number of the last applied entry (0: empty archive).
    pub seq: u64,
    /// SHA-256 of the last applied entry's bytes.
    pub head: String,
    /// The log's name in its checkpoints, fixed by its first entry
    /// (empty while the archive is empty).
    pub origin: String,
    /// The Merkle tree over the entries so far.
    #[serde(with = "tree_serde")]
    pub tree: Frontier,
    /// Live data files by path.
    pub files: BTreeMap<String, FileMeta>,
    /// Input progress by source id (sorted, so that a snapshot's bytes
    /// depend only on its content).
    pub sources: BTreeMap<String, SourceProgress>,
    /// Retention policy, legal holds and expiry marks.
    #[serde(default)]
    pub governance: Governance,
}

impl Snapshot {
    /// The state before the first commit.
    pub fn empty() -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT,
            head: GENESIS_HASH.to_string(),
            ..Default::default()
        }
    }

    /// Applies `entry`, whose stored form is `bytes`; fails, possibly half
    /// applied, if the entry does not follow on from this state.
    pub fn apply(&mut self, entry: &Entry, bytes: &[u8]) -> Result<(), CatalogError> {
        let bad = |reason: String| CatalogError::Inconsistent {
            seq: entry.seq,
            reason,
        };
        if entry.seq != self.seq + 1 {
            return Err(bad(format!("expected sequence number {}", self.seq + 1)));
        }
        for file in &entry.remove {
            if self.files.remove(&file.path).is_none() {
                return Err(bad(format!(
                    "removes {} which is not in the archive",
                    file.path
                )));
            }
        }
        if chrono::DateTime::parse_from_rfc3339(&entry.committed_at).is_err() {
            return Err(bad(format!(
                "its commit time {:?} is not an RFC 3339 time",
                entry.committed_at
            )));
        }
        for file in &entry.add {
            if let Some(why) = file.malformed() {
                return Err(bad(why));
            }
            if let Some(location) = &file.location
                && !self.governance.names_store(location)
            {
                return Err(bad(format!(
                    "{} is stored in {location:?}, which is not a cold store of the policy in force",
                    file.path
                )));
            }
            if self.files.insert(file.path.clone(), file.clone()).is_some() {
                return Err(bad(format!(
                    "adds {} which is already in the archive",
                    file.path
                )));
            }
        }
        for source in &entry.sources {
            self.sources.insert(source.id.clone(), source.clone());
        }
        for change in &entry.changes {
            if let Some(why) = self.governance.check(change, &|p| self.has_files(p)) {
                return Err(bad(why));
            }
            self.governance.apply(change, entry.seq);
        }
        self.seq = entry.seq;
        self.head = sha256_hex(bytes);
        if entry.seq == 1 {
            self.origin = origin_of(&self.head);
        }
        self.tree.push(leaf_hash(bytes));
        Ok(())
    }

    /// Whether `entry`, the next one after this state, was written by a
    /// writer the archive trusts: signed by a key of
    /// [`Governance::trusted_keys`], or, for the archive's first signed
    /// entry, by the key that entry trusts. Unsigned entries (format 1) are
    /// accepted only until an archive trusts a key.
    pub fn authenticate(&self, entry: &Entry) -> Result<(), Untrusted> {
        if entry.format > ENTRY_FORMAT {
            return Err(Untrusted::NewerFormat(entry.format));
        }
        let trusted = &self.governance.trusted_keys;
        let Some(note) = &entry.signature else {
            return if trusted.is_empty() {
                Ok(())
            } else {
                Err(Untrusted::Unsigned)
            };
        };
        let candidates: Vec<&str> = if trusted.is_empty() {
            (entry.changes.iter())
                .filter_map(|c| match c {
                    Change::KeyTrusted { key, .. } => Some(key.as_str()),
                    _ => None,
                })
                .collect()
        } else {
            trusted.keys().map(String::as_str).collect()
        };
        for key in candidates {
            let Ok(verifier) = VerifierKey::parse(key) else {
                continue;
            };
            if let Ok(text) = verifier.open(note) {
                return if text == entry.signed_text() {
                    Ok(())
                } else {
                    Err(Untrusted::Edited)
                };
            }
        }
        Err(Untrusted::UnknownSigner {
            signer: Entry::signer_name(note),
        })
    }

    /// The tree head as of this snapshot, to be signed.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            origin: self.origin.clone(),
            size: self.seq,
            root: self.tree.root(),
        }
    }

    /// Why `draft` can no longer be committed on top of this snapshot, if it can't.
    fn conflict(&self, draft: &Draft) -> Option<Conflict> {
        if let Some(file) = draft
            .remove
            .iter()
            .find(|f| !self.files.contains_key(&f.path))
        {
            return Some(Conflict::FileRemoved {
                path: file.path.clone(),
            });
        }
        let removed = |f: &FileMeta| draft.remove.iter().any(|r| r.path == f.path);
        let keeps_files = |p: &Partition| self.files.values().any(|f| p.contains(f) && !removed(f));
        let mut governance = self.governance.clone();
        for change in &draft.changes {
            if let Some(why) = governance.check(change, &keeps_files) {
                return Some(Conflict::Governance(why));
            }
            governance.apply(change, self.seq + 1);
        }
        for (source, expected) in &draft.sources {
            let current = self.sources.get(&source.id).map_or(0, |s| s.lines);
            if current != *expected {
                return Some(Conflict::SourceAdvanced {
                    path: source.path.clone(),
                    current,
                    expected: *expected,
                });
            }
        }
        None
    }

    /// Whether any live file belongs to `partition`.
    fn has_files(&self, partition: &Partition) -> bool {
        self.files.values().any(|f| partition.contains(f))
    }

    /// Total bytes of live data files.
    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }

    /// Total rows of live data files.
    pub fn total_rows(&self) -> u64 {
        self.files.values().map(|f| f.rows).sum()
    }
}

/// The checkpoint origin of a log whose first entry hashes to `first_entry_hash`:
/// unique per archive and fixed for its lifetime, wherever it is copied.
fn origin_of(first_entry_hash: &str) -> String {
    format!("strata-archive/{}", &first_entry_hash[..16])
}

/// (De)serializes a [`Frontier`] as its size and hex subtree roots.
mod tree_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use strata_integrity::Frontier;

    #[derive(Serialize, Deserialize)]
    struct Tree {
        size: u64,
        subtrees: Vec<String>,
    }

    pub fn serialize<S: Serializer>(tree: &Frontier, s: S) -> Result<S::Ok, S::Error> {
        Tree {
            size: tree.size(),
            subtrees: tree.subtrees().iter().map(hex::encode).collect(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Frontier, D::Error> {
        let tree = Tree::deserialize(d)?;
        let subtrees = tree
            .subtrees
            .iter()
            .map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| serde::de::Error::custom("a subtree root is not 32 hex bytes"))?;
        Frontier::from_parts(tree.size, subtrees)
            .ok_or_else(|| serde::de::Error::custom("subtree count does not match the tree size"))
    }
}

#[derive(Serialize, Deserialize)]
struct LastSnapshot {
    seq: u64,
}

/// Signs a checkpoint after every commit and copies it to a witness.
#[derive(Debug)]
struct Seal {
    key: SigningKey,
    witness: Option<Arc<dyn ObjectStore>>,
}

/// The catalog of one archive.
#[derive(Debug, Clone)]
pub struct Catalog {
    store: Arc<dyn ObjectStore>,
    snapshot_interval: u64,
    seal: Option<Arc<Seal>>,
}

/// Prefix of the log entries.
pub const LOG_PREFIX: &str = "_strata/log";
/// Prefix of the signed checkpoints.
pub const CHECKPOINT_PREFIX: &str = "_strata/checkpoints";
/// Name of the newest checkpoint in a witness location.
pub const WITNESS_LATEST: &str = "latest.note";
/// Name of the newest heartbeat in a witness location.
pub const WITNESS_HEARTBEAT: &str = "heartbeat.note";
/// Prefix of the signed heartbeats the retention daemon writes at least hourly.
pub const HEARTBEAT_PREFIX: &str = "_strata/heartbeats";

/// Where log entry `seq` is stored.
pub fn entry_path(seq: u64) -> Path {
    Path::from(format!("{LOG_PREFIX}/{seq:020}.json"))
}

/// Where the signed checkpoint of tree size `size` is stored.
pub fn checkpoint_path(size: u64) -> Path {
    Path::from(format!("{CHECKPOINT_PREFIX}/{}", checkpoint_name(size)))
}

/// The file name of the checkpoint of tree size `size`, in the archive and at witnesses.
pub fn checkpoint_name(size: u64) -> String {
    format!("{size:020}.note")
}

/// The sequence number in an entry, snapshot or checkpoint object name.
pub fn seq_of(path: &Path) -> Option<u64> {
    let name = path.filename()?;
    let stem = name
        .strip_suffix(".json")
        .or_else(|| name.strip_suffix(".note"))?;
    stem.parse().ok().filter(|&seq| stem.len() == 20 && seq > 0)
}

/// Prefix of the state snapshots.
pub const SNAPSHOT_PREFIX: &str = "_strata/snapshots";

/// Prefix of the snapshots' signatures.
pub const SNAPSHOT_NOTE_PREFIX: &str = "_strata/snapshot-notes";

/// Where the signature of snapshot `seq` is stored.
pub fn snapshot_note_path(seq: u64) -> Path {
    Path::from(format!("{SNAPSHOT_NOTE_PREFIX}/{seq:020}.note"))
}

/// What a writer signs for the snapshot after entry `seq` stored as `bytes`.
fn snapshot_signed_text(seq: u64, bytes: &[u8]) -> String {
    format!("strata catalog snapshot {seq}\n{}\n", sha256_hex(bytes))
}

/// Where the snapshot of the state after entry `seq` is stored.
pub fn snapshot_path(seq: u64) -> Path {
    Path::from(format!("{SNAPSHOT_PREFIX}/{seq:020}.json"))
}

fn last_snapshot_path() -> Path {
    Path::from(format!("{CATALOG_PREFIX}/_last_snapshot"))
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

    /// The newest snapshot: the one `_last_snapshot` names, or else the
    /// highest-numbered one found by listing, if it can be trusted (see
    /// [`Catalog::vouched_for`]); `None` otherwise, and the log is replayed
    /// from its first entry.
    async fn latest_snapshot(&self) -> Result<Option<Snapshot>, CatalogError> {
        let hinted = match self.get(&last_snapshot_path()).await? {
            Some(bytes) => Some(Self::decode::<LastSnapshot>(&last_snapshot_path(), &bytes)?.seq),
            None => None,
        };
        let seq = match hinted {
            Some(seq) => Some(seq),
            None => {
                let prefix = Path::from(SNAPSHOT_PREFIX);
                let listed: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
                listed.iter().filter_map(|m| seq_of(&m.location)).max()
            }
        };
        let Some(seq) = seq else { return Ok(None) };
        let path = snapshot_path(seq);
        let Some(bytes) = self.get(&path).await? else {
            return Err(CatalogError::MissingSnapshot {
                path: path.to_string(),
            });
        };
        let mut snapshot: Snapshot = Self::decode(&path, &bytes)?;
        if snapshot.format > SNAPSHOT_FORMAT {
            tracing::warn!(
                "catalog snapshot {path} is format {}, newer than this strata reads; replaying the log",
                snapshot.format
            );
            return Ok(None);
        }
        match self.vouched_for(&snapshot, &bytes).await? {
            Ok(()) => {
                snapshot.format = SNAPSHOT_FORMAT;
                Ok(Some(snapshot))
            }
            Err(why) => {
                tracing::warn!("catalog snapshot {path} is not used: {why}; replaying the log");
                Ok(None)
            }
        }
    }

    /// Whether the snapshot stored as `bytes` summarises this archive's log:
    /// its head is the hash of the entry it names, and, once entries are
    /// signed, it is signed by the key that signed that entry. Whoever can
    /// write the bucket cannot sign as that key, so cannot make loading
    /// trust a snapshot of files, holds or keys the log never had.
    async fn vouched_for(
        &self,
        snapshot: &Snapshot,
        bytes: &[u8],
    ) -> Result<Result<(), String>, CatalogError> {
        let Some((entry, hash)) = self.read_entry(snapshot.seq).await? else {
            return Ok(Err(format!("entry {} is missing", snapshot.seq)));
        };
        if hash != snapshot.head {
            return Ok(Err(format!(
                "its head is not the hash of entry {}",
                snapshot.seq
            )));
        }
        let Some(entry_note) = &entry.signature else {
            // An unsigned entry: only a snapshot of an archive that trusts
            // no key yet can be as old as that.
            return Ok(match snapshot.governance.trusted_keys.is_empty() {
                true => Ok(()),
                false => Err("it trusts keys, but the entry it names is unsigned".into()),
            });
        };
        let signer = (snapshot.governance.trusted_keys.keys())
            .filter_map(|k| VerifierKey::parse(k).ok())
            .find(|key| key.open(entry_note).is_ok());
        let Some(signer) = signer else {
            return Ok(Err(format!(
                "none of its trusted keys signed entry {}",
                snapshot.seq
            )));
        };
        let Some(note) = self.get(&snapshot_note_path(snapshot.seq)).await? else {
            return Ok(Err("it has no signature".into()));
        };
        let vouched = std::str::from_utf8(&note)
            .ok()
            .and_then(|note| signer.open(note).ok())
            .is_some_and(|text| text == snapshot_signed_text(snapshot.seq, bytes));
        Ok(match vouched {
            true => Ok(()),
            false => Err(format!(
                "it is not signed by {}, which signed entry {}",
                signer.name(),
                snapshot.seq
            )),
        })
    }

    /// Loads the current state: the newest snapshot plus the entries after it.
    ///
    /// A catalog that signs ([`Catalog::with_seal`]) also signs the head when
    /// it has no checkpoint: a writer stopped between storing its entry and
    /// signing it, and rerunning that writer may leave nothing to commit (the
    /// next commit's checkpoint would have covered the entry all the same).
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
        Ok(snapshot)
    }

    /// Applies every entry committed after `snapshot.seq`.
    pub async fn refresh(&self, snapshot: &mut Snapshot) -> Result<(), CatalogError> {
        loop {
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
    }

    /// Reads entry `seq` and the hash of its bytes, if it exists.
    pub async fn read_entry(&self, seq: u64) -> Result<Option<(Entry, String)>, CatalogError> {
        let path = entry_path(seq);
        match self.get(&path).await? {
            Some(bytes) => Ok(Some((Self::decode(&path, &bytes)?, sha256_hex(&bytes)))),
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
            return Ok(entry.seq);
        }
        Err(Conflict::TooManyAttempts(MAX_COMMIT_ATTEMPTS).into())
    }

    /// Whether this catalog may commit on top of `snapshot`: its key is one
    /// the archive trusts, or the archive trusts none yet. Writers check
    /// before doing any work, so an untrusted one uploads nothing.
    pub fn check_writer(&self, snapshot: &Snapshot) -> Result<(), CatalogError> {
        let trusted = &snapshot.governance.trusted_keys;
        if trusted.is_empty() {
            return Ok(());
        }
        match &self.seal {
            Some(seal) if trusted.contains_key(&seal.key.verifier().to_string()) => Ok(()),
            Some(seal) => Err(CatalogError::UntrustedWriter {
                key: seal.key.verifier().to_string(),
            }),
            None => Err(CatalogError::UntrustedWriter {
                key: "(no signing key)".into(),
            }),
        }
    }

    /// Signs `entry` with this catalog's key. The archive's first signed
    /// entry also trusts the key; after that, a writer whose key the archive
    /// does not trust (or that has none) cannot commit.
    fn sign(&self, snapshot: &Snapshot, entry: &mut Entry) -> Result<(), CatalogError> {
        self.check_writer(snapshot)?;
        let Some(seal) = &self.seal else {
            return Ok(());
        };
        let key = seal.key.verifier().to_string();
        if snapshot.governance.trusted_keys.is_empty() {
            entry.changes.insert(
                0,
                Change::KeyTrusted {
                    key,
                    reason: "the first signed entry trusts its writer's key".into(),
                },
            );
        }
        let note = seal
            .key
            .sign(&entry.signed_text())
            .expect("an entry's signed text is a valid note");
        entry.signature = Some(note);
        Ok(())
    }

    /// Signs the tree head of `snapshot` and stores it (create-only: a
    /// checkpoint is never replaced) and at the witness, if there is a key.
    async fn seal(&self, snapshot: &Snapshot) -> Result<(), object_store::Error> {
        let Some(seal) = &self.seal else {
            return Ok(());
        };
        let note = PutPayload::from(snapshot.checkpoint().sign(&seal.key).into_bytes());
        put_create(&*self.store, &checkpoint_path(snapshot.seq), note.clone()).await?;
        if let Some(witness) = &seal.witness {
            put_create(
                &**witness,
                &Path::from(checkpoint_name(snapshot.seq)),
                note.clone(),
            )
            .await?;
            witness.put(&Path::from(WITNESS_LATEST), note).await?;
        }
        Ok(())
    }

    /// Signs a heartbeat of the tree head of `snapshot` at `at` (RFC 3339,
    /// also its file name) under `_strata/heartbeats/`, and at the witness as
    /// `heartbeat.note`. Does nothing without a signing key.
    pub async fn heartbeat(&self, snapshot: &Snapshot, at: &str) -> Result<(), CatalogError> {
        let Some(seal) = &self.seal else {
            return Ok(());
        };
        let note = snapshot
            .checkpoint()
            .sign_heartbeat(&seal.key, at)
            .map_err(|e| CatalogError::Heartbeat(e.to_string()))?;
        let payload = PutPayload::from(note.into_bytes());
        let name = format!("{}.note", at.replace(':', ""));
        put_create(
            &*self.store,
            &Path::from(format!("{HEARTBEAT_PREFIX}/{name}")),
            payload.clone(),
        )
        .await?;
        if let Some(witness) = &seal.witness {
            witness.put(&Path::from(WITNESS_HEARTBEAT), payload).await?;
        }
        Ok(())
    }

    /// Writes a snapshot of `snapshot`. Best effort: a missing snapshot
    /// only makes loading read more entries, so failures are logged, not raised.
    pub async fn write_snapshot(&self, snapshot: &Snapshot) {
        if let Err(e) = self.try_write_snapshot(snapshot).await {
            tracing::warn!(seq = snapshot.seq, "could not write catalog snapshot: {e}");
        }
    }

    /// Stores the snapshot, its signature (with a key), then the hint that
    /// names it: a snapshot is never named before it can be checked.
    async fn try_write_snapshot(&self, snapshot: &Snapshot) -> Result<(), object_store::Error> {
        let bytes = serde_json::to_vec(snapshot).expect("snapshots serialize");
        if let Some(seal) = &self.seal {
            let text = snapshot_signed_text(snapshot.seq, &bytes);
            let note = seal
                .key
                .sign(&text)
                .expect("a snapshot's signed text is a valid note");
            put_create(
                &*self.store,
                &snapshot_note_path(snapshot.seq),
                note.into_bytes().into(),
            )
            .await?;
        }
        put_create(&*self.store, &snapshot_path(snapshot.seq), bytes.into()).await?;
        let hint = serde_json::to_vec(&LastSnapshot { seq: snapshot.seq }).expect("serializes");
        self.store.put(&last_snapshot_path(), hint.into()).await?;
        Ok(())
    }
}

/// The bytes of the object at `path`, or `None` if there is none.
pub async fn get_if_exists(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<bytes::Bytes>, object_store::Error> {
    match store.get(path).await {
        Ok(result) => Ok(Some(result.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Stores `payload` at `path` unless an object is already there; since what
/// is written under a name never differs, an existing object is success.
async fn put_create(
    store: &dyn ObjectStore,
    path: &Path,
    payload: PutPayload,
) -> Result<(), object_store::Error> {
    let options = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match store.put_opts(path, payload, options).await {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    /// The path of a data file of tenant `t`, January 2025, named `name`.
    fn path(name: &str) -> String {
        format!("tenant=t/family=access/month=2025-01/part-{name}.parquet")
    }

    /// 2025-01-01T00:00:00Z in microseconds.
    const JANUARY_2025: i64 = 1_735_689_600_000_000;

    fn file(name: &str) -> FileMeta {
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
        }
    }

    fn add(paths: &[&str]) -> Draft {
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

    async fn read(store: &dyn ObjectStore, path: &Path) -> String {
        let bytes = store.get(path).await.unwrap().bytes().await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn every_commit_is_sealed_by_a_checkpoint_of_the_merkle_tree() {
        let store = Arc::new(InMemory::new());
        let witness = Arc::new(InMemory::new());
        let key = SigningKey::generate("strata/test").unwrap();
        let verifier = key.verifier();
        let catalog = Catalog::new(store.clone())
            .with_snapshot_interval(2)
            .with_seal(key, Some(witness.clone()));
        let mut snap = catalog.load().await.unwrap();
        let mut tree = strata_integrity::MerkleLog::new();
        for i in 1..=5u64 {
            catalog
                .commit(&mut snap, add(&[&format!("f{i}")]))
                .await
                .unwrap();
            tree.push_entry(read(&*store, &entry_path(i)).await.as_bytes());
            let checkpoint =
                Checkpoint::open(&read(&*store, &checkpoint_path(i)).await, &verifier).unwrap();
            assert_eq!(checkpoint.size, i);
            assert_eq!(checkpoint.root, tree.root(), "root after commit {i}");
            assert_eq!(checkpoint.origin, snap.origin);
        }
        assert!(snap.origin.starts_with("strata-archive/"));
        let latest = read(&*witness, &Path::from(WITNESS_LATEST)).await;
        let latest = Checkpoint::open(&latest, &verifier).unwrap();
        assert_eq!(latest.size, 5);
        // A reload from the snapshot at 4 plus entry 5 has the same tree.
        let loaded = catalog.load().await.unwrap();
        assert_eq!(loaded.checkpoint(), snap.checkpoint());
    }

    #[tokio::test]
    async fn a_signing_writer_signs_a_head_left_unsigned_by_a_crash() {
        let store = Arc::new(InMemory::new());
        let key = SigningKey::generate("strata/test").unwrap();
        let verifier = key.verifier();
        // A writer stopped after storing entry 1, before signing it: the
        // same as committing without a key.
        let unsigned = Catalog::new(store.clone());
        let mut snap = unsigned.load().await.unwrap();
        unsigned.commit(&mut snap, add(&["a"])).await.unwrap();
        assert!(
            get_if_exists(&*store, &checkpoint_path(1))
                .await
                .unwrap()
                .is_none()
        );
        // Reading without a key signs nothing.
        unsigned.load().await.unwrap();
        assert!(
            get_if_exists(&*store, &checkpoint_path(1))
                .await
                .unwrap()
                .is_none()
        );

        let signing = Catalog::new(store.clone()).with_seal(key, None);
        let loaded = signing.load().await.unwrap();
        let checkpoint =
            Checkpoint::open(&read(&*store, &checkpoint_path(1)).await, &verifier).unwrap();
        assert_eq!(checkpoint.size, 1);
        assert_eq!(checkpoint.root, loaded.checkpoint().root);
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
    async fn a_commit_stands_when_its_checkpoint_cannot_be_written() {
        use strata_faults::{Fault, FaultyStore, Kind};
        let store = FaultyStore::new(Arc::new(InMemory::new()));
        let key = SigningKey::generate("strata/test").unwrap();
        let catalog = Catalog::new(store.clone()).with_seal(key, None);
        let mut snap = catalog.load().await.unwrap();
        // Put 1 is the entry, put 2 its checkpoint.
        store.arm(Kind::Put, 2, Fault::Fail);
        assert_eq!(catalog.commit(&mut snap, add(&["a"])).await.unwrap(), 1);
        assert!(store.tripped());
        store.disarm();
        assert!(
            get_if_exists(&*store, &checkpoint_path(1))
                .await
                .unwrap()
                .is_none()
        );
        // The next writer to load signs it.
        catalog.load().await.unwrap();
        assert!(
            get_if_exists(&*store, &checkpoint_path(1))
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn loading_ignores_a_snapshot_the_log_does_not_vouch_for() {
        let store = Arc::new(InMemory::new());
        let key = SigningKey::generate("strata/test").unwrap();
        let catalog = Catalog::new(store.clone())
            .with_snapshot_interval(2)
            .with_seal(key, None);
        let mut snap = catalog.load().await.unwrap();
        catalog.commit(&mut snap, add(&["a"])).await.unwrap();
        let hold = crate::Hold {
            id: 1,
            tenant: "t".into(),
            family: None,
            from: None,
            to: None,
            reason: "case 1".into(),
            added_at: "2025-01-01T00:00:00Z".into(),
            added_by: "test".into(),
        };
        let draft = Draft {
            changes: vec![Change::HoldAdded { hold }],
            ..Default::default()
        };
        catalog.commit(&mut snap, draft).await.unwrap();
        assert_eq!(
            catalog.load().await.unwrap(),
            snap,
            "the signed snapshot is used"
        );

        // Someone with write access drops the hold from snapshot 2.
        let path = snapshot_path(2);
        let mut doctored: Snapshot = serde_json::from_str(&read(&*store, &path).await).unwrap();
        doctored.governance.holds.clear();
        store
            .put(&path, serde_json::to_vec(&doctored).unwrap().into())
            .await
            .unwrap();
        let loaded = catalog.load().await.unwrap();
        assert_eq!(
            loaded.governance.holds.len(),
            1,
            "the log is replayed instead"
        );
        assert_eq!(loaded, snap);
    }

    #[tokio::test]
    async fn a_catalog_of_format_1_entries_loads_and_its_next_signed_entry_trusts_its_writer() {
        // Entries as strata wrote them before they were signed: no format,
        // no signature, and no key trusted.
        let store = Arc::new(InMemory::new());
        let legacy = Catalog::new(store.clone());
        let mut snap = legacy.load().await.unwrap();
        for name in ["a", "b"] {
            legacy.commit(&mut snap, add(&[name])).await.unwrap();
        }
        let mut head = GENESIS_HASH.to_string();
        for seq in 1..=2 {
            let path = entry_path(seq);
            let mut entry: serde_json::Value =
                serde_json::from_str(&read(&*store, &path).await).unwrap();
            let fields = entry.as_object_mut().unwrap();
            fields.remove("format");
            fields.remove("signature");
            fields.insert("prev".into(), head.clone().into());
            let bytes = serde_json::to_vec_pretty(&entry).unwrap();
            head = sha256_hex(&bytes);
            store.put(&path, bytes.into()).await.unwrap();
        }
        let loaded = legacy.load().await.unwrap();
        assert_eq!(
            (loaded.seq, loaded.files.len(), loaded.head.clone()),
            (2, 2, head)
        );
        let (entry, _) = legacy.read_entry(1).await.unwrap().unwrap();
        assert_eq!((entry.format, entry.signature), (1, None));

        let key = SigningKey::generate("strata/test").unwrap();
        let signing = Catalog::new(store.clone()).with_seal(key.clone(), None);
        let mut snap = signing.load().await.unwrap();
        signing.commit(&mut snap, add(&["c"])).await.unwrap();
        let trusted: Vec<&String> = snap.governance.trusted_keys.keys().collect();
        assert_eq!(trusted, [&key.verifier().to_string()]);
        // From now on an unsigned entry is refused.
        let err = legacy.commit(&mut snap, add(&["d"])).await.unwrap_err();
        assert!(matches!(err, CatalogError::UntrustedWriter { .. }), "{err}");
        assert_eq!(signing.load().await.unwrap().seq, 3);
    }

    #[tokio::test]
    async fn a_format_1_snapshot_is_read_and_a_newer_format_is_replayed_around() {
        let store = Arc::new(InMemory::new());
        let catalog = Catalog::new(store.clone()).with_snapshot_interval(1);
        let mut snap = catalog.load().await.unwrap();
        catalog.commit(&mut snap, add(&["a"])).await.unwrap();
        let path = snapshot_path(1);
        let stored: serde_json::Value = serde_json::from_str(&read(&*store, &path).await).unwrap();
        assert_eq!(stored["format"], SNAPSHOT_FORMAT);
        for format in [None, Some(99)] {
            let mut old = stored.clone();
            match format {
                None => drop(old.as_object_mut().unwrap().remove("format")),
                Some(f) => old["format"] = f.into(),
            }
            store
                .put(&path, serde_json::to_vec(&old).unwrap().into())
                .await
                .unwrap();
            let loaded = catalog.load().await.unwrap();
            assert_eq!(loaded, snap, "format {format:?}");
            assert_eq!(loaded.format, SNAPSHOT_FORMAT);
        }
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
