//! The archive a cluster process serves and the snapshots that plans pin.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use datafusion::error::{DataFusionError, Result};
use strata_query::SnapshotPin;
use strata_store::{Archive, FileMeta, Missing, Snapshot, open_archive};

/// Snapshots kept after a query used them: a cluster mostly runs queries
/// on the newest one or two.
const SNAPSHOTS_KEPT: usize = 4;

/// The location of an archive as every process names it: an `s3://` URL
/// without a trailing slash, or a folder's absolute path.
pub fn canonical_location(location: &str) -> std::io::Result<String> {
    if location.starts_with("s3://") {
        return Ok(location.trim_end_matches('/').to_string());
    }
    let path = std::fs::canonicalize(location).map_err(|e| {
        std::io::Error::new(e.kind(), format!("no archive folder at {location}: {e}"))
    })?;
    Ok(path.display().to_string())
}

/// One snapshot a plan pinned, with its visible files by path.
#[derive(Debug)]
pub struct PinnedSnapshot {
    /// The catalog's state at the pinned entry.
    pub snapshot: Snapshot,
    /// Its files that queries see, by path.
    pub visible: HashMap<String, FileMeta>,
}

/// The one archive a scheduler or executor serves.
pub struct ServedArchive {
    archive: Archive,
    location: String,
    snapshots: Mutex<VecDeque<Arc<PinnedSnapshot>>>,
}

impl std::fmt::Debug for ServedArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedArchive")
            .field("location", &self.location)
            .finish()
    }
}

impl ServedArchive {
    /// Serves the archive at `location` (a folder or `s3://bucket/prefix`).
    pub fn open(location: &str) -> anyhow::Result<ServedArchive> {
        let location = canonical_location(location)?;
        Ok(ServedArchive {
            archive: open_archive(&location, Missing::Fail)?,
            location,
            snapshots: Mutex::new(VecDeque::new()),
        })
    }

    /// The archive.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// The snapshot `pin` names, refused when the pin names another archive
    /// or an entry this archive does not have with the pinned hash.
    pub async fn pinned(&self, pin: &SnapshotPin) -> Result<Arc<PinnedSnapshot>> {
        if pin.archive != self.location {
            return Err(DataFusionError::Plan(format!(
                "this cluster serves the archive at {}, not {}",
                self.location, pin.archive
            )));
        }
        let cached = self
            .cache()
            .iter()
            .find(|s| s.snapshot.seq == pin.seq)
            .cloned();
        let pinned = match cached {
            Some(pinned) => pinned,
            None => {
                let snapshot = (self.archive.catalog.load_at(pin.seq).await)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                let visible = (snapshot.visible_files())
                    .map(|f| (f.path.clone(), f.clone()))
                    .collect();
                let pinned = Arc::new(PinnedSnapshot { snapshot, visible });
                let mut cache = self.cache();
                cache.push_front(pinned.clone());
                cache.truncate(SNAPSHOTS_KEPT);
                pinned
            }
        };
        if pinned.snapshot.seq != pin.seq || pinned.snapshot.head != pin.head {
            return Err(DataFusionError::Plan(format!(
                "the archive at {} has no entry {} with hash {}: the plan was made on another log",
                self.location, pin.seq, pin.head
            )));
        }
        Ok(pinned)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<PinnedSnapshot>>> {
        self.snapshots.lock().expect("snapshot cache lock")
    }
}
