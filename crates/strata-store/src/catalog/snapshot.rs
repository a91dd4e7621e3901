//! The archive's state as of one commit: the [`Snapshot`] and its format,
//! how it applies and authenticates the next entry, and how the catalog
//! stores snapshots, signs them and trusts only those its log vouches for.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use strata_integrity::{Checkpoint, Frontier, VerifierKey, leaf_hash};

use super::entry::legacy_format;
use super::paths::{last_snapshot_path, put_create};
use super::{
    Catalog, CatalogError, Conflict, Draft, ENTRY_FORMAT, Entry, FileMeta, GENESIS_HASH,
    SNAPSHOT_PREFIX, SourceProgress, Untrusted, seq_of, sha256_hex, snapshot_note_path,
    snapshot_path,
};
use crate::governance::{Change, Governance, PartitionRecord};

/// The format of snapshots this version writes: 4 since completed inputs
/// are filed out of them (a version that does not know the shards would
/// take their inputs for new ones), 3 since they hold the server's
/// principals (a version that does not know them must replay the log rather
/// than drop them), 2 since snapshots are signed, 1 for snapshots without a
/// `format` field.
pub const SNAPSHOT_FORMAT: u32 = 4;

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
    /// depend only on its content): inputs in progress, and completed ones
    /// until a stored snapshot files them.
    pub sources: BTreeMap<String, SourceProgress>,
    /// The index of the completed inputs filed out of [`Snapshot::sources`]
    /// when a snapshot was stored (see `filing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filed_sources: Option<super::FiledIndex>,
    /// Retention policy, legal holds and expiry marks.
    #[serde(default)]
    pub governance: Governance,
    /// Every `attrs` key a file ever added shreds, with the sequence number
    /// of the entry that added the first such file: the Delta publication's
    /// schema grows by these columns (see `delta`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shredded_keys: BTreeMap<String, u64>,
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
        // Parsed once per entry, and only for entries that tier.
        let cold_stores = match entry.add.iter().any(|f| f.location.is_some()) {
            true => self.governance.cold_stores(),
            false => Default::default(),
        };
        for file in &entry.add {
            if let Some(why) = file.malformed() {
                return Err(bad(why));
            }
            if let Some(location) = &file.location
                && !cold_stores.contains(location)
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
            for key in &file.shredded {
                self.shredded_keys.entry(key.clone()).or_insert(entry.seq);
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
        match opened_by(candidates, note) {
            Some((_, text)) if text == entry.signed_text() => Ok(()),
            Some(_) => Err(Untrusted::Edited),
            None => Err(Untrusted::UnknownSigner {
                signer: Entry::signer_name(note),
            }),
        }
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
    pub(super) fn conflict(&self, draft: &Draft) -> Option<Conflict> {
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
        let keeps_files =
            |p: &PartitionRecord| self.files.values().any(|f| p.contains(f) && !removed(f));
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
    fn has_files(&self, partition: &PartitionRecord) -> bool {
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

/// What a writer signs for the snapshot after entry `seq` stored as `bytes`.
fn snapshot_signed_text(seq: u64, bytes: &[u8]) -> String {
    format!("strata catalog snapshot {seq}\n{}\n", sha256_hex(bytes))
}

impl Catalog {
    /// The newest snapshot: the one `_last_snapshot` names, or else the
    /// highest-numbered one found by listing, if it can be trusted (see
    /// [`Catalog::vouched_for`]); `None` otherwise, and the log is replayed
    /// from its first entry.
    pub(super) async fn latest_snapshot(&self) -> Result<Option<Snapshot>, CatalogError> {
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
        if self.get(&path).await?.is_none() {
            return Err(CatalogError::MissingSnapshot {
                path: path.to_string(),
            });
        }
        self.stored_snapshot(seq).await
    }

    /// The stored snapshot of the state after entry `seq`, if there is one
    /// and it can be trusted (see [`Catalog::vouched_for`]).
    pub(super) async fn stored_snapshot(&self, seq: u64) -> Result<Option<Snapshot>, CatalogError> {
        let path = snapshot_path(seq);
        let Some(bytes) = self.get(&path).await? else {
            return Ok(None);
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
        let trusted = snapshot.governance.trusted_keys.keys().map(String::as_str);
        let Some((signer, _)) = opened_by(trusted, entry_note) else {
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
    /// Writes a snapshot of `snapshot`, filing its completed inputs first
    /// (which also leaves them out of `snapshot` in memory). Best effort: a
    /// missing snapshot only makes loading read more entries, so failures
    /// are logged, not raised.
    pub async fn write_snapshot(&self, snapshot: &mut Snapshot) {
        if let Err(e) = self.try_write_snapshot(snapshot).await {
            tracing::warn!(seq = snapshot.seq, "could not write catalog snapshot: {e}");
        }
    }

    /// Stores the shards, the snapshot, its signature (with a key), then the
    /// hint that names it: nothing is named before it can be checked.
    async fn try_write_snapshot(&self, snapshot: &mut Snapshot) -> Result<(), CatalogError> {
        self.file_sources(snapshot).await?;
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
        self.delete_superseded_shards(snapshot.seq).await;
        Ok(())
    }
}

/// The first of `keys` (verifier keys as text; unparseable ones are
/// skipped) whose signature `note` carries, with the text it signed.
fn opened_by<'k, 'n>(
    keys: impl IntoIterator<Item = &'k str>,
    note: &'n str,
) -> Option<(VerifierKey, &'n str)> {
    keys.into_iter()
        .filter_map(|key| VerifierKey::parse(key).ok())
        .find_map(|key| key.open(note).ok().map(|text| (key, text)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use strata_integrity::SigningKey;

    use super::super::tests::{add, read};
    use super::*;

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
}
