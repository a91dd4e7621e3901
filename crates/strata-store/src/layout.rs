//! Where things live in the archive.
//!
//! Data: `tenant=<t>/family=<f>/month=<YYYY-MM>/part-<time>-<random>.parquet`.
//! A month is the partition: retention presets are counted in months and
//! years, so a month is the finest unit retention ever needs to drop, and it
//! keeps a year of one tenant-family in 12 directories instead of 365 (see
//! `docs/layout.md`). Catalog: everything under `_strata/`, which Hive-style
//! readers skip because of the leading underscore.

use chrono::{DateTime, Datelike, Utc};
use strata_schema::Family;

/// Prefix of the catalog, kept apart from data so lifecycle rules on data never touch it.
pub const CATALOG_PREFIX: &str = "_strata";

/// The partition an event belongs to, typed: a [`Family`] and a numeric year
/// and month, as events are grouped by during ingest (a cheap hash-map key)
/// and as data file paths are built from and parsed into.
///
/// The same concept as [`crate::PartitionRecord`], which is the partition as
/// catalog entries and snapshots record it (strings, read as written); this
/// one exists only in memory and is never serialized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// Tenant id (validated by the event contract).
    pub tenant: String,
    /// Log family.
    pub family: Family,
    /// Year of the month.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: u32,
}

impl PartitionKey {
    /// The partition of an event at `ts_micros` (UTC).
    pub fn of(tenant: &str, family: Family, ts_micros: i64) -> PartitionKey {
        let (year, month) = Self::month_of(ts_micros);
        PartitionKey {
            tenant: tenant.to_string(),
            family,
            year,
            month,
        }
    }

    /// The UTC year and month (1 to 12) of `ts_micros`.
    pub fn month_of(ts_micros: i64) -> (i32, u32) {
        let t = DateTime::<Utc>::from_timestamp_micros(ts_micros).expect("validated timestamp");
        (t.year(), t.month())
    }

    /// The partition a catalogued file belongs to.
    pub fn of_file(file: &crate::FileMeta) -> Option<PartitionKey> {
        let (year, month) = file.month.split_once('-')?;
        Some(PartitionKey {
            tenant: file.tenant.clone(),
            family: Family::parse(&file.family)?,
            year: year.parse().ok()?,
            month: month.parse().ok()?,
        })
    }

    /// `YYYY-MM`, the value of the `month=` path segment.
    pub fn month_label(&self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// `tenant=…/family=…/month=…`, the partition's directory.
    pub fn dir(&self) -> String {
        format!(
            "tenant={}/family={}/month={}",
            self.tenant,
            self.family,
            self.month_label()
        )
    }
}

impl std::fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.dir())
    }
}

/// Whether `path` is the path of a data file of `key`:
/// `<key.dir()>/part-<letters, digits, '-', '_'>.parquet`. Every object a
/// writer creates or deletes in a store is of this shape, so a forged record
/// can never point one at a catalog object or at anything outside a partition.
pub fn is_data_file_path(path: &str, key: &PartitionKey) -> bool {
    path.strip_prefix(&key.dir())
        .and_then(|rest| rest.strip_prefix("/part-"))
        .and_then(|rest| rest.strip_suffix(".parquet"))
        .is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

/// The partition a data file path names, if `path` is one (see [`is_data_file_path`]).
pub fn partition_of_path(path: &str) -> Option<PartitionKey> {
    let mut parts = path.split('/');
    let tenant = parts.next()?.strip_prefix("tenant=")?;
    let family = Family::parse(parts.next()?.strip_prefix("family=")?)?;
    let (year, month) = parts.next()?.strip_prefix("month=")?.split_once('-')?;
    let key = PartitionKey {
        tenant: tenant.to_string(),
        family,
        year: year.parse().ok()?,
        month: month.parse().ok()?,
    };
    let well_formed = strata_schema::valid_tenant(tenant)
        && YEARS.contains(&key.year)
        && (1..=12).contains(&key.month)
        && is_data_file_path(path, &key);
    well_formed.then_some(key)
}

/// Years a partition can have: the event contract's.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

/// A fresh, unique path for a new data file of `key`.
pub fn data_file_path(key: &PartitionKey) -> String {
    let now = Utc::now().format("%Y%m%dT%H%M%S");
    format!(
        "{}/part-{now}-{:016x}.parquet",
        key.dir(),
        rand::random::<u64>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths_are_hive_style_by_month() {
        // 2025-03-31T23:59:59.999999Z and one microsecond later.
        let last = 1_743_465_599_999_999;
        let a = PartitionKey::of("acme", Family::DataUsage, last);
        let b = PartitionKey::of("acme", Family::DataUsage, last + 1);
        assert_eq!(a.dir(), "tenant=acme/family=data_usage/month=2025-03");
        assert_eq!(b.dir(), "tenant=acme/family=data_usage/month=2025-04");
        let path = data_file_path(&a);
        assert!(path.starts_with("tenant=acme/family=data_usage/month=2025-03/part-"));
        assert!(path.ends_with(".parquet"));
        assert_ne!(path, data_file_path(&a));
        assert_eq!(partition_of_path(&path), Some(a));
    }

    #[test]
    fn only_data_file_paths_name_a_partition() {
        let good = "tenant=acme/family=access/month=2025-03/part-20250301T000000-00ff.parquet";
        assert!(partition_of_path(good).is_some());
        for bad in [
            "_strata/log/00000000000000000001.json",
            "tenant=acme/family=access/month=2025-03/../../../etc/passwd",
            "tenant=acme/family=access/month=2025-03/part-x.parquet/extra",
            "tenant=acme/family=access/month=2025-03/part-.parquet",
            "tenant=acme/family=access/month=2025-03/part-a/b.parquet",
            "tenant=Acme/family=access/month=2025-03/part-x.parquet",
            "tenant=acme/family=other/month=2025-03/part-x.parquet",
            "tenant=acme/family=access/month=2025-13/part-x.parquet",
            "tenant=acme/family=access/month=2025-3/part-x.parquet",
            "tenant=acme/family=access/month=0999-03/part-x.parquet",
            "/tenant=acme/family=access/month=2025-03/part-x.parquet",
            ".bashrc",
        ] {
            assert_eq!(partition_of_path(bad), None, "{bad}");
        }
    }
}
