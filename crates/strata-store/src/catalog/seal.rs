//! Signing: the writer's key and witness ([`Seal`]), whether the archive
//! trusts that key, signing each entry, sealing each commit with a signed
//! checkpoint of the Merkle tree, and signed heartbeats.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strata_integrity::SigningKey;

use super::paths::put_create;
use super::{
    Catalog, CatalogError, Entry, HEARTBEAT_PREFIX, Snapshot, WITNESS_HEARTBEAT, WITNESS_LATEST,
    checkpoint_name, checkpoint_path,
};
use crate::governance::Change;

/// Signs a checkpoint after every commit and copies it to a witness.
#[derive(Debug)]
pub(super) struct Seal {
    pub(super) key: SigningKey,
    pub(super) witness: Option<Arc<dyn ObjectStore>>,
}

impl Catalog {
    /// Whether this catalog may commit on top of `snapshot`: its key is one
    /// the archive trusts, or the archive trusts none yet. Writers check
    /// before doing any work, so an untrusted one uploads nothing.
    pub fn check_writer(&self, snapshot: &Snapshot) -> Result<(), CatalogError> {
        let trusted = &snapshot.governance.trusted_keys;
        if trusted.is_empty() {
            return Ok(());
        }
        match &self.seal {
            Some(seal) if trusted.contains_key(&seal.key.verifier().to_string()) => Ok(()),
            Some(seal) => Err(CatalogError::UntrustedWriter {
                key: seal.key.verifier().to_string(),
            }),
            None => Err(CatalogError::UntrustedWriter {
                key: "(no signing key)".into(),
            }),
        }
    }

    /// Signs `entry` with this catalog's key. The archive's first signed
    /// entry also trusts the key; after that, a writer whose key the archive
    /// does not trust (or that has none) cannot commit.
    pub(super) fn sign(&self, snapshot: &Snapshot, entry: &mut Entry) -> Result<(), CatalogError> {
        self.check_writer(snapshot)?;
        let Some(seal) = &self.seal else {
            return Ok(());
        };
        let key = seal.key.verifier().to_string();
        if snapshot.governance.trusted_keys.is_empty() {
            entry.changes.insert(
                0,
                Change::KeyTrusted {
                    key,
                    reason: "the first signed entry trusts its writer's key".into(),
                },
            );
        }
        let note = seal
            .key
            .sign(&entry.signed_text())
            .expect("an entry's signed text is a valid note");
        entry.signature = Some(note);
        Ok(())
    }

    /// Signs the tree head of `snapshot` and stores it (create-only: a
    /// checkpoint is never replaced) and at the witness, if there is a key.
    pub(super) async fn seal(&self, snapshot: &Snapshot) -> Result<(), object_store::Error> {
        let Some(seal) = &self.seal else {
            return Ok(());
        };
        let note = PutPayload::from(snapshot.checkpoint().sign(&seal.key).into_bytes());
        put_create(&*self.store, &checkpoint_path(snapshot.seq), note.clone()).await?;
        if let Some(witness) = &seal.witness {
            put_create(
                &**witness,
                &Path::from(checkpoint_name(snapshot.seq)),
                note.clone(),
            )
            .await?;
            witness.put(&Path::from(WITNESS_LATEST), note).await?;
        }
        Ok(())
    }

