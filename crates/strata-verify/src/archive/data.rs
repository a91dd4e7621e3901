//! The stored objects: every object outside the catalog, in the archive and
//! in each cold store, checked against the live and removed files the log
//! replays to, and all or a sample of the data files rehashed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use strata_store::delta::DELTA_LOG_PREFIX;
use strata_store::{
    CATALOG_PREFIX, FileMeta, Missing, WriterRecord, open_location, writer_records,
};

use super::replay::Replay;
use super::{Observer, Options};
use crate::{Code, Finding, VerifyError};

/// Data files hashed at once.
const HASH_CONCURRENCY: usize = 4;
/// Bytes read per request when hashing.
const HASH_BLOCK: u64 = 8 << 20;
pub(super) struct DataTotals {
    pub(super) files_hashed: u64,
    pub(super) bytes_hashed: u64,
    pub(super) hash_seconds: f64,
    pub(super) removed_not_yet_deleted: u64,
}

/// Lists every object outside the catalog, in the archive and in every cold
/// store files were tiered to: each must be a live file of the right size,
/// or one a commit removed; each live file must be there. Then rehashes all
/// or a sample of them.
pub(super) async fn check_data(
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
        // The catalog and its Delta publication are checked by replaying the log.
        let catalog = [CATALOG_PREFIX, DELTA_LOG_PREFIX].map(|p| format!("{p}/"));
        let mut objects = store.list(None);
        while let Some(meta) = objects.try_next().await? {
            let path = meta.location.as_ref();
            if location.is_none() && catalog.iter().any(|p| path.starts_with(p)) {
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
