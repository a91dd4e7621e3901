//! What the policy asks for now: computed from one catalog snapshot, without
//! touching anything.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use strata_policy::{Policy, Rule};
use strata_store::{FileMeta, PartitionRecord, Snapshot};

/// What retention does to a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Withdraw an expiry mark because a legal hold now covers the partition.
    Unmark,
    /// Delete a marked partition whose grace period is over.
    Sweep,
    /// Mark a partition expired: hidden from queries, deleted after the grace period.
    Mark,
    /// Rewrite a partition's plaintext files encrypted under the tenant's key.
    Encrypt,
    /// Move a partition's hot files to a cold store, compacted.
    Tier,
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ActionKind::Unmark => "unmark",
            ActionKind::Sweep => "sweep",
            ActionKind::Mark => "expire",
            ActionKind::Encrypt => "encrypt",
            ActionKind::Tier => "tier",
        })
    }
}

/// One planned action.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// What.
    pub kind: ActionKind,
    /// On which partition.
    pub partition: PartitionRecord,
    /// The files it concerns (all the partition's, or its hot ones for tiering).
    pub files: Vec<FileMeta>,
    /// Their total size.
    pub bytes: u64,
    /// Why, citing the rule and the dates.
    pub reason: String,
    /// For tiering, the cold store's location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// For marking, when the sweep may delete the files (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_after: Option<String>,
    /// For tiering, whether the cold copy is also encrypted (its encryption is due).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encrypt: bool,
}

/// An action a legal hold prevents.
#[derive(Debug, Clone, Serialize)]
pub struct Blocked {
    /// What would have happened.
    pub kind: ActionKind,
    /// To which partition.
    pub partition: PartitionRecord,
    /// Its size.
    pub bytes: u64,
    /// The hold's number.
    pub hold: u64,
    /// The hold's reason.
    pub hold_reason: String,
}

/// A scheduled crypto-shred whose grace period is over.
#[derive(Debug, Clone, Serialize)]
pub struct Shred {
    /// The tenant whose master keys are destroyed.
    pub tenant: String,
    /// When its grace period ended.
    pub destroy_after: String,
    /// The legal hold that blocks it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<u64>,
}

/// Everything the policy asks for at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The instant planned for.
    pub now: DateTime<Utc>,
    /// The policy version planned with.
    pub policy_version: u64,
    /// Actions, in the order they run: unmarks, sweeps, marks, tiering.
    pub actions: Vec<Action>,
    /// Actions legal holds prevent.
    pub blocked: Vec<Blocked>,
    /// Key shreds that are due.
    pub shreds: Vec<Shred>,
}

/// A partition and its files.
type PartitionFiles<'a> = (&'a PartitionRecord, Vec<&'a FileMeta>);

