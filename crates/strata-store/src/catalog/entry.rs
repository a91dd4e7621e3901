//! What a commit says: the log [`Entry`] and its format, the [`FileMeta`]
//! and [`SourceProgress`] records it carries, the text its writer signs, why
//! an entry is [`Untrusted`], and the [`Draft`] a writer commits.

use serde::{Deserialize, Serialize};

use super::sha256_hex;
use crate::governance::Change;
use crate::layout::partition_of_path;
use strata_schema::shred::shreddable;

/// A data file as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Path relative to the archive root.
    pub path: String,
    /// Tenant of every row.
    pub tenant: String,
    /// Family of every row.
    pub family: String,
    /// Partition month, `YYYY-MM`.
    pub month: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
    /// Row count.
    pub rows: u64,
    /// Smallest `ts`, UTC microseconds.
    pub min_ts: i64,
    /// Largest `ts`, UTC microseconds.
    pub max_ts: i64,
    /// The store holding the file when it is not the archive itself: a
    /// cold store's location (folder or `s3://` URL) after tiering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// For an encrypted file, the version of the tenant master key that
    /// wraps its data key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
    /// The `attrs` keys the file stores as columns of their own
    /// (`attrs__<key>`), in name order; see `strata_schema::shred`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shredded: Vec<String>,
}

impl FileMeta {
    /// Why this record cannot describe a file strata wrote, if it cannot: its
    /// path is not a data file path of its own tenant, family and month, its
    /// times fall outside that month, its hash is not a SHA-256, or its
    /// shredded attributes are not names a writer gives (sorted, distinct).
    pub fn malformed(&self) -> Option<String> {
        let Some(key) = partition_of_path(&self.path) else {
            return Some(format!(
                "{:?} is not a data file path (tenant=…/family=…/month=YYYY-MM/part-….parquet)",
                self.path
            ));
        };
        if key.tenant != self.tenant
            || key.family.as_str() != self.family
            || key.month_label() != self.month
        {
            return Some(format!(
                "{} is recorded as tenant {:?}, family {:?}, month {:?}, not its path's",
                self.path, self.tenant, self.family, self.month
            ));
        }
        let in_month = |ts: i64| {
            chrono::DateTime::from_timestamp_micros(ts).is_some_and(|t| {
                use chrono::Datelike;
                (t.year(), t.month()) == (key.year, key.month)
            })
        };
        if self.min_ts > self.max_ts || !in_month(self.min_ts) || !in_month(self.max_ts) {
            return Some(format!(
                "{} has times {}..{} outside its month {}",
                self.path, self.min_ts, self.max_ts, self.month
            ));
        }
        let is_sha256 = self.sha256.len() == 64
            && (self.sha256.bytes()).all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if !is_sha256 {
            return Some(format!(
                "{} has {:?} as its SHA-256",
                self.path, self.sha256
            ));
        }
        // Keys become column names (and Delta schema fields): only names a
        // writer could have chosen, each once.
        let named = self.shredded.iter().all(|k| shreddable(k));
        if !named || !self.shredded.is_sorted_by(|a, b| a < b) {
            return Some(format!(
                "{} records {:?} as its shredded attributes",
                self.path, self.shredded
            ));
        }
        None
    }
}

/// How far one input has been committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceProgress {
    /// The input's identity: `blake3:` and the BLAKE3 hash of its bytes as
    /// stored (compressed or not); a bare hex SHA-256 in catalogs written
    /// before BLAKE3; `stdin-` and a random number for standard input.
    pub id: String,
    /// The input's path when it was ingested.
    pub path: String,
    /// Lines consumed (accepted, rejected or blank) up to this commit.
    pub lines: u64,
    /// Lines rejected up to this commit.
    pub rejected: u64,
    /// Events accepted up to this commit.
    pub accepted: u64,
    /// True once the whole input is committed.
    pub complete: bool,
}

/// The format of entries this version writes: 2, signed by their writer.
/// Entries without a `format` field are format 1 (unsigned).
pub const ENTRY_FORMAT: u32 = 2;

/// The format of a stored entry or snapshot without a `format` field.
pub(super) fn legacy_format() -> u32 {
    1
}

/// Why an entry cannot be accepted as written by a writer the archive trusts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    /// Written by a newer strata.
    #[error(
        "entry format {0} is newer than this strata reads (format {ENTRY_FORMAT}): upgrade strata"
    )]
    NewerFormat(u32),
    /// No signature, in an archive that trusts signing keys.
    #[error(
        "the entry is not signed, and the archive accepts only entries signed by its trusted keys"
    )]
    Unsigned,
    /// Signed by a key the archive does not trust.
    #[error("the entry is signed by {signer}, a key the archive does not trust")]
    UnknownSigner {
        /// The signer's name as the signature gives it.
        signer: String,
    },
    /// A trusted key signed other content: the entry was edited after signing.
    #[error("the entry's content is not what its writer signed: it was edited")]
    Edited,
}

