//! The write-ahead log: segments stored as create-only objects under
//! `_strata/wal/<node-id>/` in the archive's own store, as InfluxDB 3 does,
//! so that an acknowledged event survives `kill -9` and, on S3, the loss of
//! the machine. Segment `n` is `<20-digit n>.wal`; the catalog records, as
//! the progress of the source `wal:<node-id>`, the last segment whose
//! events are committed to the archive. Segments up to it are deleted;
//! those after it are replayed at start (see docs/serve.md).

mod direct;
pub mod durable;
pub mod segment;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

pub use durable::Durability;
pub use segment::Record;

/// Where every node's write-ahead segments live in the archive.
pub const WAL_PREFIX: &str = "_strata/wal";

/// The object `/health/ready` writes and deletes to probe the store.
pub const PROBE_NAME: &str = "ready-probe";

/// Attempts at storing a segment before its requests are refused.
const PUT_ATTEMPTS: u32 = 6;

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The store failed.
    #[error("write-ahead log {path}: {source}")]
    Store {
        /// The object.
        path: String,
        /// The cause.
        source: object_store::Error,
    },
    /// The segment was stored but could not be made durable.
    #[error("write-ahead log {path}: cannot fsync: {source}")]
    Sync {
        /// The object.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A segment with this number holds other bytes: another server uses
    /// the same node id.
    #[error(
        "write-ahead segment {path} already exists with other content: is another server running with the same --node-id?"
    )]
    Taken {
        /// The object.
        path: String,
    },
    /// A segment could not be decoded.
    #[error("{path}: {source}")]
    Damaged {
        /// The object.
        path: String,
        /// The cause.
        source: segment::Damaged,
    },
}

/// The source id under which the catalog records how far node `node_id`'s
/// segments are committed.
pub fn source_id(node_id: &str) -> String {
    format!("wal:{node_id}")
}

