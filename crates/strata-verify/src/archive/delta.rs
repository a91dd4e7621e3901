//! The Delta publication: `_delta_log/` must be exactly the catalog
//! published. Each version is recomputed from the replayed log and compared
//! byte for byte, each checkpoint action by action; a version strata did
//! not write, an edited action or a deleted version is reported like any
//! other tampering, since Spark, Trino or DuckDB would read it as the archive.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use object_store::ObjectStore;
use object_store::path::Path;
use strata_store::delta::{
    DELTA_LOG_PREFIX, checkpoint_bytes, delta_version_of, delta_version_path, genesis_version,
    same_checkpoint, version, widens_schema,
};
use strata_store::{Entry, Mark, Snapshot};

use super::{get, list};
use crate::{Code, Finding, VerifyError};

/// The objects of `_delta_log/`, and the versions found to match.
pub(super) struct DeltaCheck {
    versions: BTreeMap<u64, Path>,
    checkpoints: BTreeMap<u64, Path>,
    /// Entry 1 and its hash: version 0 and every checkpoint's metadata derive from it.
    first: Option<(Entry, String)>,
    /// Versions and checkpoints that differ from the publication of the
    /// log as replayed, reported by [`DeltaCheck::finish`].
    differing: Vec<Finding>,
}

impl DeltaCheck {
    /// Lists `_delta_log/`; names strata never writes there are reported.
    pub(super) async fn list(
        store: &dyn ObjectStore,
        findings: &mut Vec<Finding>,
    ) -> Result<DeltaCheck, VerifyError> {
        let mut check = DeltaCheck {
            versions: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            first: None,
            differing: Vec::new(),
        };
        for path in list(store, DELTA_LOG_PREFIX).await? {
            match delta_version_of(&path) {
                Some((version, false)) => {
                    check.versions.insert(version, path);
                }
                Some((version, true)) => {
                    check.checkpoints.insert(version, path);
                }
                None if path.filename() == Some("_last_checkpoint") => {}
                None => findings.push(Finding::new(
                    Code::Unsealed,
                    path.as_ref(),
                    None,
                    "is not a Delta log object strata writes",
                )),
            }
        }
        Ok(check)
    }

    /// The versions listed, for fetching them beside their entries.
    pub(super) fn listed(&self) -> std::sync::Arc<BTreeSet<u64>> {
        std::sync::Arc::new(self.versions.keys().copied().collect())
    }

    /// Compares what entry `entry` (stored with SHA-256 `hash`) publishes
    /// with what is stored: its version (`stored`, fetched with the entry;
    /// version 0 with entry 1) and the checkpoint of its version if there
    /// is one. `marks_before` are the expiry marks before the entry, `after`
    /// the state it made.
    pub(super) async fn applied(
        &mut self,
        store: &dyn ObjectStore,
        marks_before: &BTreeMap<String, Mark>,
        (entry, hash): (&Entry, &str),
        stored: Option<Bytes>,
        after: &Snapshot,
    ) -> Result<(), VerifyError> {
        if entry.seq == 1 {
            self.first = Some((entry.clone(), hash.to_string()));
            let genesis = get(store, &delta_version_path(0)).await?;
            self.compare_version(0, genesis, &genesis_version(entry, hash));
        }
        let table = (self.first.as_ref())
            .filter(|_| widens_schema(entry, after))
            .map(|(first, first_hash)| (first, first_hash.as_str()));
        let expected = version(marks_before, entry, hash, after, table);
        self.compare_version(entry.seq, stored, &expected);
        if let (Some(path), Some((first, first_hash))) =
            (self.checkpoints.get(&entry.seq), &self.first)
            && let Some(stored) = get(store, path).await?
        {
            let expected = checkpoint_bytes(first, first_hash, after)?.0;
            if !same_checkpoint(stored, expected) {
                self.differing.push(Finding::new(
                    Code::Modified,
                    path.as_ref(),
                    Some(entry.seq),
                    "the Delta checkpoint is not the table as of its catalog entry: \
                     engines reading it see other files",
                ));
            }
        }
        Ok(())
    }

    /// Reports version `number` unless it is stored as `expected` (a
    /// missing one is reported by [`DeltaCheck::finish`]).
    fn compare_version(&mut self, number: u64, stored: Option<Bytes>, expected: &[u8]) {
        if stored.is_some_and(|stored| stored != expected) {
            self.differing.push(Finding::new(
                Code::Modified,
                delta_version_path(number).as_ref(),
                Some(number),
                "the Delta version is not the publication of its catalog entry \
                 (an action was edited, added or removed)",
            ));
        }
    }

