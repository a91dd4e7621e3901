//! Retention policies: parse and validate the policy file, and answer "what
//! should happen to this partition, and when".
//!
//! The crate is pure: it reads nothing but the bundled presets
//! (`schemas/retention-presets.toml`, compiled in), and it computes instants
//! from the times it is given.
//!
//! # The policy file
//!
//! A TOML file; every key is optional except each rule's `tenant` and
//! `family`, and an unknown key anywhere is an error naming it.
//!
//! ```
//! let policy = strata_policy::parse(r#"
//! ## cron schedule (UTC, 5 fields: min hour day-of-month month day-of-week)
//! ## for `strata retention daemon`
//! schedule = "0 3 * * *"          # default "0 3 * * *"
//! grace = "7d"                    # delay between marking a partition expired and deleting it; default 7d
//!
//! [cold_stores]                   # named cold stores for the tier phase
//! cold = "s3://archive-cold/strata"   # a location (local folder path or s3:// URL), kept verbatim
//!
//! [[rule]]
//! tenant = "*"                    # exact tenant id or "*"
//! family = "*"                    # "access" | "data_usage" | "technical" | "*"
//! presets = ["pci-dss-4"]         # names from schemas/retention-presets.toml
//! encrypt_after = "0d"            # age at which partitions are encrypted
//! tier_after = "3mo"              # age at which partitions move to tier_to; requires tier_to
//! tier_to = "cold"                # name of a [cold_stores] entry; requires tier_after
//! expire_after = "12mo"           # age at which partitions expire
//!
//! [[rule]]
//! tenant = "*"
//! family = "technical"
//! expire_after = "90d"
//! max_bytes = "500GB"             # size cap: evict the oldest partitions beyond it; refused with presets
//!
//! [[rule]]
//! tenant = "acme-health"
//! family = "*"
//! presets = ["hipaa"]             # expires at 6y, the preset's retention
//! "#)?;
//!
//! assert_eq!(policy.schedule().to_string(), "0 3 * * *");
//! assert_eq!(policy.cold_store("cold"), Some("s3://archive-cold/strata"));
//! let (index, rule) = policy.rule_for("acme-health", "access").unwrap();
//! assert_eq!(index, 2);
//! assert_eq!(rule.expiry().unwrap().to_string(), "6y");
//! let (_, rule) = policy.rule_for("globex", "technical").unwrap();
//! assert_eq!(rule.max_bytes, Some(500_000_000_000));
//! # Ok::<(), strata_policy::PolicyError>(())
//! ```
//!
//! Ages are `<n>d` (days), `<n>w` (weeks), `<n>mo` (calendar months) or
//! `<n>y` (calendar years), `n` a non-negative integer (`0d` is allowed), all
//! counted from a partition's newest event ([`Age::reached_at`]). Sizes are a
//! string: an integer with an optional unit B, kB/KB, MB, GB, TB (powers of
//! 1000) or KiB, MiB, GiB, TiB (powers of 1024).
//!
//! # Validation
//!
//! [`parse`] refuses, naming the rule (`rule 2 (tenant "acme-health", family
//! "*")`, counting from 1) and saying how to fix it:
//! an unknown preset; a preset without a period (gdpr, iso27001) and no
//! `expire_after`; an `expire_after` shorter than a preset's retention; a
//! `tier_after` inside a preset's `hot` window; `encrypt_after` later than
//! `tier_after`; tiering or encryption not strictly before expiry;
//! `tier_after` without `tier_to` or the reverse, or a `tier_to` naming no
//! cold store; `max_bytes` on a rule with presets (size-based eviction of
//! regulated data); two rules with the same tenant and family; and bad
//! families, ages, sizes and schedules.
//!
//! ## Comparing ages
//!
//! Whether one age is shorter than another must hold for every start date.
//! Ages of the same kind compare exactly: days and weeks as days, months and
//! years as calendar months (`1y` = `12mo`). Across kinds a month counts as
//! 28 to 31 days and a year as 365 to 366, and only a certain answer counts:
//! `A` is at least `B` when A's fewest days reach B's most, and `A` is before
//! `B` when A's most days fall short of B's fewest. Anything in between is
//! treated the conservative way: `expire_after = "30d"` does not satisfy a
//! minimum of `1mo` (January has 31 days), `31d` does.
//!
//! # Which rule applies
//!
//! For a partition of a (tenant, family), the matching rule with the most
//! specific selectors applies, in this order: exact tenant and exact family,
//! exact tenant and family `*`, tenant `*` and exact family, then `*` and `*`.
//! No match means nothing happens: the partition is kept forever
//! ([`Policy::rule_for`]).
//!
//! A rule's expiry is its `expire_after`, else the longest retention of its
//! presets, else none ([`Rule::expiry`]). Its tier age is `tier_after`, which
//! validation guarantees is at least every preset's hot window ([`Tier`]).

#![warn(missing_docs)]

mod age;
mod error;
mod preset;
mod schedule;
mod size;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

