//! Acceptance 6: `strata --help` and each subcommand's help explain the
//! options with examples.

mod common;

use std::process::Command;

use common::run_ok;

fn help(args: &[&str]) -> String {
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .arg("--help"),
    )
}

#[test]
fn top_level_help_lists_commands_and_examples() {
    let text = help(&[]);
    for word in [
        "ingest",
        "sql",
        "gen",
        "demo",
        "compact",
        "status",
        "verify",
        "verify-export",
        "keys",
        "retention",
        "hold",
        "users",
        "--archive",
        "--keyring",
        "--witness",
        "STRATA_ARCHIVE",
        "Examples:",
    ] {
        assert!(text.contains(word), "strata --help lacks {word}:\n{text}");
    }
}

#[test]
fn subcommand_help_explains_options_with_examples() {
    let cases: &[(&str, &[&str])] = &[
        (
            "ingest",
            &[
                "--rejects",
                "--chunk-mib",
                "--no-compact",
                "Examples:",
                "exit status is 3",
            ],
        ),
        (
            "sql",
            &[
                "--format",
                "--output",
                "--stats",
                "Examples:",
                "attrs['key']",
                "interactive",
                "--export",
            ],
        ),
        (
            "verify",
            &[
                "--deep",
                "--trusted",
                "--key",
                "--json",
                "CHAIN_BROKEN",
                "ROLLED_BACK",
                "Examples:",
            ],
        ),
        ("verify-export", &["--key", "Example:"]),
        ("keys", &["show", "rotate", "shred"]),
        (
            "keys shred",
            &["--tenant", "--reason", "legal hold", "grace", "Example:"],
        ),
        ("retention", &["policy", "plan", "run", "daemon", "cancel"]),
        (
            "retention policy set",
            &["presets", "tier_after", "Example"],
        ),
        (
            "retention plan",
            &["--now", "--format", "grace period", "Examples:"],
        ),
        ("retention run", &["--now", "strata_audit", "Examples:"]),
        (
            "retention cancel",
            &["--tenant", "--month", "--reason", "Example:"],
        ),
        ("hold", &["add", "list", "release"]),
        ("users", &["add", "list", "revoke"]),
        (
            "users add",
            &[
                "--role",
                "--tenant",
                "--reason",
                "admin",
                "ingest",
                "Examples:",
            ],
        ),
        (
            "hold add",
            &[
                "--tenant",
                "--family",
                "--from",
                "--to",
                "--reason",
                "Examples:",
            ],
        ),
        (
            "gen",
            &[
                "--events",
                "--tenants",
                "--seed",
                "--ts-format",
                "Examples:",
            ],
        ),
        ("demo", &["--events", "Examples:"]),
        ("compact", &["--target-mib", "Examples:"]),
        ("status", &["catalog", "Example:"]),
    ];
    for (command, words) in cases {
        let text = help(&command.split(' ').collect::<Vec<_>>());
        for word in *words {
            assert!(
                text.contains(word),
                "strata {command} --help lacks {word}:\n{text}"
            );
        }
    }
}

#[test]
fn tenant_family_and_month_arguments_that_could_match_nothing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let cases: &[(&[&str], &str)] = &[
        (
            &["hold", "add", "--tenant", "Globex-Bank", "--reason", "x"],
            "`Globex-Bank` is not a tenant name",
        ),
        (
            &[
                "hold", "add", "--tenant", "globex", "--family", "Access", "--reason", "x",
            ],
            "`Access` is not a family",
        ),
        (
            &["keys", "rotate", "--tenant", "acme/../x"],
            "`acme/../x` is not a tenant name",
        ),
        (
            &["keys", "shred", "--tenant", "", "--reason", "x"],
            "`` is not a tenant name",
        ),
        (
            &[
                "retention",
                "cancel",
                "--tenant",
                "acme",
                "--month",
                "2025-13",
                "--reason",
                "x",
            ],
            "`2025-13` is not a month",
        ),
        (
            &["retention", "cancel", "--tenant=-acme", "--reason", "x"],
            "`-acme` is not a tenant name",
        ),
    ];
    for (args, message) in cases {
        let out = common::run_expect(common::strata(&archive).args(*args), 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(!archive.exists(), "nothing was written");
}