    /// Reports what differs from the publication of the log, the versions
    /// and checkpoints beyond the log, and the versions missing within it:
    /// deleted ones (a later version is there) and trailing ones (a writer
    /// stopped before publishing; `strata publish` writes them). From
    /// `broken_from` on, the log itself was edited (reported as such): its
    /// publication, made before the edit, is not judged against it.
    pub(super) fn finish(
        mut self,
        entry_count: u64,
        broken_from: Option<u64>,
        findings: &mut Vec<Finding>,
    ) {
        let judged = |seq: u64| broken_from.is_none_or(|broken| seq < broken);
        let differing = self.differing.drain(..);
        findings.extend(differing.filter(|f| judged(f.seq.unwrap_or(0))));
        let beyond = |what: &str, objects: &BTreeMap<u64, Path>, findings: &mut Vec<Finding>| {
            for (&version, path) in objects.range(entry_count.saturating_add(1)..) {
                findings.push(Finding::new(
                    Code::Unsealed,
                    path.as_ref(),
                    Some(version),
                    &format!(
                        "a Delta {what} strata did not write: the catalog has {entry_count} entries"
                    ),
                ));
            }
        };
        beyond("version", &self.versions, findings);
        beyond("checkpoint", &self.checkpoints, findings);
        if entry_count == 0 {
            return;
        }
        // One finding per run of missing versions, however long.
        let mut expected = 0;
        for &version in self.versions.range(..=entry_count).map(|(v, _)| v) {
            if version > expected && judged(expected) {
                let which = match version - 1 == expected {
                    true => format!("Delta version {expected} is"),
                    false => format!("Delta versions {expected} to {} are", version - 1),
                };
                findings.push(Finding::new(
                    Code::Missing,
                    delta_version_path(expected).as_ref(),
                    Some(expected),
                    &format!(
                        "{which} gone while version {version} is there: engines cannot read \
                         the table as the catalog has it"
                    ),
                ));
            }
            expected = version + 1;
        }
        if expected <= entry_count && judged(expected) {
            let which = match expected == entry_count {
                true => format!("catalog entry {expected} is"),
                false => format!("catalog entries {expected} to {entry_count} are"),
            };
            findings.push(Finding::new(
                Code::Unsealed,
                delta_version_path(expected).as_ref(),
                Some(expected),
                &format!(
                    "{which} not published as Delta versions yet (a writer stopped before \
                     publishing; `strata publish` writes them)"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;

    use super::super::tests::{archive, codes, run};
    use super::*;

    async fn read(store: &dyn ObjectStore, number: u64) -> bytes::Bytes {
        get(store, &delta_version_path(number))
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn an_extra_an_edited_and_a_deleted_version_are_each_reported() {
        let (store, _, key) = archive(5).await;
        assert_eq!(codes(&run(store.clone(), &key).await), []);
        // A version after the log's last entry, copied from a real one.
        let extra = delta_version_path(6);
        store
            .put(&extra, read(&*store, 5).await.into())
            .await
            .unwrap();
        // An add whose size was edited.
        let edited = delta_version_path(2);
        let text = String::from_utf8(read(&*store, 2).await.to_vec()).unwrap();
        let text = text.replacen("\"size\":", "\"size\":9", 1);
        store.put(&edited, text.into()).await.unwrap();
        // A version taken away from the middle.
        let deleted = delta_version_path(3);
        store.delete(&deleted).await.unwrap();
        let report = run(store, &key).await;
        assert_eq!(
            codes(&report),
            [
                (Code::Modified, edited.to_string()),
                (Code::Missing, deleted.to_string()),
                (Code::Unsealed, extra.to_string()),
            ]
        );
    }

    #[tokio::test]
    async fn unpublished_last_versions_are_unsealed_until_published() {
        let (store, catalog, key) = archive(4).await;
        for number in 3..=4 {
            store.delete(&delta_version_path(number)).await.unwrap();
        }
        let report = run(store.clone(), &key).await;
        let unsealed = (Code::Unsealed, delta_version_path(3).to_string());
        assert_eq!(codes(&report), [unsealed]);
        // Loading as a writer (with the signing key) publishes what is missing.
        catalog.load().await.unwrap();
        assert_eq!(codes(&run(store, &key).await), []);
    }

    #[tokio::test]
    async fn a_stray_object_in_the_delta_log_is_unsealed() {
        let (store, _, key) = archive(2).await;
        let stray = Path::from("_delta_log/00000000000000000001.crc");
        store.put(&stray, "{}".into()).await.unwrap();
        assert_eq!(
            codes(&run(store, &key).await),
            [(Code::Unsealed, stray.to_string())]
        );
    }
}
