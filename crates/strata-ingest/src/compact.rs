//! Compaction: merges a partition's small files into fewer, larger sorted
//! files, committed as one catalog entry that adds the merged file and
//! removes its sources, after which the sources are deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use strata_keys::envelope::{KeyProvider, decryption_properties, encryption_properties};
use strata_store::{
    Archive, Draft, FileMeta, PartitionKey, Pending, Snapshot, Writer, data_file_path,
    delete_replaced, reconcile, sha256_hex,
};
use tokio::runtime::Handle;

use crate::encode::{Expected, SortedFileWriter, ZSTD_LEVEL_DEFAULT};
use crate::ingest::{IngestError, upload};
use crate::merge::{SourceFile, merge_cost, merge_sorted};

/// Tuning of a compaction.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Files at least half this size are left alone; merged files stay under it.
    pub target_bytes: u64,
    /// zstd level of merged files.
    pub zstd_level: i32,
    /// Recorded as the actor of each commit.
    pub actor: String,
    /// Merges committed together in one catalog entry.
    pub merges_per_commit: usize,
    /// Tenant keys, to merge encrypted files.
    pub keys: Option<Arc<dyn KeyProvider>>,
    /// Memory the compaction aims to stay within (see [`CompactOptions::group_limit`]).
    pub memory_bytes: u64,
    /// Merges run in parallel.
    pub threads: usize,
    /// Only these partitions are compacted; every partition when `None`.
    pub partitions: Option<BTreeSet<PartitionKey>>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_bytes: 128 << 20,
            zstd_level: ZSTD_LEVEL_DEFAULT,
            actor: "strata".to_string(),
            merges_per_commit: 64,
            keys: None,
            memory_bytes: 512 << 20,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            partitions: None,
        }
    }
}

impl CompactOptions {
    /// Whether a file of `size` bytes is small enough to be merged: under
    /// half the target size.
    pub fn is_small(&self, size: u64) -> bool {
        is_small(size, self.target_bytes)
    }

    /// Bytes of source files merged into one: a merge holds its sources
    /// and its output (both compressed) in memory, besides the rows it
    /// decodes (`MERGE_ROWS`), so each of the parallel merges gets a
    /// quarter of its share of the budget; and never more than the target size.
    fn group_limit(&self) -> u64 {
        let share = self.memory_bytes / self.threads.max(1) as u64;
        (share / 4).min(self.target_bytes).max(1)
    }
}

/// Most files merged into one.
const MAX_MERGE_FILES: usize = 64;
/// Most rows a merge holds decoded, as counted by [`merge_cost`]: about
/// 32 MiB of Arrow arrays.
const MERGE_ROWS: u64 = 64 * 1024;

/// Outcome of a compaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Partitions that had files merged.
    pub partitions: usize,
    /// Files merged away.
    pub files_removed: usize,
    /// Files written.
    pub files_added: usize,
    /// Bytes of the merged-away files.
    pub bytes_removed: u64,
    /// Bytes of the written files.
    pub bytes_added: u64,
}

/// Whether a file of `size` bytes is under half of `target`.
fn is_small(size: u64, target: u64) -> bool {
    size < target / 2
}

/// Groups of small files (under half of `target`), each of one partition,
/// of at most `limit` bytes, `MAX_MERGE_FILES` files and `MERGE_ROWS`
/// rows decoded at once, to merge into one file each.
fn plan(files: impl Iterator<Item = FileMeta>, target: u64, limit: u64) -> Vec<Vec<FileMeta>> {
    let mut by_partition: BTreeMap<(String, String, String), Vec<FileMeta>> = BTreeMap::new();
    for f in files.filter(|f| is_small(f.size, target)) {
        by_partition
            .entry((f.tenant.clone(), f.family.clone(), f.month.clone()))
            .or_default()
            .push(f);
    }
    let mut groups = Vec::new();
    for (_, mut small) in by_partition {
        small.sort_by_key(|f| (f.min_ts, f.max_ts));
        let mut group: Vec<FileMeta> = Vec::new();
        let mut size = 0;
        for f in small {
            // A merge opens a file when it reaches its first row and drops
            // it after its last: what it holds when `f` opens is the cost
            // of the files still open then.
            let open: u64 = (group.iter())
                .filter(|g| g.max_ts >= f.min_ts)
                .map(|g| merge_cost(g.rows))
                .sum();
            let full = size + f.size > limit
                || open + merge_cost(f.rows) > MERGE_ROWS
                || group.len() == MAX_MERGE_FILES;
            if full && !group.is_empty() {
                groups.push(std::mem::take(&mut group));
                size = 0;
            }
            size += f.size;
            group.push(f);
        }
        groups.push(group);
    }
    groups.retain(|g| g.len() > 1);
    groups
}

