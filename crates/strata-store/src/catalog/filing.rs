//! Filing completed inputs out of the snapshot, so that its size follows
//! what is live (files, inputs in progress, governance), not how many inputs
//! the archive has ever taken.
//!
//! A completed input is still needed: ingesting the same bytes again must be
//! refused (exactly once). When a snapshot is written, completed inputs move
//! into 4,096 shard objects by the first three hex digits of SHA-256 of their
//! id, `_strata/sources/<shard>/<sha256 of the shard's bytes>.json`, each the
//! sorted list of that shard's completed inputs. An index object,
//! `_strata/sources/index/<sha256>.json`, names each shard's current version
//! (its hash and how many inputs it holds), and the snapshot names the index:
//! a snapshot's size does not depend on how many inputs were ever filed, so
//! opening a session on a million commits reads as much as on a thousand.
//! Both are content-addressed: their names are a pure function of the log,
//! so verify recomputes them, and writers that file the same inputs write
//! the same bytes. Looking an input up reads the index and its one shard,
//! each checked against its hash.
//!
//! Filing rewrites the index and the shards it touches (about 40 KB each for
//! a million inputs), and a version superseded two snapshots ago is deleted:
//! storage follows the number of inputs, not the number of filings. A
//! reader holding an older snapshot whose index or shard is gone reads the
//! newest snapshot's, which hold every input the older one did.

use std::collections::BTreeMap;

use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::paths::put_create;
use super::{Catalog, CatalogError, Snapshot, SourceProgress, sha256_hex};

/// Prefix of the shards of completed inputs (and of their index).
pub const SOURCES_PREFIX: &str = "_strata/sources";

/// A snapshot's reference to the index of filed inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiledIndex {
    /// SHA-256 of the index object's bytes, also its name.
    pub sha256: String,
    /// How many inputs its shards hold.
    pub sources: u64,
}

/// The index's reference to one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiledShard {
    /// SHA-256 of the shard object's bytes, also its name.
    pub sha256: String,
    /// How many inputs it holds.
    pub sources: u64,
}

/// The index: each shard's current version, by shard.
type Index = BTreeMap<String, FiledShard>;

/// The shard of input `id`: three hex digits.
pub fn shard_of(id: &str) -> String {
    sha256_hex(id.as_bytes())[..3].to_string()
}

/// Where the shard `shard` whose bytes hash to `sha256` is stored.
pub fn shard_path(shard: &str, sha256: &str) -> Path {
    Path::from(format!("{SOURCES_PREFIX}/{shard}/{sha256}.json"))
}

/// Where the index whose bytes hash to `sha256` is stored.
pub fn index_path(sha256: &str) -> Path {
    Path::from(format!("{SOURCES_PREFIX}/index/{sha256}.json"))
}

