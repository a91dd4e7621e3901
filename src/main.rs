//! `strata`: a columnar archive and retention engine for compliance logs.

mod cli;
mod demo;
mod ingest;
mod output;
mod shell;
mod sql;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use strata_store::Missing;

/// Exit status when every input was read but some lines were rejected.
const EXIT_REJECTED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let archive = |missing| strata_store::open_archive(&cli.archive, missing);
    match cli.command {
        Command::Ingest(args) => ingest::run(&archive(Missing::Create)?, args).await,
        Command::Compact(args) => ingest::compact(&archive(Missing::Fail)?, args).await,
        Command::Sql(args) => sql::run(&archive(Missing::Fail)?, args).await,
        Command::Status => sql::status(&archive(Missing::Fail)?).await,
        Command::Gen(args) => demo::generate(args),
        Command::Demo(args) => demo::run(&archive(Missing::Create)?, args).await,
    }
}

/// Who is recorded as the actor of commits: `STRATA_ACTOR`, else `user@host`.
fn actor() -> String {
    if let Ok(actor) = std::env::var("STRATA_ACTOR") {
        return actor;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}
