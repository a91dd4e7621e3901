//! Who may use a Strata server. A *principal* has a name, a [`Role`] and
//! optionally the tenants it is restricted to; it proves who it is with a
//! random token, shown once when the principal is added. Principals live in
//! the catalog as governance changes, like policies and holds: hash-chained,
//! signed, and listed in `strata_audit` (who granted what to whom, when and
//! why). Only the SHA-256 of a token is stored: tokens are 256 random bits,
//! so a fast hash is as safe as a slow one and keeps checking cheap.

pub mod scram;

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use strata_store::{
    Archive, CatalogError, Change, Draft, Governance, Principal, valid_principal_name,
};

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything: send events, query, manage.
    Admin,
    /// Only send events.
    Ingest,
    /// Reads the whole archive and its audit trail.
    Auditor,
    /// Queries every tenant's events with personal fields pseudonymised.
    Analyst,
    /// A BPO client reading its own tenants' data only.
    Client,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Ingest,
        Role::Auditor,
        Role::Analyst,
        Role::Client,
    ];

    /// Its name, as stored and typed.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ingest => "ingest",
            Role::Auditor => "auditor",
            Role::Analyst => "analyst",
            Role::Client => "client",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether it may send events.
    pub fn may_ingest(self) -> bool {
        matches!(self, Role::Admin | Role::Ingest)
    }

    /// Whether it may run SQL (each role sees what `Shared::scope_of` in
    /// the server says).
    pub fn may_query(self) -> bool {
        self != Role::Ingest
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors managing principals.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Refused(String),
    /// The catalog could not be read or committed to.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// The prefix of every token, so that a leaked one is recognisable (secret
/// scanners match on such prefixes).
pub const TOKEN_PREFIX: &str = "strata_";

/// A new random token: the prefix and 256 random bits, base64url.
fn new_token() -> Result<String, AccessError> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| AccessError::Refused("no system randomness for a token".into()))?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The SHA-256 of `token`, hex: what the catalog keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What [`add_principal`] is asked to add.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The tenants it is restricted to; empty for every tenant.
    pub tenants: Vec<String>,
    /// Why (recorded).
    pub reason: String,
}

/// Adds a principal as `actor` and returns its token, which is stored
/// nowhere: whoever receives it must keep it.
pub async fn add_principal(
    archive: &Archive,
    new: NewPrincipal,
    actor: &str,
) -> Result<String, AccessError> {
    if !valid_principal_name(&new.name) {
        return Err(AccessError::Refused(format!(
            "`{}` is not a principal name: names are 1 to 64 characters of a-z, 0-9, `.`, `_` \
             and `-`, starting with a letter or digit",
            new.name
        )));
    }
    if let Some(bad) = new.tenants.iter().find(|t| !strata_schema::valid_tenant(t)) {
        return Err(AccessError::Refused(format!(
            "`{bad}` is not a tenant name"
        )));
    }
    if new
        .tenants
        .iter()
        .any(|t| t == strata_schema::SYSTEM_TENANT)
    {
        return Err(AccessError::Refused(format!(
            "`{}` is reserved for the server's records of queries that read no tenant; \
             auditors and admins read it, no principal is given it",
            strata_schema::SYSTEM_TENANT
        )));
    }
    if new.role == Role::Client && new.tenants.is_empty() {
        return Err(AccessError::Refused(format!(
            "a `client` reads only its own tenants' data: name them with --tenant (principal `{}`)",
            new.name
        )));
    }
    let mut snapshot = archive.catalog.load().await?;
    if snapshot.governance.principals.contains_key(&new.name) {
        return Err(AccessError::Refused(format!(
            "principal {} already exists: revoke it first (`strata users revoke {} --reason ...`) \
             to give the name a new token",
            new.name, new.name
        )));
    }
    let token = new_token()?;
    let mut tenants = new.tenants;
    tenants.sort();
    tenants.dedup();
    let principal = Principal {
        name: new.name.clone(),
        role: new.role.as_str().to_string(),
        tenants,
        token_sha256: token_hash(&token),
        scram_sha256: Some(scram::Verifier::new(&token).encode()),
        added_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        added_by: actor.to_string(),
        reason: new.reason.clone(),
    };
    let change = Change::PrincipalAdded { principal };
    let draft = Draft::change("principal-add", actor, &new.reason, change);
    archive.catalog.commit(&mut snapshot, draft).await?;
    Ok(token)
}

/// Revokes the principal `name` as `actor`: its token opens nothing from
/// the next catalog refresh on.
pub async fn revoke_principal(
    archive: &Archive,
    name: &str,
    reason: &str,
    actor: &str,
) -> Result<Principal, AccessError> {
    let mut snapshot = archive.catalog.load().await?;
    let Some(principal) = snapshot.governance.principals.get(name).cloned() else {
        return Err(AccessError::Refused(format!(
            "there is no active principal {name} (see `strata users list`)"
        )));
    };
    let change = Change::PrincipalRevoked {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let draft = Draft::change("principal-revoke", actor, reason, change);
    archive.catalog.commit(&mut snapshot, draft).await?;
    Ok(principal)
}

/// A principal whose token was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Its name: the actor of what it commits.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The tenants it is restricted to; empty for every tenant.
    pub tenants: Vec<String>,
}

