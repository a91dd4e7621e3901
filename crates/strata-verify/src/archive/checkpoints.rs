//! The signed notes about the log: every checkpoint in the archive, the
//! heartbeats and a trusted checkpoint from outside, each checked against
//! the replayed tree, and the chain breaks and untrusted entries they explain.

use object_store::ObjectStore;
use strata_integrity::{Checkpoint, VerifierKey, verify_consistency};
use strata_store::{CHECKPOINT_PREFIX, HEARTBEAT_PREFIX, Untrusted, entry_path};

use super::replay::Replay;
use super::{Options, Trusted, get, list, numbered};
use crate::{Code, Finding, VerifyError};

/// Opens a note with the first of `keys` that signed it; the pinned key's
/// error (the first) otherwise.
fn open_with<T>(
    keys: &[VerifierKey],
    open: impl Fn(&VerifierKey) -> Result<T, strata_integrity::NoteError>,
) -> Result<T, String> {
    let mut first_error = None;
    for key in keys {
        match open(key) {
            Ok(opened) => return Ok(opened),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.map_or_else(|| "no key to check it with".into(), |e| e.to_string()))
}

/// What the archive's checkpoints cover.
pub(super) struct Coverage {
    /// Checkpoints checked.
    pub(super) count: u64,
    /// Largest tree size a valid checkpoint that matches the log covers.
    pub(super) signed_size: u64,
    /// Largest size of any checkpoint object not beyond the log.
    pub(super) newest_within_log: u64,
}

/// Checks every signed checkpoint in the archive against the replayed tree.
pub(super) async fn check_checkpoints(
    store: &dyn ObjectStore,
    options: &Options,
    replay: &Replay,
    entry_count: u64,
    findings: &mut Vec<Finding>,
) -> Result<Coverage, VerifyError> {
    let checkpoints = numbered(store, CHECKPOINT_PREFIX, findings).await?;
    let signers = replay.signers(&options.key);
    let newest_within_log = checkpoints
        .keys()
        .rev()
        .find(|&&size| size <= entry_count)
        .copied()
        .unwrap_or(0);
    let mut signed_size = 0;
    let mut first_mismatch = None;
    let mut beyond_log = None;
    for (&named_size, path) in &checkpoints {
        let Some(note) = get(store, path).await? else {
            continue;
        };
        let checkpoint = match std::str::from_utf8(&note)
            .map_err(|_| "the note is not UTF-8".to_string())
            .and_then(|note| open_with(&signers, |key| Checkpoint::open(note, key)))
        {
            Ok(checkpoint) => checkpoint,
            Err(why) => {
                findings.push(Finding::new(
                    Code::BadSignature,
                    path.as_ref(),
                    Some(named_size),
                    &why,
                ));
                continue;
            }
        };
        if checkpoint.size != named_size {
            findings.push(Finding::new(
                Code::Modified,
                path.as_ref(),
                Some(named_size),
                &format!(
                    "the checkpoint signs tree size {}, not the size its name says",
                    checkpoint.size
                ),
            ));
            continue;
        }
        if checkpoint.size > entry_count {
            beyond_log = Some((path.clone(), checkpoint.size));
            continue;
        }
        if !replay.tree_complete || checkpoint.size > replay.tree.len() {
            continue;
        }
        let root = replay
            .tree
            .root_at(checkpoint.size)
            .expect("size within the tree");
        if checkpoint.origin == replay.state.origin && checkpoint.root == root {
            signed_size = signed_size.max(checkpoint.size);
        } else if first_mismatch.is_none() {
            first_mismatch = Some(checkpoint.size);
        }
    }
    if let Some((path, size)) = beyond_log {
        findings.push(Finding::new(
            Code::Truncated,
            path.as_ref(),
            Some(size),
            &format!(
                "a checkpoint signs {size} entries but the log has {entry_count}: the newest entries were removed"
            ),
        ));
    }
    if let Some(seq) = first_mismatch {
        findings.push(Finding::new(
            Code::ChainBroken,
            entry_path(seq).as_ref(),
            Some(seq),
            &format!("the log up to entry {seq} is not what checkpoint {seq} signed: the entry was edited, replaced or reordered"),
        ));
    }
    for (seq, why) in &replay.untrusted {
        // An edit is reported once, as the chain break the checkpoint shows.
        if *why == Untrusted::Edited && first_mismatch == Some(*seq) {
            continue;
        }
        let code = match why {
            Untrusted::Edited => Code::ChainBroken,
            _ => Code::BadSignature,
        };
        findings.push(Finding::new(
            code,
            entry_path(*seq).as_ref(),
            Some(*seq),
            &why.to_string(),
        ));
    }
    let edited = |seq: u64| {
        first_mismatch == Some(seq)
            || (replay.untrusted.iter()).any(|(s, why)| *s == seq && *why == Untrusted::Edited)
    };
    for &seq in &replay.link_breaks {
        if edited(seq) || (seq > 1 && edited(seq - 1)) {
            continue; // the edited entry and its successor's link: already reported
        }
        findings.push(Finding::new(
            Code::ChainBroken,
            entry_path(seq).as_ref(),
            Some(seq),
            &format!("the entry's prev is not the hash of entry {}", seq - 1),
        ));
    }
    Ok(Coverage {
        count: checkpoints.len() as u64,
        signed_size,
        newest_within_log,
    })
}

pub(super) struct Heartbeats {
    pub(super) count: u64,
    pub(super) last: Option<String>,
}

/// Heartbeats must be signed by the key and vouch for a prefix of this log.
pub(super) async fn check_heartbeats(
    store: &dyn ObjectStore,
    options: &Options,
    replay: &Replay,
    entry_count: u64,
    findings: &mut Vec<Finding>,
) -> Result<Heartbeats, VerifyError> {
    let paths = list(store, HEARTBEAT_PREFIX).await?;
    let signers = replay.signers(&options.key);
    let mut last: Option<String> = None;
    for path in &paths {
        let Some(note) = get(store, path).await? else {
            continue;
        };
        let finding = |code, detail: &str| Finding::new(code, path.as_ref(), None, detail);
        let opened = std::str::from_utf8(&note)
            .map_err(|_| "the note is not UTF-8".to_string())
            .and_then(|note| open_with(&signers, |key| key.open(note)))
            .and_then(|text| {
                let time = Checkpoint::heartbeat_time(text).map(String::from);
                Ok((Checkpoint::parse(text).map_err(|e| e.to_string())?, time))
            });
        let (checkpoint, time) = match opened {
            Ok(opened) => opened,
            Err(why) => {
                findings.push(finding(Code::BadSignature, &why));
                continue;
            }
        };
        if checkpoint.size > entry_count {
            findings.push(finding(
                Code::Truncated,
                &format!(
                    "a heartbeat vouched for {} entries, the log has {entry_count}",
                    checkpoint.size
                ),
            ));
        } else if replay.tree_complete
            && (checkpoint.origin != replay.state.origin
                || replay.tree.root_at(checkpoint.size).ok() != Some(checkpoint.root))
        {
            findings.push(finding(
                Code::RolledBack,
                &format!(
                    "the log's first {} entries are not what a heartbeat vouched for",
                    checkpoint.size
                ),
            ));
        } else if time > last {
            last = time;
        }
    }
    Ok(Heartbeats {
        count: paths.len() as u64,
        last,
    })
}

/// The log must contain the trusted checkpoint's tree and extend it.
pub(super) fn check_trusted(
    trusted: &Trusted,
    options: &Options,
    replay: &Replay,
    entry_count: u64,
    findings: &mut Vec<Finding>,
) {
    let finding = |code, detail: &str| Finding::new(code, &trusted.source, None, detail);
    let signers = replay.signers(&options.key);
    let checkpoint = match open_with(&signers, |key| Checkpoint::open(&trusted.note, key)) {
        Ok(checkpoint) => checkpoint,
        Err(e) => {
            findings.push(finding(
                Code::BadSignature,
                &format!("the trusted checkpoint: {e}"),
            ));
            return;
        }
    };
    if checkpoint.origin != replay.state.origin {
        findings.push(finding(
            Code::RolledBack,
            &format!(
                "the trusted checkpoint is of log {}, the archive's log is {}",
                checkpoint.origin, replay.state.origin
            ),
        ));
    } else if checkpoint.size > entry_count {
        findings.push(finding(
            Code::Truncated,
            &format!(
                "the trusted checkpoint has {} entries, the log only {entry_count}",
                checkpoint.size
            ),
        ));
    } else if replay.tree_complete {
        let proof = replay
            .tree
            .consistency_proof(checkpoint.size, replay.tree.len())
            .expect("sizes within the tree");
        if let Err(e) = verify_consistency(
            checkpoint.size,
            replay.tree.len(),
            &checkpoint.root,
            &replay.tree.root(),
            &proof,
        ) {
            findings.push(finding(
                Code::RolledBack,
                &format!(
                    "the log is not an extension of the trusted checkpoint of size {}: {e}",
                    checkpoint.size
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;
    use strata_integrity::SigningKey;
    use strata_store::{Catalog, CatalogError, Draft, checkpoint_path};

    use super::super::tests::{archive, codes, run};
    use super::*;

    /// Appends entry 4 to the three-entry archive in `store` as someone with
    /// write access to the bucket would: correct `prev`, signed by `signer`
    /// if given.
    async fn forge_entry(store: &Arc<InMemory>, signer: Option<&SigningKey>) {
        let catalog = Catalog::new(store.clone());
        let snapshot = catalog.load().await.unwrap();
        let mut entry = strata_store::Entry {
            seq: 4,
            format: strata_store::ENTRY_FORMAT,
            prev: snapshot.head.clone(),
            committed_at: "2026-01-01T00:00:00Z".into(),
            actor: "mallory".into(),
            operation: "hold-release".into(),
            reason: None,
            add: Vec::new(),
            remove: Vec::new(),
            sources: Vec::new(),
            changes: Vec::new(),
            policy_version: None,
            signature: None,
        };
        entry.signature = signer.map(|key| key.sign(&entry.signed_text()).unwrap());
        let bytes = serde_json::to_vec_pretty(&entry).unwrap();
        store.put(&entry_path(4), bytes.into()).await.unwrap();
    }

    #[tokio::test]
    async fn an_appended_entry_no_trusted_writer_signed_is_a_bad_signature() {
        let stranger = SigningKey::generate("strata-elsewhere").unwrap();
        for signer in [None, Some(&stranger)] {
            let (store, catalog, key) = archive(3).await;
            forge_entry(&store, signer).await;
            let report = run(store.clone(), &key).await;
            assert_eq!(
                codes(&report),
                [
                    (Code::BadSignature, entry_path(4).to_string()),
                    (Code::Unsealed, entry_path(4).to_string())
                ],
                "{signer:?}"
            );
            assert_eq!(report.summary.signed_size, 3);
            // No writer builds on it, and none signs it.
            let err = catalog.load().await.unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("catalog entry {} is refused", entry_path(4))),
                "{err}"
            );
            assert!(store.head(&checkpoint_path(4)).await.is_err());
        }
    }

    #[tokio::test]
    async fn a_writer_whose_key_the_archive_does_not_trust_cannot_commit() {
        let (store, _, _) = archive(2).await;
        let stranger = SigningKey::generate("strata-elsewhere").unwrap();
        for catalog in [
            Catalog::new(store.clone()),
            Catalog::new(store.clone()).with_seal(stranger, None),
        ] {
            let mut snapshot = catalog.load().await.unwrap();
            let draft = Draft {
                operation: "hold-add".into(),
                ..Default::default()
            };
            let err = catalog.commit(&mut snapshot, draft).await.unwrap_err();
            assert!(matches!(err, CatalogError::UntrustedWriter { .. }), "{err}");
        }
        assert!(store.head(&entry_path(3)).await.is_err());
    }
}