pub use age::Age;
pub use error::{PolicyError, RuleProblem};
pub use preset::{Preset, presets};
pub use schedule::Schedule;

const DEFAULT_SCHEDULE: &str = "0 3 * * *";
const DEFAULT_GRACE: &str = "7d";
const FAMILIES: [&str; 3] = ["access", "data_usage", "technical"];

/// Parses and validates a policy file (see the crate docs for the format).
pub fn parse(text: &str) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = toml::from_str(text)?;
    let setting = |key| {
        move |source| PolicyError::Setting {
            key,
            source: Box::new(source),
        }
    };
    let schedule = Schedule::parse(raw.schedule.as_deref().unwrap_or(DEFAULT_SCHEDULE))
        .map_err(setting("schedule"))?;
    let grace =
        Age::parse(raw.grace.as_deref().unwrap_or(DEFAULT_GRACE)).map_err(setting("grace"))?;
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
    for (index, raw_rule) in raw.rule.into_iter().enumerate() {
        let refused = |problem| PolicyError::Rule {
            number: index + 1,
            rule: describe(&raw_rule.tenant, &raw_rule.family),
            problem,
        };
        let rule = raw_rule.to_rule().map_err(refused)?;
        rule.check(&raw.cold_stores).map_err(refused)?;
        if let Some(first) = rules
            .iter()
            .position(|other| other.tenant == rule.tenant && other.family == rule.family)
        {
            return Err(refused(RuleProblem::Duplicate { first: first + 1 }));
        }
        rules.push(rule);
    }
    Ok(Policy {
        schedule,
        grace,
        cold_stores: raw.cold_stores,
        rules,
    })
}

/// A validated retention policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    schedule: Schedule,
    grace: Age,
    cold_stores: BTreeMap<String, String>,
    rules: Vec<Rule>,
}

impl Policy {
    /// When `strata retention daemon` runs.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The delay between marking a partition expired and deleting it.
    pub fn grace(&self) -> Age {
        self.grace
    }

    /// The location of the cold store called `name`, verbatim.
    pub fn cold_store(&self, name: &str) -> Option<&str> {
        self.cold_stores.get(name).map(String::as_str)
    }

    /// Every cold store as (name, location), by name.
    pub fn cold_stores(&self) -> impl Iterator<Item = (&str, &str)> {
        self.cold_stores
            .iter()
            .map(|(name, location)| (name.as_str(), location.as_str()))
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule that applies to partitions of `tenant` and `family`, with its
    /// index in [`rules`](Policy::rules): the most specific match (see the
    /// crate docs), or `None` if no rule matches (keep forever).
    pub fn rule_for(&self, tenant: &str, family: &str) -> Option<(usize, &Rule)> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.tenant.matches(tenant) && rule.family.matches(family))
            .max_by_key(|(_, rule)| (rule.tenant != Selector::Any, rule.family != Selector::Any))
    }
}

/// One `[[rule]]`: what happens to the partitions it selects, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The tenants it applies to.
    pub tenant: Selector,
    /// The event families it applies to.
    pub family: Selector,
    /// Names of bundled [`Preset`]s.
    pub presets: Vec<String>,
    /// The age at which partitions are encrypted.
    pub encrypt_after: Option<Age>,
    /// When and where partitions move to a cold store.
    pub tier: Option<Tier>,
    /// The age at which partitions expire, as written; see [`Rule::expiry`].
    pub expire_after: Option<Age>,
    /// Size cap in bytes: the oldest partitions beyond it are evicted.
    pub max_bytes: Option<u64>,
}

impl Rule {
    /// The effective expiry age: `expire_after` if given, else the longest
    /// retention of the presets, else `None` (never expires by age).
    pub fn expiry(&self) -> Option<Age> {
        self.expire_after.or_else(|| {
            self.bundled_presets()
                .filter_map(|preset| preset.retention)
                .reduce(|longest, age| if longest.at_least(age) { longest } else { age })
        })
    }

    /// The rule's selectors, e.g. `tenant "acme-health", family "*"`.
    pub fn describe(&self) -> String {
        describe(&self.tenant, &self.family)
    }

