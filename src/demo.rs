//! `strata gen` and `strata demo`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{NaiveDate, TimeZone, Utc};
use strata_gen::{GenConfig, TimeOrder};
use strata_store::Archive;

use crate::cli::{DemoArgs, Format, GenArgs, IngestArgs, Order, TsFormat};

/// Runs `strata gen`.
pub fn generate(args: GenArgs) -> anyhow::Result<ExitCode> {
    let start = NaiveDate::parse_from_str(&args.start, "%Y-%m-%d")
        .with_context(|| format!("--start {:?} is not a date (YYYY-MM-DD)", args.start))?;
    let config = GenConfig {
        seed: args.seed,
        events: args.events,
        tenants: args.tenants.max(1),
        start: Utc.from_utc_datetime(&start.and_hms_opt(0, 0, 0).expect("midnight exists")),
        days: args.days.max(1),
        order: match args.order {
            Order::Sorted => TimeOrder::Sorted,
            Order::Shuffled => TimeOrder::Shuffled,
        },
        ts_format: match args.ts_format {
            TsFormat::Rfc3339 => strata_gen::TsFormat::Rfc3339,
            TsFormat::EpochMs => strata_gen::TsFormat::EpochMillis,
            TsFormat::Mixed => strata_gen::TsFormat::Mixed,
        },
    };
    match &args.output {
        Some(path) => write_events(&config, path)?,
        None => {
            strata_gen::generate(
                &config,
                BufWriter::with_capacity(1 << 20, std::io::stdout().lock()),
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes generated events to `path`, compressed by its extension, via a
/// temporary file so a failed run never leaves a truncated file behind.
fn write_events(config: &GenConfig, path: &Path) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    let file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let out = BufWriter::with_capacity(1 << 20, file);
    let name = path.to_string_lossy();
    let written = if name.ends_with(".gz") {
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        strata_gen::generate(config, &mut enc)?;
        enc.finish()?.flush()
    } else if name.ends_with(".zst") {
        let mut enc = zstd::stream::write::Encoder::new(out, 3)?;
        strata_gen::generate(config, &mut enc)?;
        enc.finish()?.flush()
    } else {
        let mut out = out;
        strata_gen::generate(config, &mut out)?;
        out.flush()
    };
    written.with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot rename to {}", path.display()))?;
    Ok(())
}

/// Audit questions the demo asks, with a title each.
const DEMO_QUERIES: [(&str, &str); 4] = [
    (
        "Failed logins per user, busiest tenant, March 2025",
        "SELECT user, count(*) AS failures FROM access
         WHERE tenant = 'acme-health' AND action = 'login_failed'
           AND ts >= '2025-03-01' AND ts < '2025-04-01'
         GROUP BY user ORDER BY failures DESC, user LIMIT 5",
    ),
    (
        "Exports outside office hours (before 08:00 or after 19:00 UTC), Q1 2025",
        "SELECT tenant, user, count(*) AS exports, sum(records) AS records
         FROM data_usage
         WHERE action = 'export' AND ts >= '2025-01-01' AND ts < '2025-04-01'
           AND (date_part('hour', ts) < 8 OR date_part('hour', ts) >= 19)
         GROUP BY tenant, user ORDER BY exports DESC, tenant, user LIMIT 5",
    ),
    (
        "Events per family and month, first quarter",
        "SELECT date_trunc('month', ts) AS month, family, count(*) AS events
         FROM events WHERE ts < '2025-04-01' GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "Mean time to resolve incidents per tenant (minutes)",
        "SELECT tenant, count(*) AS resolved, round(avg(duration_ms) / 60000, 1) AS mttr_minutes
         FROM technical WHERE action = 'incident_resolved'
         GROUP BY tenant ORDER BY resolved DESC LIMIT 5",
    ),
];

/// Runs `strata demo`.
pub async fn run(archive: &Archive, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let input = std::env::temp_dir().join(format!("strata-demo-{}-events.ndjson.zst", args.events));
    if !input.exists() {
        eprintln!(
            "generating {} events of one year, 20 tenants -> {}",
            args.events,
            input.display()
        );
        write_events(
            &GenConfig {
                events: args.events,
                ..GenConfig::default()
            },
            &input,
        )?;
    }
    eprintln!("ingesting into {}", archive.location);
    let ingest = IngestArgs {
        inputs: vec![input.to_string_lossy().into_owned()],
        rejects: None,
        chunk_mib: crate::cli::DEFAULT_CHUNK_MIB,
        memory_mib: crate::cli::DEFAULT_MEMORY_MIB,
        max_line_kib: crate::cli::DEFAULT_MAX_LINE_KIB,
        no_compact: false,
        quiet: false,
    };
    crate::ingest::run(archive, ingest).await?;
    let session = crate::sql::open(archive).await?;
    let recorder =
        crate::sql_record::SqlRecorder::new(archive, &session, crate::keyring_path(), None).await?;
    for (title, query) in DEMO_QUERIES {
        println!(
            "\n-- {title}\n{}",
            query.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let stdout: Box<dyn std::io::Write + Send> = Box::new(std::io::stdout());
        crate::sql::execute(
            &session,
            &recorder,
            query,
            vec![(Format::Table, stdout)],
            true,
        )
        .await?;
    }
    println!("\nTry: strata --archive {} sql", archive.location);
    Ok(ExitCode::SUCCESS)
}
