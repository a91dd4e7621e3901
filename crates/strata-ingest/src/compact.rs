//! Compaction: merges a partition's small files into fewer, larger sorted
//! files, committed as one catalog entry that adds the merged file and
//! removes its sources, after which the sources are deleted.

use std::collections::BTreeMap;

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_keys::envelope::{KeyProvider, decryption_properties, encryption_properties};
use strata_store::{Archive, Draft, FileMeta, PartitionKey, Pending, Writer, reconcile};
use tokio::runtime::Handle;

use crate::encode::{ZSTD_LEVEL_DEFAULT, encode_sorted, read_file};
use crate::ingest::{IngestError, upload};

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
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_bytes: 128 << 20,
            zstd_level: ZSTD_LEVEL_DEFAULT,
            actor: "strata".to_string(),
            merges_per_commit: 64,
            keys: None,
        }
    }
}

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

/// Groups of small files, each of one partition, to merge into one file.
fn plan(files: impl Iterator<Item = FileMeta>, target: u64) -> Vec<Vec<FileMeta>> {
    let mut by_partition: BTreeMap<(String, String, String), Vec<FileMeta>> = BTreeMap::new();
    for f in files.filter(|f| f.size < target / 2) {
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
            if size + f.size > target && !group.is_empty() {
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

/// Merges small files in every partition of `archive`.
pub async fn compact(
    archive: &Archive,
    options: CompactOptions,
) -> Result<CompactReport, IngestError> {
    reconcile(&archive.store, &archive.catalog).await?;
    let mut snapshot = archive.catalog.load().await?;
    let groups = plan(snapshot.files.values().cloned(), options.target_bytes);
    let mut report = CompactReport::default();
    if groups.is_empty() {
        return Ok(report);
    }
    let mut writer = Writer::register(archive.store.clone(), "compact", &options.actor).await?;
    for batch in groups.chunks(options.merges_per_commit.max(1)) {
        let mut draft = Draft {
            operation: "compact".into(),
            actor: options.actor.clone(),
            reason: Some("merge small files of a partition".into()),
            ..Default::default()
        };
        for group in batch {
            let (merged, meta) = merge_files(
                archive,
                group,
                options.zstd_level,
                options.keys.as_ref(),
                false,
            )
            .await?;
            // Named before the upload and kept across the commit: before it the
            // merged files are the leftovers, after it their sources are.
            let mut pending: Vec<Pending> = draft.add.iter().map(Pending::of).collect();
            pending.push(Pending::of(&meta));
            pending.extend(draft.remove.iter().chain(group).map(Pending::of));
            writer.set_pending(pending).await?;
            let meta = upload(archive.store.as_ref(), merged, meta).await?;
            report.partitions += 1;
            report.files_removed += group.len();
            report.bytes_removed += group.iter().map(|f| f.size).sum::<u64>();
            report.files_added += 1;
            report.bytes_added += meta.size;
            draft.remove.extend(group.iter().cloned());
            draft.add.push(meta);
        }
        let merged_away = draft.remove.clone();
        archive.catalog.commit(&mut snapshot, draft).await?;
        // Deleting after the commit: a crash here leaves unreferenced objects, never missing ones.
        for file in &merged_away {
            if let Err(e) = archive.store.delete(&Path::from(file.path.as_str())).await {
                tracing::warn!("compacted file {} not deleted: {e}", file.path);
            }
        }
    }
    writer.finish().await?;
    Ok(report)
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
    let key = PartitionKey::of_file(&files[0]).expect("catalogued files have valid partitions");
    Handle::current()
        .spawn_blocking(move || -> Result<_, IngestError> {
            let mut batches = Vec::new();
            for file in bytes {
                batches.extend(read_file(file, decryption.clone())?);
            }
            Ok(encode_sorted(&key, &batches, level, encryption)?)
        })
        .await
        .map_err(|e| IngestError::Task(e.to_string()))?
}

async fn fetch_all(archive: &Archive, files: &[FileMeta]) -> Result<Vec<Bytes>, IngestError> {
    futures::stream::iter(files)
        .map(|f| async move {
            let read = |source| IngestError::Read {
                path: f.path.clone(),
                source: std::io::Error::other(source),
            };
            archive
                .store
                .get(&Path::from(f.path.as_str()))
                .await
                .map_err(read)?
                .bytes()
                .await
                .map_err(read)
        })
        .buffered(8)
        .try_collect()
        .await
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
        let groups = plan(files.into_iter(), 100);
        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|f| f.path.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["a2", "a3", "a1"], vec!["c1", "c2"]]);

        let many: Vec<FileMeta> = (0..5)
            .map(|i| file(&format!("f{i}"), "2025-01", 40, i))
            .collect();
        let groups = plan(many.into_iter(), 100);
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
    }
}
