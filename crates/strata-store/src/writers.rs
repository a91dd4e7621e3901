//! Writer records: what a running writer may leave behind if it dies.
//!
//! Data files are uploaded before the commit that lists them, and files a
//! commit removes are deleted after it, so a writer killed in between leaves
//! objects the catalog does not list. To clean them up without ever touching
//! another writer's work, every writer keeps a record under
//! `_strata/writers/<id>.json` naming those objects (its *pending* paths)
//! before it creates or orphans them. A record whose writer is gone (its
//! process no longer exists on this host, or it has not been refreshed for
//! an hour) is stale: [`reconcile`] deletes its pending paths that the
//! catalog does not list, then the record. Every writing command reconciles
//! first, so rerunning after a crash leaves no stray object.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::archive::{Missing, open_location};
use crate::catalog::{Catalog, CatalogError, FileMeta, get_if_exists};
use crate::layout::partition_of_path;

/// Prefix of the writer records.
pub const WRITERS_PREFIX: &str = "_strata/writers";

/// A writer not heard from for this long is presumed dead, wherever it ran.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// A writer's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterRecord {
    /// Random id, also the record's file name.
    pub id: String,
    /// What it does: `ingest`, `compact`, ...
    pub operation: String,
    /// Who runs it.
    pub actor: String,
    /// Host name of its machine.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it last updated the record (RFC 3339).
    pub alive_at: String,
    /// Objects it may have created or orphaned that the catalog may not list.
    pub pending: Vec<Pending>,
}

/// An object a writer may leave behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The cold store holding it, if not the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Its path in that store.
    pub path: String,
}

impl Pending {
    /// The pending object a catalogued file is stored as.
    pub fn of(file: &FileMeta) -> Pending {
        Pending {
            location: file.location.clone(),
            path: file.path.clone(),
        }
    }
}

impl WriterRecord {
    /// Whether the writer is gone, as seen from this process at `now`. A
    /// record whose time cannot be read is never taken for a dead writer:
    /// guessing wrong would delete a live writer's uploads.
    fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let Ok(alive_at) = DateTime::parse_from_rfc3339(&self.alive_at) else {
            tracing::warn!(
                writer = self.id,
                "writer record has an unreadable time {:?}; left alone",
                self.alive_at
            );
            return false;
        };
        let silent = now
            .signed_duration_since(alive_at)
            .to_std()
            .unwrap_or_default()
            > STALE_AFTER;
        silent || (self.host == host_name() && !process_exists(self.pid))
    }
}

/// This machine's host name, or empty if unknown.
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[cfg(target_os = "linux")]
fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_exists(_pid: u32) -> bool {
    true // cannot tell: rely on the record's age
}

fn record_path(id: &str) -> Path {
    Path::from(format!("{WRITERS_PREFIX}/{id}.json"))
}

/// A running writer's handle on its record.
pub struct Writer {
    store: Arc<dyn ObjectStore>,
    record: WriterRecord,
}

impl Writer {
    /// Registers a new writer doing `operation` for `actor`.
    pub async fn register(
        store: Arc<dyn ObjectStore>,
        operation: &str,
        actor: &str,
    ) -> Result<Writer, CatalogError> {
        let now = now();
        let writer = Writer {
            store,
            record: WriterRecord {
                id: format!("{:016x}", rand::random::<u64>()),
                operation: operation.to_string(),
                actor: actor.to_string(),
                host: host_name(),
                pid: std::process::id(),
                started_at: now.clone(),
                alive_at: now,
                pending: Vec::new(),
            },
        };
        writer.save().await?;
        Ok(writer)
    }

