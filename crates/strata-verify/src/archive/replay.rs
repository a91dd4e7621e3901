//! Replaying the log: each entry's number, link, signature and effect, the
//! Merkle tree over the entries, and the snapshots compared with the state
//! the log replays to.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use strata_integrity::{MerkleLog, VerifierKey};
use strata_store::delta::delta_version_path;
use strata_store::{Change, Entry, SWEEP_OPERATION, Snapshot, Untrusted, entry_path, sha256_hex};

use super::delta::DeltaCheck;
use super::get;
use crate::{Code, Finding, VerifyError};

/// Entries and files fetched at once.
const FETCH_CONCURRENCY: usize = 16;

/// The log replayed entry by entry.
pub(super) struct Replay {
    pub(super) state: Snapshot,
    pub(super) tree: MerkleLog,
    /// False once an entry is missing: the tree no longer matches the log.
    pub(super) tree_complete: bool,
    /// Every data file any entry ever added, by store location and path.
    pub(super) ever_added: HashSet<(Option<String>, String)>,
    pub(super) expired_partitions: BTreeSet<(String, String, String)>,
    /// Entries whose `prev` is not the hash of the entry before.
    pub(super) link_breaks: Vec<u64>,
    /// Entries no trusted writer signed, and why.
    pub(super) untrusted: Vec<(u64, Untrusted)>,
    /// Every key a signed entry ever trusted, in the order trusted: the
    /// first is the archive's root key, which trusted the others (directly
    /// or through keys it trusted).
    ever_trusted: Vec<String>,
}

impl Replay {
    /// The keys checkpoints and heartbeats may be signed by: the pinned key,
    /// and when it is the archive's root key, every key the log trusted
    /// since. A later key vouches for nothing on its own: whoever rewrites
    /// the whole log can trust any key they like in it, but cannot sign as
    /// the root.
    pub(super) fn signers(&self, pinned: &VerifierKey) -> Vec<VerifierKey> {
        let is_root = self.ever_trusted.first() == Some(&pinned.to_string());
        let others = (self.ever_trusted.iter())
            .filter(|_| is_root)
            .filter_map(|k| VerifierKey::parse(k).ok())
            .filter(|k| k != pinned);
        std::iter::once(pinned.clone()).chain(others).collect()
    }
}

