//! Writer records: what a running writer may leave behind if it dies.
//!
//! Data files are uploaded before the commit that lists them, and files a
//! commit removes are deleted after it, so a writer killed in between leaves
//! objects the catalog does not list. To clean them up without ever touching
//! another writer's work, every writer keeps a record under
//! `_strata/writers/<instance>.json` naming those objects (its *pending*
//! paths) before it creates or orphans them, and holds a *lease*: the record
//! says until when the writer vouches for being alive, and a background task
//! renews it every third of the lease. A record whose lease ran out is stale:
//! [`reconcile`] deletes its pending paths that the catalog does not list,
//! then the record. A writer that could not renew its lease in time stops
//! before creating or orphaning anything more, so a lease that ran out
//! always means a writer that will not touch its objects again, whatever
//! host, container or pid namespace it ran in. Every writing command
//! reconciles first, so rerunning after a crash, once the lease has run
//! out, leaves no stray object.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::archive::Stores;
use crate::catalog::{Catalog, CatalogError, FileMeta, Snapshot, get_if_exists};
use crate::layout::partition_of_path;

/// Prefix of the writer records.
pub const WRITERS_PREFIX: &str = "_strata/writers";

/// A record written before leases (without `lease_until`) is stale after
/// this long without an update.
const LEGACY_STALE_AFTER: Duration = Duration::from_secs(3600);

/// How long a lease lasts without renewal: `STRATA_WRITER_LEASE_SECS`
/// seconds (tests shorten it), else two minutes.
pub fn lease_duration() -> Duration {
    std::env::var("STRATA_WRITER_LEASE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(120), Duration::from_secs_f64)
}

/// A writer's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterRecord {
    /// Random 128-bit instance id, also the record's file name.
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
    /// Until when it vouches for being alive (RFC 3339); empty in records
    /// written before leases.
    #[serde(default)]
    pub lease_until: String,
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
    /// A catalogued file the writer's commit replaces: once a commit removes
    /// it (the writer's, or another's that won a race), it is kept for
    /// [`crate::keep_replaced`] as every replaced file is, for readers of
    /// the states before, instead of being deleted with the leftovers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaced: bool,
}

impl Pending {
    /// The pending object a catalogued file is stored as, deleted as soon
    /// as the catalog no longer lists it.
    pub fn of(file: &FileMeta) -> Pending {
        Pending {
            location: file.location.clone(),
            path: file.path.clone(),
            replaced: false,
        }
    }

    /// A catalogued file the writer's commit replaces (see [`Pending::replaced`]).
    pub fn replacing(file: &FileMeta) -> Pending {
        Pending {
            replaced: true,
            ..Pending::of(file)
        }
    }

    /// An object the writer uploads to the archive's own store at `path`.
    pub fn upload(path: &str) -> Pending {
        Pending {
            location: None,
            path: path.to_string(),
            replaced: false,
        }
    }
}

impl WriterRecord {
    /// Whether the writer's lease ran out at `now`. A record whose time
    /// cannot be read is never taken for a dead writer: guessing wrong
    /// would delete a live writer's uploads.
    fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let unreadable = |what: &str, text: &str| {
            tracing::warn!(
                writer = self.id,
                "writer record has an unreadable {what} {text:?}; left alone"
            );
            false
        };
        if self.lease_until.is_empty() {
            return match DateTime::parse_from_rfc3339(&self.alive_at) {
                Ok(alive_at) => {
                    now.signed_duration_since(alive_at)
                        .to_std()
                        .unwrap_or_default()
                        > LEGACY_STALE_AFTER
                }
                Err(_) => unreadable("time", &self.alive_at),
            };
        }
        match DateTime::parse_from_rfc3339(&self.lease_until) {
            Ok(until) => now > until,
            Err(_) => unreadable("lease", &self.lease_until),
        }
    }
}

/// This machine's host name, or empty if unknown.
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn record_path(id: &str) -> Path {
    Path::from(format!("{WRITERS_PREFIX}/{id}.json"))
}

/// A running writer's handle on its record, whose lease a background task
/// renews until [`Writer::finish`] (or the handle is dropped).
pub struct Writer {
    stores: Stores,
    lease: Arc<Lease>,
    renewal: tokio::task::JoinHandle<()>,
}

/// The record and until when the last stored copy vouches for the writer.
struct Lease {
    record: tokio::sync::Mutex<WriterRecord>,
    /// `lease_until` of the last record the store accepted.
    held_until: std::sync::Mutex<DateTime<Utc>>,
    duration: Duration,
}