    async fn save(&self) -> Result<(), CatalogError> {
        let bytes = serde_json::to_vec_pretty(&self.record).expect("records serialize");
        self.store
            .put(&record_path(&self.record.id), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Records `paths` as everything this writer may leave behind from now
    /// on; call it before uploading them or before removing them from the
    /// catalog and deleting them.
    pub async fn set_pending(&mut self, objects: Vec<Pending>) -> Result<(), CatalogError> {
        self.record.pending = objects;
        self.record.alive_at = now();
        self.save().await
    }

    /// Deletes the record: the writer finished and left nothing behind.
    pub async fn finish(self) -> Result<(), CatalogError> {
        self.store.delete(&record_path(&self.record.id)).await?;
        Ok(())
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Every writer record in the archive.
pub async fn writer_records(store: &dyn ObjectStore) -> Result<Vec<WriterRecord>, CatalogError> {
    let listed: Vec<_> = store
        .list(Some(&Path::from(WRITERS_PREFIX)))
        .try_collect()
        .await?;
    let mut records = Vec::new();
    for meta in listed {
        let Some(bytes) = get_if_exists(store, &meta.location).await? else {
            continue; // finished meanwhile
        };
        records.push(
            serde_json::from_slice(&bytes).map_err(|source| CatalogError::Corrupt {
                path: meta.location.to_string(),
                source,
            })?,
        );
    }
    Ok(records)
}

/// Deletes `objects`, each from the archive `store` or from its cold store
/// (each opened once); objects already gone are skipped. Returns how many
/// were deleted.
pub async fn delete_objects<'a>(
    store: &Arc<dyn ObjectStore>,
    objects: impl IntoIterator<Item = &'a Pending>,
) -> Result<u64, CatalogError> {
    let mut cold_stores: HashMap<&str, Arc<dyn ObjectStore>> = HashMap::new();
    let mut deleted = 0;
    for object in objects {
        let in_store = match object.location.as_deref() {
            None => store.clone(),
            Some(location) => match cold_stores.get(location) {
                Some(cold) => cold.clone(),
                None => {
                    let cold = open_location(location, Missing::Fail)?;
                    cold_stores.insert(location, cold.clone());
                    cold
                }
            },
        };
        match in_store.delete(&Path::from(object.path.as_str())).await {
            Ok(()) => deleted += 1,
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted)
}

/// What [`reconcile`] cleaned up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Stale writer records removed.
    pub writers: usize,
    /// Objects deleted because no commit lists them.
    pub objects: u64,
}

/// Removes what dead writers left behind: their pending objects the
/// catalog does not list, then their records.
pub async fn reconcile(
    store: &Arc<dyn ObjectStore>,
    catalog: &Catalog,
) -> Result<Reconciled, CatalogError> {
    let now = Utc::now();
    let stale: Vec<_> = writer_records(store.as_ref())
        .await?
        .into_iter()
        .filter(|r| r.is_stale(now))
        .collect();
    let mut done = Reconciled::default();
    if stale.is_empty() {
        return Ok(done);
    }
    let snapshot = catalog.load().await?;
    for record in stale {
        let committed = |p: &&Pending| {
            snapshot
                .files
                .get(&p.path)
                .is_some_and(|f| f.location == p.location)
        };
        // Only data files in the archive or a store the catalog names are
        // ever deleted: a forged record cannot point at a catalog object, a
        // home folder, or a store the policy does not know.
        let deletable = |p: &&Pending| {
            let known_store = p.location.as_deref().is_none_or(|location| {
                snapshot.governance.names_store(location)
                    || (snapshot.files.values()).any(|f| f.location.as_deref() == Some(location))
            });
            let ok = known_store && partition_of_path(&p.path).is_some();
            if !ok {
                tracing::warn!(
                    writer = record.id,
                    "writer record names {:?} in {:?}, which strata never writes; not deleted",
                    p.path,
                    p.location
                );
            }
            ok
        };
        let leftovers = record
            .pending
            .iter()
            .filter(|p| !committed(p))
            .filter(deletable);
        done.objects += delete_objects(store, leftovers).await?;
        match store.delete(&record_path(&record.id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => done.writers += 1,
            Err(e) => return Err(e.into()),
        }
        tracing::info!(
            writer = record.id,
            operation = record.operation,
            "removed what an interrupted writer left behind"
        );
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Draft;
    use object_store::memory::InMemory;

    fn meta(name: &str) -> FileMeta {
        FileMeta {
            path: format!("tenant=t/family=access/month=1970-01/part-{name}.parquet"),
            tenant: "t".into(),
            family: "access".into(),
            month: "1970-01".into(),
            size: 1,
            sha256: "0".repeat(64),
            rows: 1,
            min_ts: 0,
            max_ts: 0,
            location: None,
            key_version: None,
        }
    }

    async fn exists(store: &dyn ObjectStore, path: &str) -> bool {
        store.head(&Path::from(path)).await.is_ok()
    }

    #[tokio::test]
    async fn a_dead_writers_uncommitted_objects_are_removed_and_committed_ones_kept() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let catalog = Catalog::new(store.clone());
        let mut writer = Writer::register(store.clone(), "ingest", "test")
            .await
            .unwrap();
        let (a, b) = (meta("a"), meta("b"));
        writer
            .set_pending(vec![Pending::of(&a), Pending::of(&b)])
            .await
            .unwrap();
        for file in [&a, &b] {
            store
                .put(&Path::from(file.path.as_str()), "x".into())
                .await
                .unwrap();
        }
        let mut snapshot = catalog.load().await.unwrap();
        let draft = Draft {
            add: vec![a.clone()],
            ..Default::default()
        };
        catalog.commit(&mut snapshot, draft).await.unwrap();

        // Alive (this very process): nothing is touched.
        assert_eq!(
            reconcile(&store, &catalog).await.unwrap(),
            Reconciled::default()
        );
        assert!(exists(store.as_ref(), &b.path).await);

        // Silent for over an hour: presumed dead.
        writer.record.alive_at = "2020-01-01T00:00:00Z".into();
        writer.save().await.unwrap();
        let done = reconcile(&store, &catalog).await.unwrap();
        assert_eq!(
            done,
            Reconciled {
                writers: 1,
                objects: 1
            }
        );
        assert!(exists(store.as_ref(), &a.path).await, "committed: kept");
        assert!(
            !exists(store.as_ref(), &b.path).await,
            "uncommitted: removed"
        );
        assert!(writer_records(store.as_ref()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_forged_writer_record_deletes_nothing_strata_did_not_write() {
        let outside = tempfile::tempdir().unwrap();
        let precious = outside
            .path()
            .join("tenant=t/family=access/month=1970-01/part-x.parquet");
        std::fs::create_dir_all(precious.parent().unwrap()).unwrap();
        std::fs::write(&precious, "keep me").unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let catalog = Catalog::new(store.clone());
        let mut snapshot = catalog.load().await.unwrap();
        catalog
            .commit(&mut snapshot, Draft::default())
            .await
            .unwrap();
        let entry = "_strata/log/00000000000000000001.json";
        let mut forged = Writer::register(store.clone(), "ingest", "mallory")
            .await
            .unwrap();
        forged
            .set_pending(vec![
                Pending {
                    location: None,
                    path: entry.into(),
                },
                Pending {
                    location: Some(outside.path().display().to_string()),
                    path: "tenant=t/family=access/month=1970-01/part-x.parquet".into(),
                },
            ])
            .await
            .unwrap();
        forged.record.alive_at = "2020-01-01T00:00:00Z".into();
        forged.save().await.unwrap();
        let done = reconcile(&store, &catalog).await.unwrap();
        assert_eq!(done.objects, 0);
        assert!(
            exists(store.as_ref(), entry).await,
            "the catalog entry is kept"
        );
        assert!(
            precious.exists(),
            "a store the catalog does not name is never touched"
        );
    }

    #[tokio::test]
    async fn a_record_with_an_unreadable_time_is_not_taken_for_a_dead_writer() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let catalog = Catalog::new(store.clone());
        let mut writer = Writer::register(store.clone(), "ingest", "test")
            .await
            .unwrap();
        let file = meta("c");
        writer.set_pending(vec![Pending::of(&file)]).await.unwrap();
        store
            .put(&Path::from(file.path.as_str()), "x".into())
            .await
            .unwrap();
        writer.record.alive_at = "yesterday-ish".into();
        writer.record.host = "another-host".into();
        writer.save().await.unwrap();
        assert_eq!(
            reconcile(&store, &catalog).await.unwrap(),
            Reconciled::default()
        );
        assert!(exists(store.as_ref(), &file.path).await);
    }

    #[tokio::test]
    async fn a_finished_writer_leaves_no_record() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let writer = Writer::register(store.clone(), "compact", "test")
            .await
            .unwrap();
        assert_eq!(writer_records(store.as_ref()).await.unwrap().len(), 1);
        writer.finish().await.unwrap();
        assert!(writer_records(store.as_ref()).await.unwrap().is_empty());
    }
}
