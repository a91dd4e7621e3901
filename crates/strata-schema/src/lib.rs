//! The event model of Strata: the versioned event contract (loaded from
//! `schemas/event-v1.json`), its Arrow schema, a line parser that validates one
//! NDJSON object against the contract, and a builder that turns parsed events
//! into Arrow record batches.

mod builder;
mod contract;
mod event;
mod object;
mod scan;
pub mod shred;

pub use builder::EventBatchBuilder;
pub use contract::{EventContract, FieldKind, FieldSpec, contract};
pub use event::{Event, Family, SYSTEM_TENANT, parse_line, valid_tenant};
pub use object::{parse_fields, parse_object};

/// Name of the timestamp column every file is sorted and pruned by.
pub const TS_COLUMN: &str = "ts";
