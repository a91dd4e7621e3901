//! `strata verify`, `strata verify-export` and `strata keys`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use strata_integrity::VerifierKey;
use strata_keys::Keyring;
use strata_store::Archive;
use strata_verify::{Finding, HashMode, Observer, Options, Report, Trusted};

use crate::cli::{VerifyArgs, VerifyExportArgs};
use crate::ingest::human_bytes;

/// Exit status when verification found problems.
const EXIT_FINDINGS: u8 = 2;

/// The key given with `--key` (the key itself, or a file holding it), else
/// the keyring's; with a description of where it came from.
fn verifier_key(keyring: &Path, given: Option<&str>) -> anyhow::Result<(VerifierKey, String)> {
    match given {
        Some(given) if Path::new(given).is_file() => {
            let text = std::fs::read_to_string(given)
                .with_context(|| format!("cannot read key file {given}"))?;
            let key = text
                .lines()
                .find_map(|l| VerifierKey::parse(l.trim()).ok())
                .with_context(|| format!("{given} holds no verifier key"))?;
            Ok((key, format!("key file {given}")))
        }
        Some(given) => Ok((
            VerifierKey::parse(given).context("--key")?,
            "--key".to_string(),
        )),
        None => {
            let key = Keyring::open(keyring)?.signing_key().context(
                "no key to check signatures with: pass --key with the verifier key you pinned \
                 (`strata keys show` prints it where the archive is written)",
            )?;
            Ok((key.verifier(), format!("keyring {}", keyring.display())))
        }
    }
}

/// Prints findings as `CODE  path: detail` lines.
fn print_findings(findings: &[Finding]) {
    for finding in findings {
        println!("{finding}");
    }
}

struct HashProgress(Option<ProgressBar>);

impl Observer for HashProgress {
    fn hashing(&self, _files: u64, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(bytes);
        }
    }

    fn hashed(&self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }
}

/// Runs `strata verify`.
pub async fn run(archive: &Archive, keyring: &Path, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (key, key_source) = verifier_key(keyring, args.key.as_deref())?;
    let trusted = match &args.trusted {
        Some(path) => Some(Trusted {
            source: path.display().to_string(),
            note: std::fs::read_to_string(path)
                .with_context(|| format!("cannot read trusted checkpoint {}", path.display()))?,
        }),
        None => None,
    };
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "hashing {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec}",
            )
            .expect("valid template"),
        );
        bar
    });
    let options = Options {
        key: key.clone(),
        trusted,
        deep: args.deep,
        sample: args.sample,
    };
    let report =
        strata_verify::verify(archive.store.clone(), &options, &HashProgress(bar.clone())).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if args.json {
        let json = serde_json::json!({
            "archive": archive.location,
            "key": key.to_string(),
            "intact": report.findings.is_empty(),
            "findings": report.findings,
            "summary": report.summary,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_findings(&report.findings);
        print_summary(archive, &key, &key_source, &report);
    }
    Ok(exit_status(&report.findings))
}

fn exit_status(findings: &[Finding]) -> ExitCode {
    if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    }
}

fn print_summary(archive: &Archive, key: &VerifierKey, key_source: &str, report: &Report) {
    let s = &report.summary;
    println!("archive:    {} ({})", archive.location, s.origin);
    println!("key:        {key} (from {key_source})");
    println!(
        "log:        {} entries, signed up to {} ({} checkpoints and {} snapshots checked), root {}",
        s.entries, s.signed_size, s.checkpoints, s.snapshots, s.root
    );
    println!(
        "files:      {} live, {}; sizes all checked; {} removed by commits but not yet deleted",
        s.files,
        human_bytes(s.bytes),
        s.removed_not_yet_deleted
    );
    let how = match s.hash_mode {
        HashMode::Deep => "every file (--deep)".to_string(),
        HashMode::Sample => format!(
            "a random sample of {} (--deep rehashes all)",
            s.files_hashed
        ),
    };
    println!(
        "contents:   rehashed {how}: {} at {:.0} MB/s",
        human_bytes(s.bytes_hashed),
        s.hash_mb_per_s
    );
    println!(
        "retention:  {} partitions expired by policy",
        s.partitions_expired
    );
    match &s.last_heartbeat {
        Some(at) => println!("heartbeats: {} checked, newest {at}", s.heartbeats),
        None => println!(
            "heartbeats: {} (the retention daemon signs one hourly)",
            s.heartbeats
        ),
    }
    let wal = &s.wal;
    println!(
        "serve:      {} write-ahead segments ({} events) acknowledged, not yet written out; {} committed, not yet deleted",
        wal.pending_segments, wal.pending_events, wal.committed_segments
    );
    match report.findings.len() {
        0 => println!("result:     intact, in {:.2} s", s.seconds),
        n => println!("result:     {n} findings, in {:.2} s", s.seconds),
    }
}

/// Runs `strata verify-export`.
pub fn run_export(keyring: &Path, args: VerifyExportArgs) -> anyhow::Result<ExitCode> {
    let (key, key_source) = verifier_key(keyring, args.key.as_deref())?;
    anyhow::ensure!(
        args.dir.is_dir(),
        "{} is not a folder (give the folder `strata sql --export` wrote)",
        args.dir.display()
    );
    let (findings, manifest) = strata_verify::export::verify_export(&args.dir, &key)?;
    print_findings(&findings);
    if let Some(manifest) = manifest {
        println!("query:      {}", manifest.query);
        println!(
            "made:       {} by {}, {} rows",
            manifest.created_at, manifest.actor, manifest.rows
        );
        if let Some(head) = manifest.checkpoint.lines().take(2).reduce(|_, size| size) {
            let origin = manifest.checkpoint.lines().next().unwrap_or_default();
            println!("archive:    {origin} at commit {head}");
        }
    }
    println!("key:        {key} (from {key_source})");
    match findings.len() {
        0 => println!("result:     intact"),
        n => println!("result:     {n} findings"),
    }
    Ok(exit_status(&findings))
}

/// Runs `strata keys show`.
pub fn show_key(keyring: &Path) -> anyhow::Result<ExitCode> {
    let key = Keyring::open(keyring)?.signing_key_or_create(&crate::signing_key_name())?;
    let verifier = key.verifier();
    println!("{verifier}");
    eprintln!("fingerprint: SHA256:{}", verifier.fingerprint());
    eprintln!("keyring:     {}", keyring.display());
    eprintln!("Pin the first line: strata verify --key '<it>' (or a file holding it).");
    Ok(ExitCode::SUCCESS)
}
