//! What the catalog keeps besides files: the retention policy, legal holds
//! and expiry marks. They change only through catalog entries, so every
//! change is sealed, ordered and attributed like a file commit.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::catalog::{FileMeta, Snapshot};

/// A tenant-family-month partition as the catalog records it: the unit
/// retention acts on, named in expiry marks, sweeps and audit rows.
///
/// The same concept as [`crate::PartitionKey`], kept as its three strings
/// exactly as a catalog entry or snapshot holds them (serialized as
/// `{"tenant", "family", "month"}`), so that any stored entry can be read
/// and a partition strata could not hold (a forged or mistyped family or
/// month) is refused by [`PartitionRecord::malformed`] with a reason rather
/// than failing to parse. Use [`crate::PartitionKey`], its typed and
/// validated counterpart, to build paths and to group events.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// Tenant.
    pub tenant: String,
    /// Log family.
    pub family: String,
    /// `YYYY-MM`.
    pub month: String,
}

impl PartitionRecord {
    /// The partition of a file.
    pub fn of(file: &FileMeta) -> PartitionRecord {
        PartitionRecord {
            tenant: file.tenant.clone(),
            family: file.family.clone(),
            month: file.month.clone(),
        }
    }

    /// Whether `file` belongs to this partition (without building its partition).
    pub fn contains(&self, file: &FileMeta) -> bool {
        file.tenant == self.tenant && file.family == self.family && file.month == self.month
    }

    /// `tenant=…/family=…/month=…`, also its key in snapshots.
    pub fn key(&self) -> String {
        format!(
            "tenant={}/family={}/month={}",
            self.tenant, self.family, self.month
        )
    }

    /// Why this is not a partition strata could hold, if it is not.
    pub fn malformed(&self) -> Option<String> {
        let valid = strata_schema::valid_tenant(&self.tenant)
            && strata_schema::Family::parse(&self.family).is_some()
            && self.month.len() == 7
            && self.days().is_some();
        (!valid).then(|| format!("{self} is not a partition (tenant, family, YYYY-MM)"))
    }

    /// The first day of the month and the first day of the next.
    fn days(&self) -> Option<(NaiveDate, NaiveDate)> {
        let start = NaiveDate::parse_from_str(&format!("{}-01", self.month), "%Y-%m-%d").ok()?;
        let next = if start.month() == 12 {
            NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)?
        };
        Some((start, next))
    }
}

impl std::fmt::Display for PartitionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// One version of the retention policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// 1 for the first policy, then +1 per change.
    pub version: u64,
    /// The policy file as given.
    pub text: String,
    /// When it was set (RFC 3339).
    pub set_at: String,
    /// Who set it.
    pub set_by: String,
}

/// A legal hold: nothing it covers is expired, swept or shredded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Number, from 1.
    pub id: u64,
    /// The tenant held.
    pub tenant: String,
    /// Only this family, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// First day covered (`YYYY-MM-DD`), if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    /// Last day covered (`YYYY-MM-DD`, inclusive), if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
    /// Why (a case or matter reference).
    pub reason: String,
    /// When it was placed (RFC 3339).
    pub added_at: String,
    /// Who placed it.
    pub added_by: String,
}

impl Hold {
    /// Whether the hold covers any day of `partition`.
    pub fn covers(&self, partition: &PartitionRecord) -> bool {
        if partition.tenant != self.tenant
            || self.family.as_ref().is_some_and(|f| *f != partition.family)
        {
            return false;
        }
        let Some((start, next)) = partition.days() else {
            return true; // an unreadable month is held rather than risked
        };
        self.from.is_none_or(|from| next > from) && self.to.is_none_or(|to| start <= to)
    }

