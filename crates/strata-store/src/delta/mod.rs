//! The archive published as a Delta Lake table, so that Spark, Trino,
//! Athena, Snowflake, DuckDB and Polars read exactly what strata holds.
//!
//! Catalog entry N is published as Delta version N (`_delta_log/<N, 20
//! digits>.json`, created only if absent); version 0 creates the table. A
//! version lists what became visible to queries and what stopped being
//! visible (see [`actions`]), so crashed writers' leftovers are never listed
//! and a partition marked for expiry is removed from the table at once, long
//! before its files are deleted. Every 100 versions a Delta checkpoint holds
//! the whole table, so readers do not replay the log from version 0.
//!
//! Publishing follows the commit and never fails it: a writer that stops in
//! between leaves versions missing, and the next commit (or `strata
//! publish`) writes them in order. Versions are a function of the log, so two
//! writers publishing the same version write the same bytes; other bytes
//! under a version's name are tampering, reported by `strata verify`.

mod actions;
mod checkpoint;

use std::collections::BTreeMap;

use object_store::ObjectStoreExt;
use object_store::path::Path;

pub use actions::{
    ENCRYPTED_TAG, KEY_VERSION_TAG, PARTITION_COLUMNS, PUBLICATION_FORMAT, SHA256_TAG,
    genesis_version, table_path, version, widens_schema,
};
pub use checkpoint::{
    CHECKPOINT_INTERVAL, checkpoint_bytes, delta_checkpoint_path, same_checkpoint,
};

use crate::catalog::{Catalog, CatalogError, Entry, Snapshot, get_if_exists, put_create};
use crate::governance::Mark;

/// Where the Delta log lives, beside the data in the archive root.
pub const DELTA_LOG_PREFIX: &str = "_delta_log";

/// Where Delta version `version` is stored.
pub fn delta_version_path(version: u64) -> Path {
    Path::from(format!("{DELTA_LOG_PREFIX}/{version:020}.json"))
}

/// The version in a Delta log object's name (`<20 digits>.json` or
/// `<20 digits>.checkpoint.parquet`) and whether it is a checkpoint.
pub fn delta_version_of(path: &Path) -> Option<(u64, bool)> {
    let name = path.filename()?;
    let (stem, checkpoint) = match name.strip_suffix(".checkpoint.parquet") {
        Some(stem) => (stem, true),
        None => (name.strip_suffix(".json")?, false),
    };
    let version = stem.parse().ok().filter(|_| stem.len() == 20)?;
    Some((version, checkpoint))
}

fn last_checkpoint_path() -> Path {
    Path::from(format!("{DELTA_LOG_PREFIX}/_last_checkpoint"))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LastCheckpoint {
    version: u64,
    size: u64,
}

/// What one publication wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// Delta versions written (0 when the table was already up to date).
    pub versions: u64,
    /// Delta checkpoints written.
    pub checkpoints: u64,
}

impl Catalog {
    /// Publishes entry `entry` (stored with SHA-256 `hash`) just committed
    /// on top of a state whose expiry marks were `marks_before`; `after` is
    /// the state it made. When the version before it is not published
    /// (a writer stopped in between), catches up from the last one that is.
    pub(crate) async fn publish_commit(
        &self,
        marks_before: &BTreeMap<String, Mark>,
        entry: &Entry,
        hash: &str,
        after: &Snapshot,
    ) -> Result<Published, CatalogError> {
        let previous = entry.seq - 1;
        if get_if_exists(&*self.store, &delta_version_path(previous))
            .await?
            .is_none()
        {
            return self.publish(after).await;
        }
        self.publish_version(marks_before, entry, hash, after).await
    }

    /// Publishes every catalog entry up to `snapshot.seq` that has no Delta
    /// version yet, in order: `strata publish`, and the catch-up after a
    /// writer stopped between its commit and its publication.
    pub async fn publish(&self, snapshot: &Snapshot) -> Result<Published, CatalogError> {
        let mut published = Published::default();
        let first_missing = self.first_unpublished(snapshot.seq).await?;
        if first_missing > snapshot.seq {
            return Ok(published);
        }
        // Version 0 is written with entry 1, which it is derived from.
        let from = first_missing.max(1);
        let mut state = self.load_at(from - 1).await?;
        for seq in from..=snapshot.seq {
            let Some((entry, bytes)) = self.read_entry_bytes(seq).await? else {
                return Err(CatalogError::Inconsistent {
                    seq,
                    reason: "the entry is missing; run `strata verify`".into(),
                });
            };
            let marks_before = state.governance.marks.clone();
            state.apply(&entry, &bytes)?;
            let written = self
                .publish_version(&marks_before, &entry, &state.head.clone(), &state)
                .await?;
            published.versions += written.versions;
            published.checkpoints += written.checkpoints;
        }
        Ok(published)
    }