/// Reads entries 1 to the highest present in order, checking each one's
/// number and link, building the Merkle tree and comparing snapshots.
pub(super) async fn replay_log(
    store: &dyn ObjectStore,
    entries: &BTreeMap<u64, Path>,
    snapshots: &BTreeMap<u64, Path>,
    delta: &mut DeltaCheck,
    findings: &mut Vec<Finding>,
) -> Result<Replay, VerifyError> {
    let mut replay = Replay {
        state: Snapshot::empty(),
        tree: MerkleLog::new(),
        tree_complete: true,
        ever_added: HashSet::new(),
        expired_partitions: BTreeSet::new(),
        link_breaks: Vec::new(),
        untrusted: Vec::new(),
        ever_trusted: Vec::new(),
    };
    // Only listed entries are read: a gap, however wide (a stray name such as
    // entry 18446744073709551615), is one finding, not one read per number.
    // Each entry is fetched with its Delta version, when one is listed.
    let published = delta.listed();
    let mut fetched = futures::stream::iter(entries.keys().copied())
        .map(|seq| {
            let published = published.clone();
            async move {
                let version = async {
                    match published.contains(&seq) {
                        true => get(store, &delta_version_path(seq)).await,
                        false => Ok(None),
                    }
                };
                let path = entry_path(seq);
                let (entry, version) = futures::join!(get(store, &path), version);
                (seq, entry, version)
            }
        })
        .buffered(FETCH_CONCURRENCY);
    let mut previous_hash = Some(replay.state.head.clone());
    let mut expected = 1;
    while let Some((seq, bytes, published_version)) = fetched.next().await {
        if seq > expected {
            let which = if seq - 1 == expected {
                format!("entry {expected} is missing")
            } else {
                format!("entries {expected} to {} are missing", seq - 1)
            };
            findings.push(Finding::new(
                Code::ChainBroken,
                entry_path(expected).as_ref(),
                Some(expected),
                &which,
            ));
            replay.tree_complete = false;
            previous_hash = None;
        }
        expected = seq.saturating_add(1);
        replay.state.seq = seq - 1;
        let path = entry_path(seq);
        let broken =
            |detail: &str| Finding::new(Code::ChainBroken, path.as_ref(), Some(seq), detail);
        // Listed, then deleted before it could be read.
        let Some(bytes) = bytes? else {
            findings.push(broken("the entry is missing"));
            replay.tree_complete = false;
            previous_hash = None;
            replay.state.seq = seq;
            continue;
        };
        if replay.tree_complete {
            replay.tree.push_entry(&bytes);
        }
        let hash = sha256_hex(&bytes);
        let entry: Entry = match serde_json::from_slice(&bytes) {
            Ok(entry) => entry,
            Err(e) => {
                findings.push(broken(&format!("the entry is not valid JSON: {e}")));
                previous_hash = Some(hash);
                replay.state.seq = seq;
                continue;
            }
        };
        if entry.seq != seq {
            findings.push(broken(&format!(
                "the object holds entry {} (entries were swapped or renamed)",
                entry.seq
            )));
        }
        if previous_hash.as_ref().is_some_and(|p| *p != entry.prev) {
            replay.link_breaks.push(seq);
        }
        previous_hash = Some(hash.clone());
        for file in &entry.add {
            replay
                .ever_added
                .insert((file.location.clone(), file.path.clone()));
        }
        if entry.operation == SWEEP_OPERATION {
            for file in &entry.remove {
                replay.expired_partitions.insert((
                    file.tenant.clone(),
                    file.family.clone(),
                    file.month.clone(),
                ));
            }
        }
        // Checked against the state before it; replayed all the same, so
        // that later entries are judged on the history as written.
        match replay.state.authenticate(&entry) {
            Ok(()) => replay
                .ever_trusted
                .extend(entry.changes.iter().filter_map(|c| match c {
                    Change::KeyTrusted { key, .. } => Some(key.clone()),
                    _ => None,
                })),
            Err(why) => replay.untrusted.push((seq, why)),
        }
        // Replay even a renumbered entry so that later entries still apply.
        let renumbered = Entry {
            seq: replay.state.seq + 1,
            ..entry
        };
        let marks_before = replay.state.governance.marks.clone();
        match replay.state.apply(&renumbered, &bytes) {
            Ok(()) => {
                let (entry, state) = ((&renumbered, hash.as_str()), &replay.state);
                let stored = published_version?;
                (delta.applied(store, &marks_before, entry, stored, state)).await?
            }
            Err(e) => {
                // After a missing entry, removals of what it added fail too:
                // consequences of the gap already reported.
                if replay.tree_complete {
                    findings.push(broken(&e.to_string()));
                }
                replay.state.seq = seq;
            }
        }
        if let Some(snapshot_path) = snapshots.get(&seq) {
            let newest = snapshots
                .last_key_value()
                .is_some_and(|(&last, _)| last == seq);
            compare_snapshot(store, snapshot_path, &replay, newest, findings).await?;
        }
    }
    Ok(replay)
}