/// Merges small files in every partition of `archive`. A merge that loses a
/// race with another writer (a source merged or expired meanwhile) is
/// discarded, its partition left to that writer, and the rest planned again
/// from the new state; what a failed compaction uploaded is removed before
/// it returns the error.
pub async fn compact(
    archive: &Archive,
    options: CompactOptions,
) -> Result<CompactReport, IngestError> {
    reconcile(&archive.stores, &archive.catalog).await?;
    let mut report = CompactReport::default();
    let mut writer = None;
    let compacted = compact_rounds(archive, &options, &mut writer, &mut report).await;
    match (compacted, writer) {
        (Ok(()), Some(writer)) => writer.finish().await?,
        (Err(e), Some(writer)) => {
            writer.abandon(&archive.catalog).await;
            return Err(e);
        }
        (result, None) => result?,
    }
    Ok(report)
}

async fn compact_rounds(
    archive: &Archive,
    options: &CompactOptions,
    writer: &mut Option<Writer>,
    report: &mut CompactReport,
) -> Result<(), IngestError> {
    let mut snapshot = archive.catalog.load().await?;
    archive.catalog.check_writer(&snapshot)?;
    // Partitions where this run lost a race: another writer is merging or
    // expiring them, and it is left to finish them. Retrying there instead
    // would trail that writer's commits, losing again each time.
    let mut left_to_others: BTreeSet<PartitionKey> = BTreeSet::new();
    // A partition with more small files than one merge takes is merged in
    // rounds: each round's merged files are merged by the next.
    'plan: loop {
        let candidates = compactable(&snapshot, options)
            .filter(|f| PartitionKey::of_file(f).is_none_or(|p| !left_to_others.contains(&p)));
        let groups = plan(candidates, options.target_bytes, options.group_limit());
        if groups.is_empty() {
            return Ok(());
        }
        if writer.is_none() {
            let registered = Writer::register(&archive.stores, "compact", &options.actor);
            *writer = Some(registered.await?);
        }
        let writer = writer.as_mut().expect("registered above");
        for batch in groups.chunks(options.merges_per_commit.max(1)) {
            let removed: Vec<FileMeta> = batch.iter().flatten().cloned().collect();
            let committed = match merge_batch(archive, options, writer, batch).await {
                Ok(added) => {
                    let draft = Draft {
                        operation: "compact".into(),
                        actor: options.actor.clone(),
                        reason: Some("merge small files of a partition".into()),
                        add: added.clone(),
                        remove: removed.clone(),
                        ..Default::default()
                    };
                    let commit = archive.catalog.commit(&mut snapshot, draft).await;
                    commit.map(|seq| (seq, added)).map_err(IngestError::from)
                }
                Err(e) => Err(e),
            };
            let (seq, added) = match committed {
                Ok(committed) => committed,
                Err(e) => {
                    // Lost a race if a source is gone from the catalog now.
                    snapshot = archive.catalog.load().await?;
                    let lost: Vec<PartitionKey> = (batch.iter())
                        .filter(|group| group.iter().any(|f| !snapshot.files.contains_key(&f.path)))
                        .map(|group| partition_of(group))
                        .collect();
                    if lost.is_empty() {
                        return Err(e);
                    }
                    tracing::info!(
                        "compaction lost a race ({e}); {} partition(s) left to the writer that changed them",
                        lost.len()
                    );
                    left_to_others.extend(lost);
                    // Deletes the merged files; the sources another commit
                    // removed are named as replaced, so they stay for readers
                    // of the state before it.
                    writer.discard_pending(&snapshot).await?;
                    continue 'plan;
                }
            };
            report.partitions += batch.len();
            report.files_removed += removed.len();
            report.bytes_removed += removed.iter().map(|f| f.size).sum::<u64>();
            report.files_added += added.len();
            report.bytes_added += added.iter().map(|f| f.size).sum::<u64>();
            // Deleted after the commit, and only once readers of the state
            // before it are done: a crash here leaves unreferenced objects,
            // never missing ones.
            if let Err(e) = delete_replaced(&archive.stores, seq, &removed).await {
                tracing::warn!("the files compacted by commit {seq} are not deleted: {e}");
            }
        }
    }
}

/// The files compaction may merge: files in the archive itself, of
/// partitions queries see. Tiered files live in their cold store and were
/// compacted when tiered; marked partitions are waiting to be deleted;
/// encrypted files are merged only with the keyring and never once their
/// tenant's keys are to be shredded. Only `options.partitions`, if named.
fn compactable<'a>(
    snapshot: &'a Snapshot,
    options: &'a CompactOptions,
) -> impl Iterator<Item = FileMeta> + 'a {
    let governance = &snapshot.governance;
    let with_keys = options.keys.is_some();
    let chosen = move |f: &FileMeta| match &options.partitions {
        None => true,
        Some(partitions) => PartitionKey::of_file(f).is_some_and(|p| partitions.contains(&p)),
    };
    let readable = move |f: &FileMeta| {
        f.key_version.is_none()
            || (with_keys
                && !governance.shreds.contains_key(&f.tenant)
                && !governance.shredded.contains_key(&f.tenant))
    };
    snapshot
        .visible_files()
        .filter(move |f| f.location.is_none() && readable(f) && chosen(f))
        .cloned()
}

