//! Opening an archive location as an object store rooted at the archive.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;

use crate::catalog::Catalog;

/// Errors opening an archive location.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The location is neither a path nor an `s3://` URL.
    #[error("unsupported archive location {0:?}: use a local path or s3://bucket/prefix")]
    Unsupported(String),
    /// A command that only reads was pointed at a folder that does not exist.
    #[error("no archive at {0}: the folder does not exist (check --archive or STRATA_ARCHIVE)")]
    NotFound(String),
    /// A local archive folder could not be created or opened.
    #[error("cannot open archive folder {path}: {source}")]
    Local {
        /// The folder.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The object store client could not be built (bad URL or AWS settings).
    #[error("cannot open archive {location}: {source}")]
    Store {
        /// The location.
        location: String,
        /// The cause.
        source: object_store::Error,
    },
}

/// An opened archive: an object store rooted at the archive and its catalog.
#[derive(Clone)]
pub struct Archive {
    /// The store, with paths relative to the archive root.
    pub store: Arc<dyn ObjectStore>,
    /// The location as the user gave it, for messages.
    pub location: String,
    /// The catalog kept under `_strata/` in the same store.
    pub catalog: Catalog,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("location", &self.location)
            .finish()
    }
}

/// How to treat a local archive folder that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Create it (commands that write).
    Create,
    /// Fail with [`ArchiveError::NotFound`] (commands that only read).
    Fail,
}

/// Opens the archive at `location`: a local folder or `s3://bucket[/prefix]`,
/// configured by the usual `AWS_*` variables (`AWS_ENDPOINT_URL`,
/// `AWS_ALLOW_HTTP`, `AWS_ACCESS_KEY_ID`, ...).
pub fn open_archive(location: &str, missing: Missing) -> Result<Archive, ArchiveError> {
    let store = open_location(location, missing)?;
    Ok(Archive {
        catalog: Catalog::new(store.clone()),
        store,
        location: location.to_string(),
    })
}

/// Opens `location` (a local folder or `s3://bucket[/prefix]`, as for
/// [`open_archive`]) as an object store rooted there.
pub fn open_location(
    location: &str,
    missing: Missing,
) -> Result<Arc<dyn ObjectStore>, ArchiveError> {
    let store: Arc<dyn ObjectStore> = if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ArchiveError::Unsupported(location.to_string()));
        }
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|source| ArchiveError::Store {
                location: location.to_string(),
                source,
            })?;
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        }
    } else if location.contains("://") {
        return Err(ArchiveError::Unsupported(location.to_string()));
    } else {
        let local = |source| ArchiveError::Local {
            path: location.to_string(),
            source,
        };
        if missing == Missing::Fail && !std::path::Path::new(location).exists() {
            return Err(ArchiveError::NotFound(location.to_string()));
        }
        std::fs::create_dir_all(location).map_err(local)?;
        let root = std::fs::canonicalize(location).map_err(local)?;
        let fs = LocalFileSystem::new_with_prefix(&root).map_err(|source| ArchiveError::Store {
            location: location.to_string(),
            source,
        })?;
        Arc::new(fs.with_automatic_cleanup(true))
    };
    Ok(store)
}

/// The archive's store and the cold stores its files are in, each opened
/// once however many files are read or deleted there.
pub struct Stores {
    archive: Arc<dyn ObjectStore>,
    cold: std::collections::HashMap<String, Arc<dyn ObjectStore>>,
}

impl Stores {
    /// Starts with the archive's own store.
    pub fn new(archive: Arc<dyn ObjectStore>) -> Stores {
        Stores {
            archive,
            cold: Default::default(),
        }
    }

    /// The store at `location` (see [`crate::FileMeta::location`]; `None`:
    /// the archive), opened on first use.
    pub fn get(&mut self, location: Option<&str>) -> Result<Arc<dyn ObjectStore>, ArchiveError> {
        let Some(location) = location else {
            return Ok(self.archive.clone());
        };
        if let Some(store) = self.cold.get(location) {
            return Ok(store.clone());
        }
        let store = open_location(location, Missing::Fail)?;
        self.cold.insert(location.to_string(), store.clone());
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_schemes() {
        let err = open_archive("gs://bucket/x", Missing::Create).unwrap_err();
        assert!(err.to_string().contains("gs://bucket/x"), "{err}");
        assert!(open_archive("s3://", Missing::Create).is_err());
    }

    #[test]
    fn creates_a_missing_local_folder_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/archive");
        let err = open_archive(path.to_str().unwrap(), Missing::Fail).unwrap_err();
        assert!(matches!(err, ArchiveError::NotFound(_)), "{err}");
        assert!(!path.exists());
        let archive = open_archive(path.to_str().unwrap(), Missing::Create).unwrap();
        assert!(path.is_dir());
        assert_eq!(archive.location, path.to_str().unwrap());
    }
}
