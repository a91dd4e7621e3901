//! `strata serve`: a long-running server that takes events from shippers
//! over HTTP and syslog and acknowledges them only once they are durable.
//!
//! A request's events are parsed and checked against the sender's tenants
//! ([`accept`]), gathered with other requests' into one write-ahead segment
//! stored create-only in the archive's own store ([`group`], `strata-wal`), and
//! answered once that segment is durable. They wait in memory ([`buffer`])
//! until a write-out ([`writeout`]) commits them as Parquet together with
//! the log's progress, after which their segments are deleted. A restart
//! replays the segments not yet committed, so every acknowledged event
//! reaches the archive exactly once (see docs/serve.md).

pub mod accept;
pub mod buffer;
pub mod dedup;
pub mod group;
pub mod http;
pub mod limits;
pub mod merging;
pub mod metrics;
pub mod pg;
pub mod recorder;
pub mod rows;
mod server;
pub mod syslog;
pub mod translate;
pub mod writeout;

pub use server::{Buffers, Listeners, ServeError, ServeOptions, Server, Shared, valid_node_id};