/// Merges each group of `batch` into one new file, `options.threads` at a
/// time, and uploads them; returns their records, to commit.
async fn merge_batch(
    archive: &Archive,
    options: &CompactOptions,
    writer: &mut Writer,
    batch: &[Vec<FileMeta>],
) -> Result<Vec<FileMeta>, IngestError> {
    let merges: Vec<(&[FileMeta], String)> = batch
        .iter()
        .map(|group| (group.as_slice(), data_file_path(&partition_of(group))))
        .collect();
    // Named before any upload and kept across the commit: before it the
    // merged files are the leftovers, after it their sources are.
    let pending = merges.iter().flat_map(|(group, path)| {
        std::iter::once(Pending::upload(path)).chain(group.iter().map(Pending::replacing))
    });
    writer.set_pending(pending.collect()).await?;
    // Every upload runs to its end even after one fails: a dropped upload
    // may still land, after the cleanup that follows a failure.
    // Futures gathered first: a stream mapping through a closure would not
    // be `Send` for every lifetime, and a server spawns compactions.
    let uploads: Vec<_> = merges
        .into_iter()
        .map(|(group, path)| merge_and_upload(archive, options, group, path))
        .collect();
    let uploaded: Vec<Result<FileMeta, IngestError>> = futures::stream::iter(uploads)
        .buffered(options.threads.max(1))
        .collect()
        .await;
    uploaded.into_iter().collect()
}

/// Merges `group` into a new file at `path` and uploads it.
async fn merge_and_upload(
    archive: &Archive,
    options: &CompactOptions,
    group: &[FileMeta],
    path: String,
) -> Result<FileMeta, IngestError> {
    let keys = options.keys.as_ref();
    let (merged, meta) = merge_into(archive, group, path, options.zstd_level, keys, false).await?;
    upload(archive.store.as_ref(), merged, meta).await
}

/// The partition of a group of files of one partition.
fn partition_of(files: &[FileMeta]) -> PartitionKey {
    PartitionKey::of_file(&files[0]).expect("catalogued files have valid partitions")
}

/// Reads `files` (all of one partition, in the archive) and merges their rows,
/// sorted by `ts`, into one new file encoded at zstd `level`. Encrypted
/// sources are read with `keys`; the new file is encrypted under the
/// tenant's current key if `encrypt`, or if any source was.
pub async fn merge_files(
    archive: &Archive,
    files: &[FileMeta],
    level: i32,
    keys: Option<&Arc<dyn KeyProvider>>,
    encrypt: bool,
) -> Result<(Bytes, FileMeta), IngestError> {
    let path = data_file_path(&partition_of(files));
    merge_into(archive, files, path, level, keys, encrypt).await
}

/// [`merge_files`] into a file stored at `path`.
async fn merge_into(
    archive: &Archive,
    files: &[FileMeta],
    path: String,
    level: i32,
    keys: Option<&Arc<dyn KeyProvider>>,
    encrypt: bool,
) -> Result<(Bytes, FileMeta), IngestError> {
    let encrypted = files.iter().any(|f| f.key_version.is_some());
    let keys_needed = || {
        IngestError::Keys(format!(
            "{} is encrypted: this command needs the keyring (--keyring)",
            files[0].path
        ))
    };
    let decryption = match keys {
        Some(keys) => Some(decryption_properties(keys.clone())?),
        None if encrypted => return Err(keys_needed()),
        None => None,
    };
    let encryption = if encrypt || encrypted {
        let keys = keys.ok_or_else(keys_needed)?;
        Some(
            encryption_properties(keys.as_ref(), &files[0].tenant)
                .map_err(|e| IngestError::Keys(e.to_string()))?,
        )
    } else {
        None
    };
    let bytes = fetch_all(archive, files).await?;
    let key = partition_of(files);
    let files: Vec<(u64, i64)> = files.iter().map(|f| (f.rows, f.min_ts)).collect();
    Handle::current()
        .spawn_blocking(move || -> Result<_, IngestError> {
            let size: usize = bytes.iter().map(Bytes::len).sum();
            let sources = (bytes.into_iter().zip(&files))
                .map(|(bytes, (rows, min_ts))| SourceFile {
                    bytes,
                    rows: *rows,
                    min_ts: *min_ts,
                })
                .collect();
            let rows = files.iter().map(|(rows, _)| rows).sum();
            let expected = Expected { bytes: size, rows };
            let mut out = SortedFileWriter::new(path, &key, level, encryption, expected);
            merge_sorted(sources, decryption, &mut out)?;
            Ok(out.finish()?)
        })
        .await
        .map_err(|e| IngestError::Task(e.to_string()))?
}

