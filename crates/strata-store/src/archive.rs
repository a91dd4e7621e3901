//! Opening an archive location as an object store rooted at the archive.

use std::collections::HashMap;
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
    /// The archive's store and the cold stores its files are in: what
    /// writers write to and delete from.
    pub stores: Stores,
}

impl Archive {
    /// The archive in `store`, found at `location`, with its catalog in the
    /// same store and cold stores opened by [`open_location`].
    pub fn new(store: Arc<dyn ObjectStore>, location: &str) -> Archive {
        Archive {
            catalog: Catalog::new(store.clone()),
            stores: Stores::new(store.clone()),
            store,
            location: location.to_string(),
        }
    }
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
    Ok(Archive::new(store, location))
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

/// Opens a store by location, as [`open_location`] does: how [`Stores`]
/// reaches cold stores. Tests swap it to put every store behind one that
/// injects faults.
pub type Opener =
    Arc<dyn Fn(&str, Missing) -> Result<Arc<dyn ObjectStore>, ArchiveError> + Send + Sync>;

/// The archive's store and the cold stores its files are in, each opened
/// once however many files are read, written or deleted there. Clones share
/// the opened stores.
#[derive(Clone)]
pub struct Stores {
    archive: Arc<dyn ObjectStore>,
    opener: Opener,
    cold: Arc<std::sync::Mutex<HashMap<String, Arc<dyn ObjectStore>>>>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("archive", &self.archive.to_string())
            .finish()
    }
}

impl Stores {
    /// Starts with the archive's own store; cold stores are opened by
    /// [`open_location`].
    pub fn new(archive: Arc<dyn ObjectStore>) -> Stores {
        Stores::with_opener(archive, Arc::new(open_location))
    }

    /// Starts with the archive's own store; cold stores are opened by `opener`.
    pub fn with_opener(archive: Arc<dyn ObjectStore>, opener: Opener) -> Stores {
        Stores {
            archive,
            opener,
            cold: Arc::default(),
        }
    }

    /// The archive's own store.
    pub fn archive(&self) -> &Arc<dyn ObjectStore> {
        &self.archive
    }

    /// The store at `location` (see [`crate::FileMeta::location`]; `None`:
    /// the archive), opened on first use; a local cold folder must exist.
    pub fn get(&self, location: Option<&str>) -> Result<Arc<dyn ObjectStore>, ArchiveError> {
        self.open(location, Missing::Fail)
    }

    /// [`Stores::get`], creating a local cold folder if `missing` says so.
    pub fn open(
        &self,
        location: Option<&str>,
        missing: Missing,
    ) -> Result<Arc<dyn ObjectStore>, ArchiveError> {
        let Some(location) = location else {
            return Ok(self.archive.clone());
        };
        let mut cold = self.cold.lock().expect("store cache lock");
        if let Some(store) = cold.get(location) {
            return Ok(store.clone());
        }
        let store = (self.opener)(location, missing)?;
        cold.insert(location.to_string(), store.clone());
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
