//! Ingest: NDJSON (plain, gzip or zstd; files or stdin) into sorted, zstd
//! Parquet files, one per touched partition per chunk, committed through the
//! catalog together with how far each input has been read, so that rerunning
//! an interrupted ingest resumes exactly where the last commit stopped.
//! Also compaction, which merges a partition's small files into larger ones.

pub mod block;
mod compact;
mod encode;
mod ingest;
mod input;
mod layout;
mod merge;
mod pool;

pub use compact::{CompactOptions, CompactReport, compact, merge_files};
pub use encode::{Encryption, ZSTD_LEVEL_DEFAULT, encode_sorted, read_file};
pub use ingest::{
    IngestError, IngestOptions, IngestReport, Observer, Reject, SourceReport, SourceStatus, ingest,
    upload,
};
pub use input::Input;