    /// What the hold covers, for people.
    pub fn scope(&self) -> String {
        let family = self.family.as_deref().unwrap_or("all families");
        let days = match (self.from, self.to) {
            (None, None) => "all time".to_string(),
            (Some(from), None) => format!("from {from}"),
            (None, Some(to)) => format!("until {to}"),
            (Some(from), Some(to)) => format!("{from} to {to}"),
        };
        format!("tenant {}, {family}, {days}", self.tenant)
    }
}

/// A partition marked for expiry: hidden from queries, deleted after its grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The partition.
    pub partition: PartitionRecord,
    /// When it was marked (RFC 3339).
    pub marked_at: String,
    /// Its files may be deleted from this time on (RFC 3339).
    pub sweep_after: String,
    /// The policy version in force when it was marked.
    pub policy_version: u64,
}

/// Someone (a person or a shipper) who may use the server: a name, a role,
/// and the tenants it is restricted to (none: every tenant). Only the
/// SHA-256 of its token is kept; the token itself is shown once, when the
/// principal is added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Its name (see [`valid_principal_name`]).
    pub name: String,
    /// Its role (`admin`, `ingest`, ...), read by the access-control crate.
    pub role: String,
    /// The tenants it is restricted to; empty for every tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// SHA-256 of its token, hex.
    pub token_sha256: String,
    /// A SCRAM-SHA-256 verifier of its token (PostgreSQL's format), with
    /// which it logs in over the PostgreSQL wire without TLS; principals
    /// added before verifiers were kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scram_sha256: Option<String>,
    /// When it was added (RFC 3339).
    pub added_at: String,
    /// Who added it.
    pub added_by: String,
    /// Why.
    pub reason: String,
}

/// Whether `name` can name a principal or a role: 1 to 64 characters of
/// a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit.
pub fn valid_principal_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
}