/// One commit of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number, from 1, without gaps.
    pub seq: u64,
    /// The entry's format ([`ENTRY_FORMAT`] when written by this version).
    #[serde(default = "legacy_format")]
    pub format: u32,
    /// SHA-256 of the previous entry's bytes ([`GENESIS_HASH`](super::GENESIS_HASH) for the first).
    pub prev: String,
    /// When the commit was made (RFC 3339, UTC).
    pub committed_at: String,
    /// Who made it.
    pub actor: String,
    /// What kind of change: `ingest`, `compact`, ...
    pub operation: String,
    /// Why files were removed, when any were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Files added.
    #[serde(default)]
    pub add: Vec<FileMeta>,
    /// Files removed.
    #[serde(default)]
    pub remove: Vec<FileMeta>,
    /// Input progress recorded with this commit.
    #[serde(default)]
    pub sources: Vec<SourceProgress>,
    /// Policy, hold and expiry changes made by this commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// The retention policy version a retention commit acted under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
    /// The writer's signature: a C2SP signed note of [`Entry::signed_text`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Entry {
    /// What the writer signs: the sequence number and the SHA-256 of the
    /// entry's bytes as stored without its signature.
    pub fn signed_text(&self) -> String {
        let unsigned = Entry {
            signature: None,
            ..self.clone()
        };
        let bytes = serde_json::to_vec_pretty(&unsigned).expect("entries serialize");
        format!(
            "strata catalog entry {}\n{}\n",
            self.seq,
            sha256_hex(&bytes)
        )
    }

    /// The signer named by the signature's last line, for messages.
    pub(super) fn signer_name(note: &str) -> String {
        note.lines()
            .last()
            .and_then(|line| line.strip_prefix("— "))
            .and_then(|line| line.split_whitespace().next())
            .unwrap_or("nobody")
            .to_string()
    }
}

/// A change to commit.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// What kind of change.
    pub operation: String,
    /// Who makes it.
    pub actor: String,
    /// Why files are removed.
    pub reason: Option<String>,
    /// Files to add.
    pub add: Vec<FileMeta>,
    /// Files to remove; each must still be in the archive when committing.
    pub remove: Vec<FileMeta>,
    /// Source progress to record, each with the `lines` the source must still
    /// be at (0 when new) for the commit to be valid.
    pub sources: Vec<(SourceProgress, u64)>,
    /// Policy, hold and expiry changes; each must still apply when committing.
    pub changes: Vec<Change>,
    /// The retention policy version acted under.
    pub policy_version: Option<u64>,
}

impl Draft {
    /// A commit of one governance `change`, made by `actor` for `reason`.
    pub fn change(operation: &str, actor: &str, reason: &str, change: Change) -> Draft {
        Draft {
            operation: operation.to_string(),
            actor: actor.to_string(),
            reason: Some(reason.to_string()),
            changes: vec![change],
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;
    use strata_integrity::SigningKey;

    use super::super::tests::{add, read};
    use super::*;
    use crate::catalog::{Catalog, CatalogError, GENESIS_HASH, entry_path};

    #[tokio::test]
    async fn a_catalog_of_format_1_entries_loads_and_its_next_signed_entry_trusts_its_writer() {
        // Entries as strata wrote them before they were signed: no format,
        // no signature, and no key trusted.
        let store = Arc::new(InMemory::new());
        let legacy = Catalog::new(store.clone());
        let mut snap = legacy.load().await.unwrap();
        for name in ["a", "b"] {
            legacy.commit(&mut snap, add(&[name])).await.unwrap();
        }
        let mut head = GENESIS_HASH.to_string();
        for seq in 1..=2 {
            let path = entry_path(seq);
            let mut entry: serde_json::Value =
                serde_json::from_str(&read(&*store, &path).await).unwrap();
            let fields = entry.as_object_mut().unwrap();
            fields.remove("format");
            fields.remove("signature");
            fields.insert("prev".into(), head.clone().into());
            let bytes = serde_json::to_vec_pretty(&entry).unwrap();
            head = sha256_hex(&bytes);
            store.put(&path, bytes.into()).await.unwrap();
        }
        let loaded = legacy.load().await.unwrap();
        assert_eq!(
            (loaded.seq, loaded.files.len(), loaded.head.clone()),
            (2, 2, head)
        );
        let (entry, _) = legacy.read_entry(1).await.unwrap().unwrap();
        assert_eq!((entry.format, entry.signature), (1, None));

        let key = SigningKey::generate("strata/test").unwrap();
        let signing = Catalog::new(store.clone()).with_seal(key.clone(), None);
        let mut snap = signing.load().await.unwrap();
        signing.commit(&mut snap, add(&["c"])).await.unwrap();
        let trusted: Vec<&String> = snap.governance.trusted_keys.keys().collect();
        assert_eq!(trusted, [&key.verifier().to_string()]);
        // From now on an unsigned entry is refused.
        let err = legacy.commit(&mut snap, add(&["d"])).await.unwrap_err();
        assert!(matches!(err, CatalogError::UntrustedWriter { .. }), "{err}");
        assert_eq!(signing.load().await.unwrap().seq, 3);
    }
}
