//! Seeded, deterministic generator of synthetic BPO (contact centre / back
//! office) compliance log events, written as NDJSON.
//!
//! Used for demos, tests and benchmarks of Strata. The generator:
//!
//! * is **deterministic**: the same [`GenConfig`] produces byte-identical
//!   output (all randomness comes from [`rand_chacha::ChaCha8Rng`] streams
//!   derived from [`GenConfig::seed`], and the timeline uses integer
//!   arithmetic only, so no platform-dependent `powf`/`ln` rounding leaks in);
//! * is **streaming**: memory stays bounded whatever [`GenConfig::events`] is
//!   (see the *Timeline* section below);
//! * writes exactly `events` lines, each a JSON object ending in `'\n'`, with
//!   every timestamp in `[start, start + days)`.
//!
//! # Event shape
//!
//! Every line carries `ts`, `tenant`, `family` (`access` / `data_usage` /
//! `technical`, roughly 40/45/15 %) and `action`. Most lines also carry
//! `outcome`, `severity`, `user`, `role`, `host`, `app`, `resource`,
//! `resource_type`, `session_id`, `message`, `src_ip`, `bytes`, `records`,
//! `duration_ms` and `event_id`, with realistic sparsity (fields are omitted,
//! never `null`). About 30 % of lines have an `attrs` object of scalars and
//! about 10 % carry one or two extra top-level keys (`client_version`,
//! `shift`, `queue_depth`, ...) that the archive folds into `attrs`.
//!
//! Tenants follow a Zipf-like size distribution ([`tenant_names`] gives the
//! ids); users, resources and hosts are skewed so that a few are far more
//! active than the rest. Technical `incident_opened` / `incident_resolved`
//! events are paired through a shared `attrs.ticket`, and the resolution
//! carries the time to repair in `duration_ms`.
//!
//! # Timeline
//!
//! `[start, start + days)` is cut into hourly buckets. Each bucket gets an
//! integer weight (hour-of-day table x weekday table x a small per-bucket
//! jitter from a stateless hash), and bucket `b` receives
//! `floor(E * W(b+1) / W) - floor(E * W(b) / W)` events where `W(b)` is the
//! cumulative weight, so the total is exactly `E` with O(1) state. Within a
//! bucket the millisecond offsets are drawn and sorted in a reused buffer of
//! at most 65 536 entries; denser hours are first split into minutes, and a
//! minute denser than that is emitted from a 60 000-slot counting histogram.
//! Memory is therefore bounded by a few hundred KiB regardless of size.
//!
//! [`TimeOrder::Shuffled`] passes that sorted stream through a 4 096-slot
//! window that emits a random slot each time it is full, so timestamps are
//! locally out of order (some events arrive "late") while staying
//! deterministic.
//!
//! # Example
//!
//! ```
//! let config = strata_gen::GenConfig { events: 10, ..Default::default() };
//! let mut out = Vec::new();
//! let summary = strata_gen::generate(&config, &mut out).unwrap();
//! assert_eq!(summary.events, 10);
//! assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 10);
//! ```

#![warn(missing_docs)]

mod event;
mod text;
mod timeline;

use std::io::{self, Write};

use chrono::{DateTime, TimeZone, Utc};

use event::EventWriter;
use timeline::{Shuffler, Timeline};

/// Settings of one generator run. Two runs with equal configs produce
/// byte-identical output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    /// Seed of every random stream used by the generator.
    pub seed: u64,
    /// Exact number of events (lines) to write.
    pub events: u64,
    /// Number of tenants; their ids are `tenant_names(tenants)`.
    pub tenants: u32,
    /// Start of the time range (inclusive).
    pub start: DateTime<Utc>,
    /// Length of the time range in days; timestamps fall in
    /// `[start, start + days)`.
    pub days: u32,
    /// Whether timestamps are emitted in non-decreasing order.
    pub order: TimeOrder,
    /// How the `ts` field is written.
    pub ts_format: TsFormat,
}

impl Default for GenConfig {
    /// Seed 42, 100 000 events, 20 tenants, the year 2025 (from
    /// 2025-01-01T00:00:00Z for 365 days), sorted, RFC 3339 timestamps.
    fn default() -> Self {
        GenConfig {
            seed: 42,
            events: 100_000,
            tenants: 20,
            start: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
            days: 365,
            order: TimeOrder::Sorted,
            ts_format: TsFormat::Rfc3339,
        }
    }
}

/// Order in which events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeOrder {
    /// Timestamps are non-decreasing from line to line.
    #[default]
    Sorted,
    /// Timestamps are locally shuffled (a sliding window of a few thousand
    /// events is emitted in random order), still deterministic.
    Shuffled,
}

/// Encoding of the `ts` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TsFormat {
    /// RFC 3339 string in UTC with millisecond precision,
    /// e.g. `"2025-03-04T09:15:02.123Z"`.
    #[default]
    Rfc3339,
    /// Integer milliseconds since the Unix epoch, e.g. `1741079702123`.
    EpochMillis,
    /// Mostly RFC 3339 with `Z`, some RFC 3339 with a local offset such as
    /// `+05:30`, and some integer epoch milliseconds.
    Mixed,
}

/// What a [`generate`] run wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenSummary {
    /// Number of events (lines) written.
    pub events: u64,
    /// Number of bytes written, newlines included.
    pub bytes: u64,
}