/// A change to governance state, recorded in a catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A new retention policy version.
    PolicySet {
        /// The new version.
        policy: PolicyVersion,
    },
    /// A legal hold placed.
    HoldAdded {
        /// The hold.
        hold: Hold,
    },
    /// A legal hold lifted.
    HoldReleased {
        /// Its number.
        id: u64,
        /// Why.
        reason: String,
    },
    /// A partition marked for expiry.
    ExpiryMarked {
        /// The mark.
        mark: Mark,
    },
    /// An expiry mark withdrawn before its sweep; the partition is not marked
    /// again under the same policy version.
    ExpiryCancelled {
        /// The partition.
        partition: PartitionRecord,
        /// Why.
        reason: String,
    },
    /// A marked partition's files removed (they are in the entry's `remove`).
    ExpirySwept {
        /// The partition.
        partition: PartitionRecord,
    },
    /// A new master key version for a tenant; its new files use it.
    KeyRotated {
        /// The tenant.
        tenant: String,
        /// The new version.
        version: u32,
    },
    /// Crypto-shredding of a tenant scheduled: its master keys are destroyed
    /// by the first retention run after `destroy_after`.
    ShredScheduled {
        /// The tenant.
        tenant: String,
        /// Not before (RFC 3339).
        destroy_after: String,
        /// Why (the erasure request).
        reason: String,
    },
    /// A tenant's master keys destroyed: its encrypted data is unreadable for good.
    KeysShredded {
        /// The tenant.
        tenant: String,
        /// The key versions destroyed.
        versions: Vec<u32>,
    },
    /// A signing key whose entries the archive accepts from now on
    /// (`<name>+<key id>+<base64>`). The first signed entry of an archive
    /// trusts its own signer; later keys are added by a trusted writer.
    KeyTrusted {
        /// The verifier key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A signing key whose entries the archive no longer accepts; what it
    /// signed before stays valid.
    KeyRetired {
        /// The verifier key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A principal added: its token opens the server from now on.
    PrincipalAdded {
        /// The principal.
        principal: Principal,
    },
    /// A principal revoked: its token no longer opens anything.
    PrincipalRevoked {
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
}

impl Change {
    /// Why this change is not one strata writes, if it is not: a bad
    /// tenant, partition or time, or a policy that does not parse. Such a
    /// change is refused rather than read with a default (an unreadable
    /// time taken as 1970 would make a partition due for deletion at once).
    pub fn malformed(&self) -> Option<String> {
        let time = |what: &str, text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .is_err()
                .then(|| format!("{what} {text:?} is not an RFC 3339 time"))
        };
        let tenant = |t: &str| {
            (!strata_schema::valid_tenant(t)).then(|| format!("{t:?} is not a tenant name"))
        };
        match self {
            Change::PolicySet { policy } => strata_policy::parse(&policy.text)
                .err()
                .map(|e| format!("policy version {} does not parse: {e}", policy.version))
                .or_else(|| time("the policy's time", &policy.set_at)),
            Change::HoldAdded { hold } => tenant(&hold.tenant)
                .or_else(|| {
                    let family = hold.family.as_deref();
                    family
                        .filter(|f| strata_schema::Family::parse(f).is_none())
                        .map(|f| format!("{f:?} is not a family"))
                })
                .or_else(|| time("the hold's time", &hold.added_at)),
            Change::ExpiryMarked { mark } => mark
                .partition
                .malformed()
                .or_else(|| time("the mark's time", &mark.marked_at))
                .or_else(|| time("the mark's sweep time", &mark.sweep_after)),
            Change::ExpiryCancelled { partition, .. } | Change::ExpirySwept { partition } => {
                partition.malformed()
            }
            Change::ShredScheduled {
                tenant: t,
                destroy_after,
                ..
            } => tenant(t).or_else(|| time("the shred's time", destroy_after)),
            Change::KeyRotated { tenant: t, .. } | Change::KeysShredded { tenant: t, .. } => {
                tenant(t)
            }
            Change::KeyTrusted { key, .. } | Change::KeyRetired { key, .. } => {
                strata_integrity::VerifierKey::parse(key)
                    .err()
                    .map(|e| format!("{key:?} is not a verifier key: {e}"))
            }
            Change::PrincipalAdded { principal: p } => {
                let name = |what: &str, n: &str| {
                    (!valid_principal_name(n)).then(|| format!("{n:?} is not a {what} name"))
                };
                let hash = p.token_sha256.len() == 64
                    && p.token_sha256.bytes().all(|b| b.is_ascii_hexdigit());
                name("principal", &p.name)
                    .or_else(|| name("role", &p.role))
                    .or_else(|| p.tenants.iter().find_map(|t| tenant(t)))
                    .or_else(|| {
                        (!hash).then(|| format!("{}'s token hash is not SHA-256 hex", p.name))
                    })
                    .or_else(|| time("the principal's time", &p.added_at))
            }
            Change::HoldReleased { .. } | Change::PrincipalRevoked { .. } => None,
        }
    }
}

/// Governance state as of one commit (part of [`Snapshot`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Governance {
    /// The policy in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyVersion>,
    /// Active holds by number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holds: BTreeMap<u64, Hold>,
    /// Numbers given to holds so far.
    #[serde(default)]
    pub holds_placed: u64,
    /// Partitions marked for expiry, by [`PartitionRecord::key`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub marks: BTreeMap<String, Mark>,
    /// Partitions whose expiry was cancelled, with the policy version then in force.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cancelled: BTreeMap<String, u64>,
    /// Tenants whose keys are to be destroyed, with the time from which they may be.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shreds: BTreeMap<String, String>,
    /// Tenants whose keys were destroyed, with the versions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shredded: BTreeMap<String, Vec<u32>>,
    /// Verifier keys whose signed entries the archive accepts, with the
    /// sequence number of the entry that trusted each.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trusted_keys: BTreeMap<String, u64>,
    /// Active principals by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub principals: BTreeMap<String, Principal>,
}

impl Governance {
    /// Whether a hold covers `partition`.
    pub fn held(&self, partition: &PartitionRecord) -> Option<&Hold> {
        self.holds.values().find(|h| h.covers(partition))
    }