impl SourceProgress {
    /// Whether the input is filed out of snapshots once complete: all but
    /// the bare SHA-256 ids of catalogs written before BLAKE3, which stay in
    /// the snapshot so that ingest can still tell such a catalog apart.
    fn fileable(&self) -> bool {
        self.complete && !self.id.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// The bytes of a shard holding `sources` (sorted by id, as a map is), and
/// the index's reference to them.
fn shard_bytes(sources: &BTreeMap<String, SourceProgress>) -> (Vec<u8>, FiledShard) {
    let listed = sources.values().collect::<Vec<_>>();
    let bytes = serde_json::to_vec(&listed).expect("sources serialize");
    let filed = FiledShard {
        sha256: sha256_hex(&bytes),
        sources: sources.len() as u64,
    };
    (bytes, filed)
}

/// The bytes of `index`, and the snapshot's reference to them.
fn index_bytes(index: &Index) -> (Vec<u8>, FiledIndex) {
    let bytes = serde_json::to_vec(index).expect("an index serializes");
    let filed = FiledIndex {
        sha256: sha256_hex(&bytes),
        sources: index.values().map(|s| s.sources).sum(),
    };
    (bytes, filed)
}

impl Snapshot {
    /// The completed inputs still held in the snapshot, by shard and id.
    fn unfiled(&self) -> BTreeMap<String, BTreeMap<String, SourceProgress>> {
        let mut shards: BTreeMap<String, BTreeMap<String, SourceProgress>> = BTreeMap::new();
        for source in self.sources.values().filter(|s| s.fileable()) {
            let shard = shards.entry(shard_of(&source.id)).or_default();
            shard.insert(source.id.clone(), source.clone());
        }
        shards
    }

    /// This state as a snapshot that files every completed input stores it,
    /// with the objects it names (the index and the shards) by path; for a
    /// state replayed from the log, whose inputs are all in
    /// [`Snapshot::sources`].
    pub fn filed(&self) -> (Snapshot, BTreeMap<Path, Vec<u8>>) {
        let mut snapshot = self.clone();
        let mut objects = BTreeMap::new();
        let mut index = Index::new();
        for (shard, sources) in self.unfiled() {
            let (bytes, filed) = shard_bytes(&sources);
            objects.insert(shard_path(&shard, &filed.sha256), bytes);
            index.insert(shard, filed);
        }
        if !index.is_empty() {
            let (bytes, filed) = index_bytes(&index);
            objects.insert(index_path(&filed.sha256), bytes);
            snapshot.filed_sources = Some(filed);
        }
        snapshot.sources.retain(|_, s| !s.fileable());
        (snapshot, objects)
    }

    /// Inputs ingested to the end: those held and those filed.
    pub fn completed_sources(&self) -> u64 {
        let held = self.sources.values().filter(|s| s.complete).count() as u64;
        held + self.filed_sources.as_ref().map_or(0, |f| f.sources)
    }
}

impl Catalog {
    /// The progress of input `id` as of `snapshot`: held in it, or filed.
    pub async fn source(
        &self,
        snapshot: &Snapshot,
        id: &str,
    ) -> Result<Option<SourceProgress>, CatalogError> {
        if let Some(source) = snapshot.sources.get(id) {
            return Ok(Some(source.clone()));
        }
        let Some(filed) = &snapshot.filed_sources else {
            return Ok(None);
        };
        match self.filed_source(filed, id).await {
            // Superseded and deleted since `snapshot` was loaded: the newest
            // snapshot's index holds every input this one did, and more.
            Err(gone @ CatalogError::Shard { .. }) => {
                let latest = self.latest_snapshot().await?;
                match latest.and_then(|l| l.filed_sources) {
                    Some(newer) if newer != *filed => self.filed_source(&newer, id).await,
                    _ => Err(gone),
                }
            }
            found => found,
        }
    }

    /// Input `id` in the index `filed` names.
    async fn filed_source(
        &self,
        filed: &FiledIndex,
        id: &str,
    ) -> Result<Option<SourceProgress>, CatalogError> {
        let shard = shard_of(id);
        let index = self.read_index(filed).await?;
        let Some(filed_shard) = index.get(&shard) else {
            return Ok(None);
        };
        Ok(self.read_shard(&shard, filed_shard).await?.remove(id))
    }

    /// The bytes at `path`, which must hash to `sha256`.
    async fn read_addressed(&self, path: &Path, sha256: &str) -> Result<Vec<u8>, CatalogError> {
        let unusable = |reason: &str| CatalogError::Shard {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let Some(bytes) = self.get(path).await? else {
            return Err(unusable("is missing"));
        };
        if sha256_hex(&bytes) != sha256 {
            return Err(unusable("does not hash to its name"));
        }
        Ok(bytes.to_vec())
    }

    /// The index `filed` names.
    async fn read_index(&self, filed: &FiledIndex) -> Result<Index, CatalogError> {
        let path = index_path(&filed.sha256);
        Self::decode(&path, &self.read_addressed(&path, &filed.sha256).await?)
    }

    /// The inputs of shard `shard`, checked against the index's reference.
    async fn read_shard(
        &self,
        shard: &str,
        filed: &FiledShard,
    ) -> Result<BTreeMap<String, SourceProgress>, CatalogError> {
        let path = shard_path(shard, &filed.sha256);
        let bytes = self.read_addressed(&path, &filed.sha256).await?;
        let sources: Vec<SourceProgress> = Self::decode(&path, &bytes)?;
        Ok(sources.into_iter().map(|s| (s.id.clone(), s)).collect())
    }

    /// Moves the completed inputs `snapshot` holds into their shards: each
    /// touched shard is read, merged and stored under its new hash, then
    /// the new index, before the snapshot names it.
    pub(super) async fn file_sources(&self, snapshot: &mut Snapshot) -> Result<(), CatalogError> {
        let unfiled = snapshot.unfiled();
        if unfiled.is_empty() {
            return Ok(());
        }
        let mut index = match &snapshot.filed_sources {
            Some(filed) => self.read_index(filed).await?,
            None => Index::new(),
        };
        for (shard, sources) in unfiled {
            let mut merged = match index.get(&shard) {
                Some(filed) => self.read_shard(&shard, filed).await?,
                None => BTreeMap::new(),
            };
            merged.extend(sources);
            let (bytes, filed) = shard_bytes(&merged);
            put_create(
                &*self.store,
                &shard_path(&shard, &filed.sha256),
                bytes.into(),
            )
            .await?;
            index.insert(shard, filed);
        }
        let (bytes, filed) = index_bytes(&index);
        put_create(&*self.store, &index_path(&filed.sha256), bytes.into()).await?;
        snapshot.filed_sources = Some(filed);
        snapshot.sources.retain(|_, s| !s.fileable());
        Ok(())
    }

    /// The index and shards the snapshot stored at `seq` names, or `None`
    /// if any of them cannot be read.
    async fn named_by_snapshot(&self, seq: u64) -> Option<Vec<Path>> {
        let path = super::snapshot_path(seq);
        let bytes = self.get(&path).await.ok()??;
        let snapshot = Self::decode::<Snapshot>(&path, &bytes).ok()?;
        let Some(filed) = snapshot.filed_sources else {
            return Some(Vec::new());
        };
        let index = self.read_index(&filed).await.ok()?;
        let shards = index.iter().map(|(shard, f)| shard_path(shard, &f.sha256));
        Some(
            std::iter::once(index_path(&filed.sha256))
                .chain(shards)
                .collect(),
        )
    }

    /// Deletes the index and shards that the snapshot two before `seq`
    /// named and neither the one before nor `seq`'s names any more: loaders
    /// of those two keep theirs. Best effort: an object left behind is only
    /// storage.
    pub(super) async fn delete_superseded_shards(&self, seq: u64) {
        let interval = self.snapshot_interval;
        let Some(oldest) = seq.checked_sub(2 * interval).filter(|&s| s > 0) else {
            return;
        };
        let mut named = Vec::new();
        for at in [oldest, seq - interval, seq] {
            match self.named_by_snapshot(at).await {
                Some(paths) => named.push(paths),
                None => return, // unreadable: nothing is deleted
            }
        }
        let kept: std::collections::HashSet<&Path> = named[1..].iter().flatten().collect();
        for path in named[0].iter().filter(|p| !kept.contains(p)) {
            if let Err(e) = self.store.delete(path).await {
                tracing::warn!("could not delete the superseded {path}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::super::tests::add;
    use super::super::{Conflict, snapshot_path};
    use super::*;

    fn input(n: u32, complete: bool) -> SourceProgress {
        SourceProgress {
            id: format!("blake3:{n:064x}"),
            path: format!("in-{n}.ndjson"),
            lines: 10,
            rejected: 0,
            accepted: 10,
            complete,
        }
    }

    #[tokio::test]
    async fn completed_inputs_leave_the_snapshot_and_stay_ingested_once() {
        let catalog = Catalog::new(Arc::new(InMemory::new())).with_snapshot_interval(3);
        let mut snapshot = catalog.load().await.unwrap();
        for (n, complete) in [(1, true), (2, true), (3, false)] {
            let mut draft = add(&[&format!("f{n}")]);
            draft.sources = vec![(input(n, complete), 0)];
            catalog.commit(&mut snapshot, draft).await.unwrap();
        }
        // The snapshot written at 3 holds only the input in progress.
        let loaded = catalog.load().await.unwrap();
        assert_eq!(
            loaded.sources.keys().collect::<Vec<_>>(),
            [&input(3, false).id]
        );
        assert_eq!(loaded.completed_sources(), 2);
        let index = catalog.read_index(loaded.filed_sources.as_ref().unwrap());
        assert_eq!(
            index
                .await
                .unwrap()
                .values()
                .map(|s| s.sources)
                .sum::<u64>(),
            2
        );
        assert_eq!(
            snapshot.filed_sources, loaded.filed_sources,
            "filed in memory too"
        );
        let found = catalog.source(&loaded, &input(1, true).id).await.unwrap();
        assert_eq!(found, Some(input(1, true)));
        assert_eq!(catalog.source(&loaded, "blake3:00").await.unwrap(), None);

        // What a replay of the log files is exactly what was stored.
        let mut replayed = Snapshot::empty();
        catalog.refresh(&mut replayed).await.unwrap();
        assert_eq!(replayed.sources.len(), 3);
        let (filed, _) = replayed.filed();
        let stored = catalog.get(&snapshot_path(3)).await.unwrap().unwrap();
        assert_eq!(serde_json::to_vec(&filed).unwrap(), stored.to_vec());

        // Ingesting a filed input again is a conflict, not a duplicate.
        let mut again = add(&["g"]);
        again.sources = vec![(input(1, true), 0)];
        let err = catalog.commit(&mut snapshot, again).await.unwrap_err();
        assert!(
            matches!(
                err,
                CatalogError::Conflict(Conflict::SourceAdvanced { current: 10, .. })
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn superseded_shards_are_deleted_and_old_snapshots_still_find_their_inputs() {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let store = Arc::new(InMemory::new());
        let catalog = Catalog::new(store.clone()).with_snapshot_interval(3);
        // Three inputs of one shard, each completed just after a snapshot.
        let shard = shard_of(&input(1, true).id);
        let same_shard: Vec<u32> = (1..)
            .filter(|&n| shard_of(&input(n, true).id) == shard)
            .take(3)
            .collect();
        let mut snapshot = catalog.load().await.unwrap();
        let mut at_3 = None;
        for (round, n) in same_shard.iter().enumerate() {
            for i in 0..3 {
                let mut draft = add(&[&format!("f{round}-{i}")]);
                if i == 0 {
                    draft.sources = vec![(input(*n, true), 0)];
                }
                catalog.commit(&mut snapshot, draft).await.unwrap();
            }
            if at_3.is_none() {
                let loaded = catalog.load().await.unwrap();
                let filed = loaded.filed_sources.clone().unwrap();
                let shard_ref = catalog.read_index(&filed).await.unwrap()[&shard].clone();
                at_3 = Some((loaded, filed, shard_ref));
            }
        }
        let (at_3, first_index, first) = at_3.unwrap();
        let listed: Vec<_> = store
            .list(Some(&Path::from(SOURCES_PREFIX)))
            .try_collect()
            .await
            .unwrap();
        // Snapshots 6 and 9's indexes and shards; 3's are gone.
        assert_eq!(listed.len(), 4, "{listed:?}");
        assert!(
            catalog
                .get(&index_path(&first_index.sha256))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            catalog
                .get(&shard_path(&shard, &first.sha256))
                .await
                .unwrap()
                .is_none()
        );
        // A reader still holding snapshot 3 finds its input in the newest shard.
        let found = catalog.source(&at_3, &input(same_shard[0], true).id).await;
        assert_eq!(found.unwrap(), Some(input(same_shard[0], true)));
        assert_eq!(catalog.load().await.unwrap().completed_sources(), 3);
    }
}