impl Lease {
    /// Stores `record` with its lease extended from now.
    async fn save(
        &self,
        store: &dyn ObjectStore,
        record: &mut WriterRecord,
    ) -> Result<(), CatalogError> {
        let now = Utc::now();
        let until = now + self.duration;
        record.alive_at = rfc3339(now);
        record.lease_until = rfc3339(until);
        let bytes = serde_json::to_vec_pretty(&*record).expect("records serialize");
        store
            .put(&record_path(&record.id), PutPayload::from(bytes))
            .await?;
        *self.held_until.lock().expect("lease lock") = until;
        Ok(())
    }

    /// Fails once the lease may have run out: another writer may then
    /// delete this one's uploads, so it must not create or orphan more.
    fn check(&self, id: &str) -> Result<(), CatalogError> {
        let until = *self.held_until.lock().expect("lease lock");
        // Keep a margin for the time the caller's next step takes.
        if Utc::now() + self.duration / 10 > until {
            return Err(CatalogError::LeaseLost {
                writer: id.to_string(),
            });
        }
        Ok(())
    }
}

impl Writer {
    /// Registers a new writer doing `operation` for `actor`, and starts
    /// renewing its lease.
    pub async fn register(
        stores: &Stores,
        operation: &str,
        actor: &str,
    ) -> Result<Writer, CatalogError> {
        Writer::register_for(stores, operation, actor, lease_duration()).await
    }

    /// [`Writer::register`] with leases of `duration`.
    async fn register_for(
        stores: &Stores,
        operation: &str,
        actor: &str,
        duration: Duration,
    ) -> Result<Writer, CatalogError> {
        let mut record = WriterRecord {
            id: format!("{:032x}", rand::random::<u128>()),
            operation: operation.to_string(),
            actor: actor.to_string(),
            host: host_name(),
            pid: std::process::id(),
            started_at: rfc3339(Utc::now()),
            alive_at: String::new(),
            lease_until: String::new(),
            pending: Vec::new(),
        };
        let lease = Arc::new(Lease {
            record: tokio::sync::Mutex::new(record.clone()),
            held_until: std::sync::Mutex::new(Utc::now()),
            duration,
        });
        let store = stores.archive().clone();
        lease.save(store.as_ref(), &mut record).await?;
        *lease.record.lock().await = record;
        let renewal = tokio::spawn(renew(store, lease.clone()));
        Ok(Writer {
            stores: stores.clone(),
            lease,
            renewal,
        })
    }

    /// Records `paths` as everything this writer may leave behind from now
    /// on; call it before uploading them or before removing them from the
    /// catalog and deleting them. Fails if the lease may have run out.
    pub async fn set_pending(&mut self, objects: Vec<Pending>) -> Result<(), CatalogError> {
        let mut record = self.lease.record.lock().await;
        self.lease.check(&record.id)?;
        record.pending = objects;
        self.lease
            .save(self.stores.archive().as_ref(), &mut record)
            .await
    }

    /// Gives up after a failure: deletes what this writer uploaded or
    /// orphaned that no commit lists, and stops renewing its lease. The
    /// record stays until the lease has run out: an upload still in flight
    /// when the writer gave up may land after this cleanup, and
    /// [`reconcile`] removes it then. Best effort: what cannot be deleted
    /// now (the store is failing) is left to reconcile too.
    pub async fn abandon(self, catalog: &Catalog) {
        self.renewal.abort();
        let record = self.lease.record.lock().await.clone();
        let cleaned = match catalog.load().await {
            Ok(snapshot) => delete_leftovers(&self.stores, &snapshot, &record).await,
            Err(e) => Err(e),
        };
        if let Err(e) = cleaned {
            tracing::warn!(
                writer = record.id,
                "could not remove what the failed writer left: {e}; the next write after its lease removes it"
            );
        }
    }

    /// Deletes what this writer uploaded or orphaned that `snapshot` does
    /// not list and forgets it: after losing a race, before planning again.
    pub async fn discard_pending(&mut self, snapshot: &Snapshot) -> Result<u64, CatalogError> {
        let record = self.lease.record.lock().await.clone();
        let deleted = delete_leftovers(&self.stores, snapshot, &record).await?;
        self.set_pending(Vec::new()).await?;
        Ok(deleted)
    }

    /// Deletes the record: the writer finished and left nothing behind.
    pub async fn finish(self) -> Result<(), CatalogError> {
        self.renewal.abort();
        let id = self.lease.record.lock().await.id.clone();
        self.stores.archive().delete(&record_path(&id)).await?;
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // A writer that stops without finishing leaves its record to expire.
        self.renewal.abort();
    }
}

