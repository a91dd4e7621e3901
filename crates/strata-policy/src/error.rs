//! Errors: what is wrong with a policy file, and how to fix it.

use crate::Age;

/// Why a policy file, or a value in it, was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not valid TOML, or not shaped like a policy file (unknown key, missing
    /// key, wrong type). The message names the key and its position.
    #[error("policy file: {0}")]
    Toml(#[from] toml::de::Error),
    /// An age that is not `<n>d`, `<n>w`, `<n>mo` or `<n>y`.
    #[error(
        "bad age {text:?}: write a whole number followed by d (days), w (weeks), mo (calendar months) or y (calendar years), e.g. \"7d\" or \"12mo\""
    )]
    Age {
        /// The offending text.
        text: String,
    },
    /// A size that is not an integer with an optional unit.
    #[error(
        "bad size {text:?}: write a whole number of bytes with an optional unit B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. \"500GB\""
    )]
    Size {
        /// The offending text.
        text: String,
    },
    /// A family that is none of the known ones.
    #[error("bad family {text:?}: use \"access\", \"data_usage\", \"technical\" or \"*\"")]
    Family {
        /// The offending text.
        text: String,
    },
    /// A cron expression that cannot be parsed, or can never fire.
    #[error(
        "bad schedule {text:?}: {reason} (expected 5 fields, minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\")"
    )]
    Schedule {
        /// The offending text.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A top-level setting (`schedule`, `grace`) has a bad value.
    #[error("`{key}`: {source}")]
    Setting {
        /// The key.
        key: &'static str,
        /// What is wrong with its value.
        source: Box<PolicyError>,
    },
    /// A `[[rule]]` was refused.
    #[error("rule {number} ({rule}): {problem}")]
    Rule {
        /// The rule's position in the file, counting from 1.
        number: usize,
        /// The rule's selectors, as [`Rule::describe`](crate::Rule::describe) prints them.
        rule: String,
        /// What is wrong with it.
        problem: RuleProblem,
    },
}

/// What is wrong with one `[[rule]]`; carried by [`PolicyError::Rule`].
#[derive(Debug, thiserror::Error)]
pub enum RuleProblem {
    /// A key has a bad value.
    #[error("`{key}`: {source}")]
    Value {
        /// The key.
        key: &'static str,
        /// What is wrong with its value.
        source: Box<PolicyError>,
    },
    /// `presets` names a preset that does not exist.
    #[error("unknown preset {name:?}: known presets are {known}")]
    UnknownPreset {
        /// The unknown name.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A preset without a retention period, and no `expire_after`.
    #[error("{preset} has no default period: set expire_after")]
    NoDefaultPeriod {
        /// The preset.
        preset: String,
    },
    /// `expire_after` is (or may be) shorter than a preset's retention.
    #[error(
        "expire_after \"{expire_after}\" may be shorter than the \"{minimum}\" that {preset} requires: set expire_after to at least \"{minimum}\""
    )]
    ExpiryTooShort {
        /// The rule's `expire_after`.
        expire_after: Age,
        /// The preset.
        preset: String,
        /// The preset's retention.
        minimum: Age,
    },
    /// `tier_after` is (or may be) inside a preset's immediately-available window.
    #[error(
        "tier_after \"{tier_after}\" may fall inside the first \"{hot}\" that {preset} requires to stay immediately available: set tier_after to at least \"{hot}\""
    )]
    TierTooEarly {
        /// The rule's `tier_after`.
        tier_after: Age,
        /// The preset.
        preset: String,
        /// The preset's hot window.
        hot: Age,
    },
    /// `tier_after` without `tier_to`.
    #[error("tier_after without tier_to: set tier_to to the name of a [cold_stores] entry")]
    TierWithoutStore,
    /// `tier_to` without `tier_after`.
    #[error("tier_to without tier_after: set tier_after, the age at which to move partitions")]
    StoreWithoutTier,
    /// `tier_to` names no `[cold_stores]` entry.
    #[error("tier_to {name:?} names no [cold_stores] entry: add it there (known: {known})")]
    UnknownStore {
        /// The name in `tier_to`.
        name: String,
        /// The known cold store names, comma-separated (or "none").
        known: String,
    },
    /// `encrypt_after` is (or may be) later than `tier_after`.
    #[error(
        "encrypt_after \"{encrypt_after}\" may come after tier_after \"{tier_after}\": encrypt no later than tier"
    )]
    EncryptAfterTier {
        /// The rule's `encrypt_after`.
        encrypt_after: Age,
        /// The rule's `tier_after`.
        tier_after: Age,
    },
    /// The tier phase is (or may be) at or after expiry.
    #[error(
        "expire before tier: tier_after \"{tier_after}\" is not certainly before expiry at \"{expiry}\": lower tier_after or drop tiering"
    )]
    TierNotBeforeExpiry {
        /// The rule's `tier_after`.
        tier_after: Age,
        /// The rule's effective expiry.
        expiry: Age,
    },
    /// The encrypt phase is (or may be) at or after expiry.
    #[error(
        "expire before encrypt: encrypt_after \"{encrypt_after}\" is not certainly before expiry at \"{expiry}\": lower encrypt_after or drop it"
    )]
    EncryptNotBeforeExpiry {
        /// The rule's `encrypt_after`.
        encrypt_after: Age,
        /// The rule's effective expiry.
        expiry: Age,
    },
    /// `max_bytes` on a rule with presets.
    #[error(
        "max_bytes with presets ({presets}) would be size-based eviction of regulated data: remove max_bytes, or move it to a rule without presets"
    )]
    SizeCapOnRegulated {
        /// The rule's presets, comma-separated.
        presets: String,
    },
    /// Another rule has the same tenant and family.
    #[error("same tenant and family as rule {first}: merge the two rules into one")]
    Duplicate {
        /// The number of the earlier rule, counting from 1.
        first: usize,
    },
}
