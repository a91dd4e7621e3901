//! `strata users`: the server's principals.

use std::process::ExitCode;

use strata_access::{NewPrincipal, add_principal, revoke_principal};
use strata_store::Archive;

use crate::cli::UsersCommand;

/// Adds or revokes a principal.
pub async fn run(archive: &Archive, command: UsersCommand) -> anyhow::Result<ExitCode> {
    match command {
        UsersCommand::Add {
            name,
            role,
            tenants,
            reason,
        } => {
            let new = NewPrincipal {
                name: name.clone(),
                role,
                tenants: tenants.clone(),
                reason,
            };
            let token = add_principal(archive, new, &crate::actor()).await?;
            let scope = match tenants.is_empty() {
                true => "every tenant".to_string(),
                false => format!("tenants {}", tenants.join(", ")),
            };
            println!("principal {name} added, role {role}, {scope}.");
            println!("Its token follows; it is shown only now and cannot be recovered:");
            println!("{token}");
        }
        UsersCommand::Revoke { name, reason } => {
            revoke_principal(archive, &name, &reason, &crate::actor()).await?;
            println!("principal {name} revoked: its token no longer opens the server");
        }
        UsersCommand::List => return list(archive).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists the active principals, without their tokens.
pub async fn list(archive: &Archive) -> anyhow::Result<ExitCode> {
    let snapshot = archive.catalog.load().await?;
    let principals = &snapshot.governance.principals;
    if principals.is_empty() {
        println!("no principals: add the first with `strata users add NAME --role admin`");
    }
    for p in principals.values() {
        let tenants = match p.tenants.is_empty() {
            true => "*".to_string(),
            false => p.tenants.join(","),
        };
        println!(
            "{}  {}  tenants {}  added {} by {}: {}",
            p.name, p.role, tenants, p.added_at, p.added_by, p.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}
