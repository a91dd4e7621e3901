//! `strata ingest` and `strata compact`.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use strata_ingest::{
    CompactOptions, CompactReport, IngestOptions, Input, Observer, Reject, SourceStatus,
};
use strata_store::Archive;

use crate::cli::{CompactArgs, IngestArgs};

/// Rejected lines echoed to stderr before the rest are only counted.
const REJECTS_SHOWN: u64 = 20;

struct Reporter {
    bar: Option<ProgressBar>,
    rejects_file: Option<(BufWriter<File>, String)>,
    shown: u64,
    quiet: bool,
    error: Option<std::io::Error>,
}

impl Observer for Reporter {
    fn rejected(&mut self, reject: &Reject) {
        if !self.quiet && self.shown < REJECTS_SHOWN {
            let message = format!(
                "rejected {}:{}: {}",
                reject.source, reject.line, reject.reason
            );
            match &self.bar {
                Some(bar) => bar.println(message),
                None => eprintln!("{message}"),
            }
        }
        self.shown += 1;
        if let Some((file, _)) = &mut self.rejects_file {
            let record = serde_json::json!({
                "source": reject.source, "line": reject.line, "reason": reject.reason, "text": reject.text,
            });
            if let Err(e) = writeln!(file, "{record}") {
                self.error.get_or_insert(e);
            }
        }
    }

    fn progress(&mut self, raw_bytes: u64, events: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(raw_bytes);
            let rate = events as f64 / bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{events} events, {rate:.0} events/s"));
        }
    }
}

/// Runs `strata ingest`.
pub async fn run(archive: &Archive, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let inputs: Vec<Input> = args.inputs.iter().map(|a| Input::parse(a)).collect();
    for input in &inputs {
        if let Input::File(path) = input {
            anyhow::ensure!(
                path.is_file(),
                "input {} does not exist or is not a file",
                path.display()
            );
        }
    }
    // A line is held whole while it is parsed, as a block is: the budget
    // gives it the same share (1/32).
    anyhow::ensure!(
        args.max_line_kib <= args.memory_mib * 32,
        "--max-line-kib {} is more than --memory-mib {} allows: at most {} KiB (1/32 of it)",
        args.max_line_kib,
        args.memory_mib,
        args.memory_mib * 32
    );
    let total: u64 = inputs.iter().filter_map(Input::size).sum();
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            )
            .expect("valid template"),
        );
        bar
    });
    let rejects_file = match &args.rejects {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            Some((BufWriter::new(file), path.display().to_string()))
        }
        None => None,
    };
    let reporter = Reporter {
        bar: bar.clone(),
        rejects_file,
        shown: 0,
        quiet: args.quiet,
        error: None,
    };
    let options = IngestOptions {
        chunk_bytes: args.chunk_mib.max(1) << 20,
        memory_bytes: args.memory_mib << 20,
        max_line_bytes: (args.max_line_kib << 10) as usize,
        actor: crate::actor(),
        ..Default::default()
    };
    let started = Instant::now();
    let (report, reporter) = strata_ingest::ingest(archive, inputs, options, reporter).await?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let mut reporter = reporter;
    if let Some((file, path)) = &mut reporter.rejects_file {
        file.flush()
            .with_context(|| format!("cannot write {path}"))?;
    }
    if let Some(e) = reporter.error {
        return Err(e).context("cannot write the rejects file");
    }
    let elapsed = started.elapsed().as_secs_f64();
    if !args.quiet {
        for source in &report.sources {
            match source.status {
                SourceStatus::AlreadyComplete => {
                    eprintln!("{}: already ingested (same content), skipped", source.path)
                }
                SourceStatus::Resumed(line) => {
                    eprintln!("{}: resumed after line {line}", source.path)
                }
                SourceStatus::Ingested => {}
            }
        }
        if reporter.shown > REJECTS_SHOWN {
            let more = reporter.shown - REJECTS_SHOWN;
            let hint = args.rejects.as_ref().map_or(
                String::from(" (use --rejects FILE to keep them all)"),
                |p| format!(" (all in {})", p.display()),
            );
            eprintln!("... and {more} more rejected lines{hint}");
        }
        let ratio = match report.bytes_written {
            0 => String::from("-"),
            written => format!("{:.1}x", report.input_bytes as f64 / written as f64),
        };
        eprintln!(
            "ingested {} events, rejected {} lines; {} partitions, {} files, {} written (compression {ratio}), {} commits, {:.1} s, {:.1} MB/s, {:.0} events/s",
            report.accepted(),
            report.rejected(),
            report.partitions.len(),
            report.files,
            human_bytes(report.bytes_written),
            report.commits,
            elapsed,
            report.input_bytes as f64 / 1e6 / elapsed.max(1e-9),
            report.accepted() as f64 / elapsed.max(1e-9),
        );
    }
    if !args.no_compact && report.files > 0 {
        let compacted =
            strata_ingest::compact(archive, compact_options(128, args.memory_mib)?).await?;
        if !args.quiet {
            print_compaction(&compacted);
        }
    }
    Ok(if report.rejected() > 0 {
        ExitCode::from(crate::EXIT_REJECTED)
    } else {
        ExitCode::SUCCESS
    })
}

fn compact_options(target_mib: u64, memory_mib: u64) -> anyhow::Result<CompactOptions> {
    Ok(CompactOptions {
        target_bytes: target_mib.max(1) << 20,
        memory_bytes: memory_mib << 20,
        actor: crate::actor(),
        keys: Some(crate::tenant_keys()?),
        ..Default::default()
    })
}

fn print_compaction(report: &CompactReport) {
    if report.files_removed > 0 {
        eprintln!(
            "compacted {} partitions: {} files ({}) into {} ({})",
            report.partitions,
            report.files_removed,
            human_bytes(report.bytes_removed),
            report.files_added,
            human_bytes(report.bytes_added),
        );
    }
}

/// Runs `strata compact`.
pub async fn compact(archive: &Archive, args: CompactArgs) -> anyhow::Result<ExitCode> {
    let report =
        strata_ingest::compact(archive, compact_options(args.target_mib, args.memory_mib)?).await?;
    if report.files_removed == 0 {
        eprintln!("nothing to compact");
    }
    print_compaction(&report);
    Ok(ExitCode::SUCCESS)
}

/// `1.2 MB` style sizes (decimal units, as disks and S3 bills use).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
