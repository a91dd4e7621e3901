//! The retention engine.
//!
//! A retention policy (see `strata-policy`) is stored in the catalog, each
//! version an entry naming who set it and when. [`plan`] computes what the
//! policy asks for at an instant: mark partitions whose retention is over
//! (queries stop seeing them), sweep marked partitions whose grace period is
//! over (their files are removed in a commit, then deleted), and tier
//! partitions old enough to a cold store, compacted. [`run`] carries a plan
//! out, one commit per action, resumable after `kill -9`. Legal holds win
//! over every policy: a held partition is never marked or swept, and a mark
//! is withdrawn when a hold comes to cover it.

#![warn(missing_docs)]

mod plan;
mod run;

use chrono::{DateTime, NaiveDate, Utc};
use strata_keys::envelope::KeyProvider;
use strata_policy::Policy;
use strata_store::{Archive, Change, Draft, Hold, PartitionRecord, PolicyVersion, Snapshot};

pub use plan::{Action, ActionKind, Blocked, Plan, Shred, plan};
pub use run::{COLD_ZSTD_LEVEL, Observer, RunReport, run};

/// Errors of retention commands.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The catalog failed or refused a commit.
    #[error(transparent)]
    Catalog(#[from] strata_store::CatalogError),
    /// A store failed.
    #[error("storage error: {0}")]
    Store(#[from] object_store::Error),
    /// A cold store could not be opened.
    #[error(transparent)]
    Location(#[from] strata_store::ArchiveError),
    /// The policy text is invalid.
    #[error("invalid retention policy: {0}")]
    Policy(#[from] strata_policy::PolicyError),
    /// Merging files for tiering failed.
    #[error(transparent)]
    Merge(#[from] strata_ingest::IngestError),
    /// A cold copy did not read back as written.
    #[error("tiering aborted, the cold copy is wrong: {0}")]
    BadCopy(String),
    /// No policy has been set.
    #[error(
        "the archive has no retention policy yet: set one with `strata retention policy set FILE`"
    )]
    NoPolicy,
    /// The request is not valid against the archive's state.
    #[error("{0}")]
    Refused(String),
}

/// The archive's policy in force, parsed.
pub fn current_policy(snapshot: &Snapshot) -> Result<(u64, Policy), RetentionError> {
    let stored = snapshot
        .governance
        .policy
        .as_ref()
        .ok_or(RetentionError::NoPolicy)?;
    Ok((stored.version, strata_policy::parse(&stored.text)?))
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Validates `text` and commits it as the next policy version; returns the version.
pub async fn set_policy(
    archive: &Archive,
    text: &str,
    actor: &str,
    reason: &str,
) -> Result<u64, RetentionError> {
    strata_policy::parse(text)?;
    let mut snapshot = archive.catalog.load().await?;
    let version = snapshot.governance.policy_version() + 1;
    let draft = Draft {
        operation: "policy".into(),
        actor: actor.to_string(),
        reason: Some(reason.to_string()),
        policy_version: Some(version),
        changes: vec![Change::PolicySet {
            policy: PolicyVersion {
                version,
                text: text.to_string(),
                set_at: now_text(),
                set_by: actor.to_string(),
            },
        }],
        ..Default::default()
    };
    archive.catalog.commit(&mut snapshot, draft).await?;
    Ok(version)
}

/// What a new legal hold covers.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    /// The tenant.
    pub tenant: String,
    /// Only this family, if given.
    pub family: Option<String>,
    /// First day covered.
    pub from: Option<NaiveDate>,
    /// Last day covered (inclusive).
    pub to: Option<NaiveDate>,
    /// Why (a case or matter reference).
    pub reason: String,
}

/// Places a legal hold; returns it.
pub async fn add_hold(
    archive: &Archive,
    request: HoldRequest,
    actor: &str,
) -> Result<Hold, RetentionError> {
    if let (Some(from), Some(to)) = (request.from, request.to)
        && from > to
    {
        return Err(RetentionError::Refused(format!(
            "--from {from} is after --to {to}"
        )));
    }
    if request.reason.trim().is_empty() {
        return Err(RetentionError::Refused(
            "a hold needs a --reason (the case or matter it is for)".into(),
        ));
    }
    let mut snapshot = archive.catalog.load().await?;
    // A retry of a hold that landed (same scope, same reason) is that hold,
    // not a second one.
    let placed = snapshot.governance.holds.values().find(|h| {
        (&h.tenant, &h.family, h.from, h.to, &h.reason)
            == (
                &request.tenant,
                &request.family,
                request.from,
                request.to,
                &request.reason,
            )
    });
    if let Some(hold) = placed {
        return Ok(hold.clone());
    }
    let hold = Hold {
        id: snapshot.governance.holds_placed + 1,
        tenant: request.tenant,
        family: request.family,
        from: request.from,
        to: request.to,
        reason: request.reason,
        added_at: now_text(),
        added_by: actor.to_string(),
    };
    let change = Change::HoldAdded { hold: hold.clone() };
    let draft = Draft::change("hold", actor, &hold.reason, change);
    archive.catalog.commit(&mut snapshot, draft).await?;
    Ok(hold)
}

/// Lifts legal hold `id`.
pub async fn release_hold(
    archive: &Archive,
    id: u64,
    reason: &str,
    actor: &str,
) -> Result<Hold, RetentionError> {
    let mut snapshot = archive.catalog.load().await?;
    let hold = snapshot.governance.holds.get(&id).cloned().ok_or_else(|| {
        let active: Vec<String> = snapshot
            .governance
            .holds
            .keys()
            .map(u64::to_string)
            .collect();
        RetentionError::Refused(format!(
            "hold {id} is not active (active holds: {})",
            if active.is_empty() {
                "none".to_string()
            } else {
                active.join(", ")
            }
        ))
    })?;
    let change = Change::HoldReleased {
        id,
        reason: reason.to_string(),
    };
    let draft = Draft::change("hold-release", actor, reason, change);
    archive.catalog.commit(&mut snapshot, draft).await?;
    Ok(hold)
}

/// Withdraws the expiry marks of `tenant` (and `family`, `month` if given)
/// before their sweep; the partitions are visible again and are not marked
/// again under the current policy version. Returns the partitions.
pub async fn cancel_expiry(
    archive: &Archive,
    tenant: &str,
    family: Option<&str>,
    month: Option<&str>,
    reason: &str,
    actor: &str,
) -> Result<Vec<PartitionRecord>, RetentionError> {
    let mut snapshot = archive.catalog.load().await?;
    let partitions: Vec<PartitionRecord> = snapshot
        .governance
        .marks
        .values()
        .map(|m| m.partition.clone())
        .filter(|p| {
            p.tenant == tenant
                && family.is_none_or(|f| p.family == f)
                && month.is_none_or(|m| p.month == m)
        })
        .collect();
    if partitions.is_empty() {
        return Err(RetentionError::Refused(format!(
            "no partition of tenant {tenant} matching the filter is marked for expiry"
        )));
    }
    let draft = Draft {
        operation: "expire-cancel".into(),
        actor: actor.to_string(),
        reason: Some(reason.to_string()),
        policy_version: Some(snapshot.governance.policy_version()),
        changes: partitions
            .iter()
            .map(|p| Change::ExpiryCancelled {
                partition: p.clone(),
                reason: reason.to_string(),
            })
            .collect(),
        ..Default::default()
    };
    archive.catalog.commit(&mut snapshot, draft).await?;
    Ok(partitions)
}

/// Adds `key` (a verifier key, `<name>+<key id>+<base64>`, as `strata keys
/// show` prints it on the other writer) to the keys whose signed entries the
/// archive accepts. Only a writer whose own key is trusted can commit this.
pub async fn trust_key(
    archive: &Archive,
    key: &str,
    reason: &str,
    actor: &str,
) -> Result<(), RetentionError> {
    let change = Change::KeyTrusted {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    commit_key_change(archive, "key-trust", change, reason, actor).await
}

/// Removes `key` from the archive's trusted signing keys: later entries it
/// signs are refused, earlier ones stay valid. The last trusted key cannot go.
pub async fn retire_key(
    archive: &Archive,
    key: &str,
    reason: &str,
    actor: &str,
) -> Result<(), RetentionError> {
    let change = Change::KeyRetired {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    commit_key_change(archive, "key-retire", change, reason, actor).await
}

async fn commit_key_change(
    archive: &Archive,
    operation: &str,
    change: Change,
    reason: &str,
    actor: &str,
) -> Result<(), RetentionError> {
    let mut snapshot = archive.catalog.load().await?;
    let draft = Draft::change(operation, actor, reason, change);
    archive.catalog.commit(&mut snapshot, draft).await?;
    Ok(())
}

/// Makes a new master key version for `tenant` (new files use it, old ones
/// still read) and records it; returns the version.
pub async fn rotate_key(
    archive: &Archive,
    keys: &dyn KeyProvider,
    tenant: &str,
    actor: &str,
) -> Result<u32, RetentionError> {
    let version = keys
        .rotate(tenant)
        .map_err(|e| RetentionError::Refused(e.to_string()))?;
    let mut snapshot = archive.catalog.load().await?;
    let reason = format!("new master key version {version} for tenant {tenant}");
    let change = Change::KeyRotated {
        tenant: tenant.to_string(),
        version,
    };
    let draft = Draft::change("key-rotate", actor, &reason, change);
    archive.catalog.commit(&mut snapshot, draft).await?;
    Ok(version)
}

/// Schedules crypto-shredding of `tenant`: the first retention run after the
/// policy's grace period (7 days without a policy) destroys its master keys.
/// Refused under a legal hold, and while any of the tenant's files is not
/// encrypted (destroying keys would not erase it). Returns the instant after
/// which the keys go.
pub async fn schedule_shred(
    archive: &Archive,
    tenant: &str,
    reason: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<String, RetentionError> {
    let mut snapshot = archive.catalog.load().await?;
    // A retry of a scheduling that landed answers as the first did.
    if let Some(destroy_after) = snapshot.governance.shreds.get(tenant) {
        return Ok(destroy_after.clone());
    }
    if let Some(hold) = snapshot.governance.tenant_held(tenant) {
        return Err(RetentionError::Refused(format!(
            "tenant {tenant} is under legal hold {} ({}): its keys cannot be shredded",
            hold.id, hold.reason
        )));
    }
    // Files of partitions marked for expiry are deleted by the sweep anyway.
    let plaintext = snapshot
        .visible_files()
        .filter(|f| f.tenant == tenant && f.key_version.is_none())
        .count();
    if plaintext > 0 {
        return Err(RetentionError::Refused(format!(
            "{plaintext} files of tenant {tenant} are not encrypted, so destroying its keys would \
             not erase them: encrypt them first (a policy rule with encrypt_after = \"0d\", then \
             `strata retention run`)"
        )));
    }
    let grace = match current_policy(&snapshot) {
        Ok((_, policy)) => policy.grace(),
        Err(_) => strata_policy::Age::parse("7d")?,
    };
    let destroy_after = grace
        .reached_at(now)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let change = Change::ShredScheduled {
        tenant: tenant.to_string(),
        destroy_after: destroy_after.clone(),
        reason: reason.to_string(),
    };
    let draft = Draft::change("shred-schedule", actor, reason, change);
    archive.catalog.commit(&mut snapshot, draft).await?;
    Ok(destroy_after)
}

/// Parses `--now`: RFC 3339 or a date (midnight UTC).
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, RetentionError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            RetentionError::Refused(format!(
                "{text:?} is not an instant: use 2026-01-31 or 2026-01-31T12:00:00Z"
            ))
        })
}