    /// The first Delta version not stored: the versions after the newest
    /// checkpoint (named by `_last_checkpoint`) are probed one by one.
    async fn first_unpublished(&self, up_to: u64) -> Result<u64, CatalogError> {
        let hint = get_if_exists(&*self.store, &last_checkpoint_path()).await?;
        let mut version = hint
            .and_then(|bytes| serde_json::from_slice::<LastCheckpoint>(&bytes).ok())
            .map_or(0, |last| last.version.min(up_to));
        while version <= up_to
            && get_if_exists(&*self.store, &delta_version_path(version))
                .await?
                .is_some()
        {
            version += 1;
        }
        Ok(version)
    }

    /// Writes Delta version `entry.seq` (and version 0 before version 1),
    /// and a checkpoint when the version is a multiple of [`CHECKPOINT_INTERVAL`].
    async fn publish_version(
        &self,
        marks_before: &BTreeMap<String, Mark>,
        entry: &Entry,
        hash: &str,
        after: &Snapshot,
    ) -> Result<Published, CatalogError> {
        let mut published = Published::default();
        let mut versions = Vec::new();
        if entry.seq == 1 {
            versions.push((0, genesis_version(entry, hash)));
        }
        // A new shredded key widens the schema: the version carries metadata.
        let first = match widens_schema(entry, after) {
            true => Some(self.first_entry(entry, hash).await?),
            false => None,
        };
        let table = first.as_ref().map(|(e, h)| (e, h.as_str()));
        versions.push((entry.seq, version(marks_before, entry, hash, after, table)));
        for (number, bytes) in versions {
            put_create(&*self.store, &delta_version_path(number), bytes.into()).await?;
            published.versions += 1;
        }
        if entry.seq.is_multiple_of(CHECKPOINT_INTERVAL) {
            // Only an optimisation for readers: publication goes on without it.
            match self.write_checkpoint(entry, hash, after).await {
                Ok(()) => published.checkpoints += 1,
                Err(e) => tracing::warn!(
                    "Delta checkpoint {} could not be written: {e}",
                    delta_checkpoint_path(entry.seq)
                ),
            }
        }
        Ok(published)
    }

    /// The archive's first entry and its hash, which give the Delta table
    /// its identity; `entry` (hashing to `hash`) is the entry being published.
    async fn first_entry(
        &self,
        entry: &Entry,
        hash: &str,
    ) -> Result<(Entry, String), CatalogError> {
        match entry.seq {
            1 => Ok((entry.clone(), hash.to_string())),
            _ => self.read_entry(1).await?.ok_or(CatalogError::Inconsistent {
                seq: 1,
                reason: "the entry is missing; run `strata verify`".into(),
            }),
        }
    }

