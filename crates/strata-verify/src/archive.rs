//! `strata verify`: replays the catalog and checks it against its signed
//! checkpoints and against the objects in the store.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use strata_integrity::{Checkpoint, MerkleLog, VerifierKey, verify_consistency};
use strata_store::{
    CATALOG_PREFIX, CHECKPOINT_PREFIX, Change, EXPIRE_OPERATION, Entry, FileMeta, HEARTBEAT_PREFIX,
    LOG_PREFIX, Missing, SNAPSHOT_PREFIX, Snapshot, Untrusted, WriterRecord, entry_path,
    get_if_exists, open_location, seq_of, sha256_hex, writer_records,
};

use crate::{Code, Finding, VerifyError};

/// Entries and files fetched at once.
const FETCH_CONCURRENCY: usize = 16;
/// Data files hashed at once.
const HASH_CONCURRENCY: usize = 4;
/// Bytes read per request when hashing.
const HASH_BLOCK: u64 = 8 << 20;

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

/// The log replayed entry by entry.
struct Replay {
    state: Snapshot,
    tree: MerkleLog,
    /// False once an entry is missing: the tree no longer matches the log.
    tree_complete: bool,
    /// Every data file any entry ever added, by store location and path.
    ever_added: HashSet<(Option<String>, String)>,
    expired_partitions: BTreeSet<(String, String, String)>,
    /// Entries whose `prev` is not the hash of the entry before.
    link_breaks: Vec<u64>,
    /// Entries no trusted writer signed, and why.
    untrusted: Vec<(u64, Untrusted)>,
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
    fn signers(&self, pinned: &VerifierKey) -> Vec<VerifierKey> {
        let is_root = self.ever_trusted.first() == Some(&pinned.to_string());
        let others = (self.ever_trusted.iter())
            .filter(|_| is_root)
            .filter_map(|k| VerifierKey::parse(k).ok())
            .filter(|k| k != pinned);
        std::iter::once(pinned.clone()).chain(others).collect()
    }
}

/// Opens a note with the first of `keys` that signed it; the pinned key's
/// error (the first) otherwise.
fn open_with<T>(
    keys: &[VerifierKey],
    open: impl Fn(&VerifierKey) -> Result<T, strata_integrity::NoteError>,
) -> Result<T, String> {
    let mut first_error = None;
    for key in keys {
        match open(key) {
            Ok(opened) => return Ok(opened),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.map_or_else(|| "no key to check it with".into(), |e| e.to_string()))
}

async fn get(store: &dyn ObjectStore, path: &Path) -> Result<Option<bytes::Bytes>, VerifyError> {
    Ok(get_if_exists(store, path).await?)
}

async fn list(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<Path>, VerifyError> {
    let prefix = Path::from(prefix);
    Ok(store
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await?)
}

/// Splits the objects under `prefix` into those named by sequence number and
/// strays, reported as unsealed.
async fn numbered(
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
    let replay = replay_log(store, &entries, &snapshots, &mut findings).await?;
    let entry_count = entries.keys().next_back().copied().unwrap_or(0);
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
            seconds,
        },
    })
}