/// Output is handed to the writer in chunks of about this size, so an
/// unbuffered writer still sees few, large writes.
const FLUSH_AT: usize = 256 * 1024;

/// Writes `config.events` NDJSON events to `out` and flushes it.
///
/// Fails with [`io::ErrorKind::InvalidInput`] when events are requested but
/// `tenants` or `days` is zero, or when the time range leaves the years
/// 0001..=9999 (RFC 3339 needs four-digit years); otherwise only errors of
/// `out` are returned.
pub fn generate<W: Write>(config: &GenConfig, mut out: W) -> io::Result<GenSummary> {
    let mut summary = GenSummary::default();
    if config.events == 0 {
        out.flush()?;
        return Ok(summary);
    }
    let start_ms = validate(config)?;

    let mut writer = EventWriter::new(config);
    let mut timeline = Timeline::new(config.seed, start_ms, config.days, config.events);
    let mut sink = |ts: i64| -> io::Result<()> {
        writer.write_event(ts);
        summary.events += 1;
        if writer.buf.len() >= FLUSH_AT {
            out.write_all(&writer.buf)?;
            summary.bytes += writer.buf.len() as u64;
            writer.buf.clear();
        }
        Ok(())
    };
    match config.order {
        TimeOrder::Sorted => timeline.run(&mut sink)?,
        TimeOrder::Shuffled => {
            let mut shuffler = Shuffler::new(config.seed, config.events);
            timeline.run(&mut |ts| shuffler.push(ts, &mut sink))?;
            shuffler.finish(&mut sink)?;
        }
    }
    out.write_all(&writer.buf)?;
    summary.bytes += writer.buf.len() as u64;
    out.flush()?;
    debug_assert_eq!(summary.events, config.events);
    Ok(summary)
}

/// Checks the config and returns the start in epoch milliseconds, rounded
/// up so that millisecond timestamps never fall before `start`.
fn validate(config: &GenConfig) -> io::Result<i64> {
    let invalid = |msg: &str| io::Error::new(io::ErrorKind::InvalidInput, msg.to_string());
    if config.tenants == 0 {
        return Err(invalid("tenants must be at least 1"));
    }
    if config.days == 0 {
        return Err(invalid("days must be at least 1"));
    }
    let start = &config.start;
    let mut start_ms = start.timestamp_millis();
    if !start.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        start_ms += 1;
    }
    // Keep the range (and +-offset local times) inside four-digit years.
    let min_ms = Utc
        .with_ymd_and_hms(1, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let max_ms = Utc
        .with_ymd_and_hms(9999, 12, 31, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let end_ms = start_ms + i64::from(config.days) * text::DAY_MS;
    if start_ms < min_ms || end_ms > max_ms {
        return Err(invalid("time range must lie within years 0001..=9999"));
    }
    Ok(start_ms)
}

/// Realistic base names of BPO client tenants, biggest first.
const TENANT_BASES: [&str; 24] = [
    "acme-health",
    "globex-bank",
    "initech-telecom",
    "umbrella-insurance",
    "hooli-retail",
    "stark-energy",
    "wayne-logistics",
    "wonka-foods",
    "tyrell-pharma",
    "cyberdyne-travel",
    "soylent-utilities",
    "vandelay-imports",
    "oscorp-labs",
    "massive-dynamic",
    "dunder-paper",
    "prestige-cars",
    "gringotts-credit",
    "monarch-airlines",
    "nakatomi-trading",
    "blue-sun-media",
    "aperture-devices",
    "virtucon-water",
    "sirius-cybernetics",
    "pied-piper-cloud",
];

/// Returns `count` deterministic tenant ids, biggest tenant first:
/// `"acme-health"`, `"globex-bank"`, ... and, once the base names run out,
/// the same names suffixed `-2`, `-3`, ... Every id matches
/// `[a-z0-9][a-z0-9._-]{0,63}` and ids are unique.
pub fn tenant_names(count: u32) -> Vec<String> {
    let n = TENANT_BASES.len();
    (0..count as usize)
        .map(|i| {
            let base = TENANT_BASES[i % n];
            if i < n {
                base.to_string()
            } else {
                format!("{base}-{}", i / n + 1)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_unique_and_suffixed() {
        let names = tenant_names(60);
        assert_eq!(names[0], "acme-health");
        assert_eq!(names[1], "globex-bank");
        assert_eq!(names[24], "acme-health-2");
        assert_eq!(names[59], format!("{}-3", TENANT_BASES[11]));
        let set: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(set.len(), names.len());
        assert!(tenant_names(0).is_empty());
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let zero_days = GenConfig {
            days: 0,
            ..Default::default()
        };
        let err = generate(&zero_days, io::sink()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let zero_tenants = GenConfig {
            tenants: 0,
            ..Default::default()
        };
        assert!(generate(&zero_tenants, io::sink()).is_err());
        let far = GenConfig {
            start: Utc.with_ymd_and_hms(9999, 12, 1, 0, 0, 0).unwrap(),
            ..Default::default()
        };
        assert!(generate(&far, io::sink()).is_err());
        // Nothing requested: nothing to validate, nothing written.
        let none = GenConfig {
            events: 0,
            days: 0,
            ..Default::default()
        };
        assert_eq!(generate(&none, io::sink()).unwrap(), GenSummary::default());
    }
}
