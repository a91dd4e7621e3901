//! `strata users`: principals are added with a token shown once, listed
//! without it, recorded in `strata_audit` and revoked; bad names, roles and
//! tenants are refused with the rule.

mod common;

use common::*;

#[test]
fn principals_are_added_listed_audited_and_revoked_and_the_token_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let out = run_ok(strata(&archive).args([
        "users",
        "add",
        "vpn-gateway",
        "--role",
        "ingest",
        "--tenant",
        "acme-health",
        "--tenant",
        "globex-bank",
        "--reason",
        "VPN logs",
    ]));
    let token = out.lines().last().unwrap();
    assert!(token.starts_with("strata_") && token.len() > 40, "{out}");
    let again = run_expect(
        strata(&archive).args(["users", "add", "vpn-gateway", "--role", "admin"]),
        1,
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    // A client reads only its tenants, so it must be given some.
    let tenantless = run_expect(
        strata(&archive).args(["users", "add", "reader", "--role", "client"]),
        1,
    );
    let stderr = String::from_utf8_lossy(&tenantless.stderr);
    assert!(stderr.contains("--tenant"), "{stderr}");
    run_ok(strata(&archive).args(["users", "add", "ops", "--role", "admin"]));

    let list = run_ok(strata(&archive).args(["users", "list"]));
    assert!(
        list.contains("vpn-gateway  ingest  tenants acme-health,globex-bank"),
        "{list}"
    );
    assert!(list.contains("ops  admin  tenants *"), "{list}");
    assert!(!list.contains(token));

    let audit = query(
        &archive,
        "SELECT action, actor, reason, detail FROM strata_audit WHERE action LIKE 'principal%' ORDER BY seq",
    );
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["action"], "principal_added");
    assert_eq!(audit[0]["actor"], "test");
    assert_eq!(audit[0]["reason"], "VPN logs");
    let detail = audit[0]["detail"].as_str().unwrap();
    assert!(detail.contains("\"role\":\"ingest\""), "{detail}");
    let stored = files_under(&archive)
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .any(|bytes| String::from_utf8_lossy(&bytes).contains(token));
    assert!(!stored, "the token is nowhere in the archive");

    run_ok(strata(&archive).args([
        "users",
        "revoke",
        "vpn-gateway",
        "--reason",
        "decommissioned",
    ]));
    let list = run_ok(strata(&archive).args(["users", "list"]));
    assert!(!list.contains("vpn-gateway"), "{list}");
    let gone = run_expect(
        strata(&archive).args(["users", "revoke", "vpn-gateway", "--reason", "twice"]),
        1,
    );
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no active principal vpn-gateway"));
    assert_eq!(
        count(
            &archive,
            "SELECT count(*) AS n FROM strata_audit WHERE action = 'principal_revoked'"
        ),
        1
    );
    let report = run_ok(strata(&archive).args(["verify", "--deep"]));
    assert!(report.contains("result:     intact"), "{report}");
}

#[test]
fn bad_principal_names_roles_and_tenants_are_refused_with_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let cases: [(&[&str], &str); 3] = [
        (&["Ops", "--role", "admin"], "not a principal name"),
        (
            &["ops", "--role", "root"],
            "is not a role: use one of admin, ingest",
        ),
        (
            &["ops", "--role", "client", "--tenant", "Acme"],
            "not a tenant name",
        ),
    ];
    for (args, message) in cases {
        let out = strata(&archive)
            .args(["users", "add"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(message),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        !archive.exists(),
        "nothing is created for a refused request"
    );
    run_ok(strata(&archive).args(["users", "add", "ops", "--role", "admin"]));
    let list = run_ok(strata(&archive).args(["users", "list"]));
    assert!(list.contains("ops  admin"), "{list}");
}