    /// A hold on any part of `tenant`, which forbids shredding its keys.
    pub fn tenant_held(&self, tenant: &str) -> Option<&Hold> {
        self.holds.values().find(|h| h.tenant == tenant)
    }

    /// The current policy version number (0 before any policy).
    pub fn policy_version(&self) -> u64 {
        self.policy.as_ref().map_or(0, |p| p.version)
    }

    /// The cold stores of the policy in force: the only stores besides the
    /// archive that strata writes to or deletes from.
    pub fn cold_stores(&self) -> std::collections::BTreeSet<String> {
        let policy = self.policy.as_ref();
        let Some(policy) = policy.and_then(|p| strata_policy::parse(&p.text).ok()) else {
            return Default::default();
        };
        let stores = policy.cold_stores().map(|(_, store)| store.to_string());
        stores.collect()
    }

    /// Why `change` cannot apply to this state, if it cannot.
    /// `keeps_files` says whether a partition still has files once the
    /// entry's removals are applied.
    pub(crate) fn check(
        &self,
        change: &Change,
        keeps_files: &dyn Fn(&PartitionRecord) -> bool,
    ) -> Option<String> {
        if let Some(why) = change.malformed() {
            return Some(why);
        }
        match change {
            Change::PolicySet { policy } if policy.version != self.policy_version() + 1 => {
                Some(format!(
                    "policy version {} follows version {}",
                    policy.version,
                    self.policy_version()
                ))
            }
            Change::HoldAdded { hold } if hold.id != self.holds_placed + 1 => Some(format!(
                "hold {} was numbered by another writer first",
                hold.id
            )),
            Change::HoldReleased { id, .. } if !self.holds.contains_key(id) => {
                Some(format!("hold {id} is not active"))
            }
            Change::ExpiryMarked { mark } if self.marks.contains_key(&mark.partition.key()) => {
                Some(format!("{} is already marked", mark.partition))
            }
            Change::ExpiryMarked { mark } if self.held(&mark.partition).is_some() => {
                Some(format!("{} is under a legal hold", mark.partition))
            }
            Change::ExpiryCancelled { partition, .. } | Change::ExpirySwept { partition }
                if !self.marks.contains_key(&partition.key()) =>
            {
                Some(format!("{partition} is not marked for expiry"))
            }
            Change::ExpirySwept { partition } if self.held(partition).is_some() => {
                Some(format!("{partition} is under a legal hold"))
            }
            Change::ShredScheduled { tenant, .. } | Change::KeysShredded { tenant, .. }
                if self.tenant_held(tenant).is_some() =>
            {
                let hold = self.tenant_held(tenant).expect("checked");
                Some(format!(
                    "tenant {tenant} is under legal hold {} ({}): its keys cannot be shredded",
                    hold.id, hold.reason
                ))
            }
            Change::ShredScheduled { tenant, .. } if self.shreds.contains_key(tenant) => {
                Some(format!("shredding of tenant {tenant} is already scheduled"))
            }
            Change::KeysShredded { tenant, .. } if !self.shreds.contains_key(tenant) => {
                Some(format!("shredding of tenant {tenant} was not scheduled"))
            }
            Change::ExpirySwept { partition } if keeps_files(partition) => Some(format!(
                "{partition} still has files the sweep does not remove"
            )),
            Change::KeyTrusted { key, .. } if self.trusted_keys.contains_key(key) => {
                Some(format!("key {key} is already trusted"))
            }
            Change::KeyRetired { key, .. } if !self.trusted_keys.contains_key(key) => {
                Some(format!("key {key} is not trusted"))
            }
            Change::KeyRetired { key, .. } if self.trusted_keys.len() == 1 => Some(format!(
                "key {key} is the archive's only trusted key: trust another one first"
            )),
            Change::PrincipalAdded { principal }
                if self.principals.contains_key(&principal.name) =>
            {
                Some(format!("principal {} already exists", principal.name))
            }
            Change::PrincipalRevoked { name, .. } if !self.principals.contains_key(name) => {
                Some(format!("there is no active principal {name}"))
            }
            _ => None,
        }
    }