impl Authenticated {
    /// Whether it may read or write `tenant`'s events.
    pub fn covers(&self, tenant: &str) -> bool {
        self.tenants.is_empty() || self.tenants.iter().any(|t| t == tenant)
    }
}

/// The active principal whose token is `token`, if any. A principal with a
/// role this version does not know authenticates as nobody.
pub fn authenticate(governance: &Governance, token: &str) -> Option<Authenticated> {
    let hash = token_hash(token);
    let principal = (governance.principals.values()).find(|p| p.token_sha256 == hash)?;
    Some(Authenticated {
        name: principal.name.clone(),
        role: Role::parse(&principal.role)?,
        tenants: principal.tenants.clone(),
    })
}

/// The active principal named `name`, if `token` is its token (a
/// PostgreSQL login: name and password).
pub fn authenticate_named(
    governance: &Governance,
    name: &str,
    token: &str,
) -> Option<Authenticated> {
    authenticate(governance, token).filter(|principal| principal.name == name)
}

/// The SCRAM verifier of the active principal named `name`, with the
/// principal it logs in as.
pub fn scram_login(
    governance: &Governance,
    name: &str,
) -> Option<(scram::Verifier, Authenticated)> {
    let principal = governance.principals.get(name)?;
    let verifier = scram::Verifier::decode(principal.scram_sha256.as_deref()?)?;
    let authenticated = Authenticated {
        name: principal.name.clone(),
        role: Role::parse(&principal.role)?,
        tenants: principal.tenants.clone(),
    };
    Some((verifier, authenticated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use strata_store::Catalog;

    fn archive() -> Archive {
        Archive::new(Arc::new(object_store::memory::InMemory::new()), "memory")
    }

    fn new(name: &str, role: Role, tenants: &[&str]) -> NewPrincipal {
        NewPrincipal {
            name: name.into(),
            role,
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            reason: "onboarding".into(),
        }
    }

    async fn governance(catalog: &Catalog) -> Governance {
        catalog.load().await.unwrap().governance
    }

    #[tokio::test]
    async fn a_token_opens_only_its_principal_until_revoked() {
        let archive = archive();
        let shipper = new("vpn-gw", Role::Ingest, &["acme-health", "acme-health"]);
        let token = add_principal(&archive, shipper, "root").await.unwrap();
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() >= TOKEN_PREFIX.len() + 43);
        let other = add_principal(&archive, new("ops", Role::Admin, &[]), "root")
            .await
            .unwrap();
        assert_ne!(token, other);

        let state = governance(&archive.catalog).await;
        let who = authenticate(&state, &token).unwrap();
        assert_eq!(who.name, "vpn-gw");
        assert_eq!((who.role, who.role.may_ingest()), (Role::Ingest, true));
        assert_eq!(who.tenants, ["acme-health"], "tenants deduplicated");
        assert!(who.covers("acme-health") && !who.covers("globex-bank"));
        assert!(authenticate(&state, &other).unwrap().covers("globex-bank"));
        assert_eq!(authenticate(&state, "strata_wrong"), None);
        let stored = &state.principals["vpn-gw"];
        assert_eq!(stored.token_sha256, token_hash(&token));
        assert!(
            !format!("{stored:?}").contains(&token),
            "the token is not stored"
        );

        revoke_principal(&archive, "vpn-gw", "gateway retired", "root")
            .await
            .unwrap();
        let state = governance(&archive.catalog).await;
        assert_eq!(authenticate(&state, &token), None);
        assert!(authenticate(&state, &other).is_some());
    }

    #[tokio::test]
    async fn bad_names_duplicates_and_unknown_principals_are_refused() {
        let archive = archive();
        for name in ["", "Ops", "-ops", "a b", &"x".repeat(65)] {
            let err = add_principal(&archive, new(name, Role::Admin, &[]), "root")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("not a principal name"), "{err}");
        }
        let err = add_principal(&archive, new("ops", Role::Client, &["Acme"]), "root")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a tenant name"), "{err}");
        let err = add_principal(&archive, new("acme-reader", Role::Client, &[]), "root")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--tenant"), "{err}");
        add_principal(&archive, new("ops", Role::Admin, &[]), "root")
            .await
            .unwrap();
        let err = add_principal(&archive, new("ops", Role::Admin, &[]), "root")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        let err = revoke_principal(&archive, "nobody", "typo", "root")
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no active principal nobody"),
            "{err}"
        );
        // A revoked name can be given again, with a new token.
        revoke_principal(&archive, "ops", "rotation", "root")
            .await
            .unwrap();
        add_principal(&archive, new("ops", Role::Admin, &[]), "root")
            .await
            .unwrap();
    }
}
