//! Deferred deletion of files a commit replaced by others holding the same
//! rows (compaction's sources, tiering's hot copies). They stay for a while
//! after the commit that removed them, so that a query planned on the state
//! before it still finds its files, and a Delta reader travelling back to a
//! version that lists them reads it (Delta's `deletedFileRetentionDuration`
//! plays the same part). Files whose deletion is the point (expired
//! partitions, plaintext replaced by its encryption) are deleted at once.
//!
//! After its commit, a writer records the replaced files in
//! `_strata/replaced/<seq>-<random>.json` with the time from which they may
//! be deleted; every writer collects the records that are due when it
//! starts ([`crate::reconcile`]), deleting those no commit lists again. A writer stopped before recording them
//! leaves them named in its lease record, whose cleanup deletes them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::archive::Stores;
use crate::catalog::{CatalogError, FileMeta, Snapshot, get_if_exists};
use crate::writers::{Pending, delete_objects, delete_unlisted};

/// Where the records of replaced files wait.
pub const REPLACED_PREFIX: &str = "_strata/replaced";

/// How long replaced files are kept: `STRATA_KEEP_REPLACED_SECS`, 7 days
/// by default (as Delta keeps removed files); 0 deletes them at once.
pub fn keep_replaced() -> Duration {
    std::env::var("STRATA_KEEP_REPLACED_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .map_or(Duration::from_secs(7 * 24 * 3600), Duration::from_secs)
}

#[derive(Serialize, Deserialize)]
struct Replaced {
    /// The commit that removed them.
    removed_by: u64,
    /// RFC 3339: they may be deleted from then on.
    delete_after: String,
    objects: Vec<Pending>,
}

/// Deletes `files`, which commit `seq` replaced, once [`keep_replaced`] is
/// over: now if it is zero (returning how many were deleted), else by a
/// later writer.
pub async fn delete_replaced(
    stores: &Stores,
    seq: u64,
    files: &[FileMeta],
) -> Result<u64, CatalogError> {
    delete_when_due(stores, seq, files.iter().map(Pending::of).collect()).await
}

/// [`delete_replaced`] for `objects`, removed by commit `seq` or one before it.
pub(crate) async fn delete_when_due(
    stores: &Stores,
    seq: u64,
    objects: Vec<Pending>,
) -> Result<u64, CatalogError> {
    let keep = keep_replaced();
    if keep.is_zero() || objects.is_empty() {
        return delete_objects(stores, &objects).await;
    }
    let record = Replaced {
        removed_by: seq,
        delete_after: (Utc::now() + keep).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        objects,
    };
    let name = format!(
        "{REPLACED_PREFIX}/{seq:020}-{:016x}.json",
        rand::random::<u64>()
    );
    let bytes = serde_json::to_vec(&record).expect("serializes");
    (stores
        .archive()
        .put(&Path::from(name), PutPayload::from(bytes)))
    .await?;
    Ok(0)
}

/// The records of replaced files whose time is over at `now`, with where
/// they are stored. A record that cannot be read is left alone and reported.
pub(crate) async fn due_records(
    stores: &Stores,
    now: DateTime<Utc>,
) -> Result<Vec<(Path, Vec<Pending>)>, CatalogError> {
    let archive = stores.archive();
    let prefix = Path::from(REPLACED_PREFIX);
    let records: Vec<_> = archive.list(Some(&prefix)).try_collect().await?;
    let mut due = Vec::new();
    for record in records {
        let Some(bytes) = get_if_exists(archive.as_ref(), &record.location).await? else {
            continue; // collected by another writer meanwhile
        };
        let when = serde_json::from_slice::<Replaced>(&bytes)
            .ok()
            .and_then(|r| {
                let after = DateTime::parse_from_rfc3339(&r.delete_after).ok()?;
                Some((after <= now, r.objects))
            });
        match when {
            Some((true, objects)) => due.push((record.location, objects)),
            Some((false, _)) => {}
            None => tracing::warn!(
                "{} is not a record of replaced files; left alone",
                record.location
            ),
        }
    }
    Ok(due)
}

/// Deletes the files of `due` records that `snapshot` does not list (only
/// data files, as for a dead writer's leftovers), then the records;
/// returns how many files were deleted.
pub(crate) async fn collect(
    stores: &Stores,
    snapshot: &Snapshot,
    due: Vec<(Path, Vec<Pending>)>,
) -> Result<u64, CatalogError> {
    let mut deleted = 0;
    for (record, objects) in due {
        let whose = format!("record {record}");
        deleted += delete_unlisted(stores, snapshot, &objects, &whose).await?;
        match stores.archive().delete(&record).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted)
}

/// Deletes at once the replaced files for which `doomed` holds, whatever
/// their time, unless `snapshot` lists them, and takes them out of their
/// records: expiry and erasure leave no copy waiting. Returns how many
/// were deleted.
pub async fn purge_replaced(
    stores: &Stores,
    snapshot: &Snapshot,
    doomed: &(dyn Fn(&Pending) -> bool + Sync),
) -> Result<u64, CatalogError> {
    let archive = stores.archive();
    let prefix = Path::from(REPLACED_PREFIX);
    let records: Vec<_> = archive.list(Some(&prefix)).try_collect().await?;
    let mut deleted = 0;
    for record in records {
        let Some(bytes) = get_if_exists(archive.as_ref(), &record.location).await? else {
            continue;
        };
        let Ok(mut replaced) = serde_json::from_slice::<Replaced>(&bytes) else {
            continue; // reported when it is due
        };
        let (purged, kept): (Vec<Pending>, Vec<Pending>) =
            replaced.objects.into_iter().partition(|o| doomed(o));
        if purged.is_empty() {
            continue;
        }
        let whose = format!("record {}", record.location);
        deleted += delete_unlisted(stores, snapshot, &purged, &whose).await?;
        replaced.objects = kept;
        if replaced.objects.is_empty() {
            match archive.delete(&record.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            let bytes = serde_json::to_vec(&replaced).expect("serializes");
            archive
                .put(&record.location, PutPayload::from(bytes))
                .await?;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::ObjectStore;
    use object_store::memory::InMemory;

    use super::*;
    use crate::catalog::{Catalog, Draft};
    use crate::writers::tests::{exists, meta as file, put_files};

    #[tokio::test]
    async fn replaced_files_stay_until_their_time_then_go_unless_listed() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let stores = Stores::new(store.clone());
        let catalog = Catalog::new(store.clone());
        let mut snapshot = catalog.load().await.unwrap();
        let (old, merged) = (file("old"), file("merged"));
        put_files(store.as_ref(), &[&old, &merged]).await;
        let draft = Draft {
            add: vec![merged.clone()],
            ..Default::default()
        };
        let seq = catalog.commit(&mut snapshot, draft).await.unwrap();
        // `merged` is listed again, as a forged record could claim: it stays.
        let replaced = [old.clone(), merged.clone()];
        assert_eq!(delete_replaced(&stores, seq, &replaced).await.unwrap(), 0);
        // A forged record naming a catalog object deletes nothing either.
        let forged = Replaced {
            removed_by: seq,
            delete_after: "2000-01-01T00:00:00Z".into(),
            objects: vec![Pending::upload("_strata/log/00000000000000000001.json")],
        };
        let forged_path = Path::from(format!("{REPLACED_PREFIX}/forged.json"));
        let bytes = serde_json::to_vec(&forged).unwrap();
        store.put(&forged_path, bytes.into()).await.unwrap();

        let in_a_day = Utc::now() + Duration::from_secs(24 * 3600);
        assert_eq!(due_records(&stores, in_a_day).await.unwrap().len(), 1);
        let in_8_days = Utc::now() + Duration::from_secs(8 * 24 * 3600);
        let due = due_records(&stores, in_8_days).await.unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(collect(&stores, &snapshot, due).await.unwrap(), 1);
        assert!(!exists(&*store, &old.path).await);
        assert!(exists(&*store, &merged.path).await);
        assert!(exists(&*store, "_strata/log/00000000000000000001.json").await);
        let left: Vec<_> = store
            .list(Some(&Path::from(REPLACED_PREFIX)))
            .try_collect()
            .await
            .unwrap();
        assert!(left.is_empty(), "records collected: {left:?}");
    }
}