    fn bundled_presets(&self) -> impl Iterator<Item = &'static Preset> {
        self.presets.iter().filter_map(|name| preset::preset(name))
    }

    /// The checks that need more than one key, or the presets.
    fn check(&self, cold_stores: &BTreeMap<String, String>) -> Result<(), RuleProblem> {
        if let Some(name) = self
            .presets
            .iter()
            .find(|name| preset::preset(name).is_none())
        {
            return Err(RuleProblem::UnknownPreset {
                name: name.clone(),
                known: presets()
                    .iter()
                    .map(|preset| preset.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        for preset in self.bundled_presets() {
            match (self.expire_after, preset.retention) {
                (None, None) => {
                    return Err(RuleProblem::NoDefaultPeriod {
                        preset: preset.name.clone(),
                    });
                }
                (Some(expire_after), Some(minimum)) if !expire_after.at_least(minimum) => {
                    return Err(RuleProblem::ExpiryTooShort {
                        expire_after,
                        preset: preset.name.clone(),
                        minimum,
                    });
                }
                _ => {}
            }
        }
        if self.max_bytes.is_some() && !self.presets.is_empty() {
            return Err(RuleProblem::SizeCapOnRegulated {
                presets: self.presets.join(", "),
            });
        }
        if let Some(tier) = &self.tier {
            tier.check(self, cold_stores)?;
        }
        if let (Some(encrypt_after), Some(expiry)) = (self.encrypt_after, self.expiry())
            && !encrypt_after.before(expiry)
        {
            return Err(RuleProblem::EncryptNotBeforeExpiry {
                encrypt_after,
                expiry,
            });
        }
        Ok(())
    }
}

/// The tier phase of a rule: move partitions to a cold store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    /// The age at which partitions move. Validation refuses a `tier_after`
    /// shorter than any of the rule's presets' hot windows, so this is the
    /// effective earliest tier age.
    pub after: Age,
    /// The name of a `[cold_stores]` entry ([`Policy::cold_store`]).
    pub store: String,
}

impl Tier {
    fn check(
        &self,
        rule: &Rule,
        cold_stores: &BTreeMap<String, String>,
    ) -> Result<(), RuleProblem> {
        if !cold_stores.contains_key(&self.store) {
            let known = cold_stores
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(RuleProblem::UnknownStore {
                name: self.store.clone(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known
                },
            });
        }
        for preset in rule.bundled_presets() {
            if let Some(hot) = preset.hot
                && !self.after.at_least(hot)
            {
                return Err(RuleProblem::TierTooEarly {
                    tier_after: self.after,
                    preset: preset.name.clone(),
                    hot,
                });
            }
        }
        if let Some(encrypt_after) = rule.encrypt_after
            && !self.after.at_least(encrypt_after)
        {
            return Err(RuleProblem::EncryptAfterTier {
                encrypt_after,
                tier_after: self.after,
            });
        }
        if let Some(expiry) = rule.expiry()
            && !self.after.before(expiry)
        {
            return Err(RuleProblem::TierNotBeforeExpiry {
                tier_after: self.after,
                expiry,
            });
        }
        Ok(())
    }
}

/// Which tenants or families a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// `"*"`: all of them.
    Any,
    /// Exactly this one.
    Exact(String),
}

impl Selector {
    /// Whether `value` is selected.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Selector::Any => true,
            Selector::Exact(exact) => exact == value,
        }
    }

    fn from_text(text: &str) -> Selector {
        match text {
            "*" => Selector::Any,
            exact => Selector::Exact(exact.to_owned()),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Any => f.write_str("*"),
            Selector::Exact(exact) => f.write_str(exact),
        }
    }
}

fn describe(tenant: &dyn fmt::Display, family: &dyn fmt::Display) -> String {
    format!("tenant \"{tenant}\", family \"{family}\"")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    schedule: Option<String>,
    grace: Option<String>,
    #[serde(default)]
    cold_stores: BTreeMap<String, String>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    tenant: String,
    family: String,
    #[serde(default)]
    presets: Vec<String>,
    encrypt_after: Option<String>,
    tier_after: Option<String>,
    tier_to: Option<String>,
    expire_after: Option<String>,
    max_bytes: Option<String>,
}

impl RawRule {
    /// Parses the values and pairs `tier_after` with `tier_to`.
    fn to_rule(&self) -> Result<Rule, RuleProblem> {
        let family = Selector::from_text(&self.family);
        if let Selector::Exact(text) = &family
            && !FAMILIES.contains(&text.as_str())
        {
            return Err(invalid("family")(PolicyError::Family {
                text: text.clone(),
            }));
        }
        let age = |key, text: &Option<String>| {
            text.as_deref()
                .map(Age::parse)
                .transpose()
                .map_err(invalid(key))
        };
        let tier = match (age("tier_after", &self.tier_after)?, &self.tier_to) {
            (Some(after), Some(store)) => Some(Tier {
                after,
                store: store.clone(),
            }),
            (Some(_), None) => return Err(RuleProblem::TierWithoutStore),
            (None, Some(_)) => return Err(RuleProblem::StoreWithoutTier),
            (None, None) => None,
        };
        Ok(Rule {
            tenant: Selector::from_text(&self.tenant),
            family,
            presets: self.presets.clone(),
            encrypt_after: age("encrypt_after", &self.encrypt_after)?,
            tier,
            expire_after: age("expire_after", &self.expire_after)?,
            max_bytes: self
                .max_bytes
                .as_deref()
                .map(size::parse_size)
                .transpose()
                .map_err(invalid("max_bytes"))?,
        })
    }
}

/// Wraps a bad value of `key` as a rule problem.
fn invalid(key: &'static str) -> impl Fn(PolicyError) -> RuleProblem {
    move |source| RuleProblem::Value {
        key,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests;