/// Reads entries 1 to the highest present in order, checking each one's
/// number and link, building the Merkle tree and comparing snapshots.
async fn replay_log(
    store: &dyn ObjectStore,
    entries: &BTreeMap<u64, Path>,
    snapshots: &BTreeMap<u64, Path>,
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
    let mut fetched = futures::stream::iter(entries.keys().copied())
        .map(|seq| async move { (seq, get(store, &entry_path(seq)).await) })
        .buffered(FETCH_CONCURRENCY);
    let mut previous_hash = Some(replay.state.head.clone());
    let mut expected = 1;
    while let Some((seq, bytes)) = fetched.next().await {
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
        previous_hash = Some(hash);
        for file in &entry.add {
            replay
                .ever_added
                .insert((file.location.clone(), file.path.clone()));
        }
        if entry.operation == EXPIRE_OPERATION {
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
        if let Err(e) = replay.state.apply(&renumbered, &bytes) {
            // After a missing entry, removals of what it added fail too:
            // consequences of the gap already reported.
            if replay.tree_complete {
                findings.push(broken(&e.to_string()));
            }
            replay.state.seq = seq;
        }
        if let Some(snapshot_path) = snapshots.get(&seq) {
            compare_snapshot(store, snapshot_path, &replay, findings).await?;
        }
    }
    Ok(replay)
}

/// A snapshot must be exactly the state the log replays to, or loading would
/// show queries an archive the log does not describe.
async fn compare_snapshot(
    store: &dyn ObjectStore,
    path: &Path,
    replay: &Replay,
    findings: &mut Vec<Finding>,
) -> Result<(), VerifyError> {
    let Some(bytes) = get(store, path).await? else {
        return Ok(());
    };
    // Every field: files, sources and governance (policy, holds, marks,
    // shreds, trusted keys) alike.
    // A snapshot of an older format is compared as read.
    let matches = serde_json::from_slice::<Snapshot>(&bytes).is_ok_and(|snapshot| {
        let upgraded = Snapshot {
            format: replay.state.format,
            ..snapshot
        };
        upgraded == replay.state
    });
    if !matches {
        findings.push(Finding::new(
            Code::Modified,
            path.as_ref(),
            Some(replay.state.seq),
            "the snapshot differs from the state the log replays to",
        ));
    }
    Ok(())
}

/// What the archive's checkpoints cover.
struct Coverage {
    /// Checkpoints checked.
    count: u64,
    /// Largest tree size a valid checkpoint that matches the log covers.
    signed_size: u64,
    /// Largest size of any checkpoint object not beyond the log.
    newest_within_log: u64,
}

/// Checks every signed checkpoint in the archive against the replayed tree.
async fn check_checkpoints(
    store: &dyn ObjectStore,
    options: &Options,
    replay: &Replay,
    entry_count: u64,
    findings: &mut Vec<Finding>,
) -> Result<Coverage, VerifyError> {
    let checkpoints = numbered(store, CHECKPOINT_PREFIX, findings).await?;
    let signers = replay.signers(&options.key);
    let newest_within_log = checkpoints
        .keys()
        .rev()
        .find(|&&size| size <= entry_count)
        .copied()
        .unwrap_or(0);
    let mut signed_size = 0;
    let mut first_mismatch = None;
    let mut beyond_log = None;
    for (&named_size, path) in &checkpoints {
        let Some(note) = get(store, path).await? else {
            continue;
        };
        let checkpoint = match std::str::from_utf8(&note)
            .map_err(|_| "the note is not UTF-8".to_string())
            .and_then(|note| open_with(&signers, |key| Checkpoint::open(note, key)))
        {
            Ok(checkpoint) => checkpoint,
            Err(why) => {
                findings.push(Finding::new(
                    Code::BadSignature,
                    path.as_ref(),
                    Some(named_size),
                    &why,
                ));
                continue;
            }
        };
        if checkpoint.size != named_size {
            findings.push(Finding::new(
                Code::Modified,
                path.as_ref(),
                Some(named_size),
                &format!(
                    "the checkpoint signs tree size {}, not the size its name says",
                    checkpoint.size
                ),
            ));
            continue;
        }
        if checkpoint.size > entry_count {
            beyond_log = Some((path.clone(), checkpoint.size));
            continue;
        }
        if !replay.tree_complete || checkpoint.size > replay.tree.len() {
            continue;
        }
        let root = replay
            .tree
            .root_at(checkpoint.size)
            .expect("size within the tree");
        if checkpoint.origin == replay.state.origin && checkpoint.root == root {
            signed_size = signed_size.max(checkpoint.size);
        } else if first_mismatch.is_none() {
            first_mismatch = Some(checkpoint.size);
        }
    }
    if let Some((path, size)) = beyond_log {
        findings.push(Finding::new(
            Code::Truncated,
            path.as_ref(),
            Some(size),
            &format!(
                "a checkpoint signs {size} entries but the log has {entry_count}: the newest entries were removed"
            ),
        ));
    }
    if let Some(seq) = first_mismatch {
        findings.push(Finding::new(
            Code::ChainBroken,
            entry_path(seq).as_ref(),
            Some(seq),
            &format!("the log up to entry {seq} is not what checkpoint {seq} signed: the entry was edited, replaced or reordered"),
        ));
    }
    for (seq, why) in &replay.untrusted {
        // An edit is reported once, as the chain break the checkpoint shows.
        if *why == Untrusted::Edited && first_mismatch == Some(*seq) {
            continue;
        }
        let code = match why {
            Untrusted::Edited => Code::ChainBroken,
            _ => Code::BadSignature,
        };
        findings.push(Finding::new(
            code,
            entry_path(*seq).as_ref(),
            Some(*seq),
            &why.to_string(),
        ));
    }
    let edited = |seq: u64| {
        first_mismatch == Some(seq)
            || (replay.untrusted.iter()).any(|(s, why)| *s == seq && *why == Untrusted::Edited)
    };
    for &seq in &replay.link_breaks {
        if edited(seq) || (seq > 1 && edited(seq - 1)) {
            continue; // the edited entry and its successor's link: already reported
        }
        findings.push(Finding::new(
            Code::ChainBroken,
            entry_path(seq).as_ref(),
            Some(seq),
            &format!("the entry's prev is not the hash of entry {}", seq - 1),
        ));
    }
    Ok(Coverage {
        count: checkpoints.len() as u64,
        signed_size,
        newest_within_log,
    })
}

struct Heartbeats {
    count: u64,
    last: Option<String>,
}

/// Heartbeats must be signed by the key and vouch for a prefix of this log.
async fn check_heartbeats(
    store: &dyn ObjectStore,
    options: &Options,
    replay: &Replay,
    entry_count: u64,
    findings: &mut Vec<Finding>,
) -> Result<Heartbeats, VerifyError> {
    let paths = list(store, HEARTBEAT_PREFIX).await?;
    let signers = replay.signers(&options.key);
    let mut last: Option<String> = None;
    for path in &paths {
        let Some(note) = get(store, path).await? else {
            continue;
        };
        let finding = |code, detail: &str| Finding::new(code, path.as_ref(), None, detail);
        let opened = std::str::from_utf8(&note)
            .map_err(|_| "the note is not UTF-8".to_string())
            .and_then(|note| open_with(&signers, |key| key.open(note)))
            .and_then(|text| {
                let time = Checkpoint::heartbeat_time(text).map(String::from);
                Ok((Checkpoint::parse(text).map_err(|e| e.to_string())?, time))
            });
        let (checkpoint, time) = match opened {
            Ok(opened) => opened,
            Err(why) => {
                findings.push(finding(Code::BadSignature, &why));
                continue;
            }
        };
        if checkpoint.size > entry_count {
            findings.push(finding(
                Code::Truncated,
                &format!(
                    "a heartbeat vouched for {} entries, the log has {entry_count}",
                    checkpoint.size
                ),
            ));
        } else if replay.tree_complete
            && (checkpoint.origin != replay.state.origin
                || replay.tree.root_at(checkpoint.size).ok() != Some(checkpoint.root))
        {
            findings.push(finding(
                Code::RolledBack,
                &format!(
                    "the log's first {} entries are not what a heartbeat vouched for",
                    checkpoint.size
                ),
            ));
        } else if time > last {
            last = time;
        }
    }
    Ok(Heartbeats {
        count: paths.len() as u64,
        last,
    })
}

/// The log must contain the trusted checkpoint's tree and extend it.
fn check_trusted(
    trusted: &Trusted,
    options: &Options,
    replay: &Replay,
    entry_count: u64,
    findings: &mut Vec<Finding>,
) {
    let finding = |code, detail: &str| Finding::new(code, &trusted.source, None, detail);
    let signers = replay.signers(&options.key);
    let checkpoint = match open_with(&signers, |key| Checkpoint::open(&trusted.note, key)) {
        Ok(checkpoint) => checkpoint,
        Err(e) => {
            findings.push(finding(
                Code::BadSignature,
                &format!("the trusted checkpoint: {e}"),
            ));
            return;
        }
    };
    if checkpoint.origin != replay.state.origin {
        findings.push(finding(
            Code::RolledBack,
            &format!(
                "the trusted checkpoint is of log {}, the archive's log is {}",
                checkpoint.origin, replay.state.origin
            ),
        ));
    } else if checkpoint.size > entry_count {
        findings.push(finding(
            Code::Truncated,
            &format!(
                "the trusted checkpoint has {} entries, the log only {entry_count}",
                checkpoint.size
            ),
        ));
    } else if replay.tree_complete {
        let proof = replay
            .tree
            .consistency_proof(checkpoint.size, replay.tree.len())
            .expect("sizes within the tree");
        if let Err(e) = verify_consistency(
            checkpoint.size,
            replay.tree.len(),
            &checkpoint.root,
            &replay.tree.root(),
            &proof,
        ) {
            findings.push(finding(
                Code::RolledBack,
                &format!(
                    "the log is not an extension of the trusted checkpoint of size {}: {e}",
                    checkpoint.size
                ),
            ));
        }
    }
}

struct DataTotals {
    files_hashed: u64,
    bytes_hashed: u64,
    hash_seconds: f64,
    removed_not_yet_deleted: u64,
}

/// Lists every object outside the catalog, in the archive and in every cold
/// store files were tiered to: each must be a live file of the right size,
/// or one a commit removed; each live file must be there. Then rehashes all
/// or a sample of them.
async fn check_data(
    archive: Arc<dyn ObjectStore>,
    options: &Options,
    replay: &Replay,
    observer: &dyn Observer,
    findings: &mut Vec<Finding>,
) -> Result<DataTotals, VerifyError> {
    let records = writer_records(archive.as_ref()).await?;
    let pending_by: HashMap<(Option<&str>, &str), &WriterRecord> = records
        .iter()
        .flat_map(|r| {
            r.pending
                .iter()
                .map(move |p| ((p.location.as_deref(), p.path.as_str()), r))
        })
        .collect();
    let mut locations: BTreeSet<Option<&str>> = replay
        .ever_added
        .iter()
        .map(|(location, _)| location.as_deref())
        .collect();
    locations.insert(None);
    let mut present: Vec<(Arc<dyn ObjectStore>, &FileMeta)> = Vec::new();
    let mut removed_not_yet_deleted = 0;
    for location in locations {
        let live: HashMap<&str, &FileMeta> = replay
            .state
            .files
            .values()
            .filter(|f| f.location.as_deref() == location)
            .map(|f| (f.path.as_str(), f))
            .collect();
        let store = match location {
            None => archive.clone(),
            Some(cold) => match open_location(cold, Missing::Fail) {
                Ok(store) => store,
                Err(e) => {
                    for path in live.keys() {
                        let detail = format!("its cold store cannot be opened: {e}");
                        let name = display_path(location, path);
                        findings.push(Finding::new(Code::Missing, &name, None, &detail));
                    }
                    continue;
                }
            },
        };
        let mut seen = HashSet::new();
        let mut objects = store.list(None);
        while let Some(meta) = objects.try_next().await? {
            let path = meta.location.as_ref();
            if location.is_none() && path.starts_with(&format!("{CATALOG_PREFIX}/")) {
                continue;
            }
            seen.insert(path.to_string());
            let name = display_path(location, path);
            match live.get(path) {
                Some(file) if file.size != meta.size => findings.push(Finding::new(
                    Code::Modified,
                    &name,
                    None,
                    &format!("{} bytes, the catalog recorded {}", meta.size, file.size),
                )),
                Some(file) => present.push((store.clone(), file)),
                None if replay
                    .ever_added
                    .contains(&(location.map(String::from), path.to_string())) =>
                {
                    removed_not_yet_deleted += 1
                }
                None => {
                    let detail = match pending_by.get(&(location, path)) {
                        Some(writer) => format!(
                            "no catalog entry lists this object; {} by {} (pid {} on {}, last seen {}) \
                             was writing it: if that run was interrupted, the next write to the \
                             archive removes it",
                            writer.operation,
                            writer.actor,
                            writer.pid,
                            writer.host,
                            writer.alive_at
                        ),
                        None => "no catalog entry lists this object".to_string(),
                    };
                    findings.push(Finding::new(Code::Unsealed, &name, None, &detail))
                }
            }
        }
        for path in live.keys().filter(|p| !seen.contains(**p)) {
            findings.push(Finding::new(
                Code::Missing,
                &display_path(location, path),
                None,
                "a committed file is gone and no entry removed it",
            ));
        }
    }

    let to_hash: Vec<(Arc<dyn ObjectStore>, &FileMeta)> =
        if options.deep || present.len() <= options.sample {
            present
        } else {
            let mut rng = rand::rng();
            rand::seq::index::sample(&mut rng, present.len(), options.sample)
                .into_iter()
                .map(|i| present[i].clone())
                .collect()
        };
    observer.hashing(
        to_hash.len() as u64,
        to_hash.iter().map(|(_, f)| f.size).sum(),
    );
    let started = Instant::now();
    let hashed: Vec<(&FileMeta, String)> = futures::stream::iter(to_hash)
        .map(|(store, file)| async move {
            let hash = hash_object(store.as_ref(), file, observer).await?;
            Ok::<_, VerifyError>((file, hash))
        })
        .buffer_unordered(HASH_CONCURRENCY)
        .try_collect()
        .await?;
    let hash_seconds = started.elapsed().as_secs_f64();
    for (file, hash) in &hashed {
        if *hash != file.sha256 {
            findings.push(Finding::new(
                Code::Modified,
                &display_path(file.location.as_deref(), &file.path),
                None,
                &format!("SHA-256 is {hash}, the catalog recorded {}", file.sha256),
            ));
        }
    }
    Ok(DataTotals {
        files_hashed: hashed.len() as u64,
        bytes_hashed: hashed.iter().map(|(f, _)| f.size).sum(),
        hash_seconds,
        removed_not_yet_deleted,
    })
}

/// A data file's path as findings show it: relative to the archive, or
/// prefixed by its cold store's location.
fn display_path(location: Option<&str>, path: &str) -> String {
    match location {
        None => path.to_string(),
        Some(location) => format!("{}/{path}", location.trim_end_matches('/')),
    }
}

/// SHA-256 of a data file whose size was checked, read in large ranges (a
/// plain streaming read of a local file goes 8 KiB at a time, several
/// times slower than the hashing).
async fn hash_object(
    store: &dyn ObjectStore,
    file: &FileMeta,
    observer: &dyn Observer,
) -> Result<String, VerifyError> {
    let path = Path::from(file.path.as_str());
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < file.size {
        let end = (offset + HASH_BLOCK).min(file.size);
        let block = store.get_range(&path, offset..end).await?;
        hasher.update(&block);
        observer.hashed(block.len() as u64);
        offset = end;
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;
    use object_store::memory::InMemory;
    use strata_integrity::SigningKey;
    use strata_store::{Catalog, CatalogError, Draft, checkpoint_path};

    /// An archive of `commits` sealed commits, each adding one real object.
    async fn archive(commits: u64) -> (Arc<InMemory>, Catalog, SigningKey) {
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
    fn data_path(i: u64) -> String {
        format!("tenant=t/family=access/month=1970-01/part-f{i}.parquet")
    }

    async fn add_file(store: &InMemory, catalog: &Catalog, snapshot: &mut Snapshot, path: &str) {
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
        };
        let draft = Draft {
            operation: "ingest".into(),
            actor: "test".into(),
            add: vec![file],
            ..Default::default()
        };
        catalog.commit(snapshot, draft).await.unwrap();
    }

    async fn run(store: Arc<InMemory>, key: &SigningKey) -> Report {
        let options = Options {
            key: key.verifier(),
            trusted: None,
            deep: true,
            sample: 0,
        };
        verify(store, &options, &()).await.unwrap()
    }

    fn codes(report: &Report) -> Vec<(Code, String)> {
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

    /// Appends entry 4 to the three-entry archive in `store` as someone with
    /// write access to the bucket would: correct `prev`, signed by `signer`
    /// if given.
    async fn forge_entry(store: &Arc<InMemory>, signer: Option<&SigningKey>) {
        let catalog = Catalog::new(store.clone());
        let snapshot = catalog.load().await.unwrap();
        let mut entry = strata_store::Entry {
            seq: 4,
            format: strata_store::ENTRY_FORMAT,
            prev: snapshot.head.clone(),
            committed_at: "2026-01-01T00:00:00Z".into(),
            actor: "mallory".into(),
            operation: "hold-release".into(),
            reason: None,
            add: Vec::new(),
            remove: Vec::new(),
            sources: Vec::new(),
            changes: Vec::new(),
            policy_version: None,
            signature: None,
        };
        entry.signature = signer.map(|key| key.sign(&entry.signed_text()).unwrap());
        let bytes = serde_json::to_vec_pretty(&entry).unwrap();
        store.put(&entry_path(4), bytes.into()).await.unwrap();
    }

    #[tokio::test]
    async fn an_appended_entry_no_trusted_writer_signed_is_a_bad_signature() {
        let stranger = SigningKey::generate("strata-elsewhere").unwrap();
        for signer in [None, Some(&stranger)] {
            let (store, catalog, key) = archive(3).await;
            forge_entry(&store, signer).await;
            let report = run(store.clone(), &key).await;
            assert_eq!(
                codes(&report),
                [
                    (Code::BadSignature, entry_path(4).to_string()),
                    (Code::Unsealed, entry_path(4).to_string())
                ],
                "{signer:?}"
            );
            assert_eq!(report.summary.signed_size, 3);
            // No writer builds on it, and none signs it.
            let err = catalog.load().await.unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("catalog entry {} is refused", entry_path(4))),
                "{err}"
            );
            assert!(store.head(&checkpoint_path(4)).await.is_err());
        }
    }

    #[tokio::test]
    async fn a_writer_whose_key_the_archive_does_not_trust_cannot_commit() {
        let (store, _, _) = archive(2).await;
        let stranger = SigningKey::generate("strata-elsewhere").unwrap();
        for catalog in [
            Catalog::new(store.clone()),
            Catalog::new(store.clone()).with_seal(stranger, None),
        ] {
            let mut snapshot = catalog.load().await.unwrap();
            let draft = Draft {
                operation: "hold-add".into(),
                ..Default::default()
            };
            let err = catalog.commit(&mut snapshot, draft).await.unwrap_err();
            assert!(matches!(err, CatalogError::UntrustedWriter { .. }), "{err}");
        }
        assert!(store.head(&entry_path(3)).await.is_err());
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
