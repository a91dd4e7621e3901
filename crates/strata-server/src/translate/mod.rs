//! Protocols' events onto event contract v1 (see docs/protocols.md).

pub mod contract;
pub mod ecs;
pub mod flat;
pub mod hec;
pub mod otlp;
pub mod syslog;
