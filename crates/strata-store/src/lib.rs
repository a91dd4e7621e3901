//! Storage for the archive: opening a local folder or S3 bucket as an object
//! store, the Hive-style layout of data files, and the catalog, a hash-chained
//! log of create-only commits that decides what the archive contains.

mod archive;
mod catalog;
pub mod delta;
mod governance;
mod layout;
mod replaced;
mod writers;

pub use archive::{Archive, ArchiveError, Missing, Opener, Stores, open_archive, open_location};
pub use catalog::{
    CHECKPOINT_PREFIX, Catalog, CatalogError, Conflict, Draft, ENTRY_FORMAT, Entry, FileMeta,
    FiledIndex, FiledShard, GENESIS_HASH, HEARTBEAT_PREFIX, LOG_PREFIX, SNAPSHOT_FORMAT,
    SNAPSHOT_NOTE_PREFIX, SNAPSHOT_PREFIX, SOURCES_PREFIX, SWEEP_OPERATION, Snapshot,
    SourceProgress, Untrusted, WITNESS_HEARTBEAT, WITNESS_LATEST, checkpoint_name, checkpoint_path,
    entry_path, get_if_exists, index_path, seq_of, sha256_hex, shard_of, shard_path,
    snapshot_note_path, snapshot_path,
};
pub use governance::{
    Change, Governance, Hold, Mark, PartitionRecord, PolicyVersion, Principal, valid_principal_name,
};
pub use layout::{
    CATALOG_PREFIX, PartitionKey, data_file_path, is_data_file_path, partition_of_path,
};
pub use replaced::{REPLACED_PREFIX, delete_replaced, keep_replaced, purge_replaced};
pub use writers::{
    Pending, Reconciled, WRITERS_PREFIX, Writer, WriterRecord, delete_objects, host_name,
    reconcile, writer_records,
};