/// A snapshot must be exactly the state the log replays to, or loading would
/// show queries an archive the log does not describe. The shards it names
/// are checked for the `newest` snapshot, the one loading reads (older
/// snapshots' superseded shards are deleted).
async fn compare_snapshot(
    store: &dyn ObjectStore,
    path: &Path,
    replay: &Replay,
    newest: bool,
    findings: &mut Vec<Finding>,
) -> Result<(), VerifyError> {
    let Some(bytes) = get(store, path).await? else {
        return Ok(());
    };
    // Every field: files, sources and governance (policy, holds, marks,
    // shreds, trusted keys) alike. Snapshots since format 4 file completed
    // inputs in shards, named by their hash: the shards the replayed state
    // would be filed into must be those the snapshot names, and stored.
    // A snapshot of an older format is compared as read, and names nothing.
    let stored = serde_json::from_slice::<Snapshot>(&bytes).ok();
    let filed_form = (stored.as_ref())
        .is_some_and(|snapshot| snapshot.format >= 4)
        .then(|| replay.state.filed());
    let (expected, objects) = match &filed_form {
        Some((filed, objects)) => (filed, Some(objects)),
        None => (&replay.state, None),
    };
    let matches = stored.is_some_and(|snapshot| {
        let upgraded = Snapshot {
            format: expected.format,
            ..snapshot
        };
        upgraded == *expected
    });
    if !matches {
        findings.push(Finding::new(
            Code::Modified,
            path.as_ref(),
            Some(replay.state.seq),
            "the snapshot differs from the state the log replays to",
        ));
        return Ok(());
    }
    for (object, bytes) in objects.into_iter().flatten().filter(|_| newest) {
        let (code, what) = match get(store, object).await? {
            Some(stored) if stored == *bytes => continue,
            Some(_) => (Code::Modified, "differs from the inputs it files"),
            None => (Code::Missing, "is gone"),
        };
        findings.push(Finding::new(
            code,
            object.as_ref(),
            Some(replay.state.seq),
            &format!("this record of completed inputs, named by snapshot {path}, {what}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;

    use super::super::tests::{archive, codes, data_path, run};
    use super::*;

    #[tokio::test]
    async fn a_missing_shard_of_completed_inputs_is_reported() {
        use futures::TryStreamExt;
        use strata_store::{Draft, SOURCES_PREFIX, SourceProgress};
        let (store, catalog, key) = archive(1).await;
        let mut snapshot = catalog.load().await.unwrap();
        let input = SourceProgress {
            id: format!("blake3:{:064x}", 7),
            path: "in.ndjson".into(),
            lines: 1,
            rejected: 0,
            accepted: 1,
            complete: true,
        };
        let draft = Draft {
            operation: "ingest".into(),
            sources: vec![(input, 0)],
            ..Default::default()
        };
        catalog.commit(&mut snapshot, draft).await.unwrap(); // snapshot 2 files it
        assert_eq!(codes(&run(store.clone(), &key).await), []);
        let listed: Vec<_> = (store.list(Some(&Path::from(SOURCES_PREFIX))))
            .try_collect()
            .await
            .unwrap();
        let shard = listed
            .iter()
            .find(|m| !m.location.as_ref().contains("/index/"))
            .unwrap();
        store.delete(&shard.location).await.unwrap();
        let report = run(store, &key).await;
        assert_eq!(
            codes(&report),
            [(Code::Missing, shard.location.to_string())]
        );
    }

    #[tokio::test]
    async fn a_doctored_snapshot_is_modified() {
        let (store, _, key) = archive(5).await;
        let path = strata_store::snapshot_path(4);
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        let mut snapshot: Snapshot = serde_json::from_slice(&bytes).unwrap();
        snapshot.files.remove(&data_path(0));
        store
            .put(&path, serde_json::to_vec(&snapshot).unwrap().into())
            .await
            .unwrap();
        let report = run(store, &key).await;
        assert_eq!(codes(&report), [(Code::Modified, path.to_string())]);
    }

    #[tokio::test]
    async fn a_snapshot_with_other_governance_or_beyond_the_log_is_modified() {
        let (store, _, key) = archive(4).await;
        let path = strata_store::snapshot_path(4);
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        let mut snapshot: Snapshot = serde_json::from_slice(&bytes).unwrap();
        snapshot.governance.trusted_keys.clear();
        store
            .put(&path, serde_json::to_vec(&snapshot).unwrap().into())
            .await
            .unwrap();
        let beyond = strata_store::snapshot_path(9);
        store.put(&beyond, bytes.into()).await.unwrap();
        let report = run(store, &key).await;
        assert_eq!(
            codes(&report),
            [
                (Code::Modified, path.to_string()),
                (Code::Modified, beyond.to_string())
            ]
        );
    }
}