/// The number of the segment named `filename`, if it names one.
pub fn segment_seq(filename: &str) -> Option<u64> {
    let digits = filename.strip_suffix(".wal")?;
    if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// One node's write-ahead segments.
#[derive(Clone)]
pub struct Wal {
    store: Arc<dyn ObjectStore>,
    durability: Durability,
    prefix: String,
}

impl Wal {
    /// Node `node_id`'s segments in `store`.
    pub fn new(store: Arc<dyn ObjectStore>, durability: Durability, node_id: &str) -> Wal {
        Wal {
            store,
            durability,
            prefix: format!("{WAL_PREFIX}/{node_id}"),
        }
    }

    /// The object of segment `seq`.
    pub fn segment_path(&self, seq: u64) -> String {
        format!("{}/{seq:020}.wal", self.prefix)
    }

    /// Removes what puts cut off by a crash left in a local folder: a
    /// segment is staged as `<name>#direct` (or `<name>#<n>` by the store's
    /// own put) and linked into place, so a staging file never became a
    /// segment and no listing shows it. Only this node writes its folder.
    /// Returns how many were removed.
    pub fn remove_staging(&self) -> std::io::Result<usize> {
        let Durability::LocalFolder(root) = &self.durability else {
            return Ok(0);
        };
        let folder = root.join(&self.prefix);
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            if entry.file_name().to_string_lossy().contains(".wal#") {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The numbers of the segments stored, in order.
    pub async fn list(&self) -> Result<Vec<u64>, WalError> {
        let prefix = Path::from(self.prefix.as_str());
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| self.error(&self.prefix, source))?;
        let mut seqs: Vec<u64> = objects
            .iter()
            .filter_map(|o| segment_seq(o.location.filename()?))
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// `records` as a segment for this log's store: as laid out in a local
    /// folder, in LZ4 for an object store (see [`segment`]).
    pub fn encode(&self, records: &[&Record]) -> Bytes {
        let compression = match self.durability {
            Durability::LocalFolder(_) => segment::Compression::None,
            Durability::ObjectStore => segment::Compression::Lz4,
        };
        segment::encode(records, compression)
    }

    /// Stores segment `seq` once and durably, retrying a failing store. A
    /// put reported as failed may have landed: a retry finding the same
    /// bytes there counts as stored.
    pub async fn put(&self, seq: u64, bytes: Bytes) -> Result<(), WalError> {
        let path = self.segment_path(seq);
        let location = Path::from(path.as_str());
        let mut delay = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            let outcome = match self.create(&location, &bytes).await {
                Ok(()) => Ok(()),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    match self.store.get(&location).await {
                        Ok(found) => match found.bytes().await {
                            Ok(stored) if stored == bytes => Ok(()),
                            Ok(_) => return Err(WalError::Taken { path }),
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => break,
                Err(source) if attempt >= PUT_ATTEMPTS => return Err(self.error(&path, source)),
                Err(source) => {
                    tracing::warn!("storing {path} failed (attempt {attempt}): {source}");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
        self.durability
            .sync(vec![path.clone()])
            .await
            .map_err(|source| WalError::Sync { path, source })
    }

    /// Stores `bytes` as the new object `location`: in a local folder
    /// past the page cache (see [`direct`]), elsewhere as a create-only put.
    async fn create(&self, location: &Path, bytes: &Bytes) -> object_store::Result<()> {
        let Durability::LocalFolder(root) = &self.durability else {
            let options = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            let payload = PutPayload::from(bytes.clone());
            return self
                .store
                .put_opts(location, payload, options)
                .await
                .map(drop);
        };
        let (file, bytes) = (root.join(location.as_ref()), bytes.clone());
        let created = tokio::task::spawn_blocking(move || direct::create(&file, &bytes))
            .await
            .map_err(std::io::Error::other);
        match created.and_then(|created| created) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: Box::new(e),
                })
            }
            Err(e) => Err(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            }),
        }
    }

    /// The records of segment `seq`.
    pub async fn read(&self, seq: u64) -> Result<Vec<Record>, WalError> {
        let path = self.segment_path(seq);
        let location = Path::from(path.as_str());
        let bytes = async { self.store.get(&location).await?.bytes().await }
            .await
            .map_err(|source| self.error(&path, source))?;
        segment::decode(&bytes).map_err(|source| WalError::Damaged { path, source })
    }

    /// Deletes segments `seqs` (committed to the archive). A segment
    /// already gone counts as deleted.
    pub async fn delete(&self, seqs: &[u64]) -> Result<(), WalError> {
        for &seq in seqs {
            let path = self.segment_path(seq);
            match self.store.delete(&Path::from(path.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => return Err(self.error(&path, source)),
            }
        }
        Ok(())
    }

    /// Whether a segment can be stored now: writes and deletes a probe.
    pub async fn probe(&self) -> Result<(), WalError> {
        let path = format!("{}/{PROBE_NAME}", self.prefix);
        let location = Path::from(path.as_str());
        let result = async {
            self.store
                .put(&location, Bytes::from_static(b"ok").into())
                .await?;
            self.store.delete(&location).await
        }
        .await;
        result.map_err(|source| self.error(&path, source))
    }

    fn error(&self, path: &str, source: object_store::Error) -> WalError {
        WalError::Store {
            path: path.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn record(lines: &str) -> Record {
        Record {
            ingested_at: 5,
            principal: "p".into(),
            lines: Bytes::copy_from_slice(lines.as_bytes()),
        }
    }

    #[test]
    fn only_segment_names_have_numbers() {
        assert_eq!(segment_seq("00000000000000000012.wal"), Some(12));
        for name in [
            "12.wal",
            "0000000000000000001x.wal",
            "00000000000000000012",
            PROBE_NAME,
        ] {
            assert_eq!(segment_seq(name), None, "{name}");
        }
    }

    #[tokio::test]
    async fn staging_files_a_crash_left_are_removed_and_segments_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let durability = Durability::LocalFolder(dir.path().to_path_buf());
        let wal = Wal::new(store, durability, "n1");
        assert_eq!(wal.remove_staging().unwrap(), 0, "no folder yet");
        wal.put(1, wal.encode(&[&record("{}\n")])).await.unwrap();
        let folder = dir.path().join(WAL_PREFIX).join("n1");
        std::fs::write(folder.join("00000000000000000002.wal#1"), b"half").unwrap();
        std::fs::write(folder.join("00000000000000000003.wal#direct"), b"half").unwrap();
        assert_eq!(wal.remove_staging().unwrap(), 2);
        let names: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [wal.segment_path(1).rsplit('/').next().unwrap()]);
        let stored = std::fs::read(dir.path().join(wal.segment_path(1))).unwrap();
        assert!(
            stored.starts_with(b"STRATA-WAL-1\n"),
            "kept plain in a folder"
        );
        assert_eq!(wal.list().await.unwrap(), vec![1]);
    }

    #[tokio::test]
    async fn segments_are_stored_once_listed_in_order_and_deleted() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let wal = Wal::new(store.clone(), Durability::ObjectStore, "n1");
        let other = Wal::new(store, Durability::ObjectStore, "n2");
        let (a, b) = (record("{\"a\":1}\n"), record("{\"b\":2}\n"));
        wal.put(10, wal.encode(&[&a])).await.unwrap();
        wal.put(2, wal.encode(&[&b])).await.unwrap();
        other.put(1, other.encode(&[&b])).await.unwrap();
        assert_eq!(wal.list().await.unwrap(), vec![2, 10]);
        assert_eq!(wal.read(10).await.unwrap(), vec![a.clone()]);
        // The same bytes again (a retried put that had landed) are fine;
        // other bytes under the same number are another server's.
        wal.put(10, wal.encode(&[&a])).await.unwrap();
        let err = wal.put(10, wal.encode(&[&b])).await.unwrap_err();
        assert!(matches!(err, WalError::Taken { .. }), "{err}");
        wal.delete(&[2, 10, 11]).await.unwrap();
        assert!(wal.list().await.unwrap().is_empty());
        assert_eq!(other.list().await.unwrap(), vec![1]);
        wal.probe().await.unwrap();
        assert!(wal.list().await.unwrap().is_empty());
    }
}