    /// Applies a change already checked, made by entry `seq`.
    pub(crate) fn apply(&mut self, change: &Change, seq: u64) {
        match change {
            Change::PolicySet { policy } => self.policy = Some(policy.clone()),
            Change::HoldAdded { hold } => {
                self.holds_placed = hold.id;
                self.holds.insert(hold.id, hold.clone());
            }
            Change::HoldReleased { id, .. } => {
                self.holds.remove(id);
            }
            Change::ExpiryMarked { mark } => {
                let key = mark.partition.key();
                self.cancelled.remove(&key);
                self.marks.insert(key, mark.clone());
            }
            Change::ExpiryCancelled { partition, .. } => {
                let key = partition.key();
                self.marks.remove(&key);
                self.cancelled.insert(key, self.policy_version());
            }
            Change::ExpirySwept { partition } => {
                let key = partition.key();
                self.marks.remove(&key);
                self.cancelled.remove(&key);
            }
            Change::KeyRotated { .. } => {}
            Change::ShredScheduled {
                tenant,
                destroy_after,
                ..
            } => {
                self.shreds.insert(tenant.clone(), destroy_after.clone());
            }
            Change::KeysShredded { tenant, versions } => {
                self.shreds.remove(tenant);
                self.shredded.insert(tenant.clone(), versions.clone());
            }
            Change::KeyTrusted { key, .. } => {
                self.trusted_keys.insert(key.clone(), seq);
            }
            Change::KeyRetired { key, .. } => {
                self.trusted_keys.remove(key);
            }
            Change::PrincipalAdded { principal } => {
                self.principals
                    .insert(principal.name.clone(), principal.clone());
            }
            Change::PrincipalRevoked { name, .. } => {
                self.principals.remove(name);
            }
        }
    }
}

impl Snapshot {
    /// Live files that queries see: all but those of partitions marked for expiry.
    pub fn visible_files(&self) -> impl Iterator<Item = &FileMeta> {
        let marks = &self.governance.marks;
        // Without marks (the usual case) there is no partition key to build per file.
        self.files
            .values()
            .filter(move |f| marks.is_empty() || !marks.contains_key(&PartitionRecord::of(f).key()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(month: &str) -> PartitionRecord {
        PartitionRecord {
            tenant: "acme".into(),
            family: "access".into(),
            month: month.into(),
        }
    }

    fn hold(family: Option<&str>, from: Option<&str>, to: Option<&str>) -> Hold {
        let date = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        Hold {
            id: 1,
            tenant: "acme".into(),
            family: family.map(String::from),
            from: from.map(date),
            to: to.map(date),
            reason: "case 1".into(),
            added_at: String::new(),
            added_by: String::new(),
        }
    }

    #[test]
    fn holds_cover_by_tenant_family_and_overlapping_days() {
        assert!(hold(None, None, None).covers(&partition("2020-01")));
        assert!(!hold(Some("technical"), None, None).covers(&partition("2020-01")));
        let march = hold(None, Some("2025-03-31"), Some("2025-03-31"));
        assert!(march.covers(&partition("2025-03")));
        assert!(!march.covers(&partition("2025-02")));
        assert!(!march.covers(&partition("2025-04")));
        let from_dec = hold(None, Some("2024-12-15"), None);
        assert!(from_dec.covers(&partition("2024-12")));
        assert!(from_dec.covers(&partition("2026-06")));
        assert!(!from_dec.covers(&partition("2024-11")));
        let mut other = hold(None, None, None);
        other.tenant = "globex".into();
        assert!(!other.covers(&partition("2025-01")));
    }
}
