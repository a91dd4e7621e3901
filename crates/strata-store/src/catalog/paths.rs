//! Where the catalog's objects are stored (log entries, checkpoints,
//! snapshots and their signatures, heartbeats), the sequence number in their
//! names, and reading and create-only writing of one object.

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::layout::CATALOG_PREFIX;

/// Prefix of the log entries.
pub const LOG_PREFIX: &str = "_strata/log";
/// Prefix of the signed checkpoints.
pub const CHECKPOINT_PREFIX: &str = "_strata/checkpoints";
/// Name of the newest checkpoint in a witness location.
pub const WITNESS_LATEST: &str = "latest.note";
/// Name of the newest heartbeat in a witness location.
pub const WITNESS_HEARTBEAT: &str = "heartbeat.note";
/// Prefix of the signed heartbeats the retention daemon writes at least hourly.
pub const HEARTBEAT_PREFIX: &str = "_strata/heartbeats";

/// Where log entry `seq` is stored.
pub fn entry_path(seq: u64) -> Path {
    Path::from(format!("{LOG_PREFIX}/{seq:020}.json"))
}

/// Where the signed checkpoint of tree size `size` is stored.
pub fn checkpoint_path(size: u64) -> Path {
    Path::from(format!("{CHECKPOINT_PREFIX}/{}", checkpoint_name(size)))
}

/// The file name of the checkpoint of tree size `size`, in the archive and at witnesses.
pub fn checkpoint_name(size: u64) -> String {
    format!("{size:020}.note")
}

/// The sequence number in an entry, snapshot or checkpoint object name.
pub fn seq_of(path: &Path) -> Option<u64> {
    let name = path.filename()?;
    let stem = name
        .strip_suffix(".json")
        .or_else(|| name.strip_suffix(".note"))?;
    stem.parse().ok().filter(|&seq| stem.len() == 20 && seq > 0)
}

/// Prefix of the state snapshots.
pub const SNAPSHOT_PREFIX: &str = "_strata/snapshots";

/// Prefix of the snapshots' signatures.
pub const SNAPSHOT_NOTE_PREFIX: &str = "_strata/snapshot-notes";

/// Where the signature of snapshot `seq` is stored.
pub fn snapshot_note_path(seq: u64) -> Path {
    Path::from(format!("{SNAPSHOT_NOTE_PREFIX}/{seq:020}.note"))
}

/// Where the snapshot of the state after entry `seq` is stored.
pub fn snapshot_path(seq: u64) -> Path {
    Path::from(format!("{SNAPSHOT_PREFIX}/{seq:020}.json"))
}

/// Where the hint naming the newest snapshot is stored.
pub(super) fn last_snapshot_path() -> Path {
    Path::from(format!("{CATALOG_PREFIX}/_last_snapshot"))
}

/// The bytes of the object at `path`, or `None` if there is none.
pub async fn get_if_exists(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<bytes::Bytes>, object_store::Error> {
    match store.get(path).await {
        Ok(result) => Ok(Some(result.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Stores `payload` at `path` unless an object is already there. What
/// strata writes under such a name (a snapshot, its signature, a checkpoint)
/// is the same whoever writes it, so an existing object is success; one
/// with other content is kept as it is and reported, since only a writer of
/// another key or someone editing the bucket puts it there, and loading and
/// `verify` check it.
pub(crate) async fn put_create(
    store: &dyn ObjectStore,
    path: &Path,
    payload: PutPayload,
) -> Result<(), object_store::Error> {
    let options = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match store.put_opts(path, payload.clone(), options).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let existing = get_if_exists(store, path).await?;
            if existing.is_some_and(|bytes| bytes != bytes::Bytes::from(payload)) {
                tracing::warn!(
                    "{path} already exists with other content than this writer's; it is kept, \
                     and loading and `strata verify` check it"
                );
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}
