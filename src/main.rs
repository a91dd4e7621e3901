//! `strata`: a columnar archive and retention engine for compliance logs.

mod cli;
mod cluster;
mod demo;
mod ingest;
mod output;
mod publish;
mod retention;
mod serve;
mod serve_config;
mod shell;
mod sql;
mod sql_record;
mod users;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use clap::{CommandFactory, FromArgMatches};

use cli::{Cli, Command, HoldCommand, KeysCommand, PolicyCommand, RetentionCommand, UsersCommand};
use strata_keys::Keyring;
use strata_keys::envelope::{KeyProvider, LocalKeys};
use strata_store::{Archive, Missing};

/// Exit status when every input was read but some lines were rejected.
const EXIT_REJECTED: u8 = 3;

/// Threads for blocking work: ingest's reader holds one while it waits
/// for uploads, which need others on a local folder.
const BLOCKING_THREADS: usize = 4;

/// jemalloc rather than the system allocator (slower on two threads) or
/// mimalloc (as fast, but a third more memory at peak under the same
/// `--memory-mib`); it also serves zstd's allocations. benches/README.md
/// has the measurements.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Like other Unix tools, stop quietly when the reader of our output goes
    // away (`strata sql ... | head`) instead of failing to print.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    #[cfg(unix)]
    if matches!(cli.command, Command::Cluster(_)) {
        // A cluster process outlives its peers' connections: a write to
        // one that went away must fail that request, not stop the process.
        // SAFETY: no thread has started yet.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
    if let (Command::Serve(args), Some(("serve", serve))) = (&mut cli.command, matches.subcommand())
        && let Err(why) = serve_config::apply(args, serve)
    {
        eprintln!("error: {why}");
        return ExitCode::from(2);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // Few blocking threads: local file I/O and compaction's merges run on
    // them, and each thread that allocates keeps its own free memory, so
    // tokio's default of up to 512 threads tripled compaction's peak memory.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, leaving out causes whose text the
/// message already contains (DataFusion and Parquet errors repeat their sources).
fn describe(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The keyring of this invocation (`--keyring`, `STRATA_KEYRING` or the default).
static KEYRING: OnceLock<PathBuf> = OnceLock::new();

/// The tenant master keys of this invocation's keyring.
fn tenant_keys() -> anyhow::Result<Arc<dyn KeyProvider>> {
    let path = KEYRING.get().expect("set before any command runs");
    Ok(Arc::new(LocalKeys::open(path)?))
}

/// The keyring file commands use.
fn keyring_path() -> &'static std::path::Path {
    KEYRING.get().expect("set before any command runs")
}

/// The keyring's secret for analysts' pseudonyms, made on first use.
fn pseudonym_secret() -> anyhow::Result<[u8; 32]> {
    let path = KEYRING.get().expect("set before any command runs");
    Ok(Keyring::open(path)?.pseudonym_secret_or_create()?)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let keyring = KEYRING
        .get_or_init(|| {
            cli.keyring
                .clone()
                .unwrap_or_else(strata_keys::default_path)
        })
        .clone();
    let archive = |missing| strata_store::open_archive(&cli.archive, missing);
    let (location, witness) = (cli.archive.clone(), cli.witness.clone());
    let sealed = |missing| sealed_archive(&location, witness.as_deref(), &keyring, missing);
    match cli.command {
        Command::Ingest(args) => ingest::run(&sealed(Missing::Create)?, args).await,
        Command::Compact(args) => ingest::compact(&sealed(Missing::Fail)?, args).await,
        Command::Sql(args) => {
            sql::run(&archive(Missing::Fail)?, &keyring, witness.as_deref(), args).await
        }
        Command::Verify(args) => verify::run(&archive(Missing::Fail)?, &keyring, args).await,
        Command::VerifyExport(args) => verify::run_export(&keyring, args),
        Command::Keys(KeysCommand::Show) => verify::show_key(&keyring),
        Command::Keys(KeysCommand::Rotate { tenant }) => {
            retention::rotate(&sealed(Missing::Fail)?, &tenant).await
        }
        Command::Keys(KeysCommand::Trust { key, reason }) => {
            retention::trust(&sealed(Missing::Fail)?, &key, &reason).await
        }
        Command::Keys(KeysCommand::Retire { key, reason }) => {
            retention::retire(&sealed(Missing::Fail)?, &key, &reason).await
        }
        Command::Keys(KeysCommand::Shred {
            tenant,
            reason,
            now,
        }) => retention::shred(&sealed(Missing::Fail)?, &tenant, &reason, now.as_deref()).await,
        // Commands that only read never sign: a signature vouches for what
        // its signer wrote, and they write nothing.
        Command::Retention(
            command @ (RetentionCommand::Plan(_)
            | RetentionCommand::Policy(PolicyCommand::Show | PolicyCommand::Presets)),
        ) => retention::run(&archive(Missing::Fail)?, command).await,
        Command::Retention(command) => retention::run(&sealed(Missing::Fail)?, command).await,
        Command::Hold(HoldCommand::List) => {
            retention::hold(&archive(Missing::Fail)?, HoldCommand::List).await
        }
        Command::Hold(command) => retention::hold(&sealed(Missing::Fail)?, command).await,
        Command::Users(UsersCommand::List) => users::list(&archive(Missing::Fail)?).await,
        // The first principal may be the archive's first entry.
        Command::Users(command @ UsersCommand::Add { .. }) => {
            users::run(&sealed(Missing::Create)?, command).await
        }
        Command::Users(command) => users::run(&sealed(Missing::Fail)?, command).await,
        Command::Serve(args) => serve::run(sealed(Missing::Fail)?, *args).await,
        Command::Status => sql::status(&archive(Missing::Fail)?).await,
        Command::Cluster(command) => cluster::run(&location, command).await,
        Command::Publish => publish::run(&archive(Missing::Fail)?).await,
        Command::Gen(args) => demo::generate(args),
        Command::Demo(args) => demo::run(&sealed(Missing::Create)?, args).await,
    }
}

/// The archive for a command that commits: every commit is followed by a
/// checkpoint signed with the keyring's key (made on first use), copied to
/// the witness if there is one.
fn sealed_archive(
    location: &str,
    witness: Option<&str>,
    keyring: &std::path::Path,
    missing: Missing,
) -> anyhow::Result<Archive> {
    let mut archive = strata_store::open_archive(location, missing)?;
    let key = Keyring::open(keyring)?.signing_key_or_create(&signing_key_name())?;
    let witness = match witness {
        Some(location) => Some(strata_store::open_location(location, Missing::Create)?),
        None => None,
    };
    archive.catalog = archive.catalog.with_seal(key, witness);
    Ok(archive)
}

/// The name of a new signing key: `strata-<host>`.
fn signing_key_name() -> String {
    let host: String = strata_store::host_name()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '+' {
                '-'
            } else {
                c
            }
        })
        .collect();
    if host.is_empty() {
        "strata".to_string()
    } else {
        format!("strata-{host}")
    }
}

/// Who is recorded as the actor of commits: `STRATA_ACTOR`, else `user@host`.
fn actor() -> String {
    if let Ok(actor) = std::env::var("STRATA_ACTOR") {
        return actor;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = strata_store::host_name();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}
