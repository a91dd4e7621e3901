//! SQL over the archive with DataFusion.
//!
//! The `events` table is built from the catalog, never from listing the
//! bucket: a scan first keeps the files whose tenant, family and `ts` range can
//! match the query's filters (from the catalog's records), then hands only
//! those to DataFusion's Parquet reader, which prunes row groups and pages by
//! their statistics. Views `access`, `data_usage` and `technical` select one
//! family; `strata_files` lists the catalog's files; `strata_audit` lists
//! every commit's receipts (files added and removed, policy, hold and expiry
//! changes). A session may be scoped to some tenants ([`Scope`]): then
//! every table holds only their rows; an analyst's session pseudonymises personal
//! values inside the scan ([`pseudonym`]). `CAST(ts AS DATE)` on UTC timestamps is rewritten to a plain
//! day division ([`utc_date`]).

mod audit;
mod crypto;
mod files;
mod pin;
mod prune;
pub mod pseudonym;
mod pseudonym_table;
pub mod query_log;
mod scope;
mod session;
mod shredded;
mod table;
mod utc_date;

pub use audit::AuditTable;
pub use crypto::TenantKeys;
pub use files::FilesTable;
pub use pin::{ArchiveTableKind, PinnedTable, SnapshotPin};
pub use prune::Prune;
pub use pseudonym::Pseudonyms;
pub use pseudonym_table::PseudonymTable;
pub use scope::Scope;
pub use session::{
    Planned, QueryError, QuerySession, QueryStats, Running, Viewer, is_archive_table,
    register_stores, scoped_files, store_url, verify_read_only,
};
pub use shredded::ShreddedAttrs;
pub use table::{ArchiveTable, ScanRecord};
pub use utc_date::{UtcDateRewrite, utc_date};