    /// Signs a heartbeat of the tree head of `snapshot` at `at` (RFC 3339,
    /// also its file name) under `_strata/heartbeats/`, and at the witness as
    /// `heartbeat.note`. Does nothing without a signing key.
    pub async fn heartbeat(&self, snapshot: &Snapshot, at: &str) -> Result<(), CatalogError> {
        let Some(seal) = &self.seal else {
            return Ok(());
        };
        let note = snapshot
            .checkpoint()
            .sign_heartbeat(&seal.key, at)
            .map_err(|e| CatalogError::Heartbeat(e.to_string()))?;
        let payload = PutPayload::from(note.into_bytes());
        let name = format!("{}.note", at.replace(':', ""));
        put_create(
            &*self.store,
            &Path::from(format!("{HEARTBEAT_PREFIX}/{name}")),
            payload.clone(),
        )
        .await?;
        if let Some(witness) = &seal.witness {
            witness.put(&Path::from(WITNESS_HEARTBEAT), payload).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use strata_integrity::Checkpoint;

    use super::super::tests::{add, read};
    use super::*;
    use crate::catalog::{entry_path, get_if_exists};

    #[tokio::test]
    async fn every_commit_is_sealed_by_a_checkpoint_of_the_merkle_tree() {
        let store = Arc::new(InMemory::new());
        let witness = Arc::new(InMemory::new());
        let key = SigningKey::generate("strata/test").unwrap();
        let verifier = key.verifier();
        let catalog = Catalog::new(store.clone())
            .with_snapshot_interval(2)
            .with_seal(key, Some(witness.clone()));
        let mut snap = catalog.load().await.unwrap();
        let mut tree = strata_integrity::MerkleLog::new();
        for i in 1..=5u64 {
            catalog
                .commit(&mut snap, add(&[&format!("f{i}")]))
                .await
                .unwrap();
            tree.push_entry(read(&*store, &entry_path(i)).await.as_bytes());
            let checkpoint =
                Checkpoint::open(&read(&*store, &checkpoint_path(i)).await, &verifier).unwrap();
            assert_eq!(checkpoint.size, i);
            assert_eq!(checkpoint.root, tree.root(), "root after commit {i}");
            assert_eq!(checkpoint.origin, snap.origin);
        }
        assert!(snap.origin.starts_with("strata-archive/"));
        let latest = read(&*witness, &Path::from(WITNESS_LATEST)).await;
        let latest = Checkpoint::open(&latest, &verifier).unwrap();
        assert_eq!(latest.size, 5);
        // A reload from the snapshot at 4 plus entry 5 has the same tree.
        let loaded = catalog.load().await.unwrap();
        assert_eq!(loaded.checkpoint(), snap.checkpoint());
    }

    #[tokio::test]
    async fn a_signing_writer_signs_a_head_left_unsigned_by_a_crash() {
        let store = Arc::new(InMemory::new());
        let key = SigningKey::generate("strata/test").unwrap();
        let verifier = key.verifier();
        // A writer stopped after storing entry 1, before signing it: the
        // same as committing without a key.
        let unsigned = Catalog::new(store.clone());
        let mut snap = unsigned.load().await.unwrap();
        unsigned.commit(&mut snap, add(&["a"])).await.unwrap();
        assert!(
            get_if_exists(&*store, &checkpoint_path(1))
                .await
                .unwrap()
                .is_none()
        );
        // Reading without a key signs nothing.
        unsigned.load().await.unwrap();
        assert!(
            get_if_exists(&*store, &checkpoint_path(1))
                .await
                .unwrap()
                .is_none()
        );

        let signing = Catalog::new(store.clone()).with_seal(key, None);
        let loaded = signing.load().await.unwrap();
        let checkpoint =
            Checkpoint::open(&read(&*store, &checkpoint_path(1)).await, &verifier).unwrap();
        assert_eq!(checkpoint.size, 1);
        assert_eq!(checkpoint.root, loaded.checkpoint().root);
    }

    #[tokio::test]
    async fn a_commit_stands_when_its_checkpoint_cannot_be_written() {
        use strata_faults::{Fault, FaultyStore, Kind};
        let store = FaultyStore::new(Arc::new(InMemory::new()));
        let key = SigningKey::generate("strata/test").unwrap();
        let catalog = Catalog::new(store.clone()).with_seal(key, None);
        let mut snap = catalog.load().await.unwrap();
        // Put 1 is the entry, put 2 its checkpoint.
        store.arm(Kind::Put, 2, Fault::Fail);
        assert_eq!(catalog.commit(&mut snap, add(&["a"])).await.unwrap(), 1);
        assert!(store.tripped());
        store.disarm();
        assert!(
            get_if_exists(&*store, &checkpoint_path(1))
                .await
                .unwrap()
                .is_none()
        );
        // The next writer to load signs it.
        catalog.load().await.unwrap();
        assert!(
            get_if_exists(&*store, &checkpoint_path(1))
                .await
                .unwrap()
                .is_some()
        );
    }
}