/// Renews the lease every third of its duration until aborted; a failed
/// renewal is retried at the next tick (and `Lease::check` stops the writer
/// if none succeeds in time).
async fn renew(store: Arc<dyn ObjectStore>, lease: Arc<Lease>) {
    loop {
        tokio::time::sleep(lease.duration / 3).await;
        let mut record = lease.record.lock().await;
        if let Err(e) = lease.save(store.as_ref(), &mut record).await {
            tracing::warn!(
                writer = record.id,
                "could not renew the writer's lease: {e}"
            );
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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

/// Deletes `objects`, each from the archive's store or from its cold store;
/// objects already gone are skipped. Returns how many were deleted.
pub async fn delete_objects<'a>(
    stores: &Stores,
    objects: impl IntoIterator<Item = &'a Pending>,
) -> Result<u64, CatalogError> {
    let mut deleted = 0;
    for object in objects {
        let in_store = stores.get(object.location.as_deref())?;
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
    /// Replaced files deleted because their keep time was over.
    pub replaced: u64,
}

/// Removes what dead writers left behind (their pending objects the
/// catalog does not list, then their records) and the replaced files whose
/// keep time is over (see [`crate::replaced`]).
pub async fn reconcile(stores: &Stores, catalog: &Catalog) -> Result<Reconciled, CatalogError> {
    let now = Utc::now();
    let stale: Vec<_> = writer_records(stores.archive().as_ref())
        .await?
        .into_iter()
        .filter(|r| r.is_stale(now))
        .collect();
    let mut done = Reconciled::default();
    let due = crate::replaced::due_records(stores, now).await?;
    if stale.is_empty() && due.is_empty() {
        return Ok(done);
    }
    let snapshot = catalog.load().await?;
    done.replaced = crate::replaced::collect(stores, &snapshot, due).await?;
    for record in stale {
        done.objects += clean_up(stores, &snapshot, &record).await?;
        done.writers += 1;
        tracing::info!(
            writer = record.id,
            operation = record.operation,
            "removed what an interrupted writer left behind"
        );
    }
    Ok(done)
}

/// Deletes the objects `record` names that `snapshot` does not list, then
/// the record; returns how many objects were deleted.
async fn clean_up(
    stores: &Stores,
    snapshot: &Snapshot,
    record: &WriterRecord,
) -> Result<u64, CatalogError> {
    let deleted = delete_leftovers(stores, snapshot, record).await?;
    match stores.archive().delete(&record_path(&record.id)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(deleted),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the objects `record` names that `snapshot` does not list;
/// returns how many were deleted.
async fn delete_leftovers(
    stores: &Stores,
    snapshot: &Snapshot,
    record: &WriterRecord,
) -> Result<u64, CatalogError> {
    let whose = format!("writer record {}", record.id);
    delete_unlisted(stores, snapshot, &record.pending, &whose).await
}

/// Deletes those of `objects` (named by `whose`, for messages) that
/// `snapshot` does not list, the replaced ones once their keep time is
/// over; returns how many were deleted now.
pub(crate) async fn delete_unlisted(
    stores: &Stores,
    snapshot: &Snapshot,
    objects: &[Pending],
    whose: &str,
) -> Result<u64, CatalogError> {
    let committed = |p: &&Pending| {
        snapshot
            .files
            .get(&p.path)
            .is_some_and(|f| f.location == p.location)
    };
    // Only data files in the archive or a store the catalog names are ever
    // deleted: a forged record cannot point at a catalog object, a home
    // folder, or a store the policy does not know.
    let mut known_stores = snapshot.governance.cold_stores();
    known_stores.extend(snapshot.files.values().filter_map(|f| f.location.clone()));
    let deletable = |p: &&Pending| {
        let known_store = (p.location.as_ref()).is_none_or(|l| known_stores.contains(l));
        let ok = known_store && partition_of_path(&p.path).is_some();
        if !ok {
            tracing::warn!(
                "{whose} names {:?} in {:?}, which strata never writes; not deleted",
                p.path,
                p.location
            );
        }
        ok
    };
    // Collected first: a future holding these closures across an await
    // would not be `Send` for every lifetime, and servers spawn it.
    let (replaced, leftovers): (Vec<&Pending>, Vec<&Pending>) = (objects.iter())
        .filter(|p| !committed(p))
        .filter(deletable)
        .partition(|p| p.replaced);
    // Removed by a commit at or before the snapshot's.
    let replaced = replaced.into_iter().map(|p| Pending {
        replaced: false,
        ..p.clone()
    });
    let kept = crate::replaced::delete_when_due(stores, snapshot.seq, replaced.collect());
    Ok(kept.await? + delete_objects(stores, leftovers).await?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::Draft;
    use object_store::memory::InMemory;

    /// A data file of tenant `t`, January 1970, named `name`.
    pub(crate) fn meta(name: &str) -> FileMeta {
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
            shredded: Vec::new(),
        }
    }

    /// Whether `path` is stored.
    pub(crate) async fn exists(store: &dyn ObjectStore, path: &str) -> bool {
        store.head(&Path::from(path)).await.is_ok()
    }

    /// Stores `record` as it is, as a writer (or someone forging one) would.
    async fn store_record(store: &dyn ObjectStore, record: &WriterRecord) {
        let bytes = serde_json::to_vec(record).unwrap();
        store
            .put(&record_path(&record.id), bytes.into())
            .await
            .unwrap();
    }

    /// Stops `writer` renewing and lets its lease run out, as if it died an hour ago.
    async fn expire(store: &dyn ObjectStore, writer: &Writer) -> WriterRecord {
        writer.renewal.abort();
        let mut record = writer.lease.record.lock().await.clone();
        record.alive_at = "2020-01-01T00:00:00Z".into();
        record.lease_until = "2020-01-01T00:02:00Z".into();
        store_record(store, &record).await;
        record
    }

    /// An empty archive in memory: its store, its stores and its catalog.
    fn in_memory() -> (Arc<dyn ObjectStore>, Stores, Catalog) {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        (
            store.clone(),
            Stores::new(store.clone()),
            Catalog::new(store),
        )
    }

    /// Stores a one-byte object at each of `files`' paths.
    pub(crate) async fn put_files(store: &dyn ObjectStore, files: &[&FileMeta]) {
        for file in files {
            store
                .put(&Path::from(file.path.as_str()), "x".into())
                .await
                .unwrap();
        }
    }

    /// Names `files` in `writer`'s record, then uploads them.
    async fn upload_pending(writer: &mut Writer, store: &dyn ObjectStore, files: &[&FileMeta]) {
        let pending = files.iter().map(|f| Pending::of(f)).collect();
        writer.set_pending(pending).await.unwrap();
        put_files(store, files).await;
    }

    #[tokio::test]
    async fn a_dead_writers_uncommitted_objects_are_removed_and_committed_ones_kept() {
        let (store, stores, catalog) = in_memory();
        let mut writer = Writer::register(&stores, "ingest", "test").await.unwrap();
        let (a, b) = (meta("a"), meta("b"));
        upload_pending(&mut writer, store.as_ref(), &[&a, &b]).await;
        let mut snapshot = catalog.load().await.unwrap();
        let draft = Draft {
            add: vec![a.clone()],
            ..Default::default()
        };
        catalog.commit(&mut snapshot, draft).await.unwrap();

        // Alive (this very process): nothing is touched.
        assert_eq!(
            reconcile(&stores, &catalog).await.unwrap(),
            Reconciled::default()
        );
        assert!(exists(store.as_ref(), &b.path).await);

        // Its lease ran out: presumed dead.
        expire(store.as_ref(), &writer).await;
        let done = reconcile(&stores, &catalog).await.unwrap();
        assert_eq!(
            done,
            Reconciled {
                writers: 1,
                objects: 1,
                replaced: 0
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
    async fn replaced_sources_a_dead_writer_names_are_kept_for_readers_of_older_states() {
        let (store, stores, catalog) = in_memory();
        let mut snapshot = catalog.load().await.unwrap();
        let (source, merged, lost) = (meta("source"), meta("merged"), meta("lost"));
        put_files(store.as_ref(), &[&source, &merged, &lost]).await;
        let add = Draft {
            add: vec![source.clone()],
            ..Default::default()
        };
        catalog.commit(&mut snapshot, add).await.unwrap();
        // A merge of `source` (uploaded as `merged` and, in a run that lost
        // its race, as `lost`) dies after another commit removed `source`.
        let mut writer = Writer::register(&stores, "compact", "test").await.unwrap();
        let pending = vec![
            Pending::upload(&merged.path),
            Pending::upload(&lost.path),
            Pending::replacing(&source),
        ];
        writer.set_pending(pending).await.unwrap();
        let merge = Draft {
            add: vec![merged.clone()],
            remove: vec![source.clone()],
            ..Default::default()
        };
        catalog.commit(&mut snapshot, merge).await.unwrap();
        expire(store.as_ref(), &writer).await;

        let done = reconcile(&stores, &catalog).await.unwrap();
        assert_eq!((done.writers, done.objects), (1, 1), "{done:?}");
        assert!(!exists(store.as_ref(), &lost.path).await, "never committed");
        assert!(exists(store.as_ref(), &merged.path).await, "committed");
        assert!(
            exists(store.as_ref(), &source.path).await,
            "replaced: kept for readers of the states before"
        );
        // Until its keep time is over, like the files a commit replaces.
        let in_8_days = Utc::now() + Duration::from_secs(8 * 24 * 3600);
        let due = crate::replaced::due_records(&stores, in_8_days)
            .await
            .unwrap();
        let snapshot = catalog.load().await.unwrap();
        assert_eq!(
            crate::replaced::collect(&stores, &snapshot, due)
                .await
                .unwrap(),
            1
        );
        assert!(!exists(store.as_ref(), &source.path).await);
    }

    #[tokio::test]
    async fn a_forged_writer_record_deletes_nothing_strata_did_not_write() {
        let outside = tempfile::tempdir().unwrap();
        let precious = outside
            .path()
            .join("tenant=t/family=access/month=1970-01/part-x.parquet");
        std::fs::create_dir_all(precious.parent().unwrap()).unwrap();
        std::fs::write(&precious, "keep me").unwrap();
        let (store, stores, catalog) = in_memory();
        let mut snapshot = catalog.load().await.unwrap();
        catalog
            .commit(&mut snapshot, Draft::default())
            .await
            .unwrap();
        let entry = "_strata/log/00000000000000000001.json";
        let forged = Writer::register(&stores, "ingest", "mallory")
            .await
            .unwrap();
        let mut record = expire(store.as_ref(), &forged).await;
        record.pending = vec![
            Pending::upload(entry),
            Pending {
                location: Some(outside.path().display().to_string()),
                ..Pending::upload("tenant=t/family=access/month=1970-01/part-x.parquet")
            },
        ];
        store_record(store.as_ref(), &record).await;
        let done = reconcile(&stores, &catalog).await.unwrap();
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
        let (store, stores, catalog) = in_memory();
        let mut writer = Writer::register(&stores, "ingest", "test").await.unwrap();
        let file = meta("c");
        upload_pending(&mut writer, store.as_ref(), &[&file]).await;
        let mut record = expire(store.as_ref(), &writer).await;
        record.lease_until = "yesterday-ish".into();
        store_record(store.as_ref(), &record).await;
        assert_eq!(
            reconcile(&stores, &catalog).await.unwrap(),
            Reconciled::default()
        );
        assert!(exists(store.as_ref(), &file.path).await);
    }

    #[tokio::test]
    async fn a_renewed_lease_protects_a_live_writer_and_a_lost_one_stops_it() {
        let (store, stores, catalog) = in_memory();
        let lease = Duration::from_millis(300);
        let mut writer = Writer::register_for(&stores, "compact", "test", lease)
            .await
            .unwrap();
        let file = meta("d");
        upload_pending(&mut writer, store.as_ref(), &[&file]).await;
        // Long past its first lease, but renewed: alive, its upload kept.
        tokio::time::sleep(lease * 4).await;
        assert_eq!(
            reconcile(&stores, &catalog).await.unwrap(),
            Reconciled::default()
        );
        assert!(exists(store.as_ref(), &file.path).await);
        writer.set_pending(vec![Pending::of(&file)]).await.unwrap();
        // Renewals stop (the store became unreachable, the task starved):
        // the writer refuses to go on, and its lease runs out for the others.
        writer.renewal.abort();
        tokio::time::sleep(lease * 2).await;
        let err = writer.set_pending(Vec::new()).await.unwrap_err();
        assert!(matches!(err, CatalogError::LeaseLost { .. }), "{err}");
        let done = reconcile(&stores, &catalog).await.unwrap();
        assert_eq!((done.writers, done.objects), (1, 1));
    }

    #[tokio::test]
    async fn a_finished_writer_leaves_no_record() {
        let (store, stores, _) = in_memory();
        let writer = Writer::register(&stores, "compact", "test").await.unwrap();
        assert_eq!(writer_records(store.as_ref()).await.unwrap().len(), 1);
        writer.finish().await.unwrap();
        assert!(writer_records(store.as_ref()).await.unwrap().is_empty());
    }
}
