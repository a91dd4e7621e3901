use super::*;

fn age(text: &str) -> Age {
    Age::parse(text).unwrap()
}

/// The message `parse` refuses `text` with.
fn refused(text: &str) -> String {
    parse(text).expect_err("should be refused").to_string()
}

/// A policy with one cold store and one `[[rule]]` (tenant "acme", family "*")
/// made of `keys`.
fn one_rule(keys: &str) -> String {
    format!(
        "[cold_stores]\ncold = \"/mnt/cold\"\n\n[[rule]]\ntenant = \"acme\"\nfamily = \"*\"\n{keys}\n"
    )
}

const RULE: &str = "rule 1 (tenant \"acme\", family \"*\"): ";

fn assert_refused(keys: &str, problem: &str) {
    let message = refused(&one_rule(keys));
    assert!(message.starts_with(RULE), "{keys}: {message}");
    assert!(message.contains(problem), "{keys}: {message}");
}

fn assert_accepted(keys: &str) -> Rule {
    let policy = parse(&one_rule(keys)).unwrap_or_else(|err| panic!("{keys}: {err}"));
    policy.rules()[0].clone()
}

#[test]
fn the_crate_docs_example_parses() {
    let docs: String = include_str!("lib.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(line)
                .replacen("##", "#", 1)
                + "\n"
        })
        .collect();
    let start = docs.find("parse(r#\"").unwrap() + "parse(r#\"".len();
    let end = start + docs[start..].find("\"#)").unwrap();
    let policy = parse(&docs[start..end]).unwrap();
    assert_eq!(policy.schedule().to_string(), "0 3 * * *");
    assert_eq!(policy.grace(), age("7d"));
    assert_eq!(
        policy.cold_stores().collect::<Vec<_>>(),
        [("cold", "s3://archive-cold/strata")]
    );
    let rules = policy.rules();
    assert_eq!(rules.len(), 3);
    assert_eq!(
        rules[0],
        Rule {
            tenant: Selector::Any,
            family: Selector::Any,
            presets: vec!["pci-dss-4".to_owned()],
            encrypt_after: Some(age("0d")),
            tier: Some(Tier {
                after: age("3mo"),
                store: "cold".to_owned(),
            }),
            expire_after: Some(age("12mo")),
            max_bytes: None,
        }
    );
    assert_eq!(rules[1].family, Selector::Exact("technical".to_owned()));
    assert_eq!(rules[1].max_bytes, Some(500_000_000_000));
    assert_eq!(rules[2].describe(), "tenant \"acme-health\", family \"*\"");
    assert_eq!(rules[2].expiry(), Some(age("6y")));
}

#[test]
fn defaults() {
    let policy = parse("").unwrap();
    assert_eq!(policy.schedule().to_string(), "0 3 * * *");
    assert_eq!(policy.grace(), age("7d"));
    assert_eq!(policy.cold_stores().count(), 0);
    assert_eq!(policy.cold_store("cold"), None);
    assert!(policy.rules().is_empty());
    assert_eq!(policy.rule_for("acme", "access"), None);
}

#[test]
fn top_level_settings() {
    let policy = parse(
        "schedule = \"*/30 * * * *\"\ngrace = \"2w\"\n[cold_stores]\nb = \"/b\"\na = \"s3://a\"\n",
    )
    .unwrap();
    assert_eq!(policy.schedule(), &Schedule::parse("*/30 * * * *").unwrap());
    assert_eq!(policy.grace(), age("2w"));
    assert_eq!(
        policy.cold_stores().collect::<Vec<_>>(),
        [("a", "s3://a"), ("b", "/b")]
    );
    assert_eq!(policy.cold_store("b"), Some("/b"));

    let message = refused("schedule = \"0 3 * *\"");
    assert!(
        message.contains("`schedule`: bad schedule \"0 3 * *\": 4 fields"),
        "{message}"
    );
    let message = refused("grace = \"1 week\"");
    assert!(message.contains("`grace`: bad age \"1 week\""), "{message}");
}

#[test]
fn unknown_keys_are_named() {
    for (text, key) in [
        ("retention = \"1y\"", "retention"),
        ("[[rules]]\ntenant = \"*\"\nfamily = \"*\"", "rules"),
        (&one_rule("expires_after = \"1y\""), "expires_after"),
    ] {
        let message = refused(text);
        assert!(
            message.contains(&format!("unknown field `{key}`")),
            "{message}"
        );
    }
}

#[test]
fn missing_selectors_are_refused() {
    let message = refused("[[rule]]\ntenant = \"*\"");
    assert!(message.contains("missing field `family`"), "{message}");
}

#[test]
fn refuses_unknown_presets() {
    assert_refused(
        "presets = [\"hipaa\", \"pci\"]",
        "unknown preset \"pci\": known presets are pci-dss-4, hipaa, sox-7y, sec-17a-4, ccpa-requests, gdpr, iso27001",
    );
}

