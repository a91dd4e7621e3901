//! Strata's SQL on an Apache DataFusion Ballista cluster.
//!
//! A client plans a query over its session's tables and sends the logical
//! plan to a Ballista scheduler. Strata's tables travel as what they show
//! ([`SnapshotPin`]: archive, snapshot sequence and hash, tenants) through
//! [`StrataLogicalCodec`]; the scheduler loads that snapshot, prunes the
//! files as `strata sql` does and wraps each Parquet scan in an
//! [`ArchiveScanExec`], which [`StrataPhysicalCodec`] sends to executors as
//! the pin plus the stores it reads. Before reading, an executor loads the
//! same snapshot, refuses a file that is not in it or not of the pinned
//! tenants, and attaches its own keys to the encrypted files: DataFusion's
//! plan serialisation drops Parquet decryption settings, and no key
//! material travels in plans or session settings.
//!
//! Every process of a cluster ([`run_scheduler`], [`run_executor`]) serves
//! one archive ([`ServedArchive`]) and refuses plans that name another.
//!
//! [`SnapshotPin`]: strata_query::SnapshotPin

mod client;
mod codec;
mod process;
mod scan;
mod served;
mod table;
mod wire;

pub use client::{remote_context, scheduler_url};
pub use codec::{StrataLogicalCodec, StrataPhysicalCodec};
pub use process::{ExecutorOptions, run_executor, run_scheduler};
pub use scan::ArchiveScanExec;
pub use served::{ServedArchive, canonical_location};