    /// Writes the checkpoint of version `entry.seq`, then `_last_checkpoint`.
    async fn write_checkpoint(
        &self,
        entry: &Entry,
        hash: &str,
        after: &Snapshot,
    ) -> Result<(), CatalogError> {
        let (first, first_hash) = self.first_entry(entry, hash).await?;
        let (bytes, actions) = checkpoint_bytes(&first, &first_hash, after)?;
        put_create(
            &*self.store,
            &delta_checkpoint_path(entry.seq),
            bytes.into(),
        )
        .await?;
        let hint = LastCheckpoint {
            version: entry.seq,
            size: actions,
        };
        let hint = serde_json::to_vec(&hint).expect("serializes");
        self.store.put(&last_checkpoint_path(), hint.into()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use object_store::ObjectStore;
    use object_store::memory::InMemory;

    use super::*;
    use crate::catalog::tests::{add, file as january};
    use crate::catalog::{Draft, FileMeta};
    use crate::governance::{Change, PartitionRecord};

    /// The twin of a January file (the catalog tests' `file`) a month on.
    fn february(name: &str) -> FileMeta {
        let month = 31 * 86_400_000_000;
        let jan = january(name);
        FileMeta {
            path: jan.path.replace("month=2025-01", "month=2025-02"),
            month: "2025-02".into(),
            min_ts: jan.min_ts + month,
            max_ts: jan.max_ts + month,
            ..jan
        }
    }

    fn draft(operation: &str, add: Vec<FileMeta>, remove: Vec<FileMeta>) -> Draft {
        Draft {
            operation: operation.into(),
            actor: "test".into(),
            add,
            remove,
            ..Default::default()
        }
    }

    fn mark(month: &str) -> Change {
        Change::ExpiryMarked {
            mark: Mark {
                partition: partition(month),
                marked_at: "2030-01-01T00:00:00Z".into(),
                sweep_after: "2030-01-08T00:00:00Z".into(),
                policy_version: 0,
            },
        }
    }

    fn partition(month: &str) -> PartitionRecord {
        PartitionRecord {
            tenant: "t".into(),
            family: "access".into(),
            month: month.into(),
        }
    }

    /// The files a Delta reader sees at each version, replaying the JSON
    /// versions as the protocol says: `add` puts a path in, `remove` takes it out.
    async fn delta_tables(store: &dyn ObjectStore, last: u64) -> Vec<BTreeSet<String>> {
        let mut table = BTreeSet::new();
        let mut tables = Vec::new();
        for number in 0..=last {
            let bytes = get_if_exists(store, &delta_version_path(number))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("version {number} is published"));
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let action: serde_json::Value = serde_json::from_slice(line).unwrap();
                if let Some(path) = action["add"]["path"].as_str() {
                    assert!(table.insert(path.to_string()), "{path} added twice");
                }
                if let Some(path) = action["remove"]["path"].as_str() {
                    assert!(table.remove(path), "{path} removed while not in the table");
                }
            }
            tables.push(table.clone());
        }
        tables
    }

    fn visible(snapshot: &Snapshot) -> BTreeSet<String> {
        snapshot.visible_files().map(table_path).collect()
    }

    #[tokio::test]
    async fn every_version_is_what_queries_saw_after_its_commit() {
        let store = Arc::new(InMemory::new());
        let catalog = Catalog::new(store.clone());
        let mut snap = catalog.load().await.unwrap();
        let mut seen = vec![BTreeSet::new()];
        let commit = async |snap: &mut Snapshot, draft: Draft| {
            catalog.commit(snap, draft).await.unwrap();
            visible(snap)
        };
        let (a, b, c) = (january("a"), january("b"), february("c"));
        seen.push(
            commit(
                &mut snap,
                draft("ingest", vec![a.clone(), b.clone()], vec![]),
            )
            .await,
        );
        seen.push(commit(&mut snap, draft("ingest", vec![c.clone()], vec![])).await);
        let ab = january("ab");
        seen.push(commit(&mut snap, draft("compact", vec![ab.clone()], vec![a, b])).await);
        // Marking hides January at once; a file added to it meanwhile stays hidden.
        let marking = Draft::change("expire-mark", "test", "due", mark("2025-01"));
        seen.push(commit(&mut snap, marking).await);
        seen.push(commit(&mut snap, draft("ingest", vec![january("late")], vec![])).await);
        let cancel = Change::ExpiryCancelled {
            partition: partition("2025-01"),
            reason: "asked".into(),
        };
        seen.push(
            commit(
                &mut snap,
                Draft::change("expire-cancel", "test", "asked", cancel),
            )
            .await,
        );
        seen.push(commit(&mut snap, draft("compact", vec![february("c2")], vec![c])).await);
        seen.push(
            commit(
                &mut snap,
                Draft::change("expire-mark", "test", "due", mark("2025-02")),
            )
            .await,
        );
        let mut sweep = Draft::change(
            crate::SWEEP_OPERATION,
            "test",
            "due",
            Change::ExpirySwept {
                partition: partition("2025-02"),
            },
        );
        sweep.remove = snap
            .files
            .values()
            .filter(|f| f.month == "2025-02")
            .cloned()
            .collect();
        seen.push(commit(&mut snap, sweep).await);

        let tables = delta_tables(&*store, snap.seq).await;
        assert_eq!(tables, seen);
        assert!(tables[3].contains(&ab.path) && !tables[4].contains(&ab.path));
        assert!(
            tables[7].contains(&february("c2").path) && !tables[8].contains(&february("c2").path)
        );
    }