fn newest_event(files: &[&FileMeta]) -> DateTime<Utc> {
    let newest = files.iter().map(|f| f.max_ts).max().unwrap_or(0);
    // Out of range only in a record the catalog would have refused; never
    // old enough to expire.
    DateTime::from_timestamp_micros(newest).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn rule_label(index: usize, rule: &Rule) -> String {
    let presets = if rule.presets.is_empty() {
        String::new()
    } else {
        format!(", presets {}", rule.presets.join(" + "))
    };
    format!("rule {} ({}{presets})", index + 1, rule.describe())
}

fn action(
    kind: ActionKind,
    partition: &PartitionRecord,
    files: &[&FileMeta],
    reason: String,
) -> Action {
    Action {
        kind,
        partition: partition.clone(),
        files: files.iter().map(|f| (*f).clone()).collect(),
        bytes: files.iter().map(|f| f.size).sum(),
        reason,
        to: None,
        sweep_after: None,
        encrypt: false,
    }
}

/// Plans what `policy` (version `policy_version`) asks of the archive in
/// `snapshot` at `now`. Age counts from the newest event of each partition.
pub fn plan(snapshot: &Snapshot, policy: &Policy, policy_version: u64, now: DateTime<Utc>) -> Plan {
    let governance = &snapshot.governance;
    let mut partitions: BTreeMap<PartitionRecord, Vec<&FileMeta>> = BTreeMap::new();
    for file in snapshot.files.values() {
        partitions
            .entry(PartitionRecord::of(file))
            .or_default()
            .push(file);
    }
    let mut plan = Plan {
        now,
        policy_version,
        actions: Vec::new(),
        blocked: Vec::new(),
        shreds: governance
            .shreds
            .iter()
            .filter(|(_, after)| DateTime::parse_from_rfc3339(after).is_ok_and(|t| t <= now))
            .map(|(tenant, after)| Shred {
                tenant: tenant.clone(),
                destroy_after: after.clone(),
                held_by: governance.tenant_held(tenant).map(|h| h.id),
            })
            .collect(),
    };
    let mut block =
        |kind, partition: &PartitionRecord, files: &[&FileMeta], hold: &strata_store::Hold| {
            plan.blocked.push(Blocked {
                kind,
                partition: partition.clone(),
                bytes: files.iter().map(|f| f.size).sum(),
                hold: hold.id,
                hold_reason: hold.reason.clone(),
            })
        };
    let mut actions = Vec::new();
    // Partitions of streams under a size cap, by (tenant, family), oldest first.
    let mut capped: BTreeMap<(String, String), Vec<PartitionFiles>> = BTreeMap::new();
    for (partition, files) in &partitions {
        let key = partition.key();
        let held = governance.held(partition);
        if let Some(mark) = governance.marks.get(&key) {
            if let Some(hold) = held {
                let reason = format!("legal hold {} ({}) covers it", hold.id, hold.reason);
                actions.push(action(ActionKind::Unmark, partition, files, reason));
            } else if DateTime::parse_from_rfc3339(&mark.sweep_after).is_ok_and(|t| t <= now) {
                let reason = format!(
                    "expired under policy version {} on {}; grace period ended {}",
                    mark.policy_version, mark.marked_at, mark.sweep_after
                );
                actions.push(action(ActionKind::Sweep, partition, files, reason));
            }
            continue;
        }
        let Some((index, rule)) = policy.rule_for(&partition.tenant, &partition.family) else {
            continue;
        };
        let newest = newest_event(files);
        if let Some(expiry) = rule.expiry() {
            let due = expiry.reached_at(newest);
            if due <= now {
                if let Some(hold) = held {
                    block(ActionKind::Mark, partition, files, hold);
                } else if governance.cancelled.get(&key) != Some(&policy_version) {
                    let sweep_after = policy.grace().reached_at(now);
                    let mut mark = action(
                        ActionKind::Mark,
                        partition,
                        files,
                        format!(
                            "{}: expire after {expiry}; newest event {}, due {}",
                            rule_label(index, rule),
                            rfc3339(newest),
                            rfc3339(due)
                        ),
                    );
                    mark.sweep_after = Some(rfc3339(sweep_after));
                    actions.push(mark);
                }
                continue;
            }
        }
        if rule.max_bytes.is_some() {
            capped
                .entry((partition.tenant.clone(), partition.family.clone()))
                .or_default()
                .push((partition, files.clone()));
        }
        let encryption_due = rule
            .encrypt_after
            .is_some_and(|age| age.reached_at(newest) <= now);
        let plaintext: Vec<&FileMeta> = files
            .iter()
            .filter(|f| f.key_version.is_none())
            .copied()
            .collect();
        let mut tiering = false;
        if let Some(tier) = &rule.tier {
            let location = policy
                .cold_store(&tier.store)
                .expect("validated: tier_to names a cold store");
            let hot: Vec<&FileMeta> = files
                .iter()
                .filter(|f| f.location.as_deref() != Some(location))
                .copied()
                .collect();
            let due = tier.after.reached_at(newest);
            if due <= now && !hot.is_empty() {
                let mut tier_action = action(
                    ActionKind::Tier,
                    partition,
                    &hot,
                    format!(
                        "{}: tier after {} to {}; newest event {}, due {}",
                        rule_label(index, rule),
                        tier.after,
                        tier.store,
                        rfc3339(newest),
                        rfc3339(due)
                    ),
                );
                tier_action.to = Some(location.to_string());
                tier_action.encrypt = encryption_due;
                actions.push(tier_action);
                tiering = true;
            }
        }
        let hot_plaintext: Vec<&FileMeta> = plaintext
            .iter()
            .filter(|f| f.location.is_none())
            .copied()
            .collect();
        if encryption_due && !tiering && !hot_plaintext.is_empty() {
            let age = rule.encrypt_after.expect("encryption is due");
            actions.push(action(
                ActionKind::Encrypt,
                partition,
                &hot_plaintext,
                format!(
                    "{}: encrypt after {age}; newest event {}",
                    rule_label(index, rule),
                    rfc3339(newest)
                ),
            ));
        }
    }
    for ((tenant, family), streams) in capped {
        let (index, rule) = policy
            .rule_for(&tenant, &family)
            .expect("capped streams have a rule");
        let cap = rule.max_bytes.expect("capped streams have a cap");
        let mut total: u64 = streams.iter().flat_map(|(_, f)| f).map(|f| f.size).sum();
        // Oldest months first (partition order is by month within a stream).
        for (partition, files) in &streams {
            if total <= cap {
                break;
            }
            let bytes: u64 = files.iter().map(|f| f.size).sum();
            if let Some(hold) = governance.held(partition) {
                block(ActionKind::Mark, partition, files, hold);
                continue;
            }
            if governance.cancelled.get(&partition.key()) == Some(&policy_version) {
                continue;
            }
            let mut mark = action(
                ActionKind::Mark,
                partition,
                files,
                format!(
                    "{}: the stream holds {total} bytes, over its max_bytes {cap}; oldest first",
                    rule_label(index, rule)
                ),
            );
            mark.sweep_after = Some(rfc3339(policy.grace().reached_at(now)));
            actions
                .retain(|a: &Action| !(a.kind == ActionKind::Tier && a.partition == **partition));
            actions.push(mark);
            total -= bytes;
        }
    }
    actions.sort_by(|a, b| (a.kind, &a.partition).cmp(&(b.kind, &b.partition)));
    plan.actions = actions;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_store::Hold;

    fn file(tenant: &str, month: &str, size: u64) -> FileMeta {
        let newest: DateTime<Utc> = format!("{month}-15T00:00:00Z").parse().unwrap();
        FileMeta {
            path: format!("{tenant}/{month}.parquet"),
            tenant: tenant.into(),
            family: "technical".into(),
            month: month.into(),
            size,
            sha256: String::new(),
            rows: 1,
            min_ts: newest.timestamp_micros(),
            max_ts: newest.timestamp_micros(),
            location: None,
            key_version: None,
            shredded: Vec::new(),
        }
    }

    fn snapshot(files: &[FileMeta]) -> Snapshot {
        let mut snapshot = Snapshot::empty();
        for f in files {
            snapshot.files.insert(f.path.clone(), f.clone());
        }
        snapshot
    }

    fn months(plan: &Plan, kind: ActionKind) -> Vec<(String, String)> {
        plan.actions
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| (a.partition.tenant.clone(), a.partition.month.clone()))
            .collect()
    }

    #[test]
    fn a_size_cap_expires_the_oldest_partitions_of_each_stream_until_it_fits() {
        let policy = strata_policy::parse(
            "[[rule]]\ntenant = \"*\"\nfamily = \"technical\"\nmax_bytes = \"250B\"\n",
        )
        .unwrap();
        let files = [
            file("a", "2025-01", 100),
            file("a", "2025-02", 100),
            file("a", "2025-03", 100),
            file("a", "2025-04", 100),
            file("b", "2025-01", 100),
        ];
        let now = "2025-06-01T00:00:00Z".parse().unwrap();
        let mut snap = snapshot(&files);
        let plan = plan(&snap, &policy, 1, now);
        let a = |m: &str| ("a".to_string(), m.to_string());
        assert_eq!(
            months(&plan, ActionKind::Mark),
            [a("2025-01"), a("2025-02")]
        );

        snap.governance.holds.insert(
            1,
            Hold {
                id: 1,
                tenant: "a".into(),
                family: None,
                from: None,
                to: "2025-01-31".parse().ok(),
                reason: "case".into(),
                added_at: String::new(),
                added_by: String::new(),
            },
        );
        let held = super::plan(&snap, &policy, 1, now);
        assert_eq!(held.blocked.len(), 1, "the held January is not evicted");
        assert_eq!(
            months(&held, ActionKind::Mark),
            [a("2025-02"), a("2025-03")]
        );
    }
}