#[test]
fn presets_without_a_period_need_expire_after() {
    assert_refused(
        "presets = [\"gdpr\"]",
        "gdpr has no default period: set expire_after",
    );
    assert_refused(
        "presets = [\"pci-dss-4\", \"iso27001\"]",
        "iso27001 has no default period: set expire_after",
    );
    let rule = assert_accepted("presets = [\"gdpr\"]\nexpire_after = \"3y\"");
    assert_eq!(rule.expiry(), Some(age("3y")));
}

#[test]
fn expire_after_must_cover_every_preset() {
    assert_refused(
        "presets = [\"pci-dss-4\"]\nexpire_after = \"6mo\"",
        "expire_after \"6mo\" may be shorter than the \"12mo\" that pci-dss-4 requires: set expire_after to at least \"12mo\"",
    );
    assert_refused(
        "presets = [\"gdpr\", \"hipaa\"]\nexpire_after = \"5y\"",
        "the \"6y\" that hipaa requires",
    );
    // 730 days may be shorter than 24 months (up to 744 days); 744 days is not.
    assert_refused(
        "presets = [\"ccpa-requests\"]\nexpire_after = \"730d\"",
        "the \"24mo\" that ccpa-requests requires",
    );
    assert_accepted("presets = [\"ccpa-requests\"]\nexpire_after = \"744d\"");
    assert_accepted("presets = [\"ccpa-requests\"]\nexpire_after = \"2y\"");
}

#[test]
fn effective_expiry() {
    let rule =
        assert_accepted("presets = [\"pci-dss-4\", \"sox-7y\", \"hipaa\", \"ccpa-requests\"]");
    assert_eq!(rule.expiry(), Some(age("7y")));
    let rule = assert_accepted("presets = [\"sox-7y\"]\nexpire_after = \"10y\"");
    assert_eq!(rule.expiry(), Some(age("10y")));
    let rule = assert_accepted("expire_after = \"30d\"");
    assert_eq!(rule.expiry(), Some(age("30d")));
    let rule = assert_accepted("encrypt_after = \"1d\"");
    assert_eq!(rule.expiry(), None);
}

#[test]
fn tier_after_must_leave_the_hot_window() {
    assert_refused(
        "presets = [\"pci-dss-4\"]\ntier_after = \"2mo\"\ntier_to = \"cold\"",
        "tier_after \"2mo\" may fall inside the first \"3mo\" that pci-dss-4 requires to stay immediately available: set tier_after to at least \"3mo\"",
    );
    assert_refused(
        "presets = [\"pci-dss-4\", \"sec-17a-4\"]\ntier_after = \"1y\"\ntier_to = \"cold\"",
        "the first \"2y\" that sec-17a-4 requires",
    );
    assert_refused(
        "presets = [\"pci-dss-4\"]\ntier_after = \"90d\"\ntier_to = \"cold\"",
        "the first \"3mo\"",
    );
    let rule =
        assert_accepted("presets = [\"pci-dss-4\"]\ntier_after = \"93d\"\ntier_to = \"cold\"");
    assert_eq!(
        rule.tier,
        Some(Tier {
            after: age("93d"),
            store: "cold".to_owned(),
        })
    );
}

#[test]
fn tier_needs_a_known_store() {
    assert_refused(
        "tier_after = \"1mo\"",
        "tier_after without tier_to: set tier_to to the name of a [cold_stores] entry",
    );
    assert_refused(
        "tier_to = \"cold\"",
        "tier_to without tier_after: set tier_after",
    );
    assert_refused(
        "tier_after = \"1mo\"\ntier_to = \"glacier\"",
        "tier_to \"glacier\" names no [cold_stores] entry: add it there (known: cold)",
    );
    let message = refused(
        "[[rule]]\ntenant = \"*\"\nfamily = \"*\"\ntier_after = \"1mo\"\ntier_to = \"cold\"",
    );
    assert!(message.contains("(known: none)"), "{message}");
}

#[test]
fn phases_come_in_order() {
    assert_refused(
        "encrypt_after = \"4mo\"\ntier_after = \"3mo\"\ntier_to = \"cold\"",
        "encrypt_after \"4mo\" may come after tier_after \"3mo\": encrypt no later than tier",
    );
    assert_refused(
        "encrypt_after = \"1mo\"\ntier_after = \"30d\"\ntier_to = \"cold\"",
        "encrypt_after \"1mo\" may come after tier_after \"30d\"",
    );
    assert_refused(
        "encrypt_after = \"29d\"\ntier_after = \"1mo\"\ntier_to = \"cold\"",
        "encrypt_after \"29d\" may come after tier_after \"1mo\"",
    );
    assert_refused(
        "tier_after = \"12mo\"\ntier_to = \"cold\"\nexpire_after = \"1y\"",
        "expire before tier: tier_after \"12mo\" is not certainly before expiry at \"1y\"",
    );
    assert_refused(
        "presets = [\"ccpa-requests\"]\ntier_after = \"30mo\"\ntier_to = \"cold\"",
        "expire before tier: tier_after \"30mo\" is not certainly before expiry at \"24mo\"",
    );
    assert_refused(
        "encrypt_after = \"1y\"\nexpire_after = \"12mo\"",
        "expire before encrypt: encrypt_after \"1y\" is not certainly before expiry at \"12mo\"",
    );
    assert_refused(
        "encrypt_after = \"28d\"\nexpire_after = \"1mo\"",
        "expire before encrypt",
    );
    assert_accepted("encrypt_after = \"27d\"\nexpire_after = \"1mo\"");
    // Encrypting and tiering at the same age is fine.
    let rule = assert_accepted(
        "encrypt_after = \"3mo\"\ntier_after = \"3mo\"\ntier_to = \"cold\"\nexpire_after = \"4mo\"",
    );
    assert_eq!(rule.encrypt_after, Some(age("3mo")));
}

