//! Filing completed inputs out of the snapshot, so that its size follows
//! what is live (files, inputs in progress, governance), not how many inputs
//! the archive has ever taken.
//!
//! A completed input is still needed: ingesting the same bytes again must be
//! refused (exactly once). When a snapshot is written, completed inputs move
//! into 256 shard objects by the first byte of SHA-256 of their id,
//! `_strata/sources/<shard>/<sha256 of the shard's bytes>.json`, each the
//! sorted list of that shard's completed inputs; the snapshot keeps one
//! reference per shard (the hash and how many inputs it holds). A shard is
//! content-addressed: its name is a pure function of the log, so verify
//! recomputes it, and writers that file the same shard write the same bytes.
//! Looking an input up reads its one shard, checked against its hash.

use std::collections::BTreeMap;

use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::paths::put_create;
use super::{Catalog, CatalogError, Snapshot, SourceProgress, sha256_hex};

/// Prefix of the shards of completed inputs.
pub const SOURCES_PREFIX: &str = "_strata/sources";

/// A snapshot's reference to one shard of completed inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiledShard {
    /// SHA-256 of the shard object's bytes, also its name.
    pub sha256: String,
    /// How many inputs it holds.
    pub sources: u64,
}

/// The shard of input `id`: two hex digits.
pub fn shard_of(id: &str) -> String {
    sha256_hex(id.as_bytes())[..2].to_string()
}

/// Where the shard `shard` whose bytes hash to `sha256` is stored.
pub fn shard_path(shard: &str, sha256: &str) -> Path {
    Path::from(format!("{SOURCES_PREFIX}/{shard}/{sha256}.json"))
}

impl SourceProgress {
    /// Whether the input is filed out of snapshots once complete: all but
    /// the bare SHA-256 ids of catalogs written before BLAKE3, which stay in
    /// the snapshot so that ingest can still tell such a catalog apart.
    fn fileable(&self) -> bool {
        self.complete && !self.id.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// The bytes of a shard holding `sources` (sorted by id, as a map is).
fn shard_bytes(sources: &BTreeMap<String, SourceProgress>) -> Vec<u8> {
    serde_json::to_vec(&sources.values().collect::<Vec<_>>()).expect("sources serialize")
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
    /// with each shard's bytes; for a state replayed from the log, whose
    /// inputs are all in [`Snapshot::sources`].
    pub fn filed(&self) -> (Snapshot, BTreeMap<String, Vec<u8>>) {
        let mut snapshot = self.clone();
        let mut shards = BTreeMap::new();
        for (shard, sources) in self.unfiled() {
            let bytes = shard_bytes(&sources);
            snapshot.filed_sources.insert(
                shard.clone(),
                FiledShard {
                    sha256: sha256_hex(&bytes),
                    sources: sources.len() as u64,
                },
            );
            shards.insert(shard, bytes);
        }
        snapshot.sources.retain(|_, s| !s.fileable());
        (snapshot, shards)
    }

    /// Inputs ingested to the end: those held and those filed.
    pub fn completed_sources(&self) -> u64 {
        let held = self.sources.values().filter(|s| s.complete).count() as u64;
        held + self.filed_sources.values().map(|s| s.sources).sum::<u64>()
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
        let shard = shard_of(id);
        let Some(filed) = snapshot.filed_sources.get(&shard) else {
            return Ok(None);
        };
        Ok(self.read_shard(&shard, filed).await?.remove(id))
    }

    /// The inputs of shard `shard`, checked against the snapshot's reference.
    async fn read_shard(
        &self,
        shard: &str,
        filed: &FiledShard,
    ) -> Result<BTreeMap<String, SourceProgress>, CatalogError> {
        let path = shard_path(shard, &filed.sha256);
        let unusable = |reason: &str| CatalogError::Shard {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let Some(bytes) = self.get(&path).await? else {
            return Err(unusable("is missing"));
        };
        if sha256_hex(&bytes) != filed.sha256 {
            return Err(unusable("does not hash to its name"));
        }
        let sources: Vec<SourceProgress> = Self::decode(&path, &bytes)?;
        Ok(sources.into_iter().map(|s| (s.id.clone(), s)).collect())
    }

    /// Moves the completed inputs `snapshot` holds into their shards: each
    /// touched shard is read, merged and stored under its new hash before
    /// the snapshot names it.
    pub(super) async fn file_sources(&self, snapshot: &mut Snapshot) -> Result<(), CatalogError> {
        for (shard, sources) in snapshot.unfiled() {
            let mut merged = match snapshot.filed_sources.get(&shard) {
                Some(filed) => self.read_shard(&shard, filed).await?,
                None => BTreeMap::new(),
            };
            merged.extend(sources);
            let bytes = shard_bytes(&merged);
            let sha256 = sha256_hex(&bytes);
            put_create(&*self.store, &shard_path(&shard, &sha256), bytes.into()).await?;
            let filed = FiledShard {
                sha256,
                sources: merged.len() as u64,
            };
            snapshot.filed_sources.insert(shard, filed);
        }
        snapshot.sources.retain(|_, s| !s.fileable());
        Ok(())
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
        assert_eq!(
            loaded
                .filed_sources
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
}
