//! Verification of a Strata archive and of signed query exports.
//!
//! [`verify`] replays the catalog log from its first entry: it checks the
//! hash chain, rebuilds the RFC 6962 Merkle tree and compares it with every
//! signed checkpoint, compares the snapshots that loading relies on, then
//! lists the store and checks every object against the catalog (sizes
//! always, contents by rehashing all files or a sample). Each problem is a
//! [`Finding`] with a [`Code`] and the object it concerns.
//!
//! [`export`] writes and checks signed query exports: result files plus a
//! manifest signed as a C2SP note that names the checkpoint the query ran on.

#![warn(missing_docs)]

mod archive;
pub mod export;

use serde::Serialize;

pub use archive::{HashMode, Observer, Options, Report, Summary, Trusted, WalSummary, verify};

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// A file's bytes or size no longer match what was committed.
    Modified,
    /// A committed file is gone and no entry removed it.
    Missing,
    /// An object no entry lists, or entries no signed checkpoint covers.
    Unsealed,
    /// A catalog entry was edited, removed or reordered.
    ChainBroken,
    /// A checkpoint or manifest is not signed by the pinned key.
    BadSignature,
    /// The log is shorter than a checkpoint says it was.
    Truncated,
    /// The log is not an extension of the trusted checkpoint.
    RolledBack,
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = serde_json::to_value(self).expect("codes serialize");
        f.write_str(name.as_str().expect("codes are strings"))
    }
}

/// One problem, with the object it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub code: Code,
    /// The object (path in the archive or export) it concerns.
    pub path: String,
    /// The catalog entry it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// What exactly is wrong.
    pub detail: String,
}

impl Finding {
    fn new(code: Code, path: &str, seq: Option<u64>, detail: &str) -> Finding {
        Finding {
            code,
            path: path.to_string(),
            seq,
            detail: detail.to_string(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.seq) {
            (Code::ChainBroken, Some(seq)) => write!(f, "CHAIN_BROKEN at {seq}")?,
            (code, _) => write!(f, "{code}")?,
        }
        write!(f, "  {}: {}", self.path, self.detail)
    }
}

/// Errors that stop verification (as opposed to findings).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The store could not be read.
    #[error("reading the archive: {0}")]
    Store(#[from] object_store::Error),
    /// A catalog object could not be read.
    #[error(transparent)]
    Catalog(#[from] strata_store::CatalogError),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}