/// Reads `files` from their stores and checks each against its catalog
/// record: a rewrite must never launder an edit made since the last commit.
async fn fetch_all(archive: &Archive, files: &[FileMeta]) -> Result<Vec<Bytes>, IngestError> {
    let stores: Vec<Arc<dyn ObjectStore>> = (files.iter())
        .map(|f| archive.stores.get(f.location.as_deref()))
        .collect::<Result<_, _>>()
        .map_err(|e| IngestError::Read {
            path: files[0].path.clone(),
            source: std::io::Error::other(e),
        })?;
    // Futures gathered first, as in `merge_batch`, for `Send`.
    let reads: Vec<_> = (files.iter().zip(stores))
        .map(|(f, store)| fetch_checked(f, store))
        .collect();
    futures::stream::iter(reads).buffered(8).try_collect().await
}

/// The bytes of `file` from `store`, checked against its record.
async fn fetch_checked(file: &FileMeta, store: Arc<dyn ObjectStore>) -> Result<Bytes, IngestError> {
    let read = |source| IngestError::Read {
        path: file.path.clone(),
        source: std::io::Error::other(source),
    };
    let path = Path::from(file.path.as_str());
    let bytes = (store.get(&path).await.map_err(read)?)
        .bytes()
        .await
        .map_err(read)?;
    check_record(file, &bytes)?;
    Ok(bytes)
}

/// Fails with [`IngestError::Modified`] unless `bytes` are the file `file` records.
fn check_record(file: &FileMeta, bytes: &[u8]) -> Result<(), IngestError> {
    let modified = |detail| IngestError::Modified {
        path: file.path.clone(),
        detail,
    };
    if bytes.len() as u64 != file.size {
        return Err(modified(format!(
            "it has {} bytes, the catalog records {}",
            bytes.len(),
            file.size
        )));
    }
    let hash = sha256_hex(bytes);
    if hash != file.sha256 {
        return Err(modified(format!(
            "its SHA-256 is {hash}, the catalog records {}",
            file.sha256
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, month: &str, size: u64, min_ts: i64) -> FileMeta {
        FileMeta {
            path: name.into(),
            tenant: "t".into(),
            family: "access".into(),
            month: month.into(),
            size,
            sha256: String::new(),
            rows: 1,
            min_ts,
            max_ts: min_ts,
            location: None,
            key_version: None,
            shredded: Vec::new(),
        }
    }

    #[test]
    fn plans_merges_within_partitions_and_under_the_target() {
        let files = vec![
            file("a1", "2025-01", 10, 3),
            file("a2", "2025-01", 10, 1),
            file("a3", "2025-01", 10, 2),
            file("big", "2025-01", 60, 0),
            file("b1", "2025-02", 10, 0),
            file("c1", "2025-03", 10, 0),
            file("c2", "2025-03", 10, 1),
        ];
        let groups = plan(files.into_iter(), 100, 100);
        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|f| f.path.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["a2", "a3", "a1"], vec!["c1", "c2"]]);

        let many: Vec<FileMeta> = (0..5)
            .map(|i| file(&format!("f{i}"), "2025-01", 40, i))
            .collect();
        let groups = plan(many.clone().into_iter(), 100, 100);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
        // A smaller memory share makes smaller groups.
        let groups = plan(many.into_iter(), 100, 60);
        assert!(groups.is_empty(), "no two 40-byte files fit 60 bytes");
        // And a group holds at most MAX_MERGE_FILES files.
        let tiny: Vec<FileMeta> = (0..70)
            .map(|i| file(&format!("t{i}"), "2025-01", 1, i))
            .collect();
        let groups = plan(tiny.into_iter(), 1000, 1000);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [64, 6]);
        // Large files are read a batch at a time, each costing as many
        // rows as a small file decoded whole: at most 4 to a merge.
        let large = |max_ts: i64| -> Vec<FileMeta> {
            (0..10)
                .map(|i| FileMeta {
                    rows: 50_000,
                    max_ts,
                    ..file(&format!("l{i}"), "2025-01", 1, i)
                })
                .collect()
        };
        let groups = plan(large(100).into_iter(), 1000, 1000);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        // Unless they follow one another in time: then one is open at a time.
        let one_after_another = large(0).into_iter().enumerate().map(|(i, f)| FileMeta {
            max_ts: i as i64,
            ..f
        });
        let groups = plan(one_after_another, 1000, 1000);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [10]);
    }
}