#[test]
fn no_size_cap_on_regulated_data() {
    assert_refused(
        "presets = [\"pci-dss-4\", \"hipaa\"]\nmax_bytes = \"1TB\"",
        "max_bytes with presets (pci-dss-4, hipaa) would be size-based eviction of regulated data",
    );
    let rule = assert_accepted("max_bytes = \"2GiB\"");
    assert_eq!(rule.max_bytes, Some(2 << 30));
}

#[test]
fn bad_values_are_named() {
    for (keys, problem) in [
        ("expire_after = \"12m\"", "`expire_after`: bad age \"12m\""),
        (
            "encrypt_after = \"soon\"",
            "`encrypt_after`: bad age \"soon\"",
        ),
        (
            "tier_after = \"-1d\"\ntier_to = \"cold\"",
            "`tier_after`: bad age \"-1d\"",
        ),
        ("max_bytes = \"1.5GB\"", "`max_bytes`: bad size \"1.5GB\""),
    ] {
        assert_refused(keys, problem);
    }
    let message = refused("[[rule]]\ntenant = \"acme\"\nfamily = \"audit\"");
    assert_eq!(
        message,
        "rule 1 (tenant \"acme\", family \"audit\"): `family`: bad family \"audit\": use \"access\", \"data_usage\", \"technical\" or \"*\""
    );
}

#[test]
fn identical_selectors_are_refused() {
    let text = "[[rule]]\ntenant = \"*\"\nfamily = \"access\"\n\n[[rule]]\ntenant = \"acme-health\"\nfamily = \"*\"\npresets = [\"hipaa\"]\n\n[[rule]]\ntenant = \"*\"\nfamily = \"access\"\nexpire_after = \"1y\"\n";
    assert_eq!(
        refused(text),
        "rule 3 (tenant \"*\", family \"access\"): same tenant and family as rule 1: merge the two rules into one"
    );
}

#[test]
fn errors_name_the_rule_by_number() {
    let text = "[[rule]]\ntenant = \"*\"\nfamily = \"*\"\n\n[[rule]]\ntenant = \"acme-health\"\nfamily = \"*\"\npresets = [\"gdpr\"]\n";
    assert_eq!(
        refused(text),
        "rule 2 (tenant \"acme-health\", family \"*\"): gdpr has no default period: set expire_after"
    );
}

#[test]
fn the_most_specific_rule_applies() {
    let policy = parse(
        "[[rule]]\ntenant = \"*\"\nfamily = \"*\"\nexpire_after = \"1y\"\n\n\
         [[rule]]\ntenant = \"acme\"\nfamily = \"access\"\nexpire_after = \"4y\"\n\n\
         [[rule]]\ntenant = \"*\"\nfamily = \"access\"\nexpire_after = \"2y\"\n\n\
         [[rule]]\ntenant = \"acme\"\nfamily = \"*\"\nexpire_after = \"3y\"\n",
    )
    .unwrap();
    let chosen = |tenant, family| policy.rule_for(tenant, family).map(|(index, _)| index);
    assert_eq!(chosen("acme", "access"), Some(1));
    assert_eq!(chosen("acme", "technical"), Some(3));
    assert_eq!(chosen("globex", "access"), Some(2));
    assert_eq!(chosen("globex", "data_usage"), Some(0));
    let (_, rule) = policy.rule_for("acme", "data_usage").unwrap();
    assert_eq!(rule.expiry(), Some(age("3y")));

    // Without the exact pair, an exact tenant beats an exact family.
    let policy = parse(
        "[[rule]]\ntenant = \"*\"\nfamily = \"access\"\n\n[[rule]]\ntenant = \"acme\"\nfamily = \"*\"\n",
    )
    .unwrap();
    assert_eq!(
        policy.rule_for("acme", "access").map(|(index, _)| index),
        Some(1)
    );
    assert_eq!(
        policy.rule_for("globex", "access").map(|(index, _)| index),
        Some(0)
    );

    let policy = parse("[[rule]]\ntenant = \"acme\"\nfamily = \"access\"\n").unwrap();
    assert_eq!(
        policy.rule_for("acme", "access").map(|(index, _)| index),
        Some(0)
    );
    assert_eq!(policy.rule_for("acme", "technical"), None);
    assert_eq!(policy.rule_for("globex", "access"), None);
}

#[test]
fn selectors() {
    assert!(Selector::Any.matches("anything"));
    assert!(Selector::Exact("acme".to_owned()).matches("acme"));
    assert!(!Selector::Exact("acme".to_owned()).matches("acme-health"));
}
