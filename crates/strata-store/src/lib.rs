//! Storage for the archive: opening a local folder or S3 bucket as an object
//! store, the Hive-style layout of data files, and the catalog, a hash-chained
//! log of create-only commits that decides what the archive contains.

mod archive;
mod catalog;
mod layout;

pub use archive::{Archive, ArchiveError, Missing, open_archive};
pub use catalog::{
    Catalog, CatalogError, Draft, Entry, FileMeta, GENESIS_HASH, Snapshot, SourceProgress,
    sha256_hex,
};
pub use layout::{CATALOG_PREFIX, PartitionKey, data_file_path};