    #[test]
    fn a_tiered_file_is_published_at_its_cold_store_url() {
        let mut cold = february("cold");
        cold.location = Some("s3://cold/strata/".into());
        let name = "tenant=t/family=access/month=2025-02/part-cold.parquet";
        assert_eq!(table_path(&cold), format!("s3://cold/strata/{name}"));
        cold.location = Some("/srv/cold".into());
        assert_eq!(table_path(&cold), format!("file:///srv/cold/{name}"));
        // As the policy gives it, whatever the publisher's working folder.
        cold.location = Some("../cold".into());
        assert_eq!(table_path(&cold), format!("../cold/{name}"));
        cold.location = None;
        assert_eq!(table_path(&cold), name);
    }

    #[tokio::test]
    async fn a_stopped_publisher_is_caught_up_with_the_same_bytes() {
        let store = Arc::new(InMemory::new());
        let catalog = Catalog::new(store.clone());
        let mut snap = catalog.load().await.unwrap();
        for i in 0..5 {
            let name = format!("f{i}");
            catalog.commit(&mut snap, add(&[&name])).await.unwrap();
        }
        let mut written = Vec::new();
        for number in 0..=5 {
            let path = delta_version_path(number);
            written.push(get_if_exists(&*store, &path).await.unwrap().unwrap());
        }
        // A writer stopped after committing 3, 4 and 5 but before publishing them.
        for number in 3..=5 {
            store.delete(&delta_version_path(number)).await.unwrap();
        }
        let published = catalog.publish(&snap).await.unwrap();
        assert_eq!(published.versions, 3);
        for (number, bytes) in written.iter().enumerate() {
            let path = delta_version_path(number as u64);
            assert_eq!(
                &get_if_exists(&*store, &path).await.unwrap().unwrap(),
                bytes
            );
        }
        assert_eq!(catalog.publish(&snap).await.unwrap().versions, 0);
        // The next commit catches up by itself too.
        store.delete(&delta_version_path(5)).await.unwrap();
        catalog.commit(&mut snap, add(&["g"])).await.unwrap();
        assert_eq!(delta_tables(&*store, 6).await[6], visible(&snap));
    }

    #[tokio::test]
    async fn a_failed_publication_fails_no_commit_and_the_next_commit_catches_up() {
        use strata_faults::{Fault, FaultyStore, Kind};
        let store = FaultyStore::new(Arc::new(InMemory::new()));
        let catalog = Catalog::new(store.clone());
        let mut snap = catalog.load().await.unwrap();
        // The first commit's puts: its entry, then Delta versions 0 and 1.
        store.arm(Kind::Put, 2, Fault::Fail);
        assert_eq!(catalog.commit(&mut snap, add(&["a"])).await.unwrap(), 1);
        assert!(store.tripped());
        store.disarm();
        let unpublished = get_if_exists(&*store, &delta_version_path(0))
            .await
            .unwrap();
        assert!(unpublished.is_none());
        catalog.commit(&mut snap, add(&["b"])).await.unwrap();
        assert_eq!(delta_tables(&*store, 2).await[2], visible(&snap));
    }

    #[tokio::test]
    async fn a_checkpoint_every_hundred_versions_holds_the_whole_table() {
        let store = Arc::new(InMemory::new());
        let catalog = Catalog::new(store.clone());
        let mut snap = catalog.load().await.unwrap();
        for i in 0..CHECKPOINT_INTERVAL {
            let name = format!("f{i}");
            catalog.commit(&mut snap, add(&[&name])).await.unwrap();
        }
        let stored = get_if_exists(&*store, &delta_checkpoint_path(CHECKPOINT_INTERVAL))
            .await
            .unwrap()
            .unwrap();
        let (first, hash) = catalog.read_entry(1).await.unwrap().unwrap();
        let (expected, actions) = checkpoint_bytes(&first, &hash, &snap).unwrap();
        assert_eq!(actions, CHECKPOINT_INTERVAL + 2);
        assert!(same_checkpoint(stored.clone(), expected.clone()));
        // One file fewer is another table.
        let mut fewer = snap.clone();
        fewer.files.pop_first();
        let (other, _) = checkpoint_bytes(&first, &hash, &fewer).unwrap();
        assert!(!same_checkpoint(stored, other));
        let hint = get_if_exists(&*store, &last_checkpoint_path())
            .await
            .unwrap()
            .unwrap();
        let hint: LastCheckpoint = serde_json::from_slice(&hint).unwrap();
        assert_eq!((hint.version, hint.size), (CHECKPOINT_INTERVAL, actions));
    }
}
