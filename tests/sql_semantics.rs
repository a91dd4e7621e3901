//! The SQL surface gives true answers: catalog and Parquet pruning never
//! change a result (thousands of random filters against an unpruned
//! in-memory copy of the same rows, and a sample against DuckDB over the same
//! files), and the sqllogictest suite in `tests/slt/` holds.

mod common;
#[path = "sql_semantics/filters.rs"]
mod filters;
#[path = "sql_semantics/slt.rs"]
mod slt;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use rand::SeedableRng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use strata_query::QuerySession;
use strata_store::{Missing, open_archive};

use common::*;
use filters::{Column, Dialect, Filter, Generator, Kind, Literal};

/// Filters tried per run; the seed changes with `STRATA_PRUNING_SEED`.
const FILTERS: usize = 5_000;
/// Of those, how many are also run in DuckDB over the archive's files.
const DUCKDB_SAMPLE: usize = 400;

/// Events at the edges of months and days, in several spellings, with quotes,
/// non-ASCII text and empty values: what pruning bounds are most likely to miss.
const EDGE_EVENTS: &str = r#"{"ts":"2025-01-31T23:59:59.999999Z","tenant":"edge-co","family":"access","action":"login","user":"o'brien","attrs":{"k":"v"}}
{"ts":"2025-02-01T00:00:00Z","tenant":"edge-co","family":"access","action":"login","user":"zoë","src_ip":"2001:db8::1"}
{"ts":"2025-02-01T04:59:59.999999+05:00","tenant":"edge-co","family":"access","action":"logout","user":""}
{"ts":1740787200000,"tenant":"edge.two","family":"technical","action":"error","severity":"error","bytes":0,"duration_ms":0.0}
{"ts":"2025-02-28T23:59:59.999999Z","tenant":"edge.two","family":"technical","action":"error","message":"100% done_"}
{"ts":"2025-03-01T00:00:00.000001Z","tenant":"edge.two","family":"data_usage","action":"export","records":9223372036854775807}
{"ts":"2025-04-30T23:59:59.999999-00:00","tenant":"edge-co","family":"data_usage","action":"read","attrs":{"k":"w","n":3}}
"#;

/// An archive of generated events ingested in several parts (so each
/// partition has several files with their own time ranges) plus [`EDGE_EVENTS`].
fn build_archive(dir: &Path) -> PathBuf {
    let input = dir.join("events.ndjson");
    generate(
        &input,
        &[
            "--events",
            "6000",
            "--tenants",
            "4",
            "--days",
            "100",
            "--start",
            "2025-01-20",
            "--seed",
            "3",
            "--ts-format",
            "mixed",
        ],
    );
    let text = std::fs::read_to_string(&input).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let archive = dir.join("archive");
    let mut parts: Vec<String> = lines
        .chunks(lines.len() / 4 + 1)
        .map(|c| c.join("\n"))
        .collect();
    parts.push(EDGE_EVENTS.to_string());
    for (i, part) in parts.iter().enumerate() {
        let path = dir.join(format!("part{i}.ndjson"));
        std::fs::write(&path, part).unwrap();
        run_ok(strata(&archive).args(["ingest", "--no-compact"]).arg(&path));
    }
    archive
}

/// Every value of the first column of `sql`'s answer, as text.
async fn strings(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for batch in ctx.sql(sql).await.unwrap().collect().await.unwrap() {
        let column = cast(batch.column(0), &DataType::Utf8).unwrap();
        let column = column.as_string::<i32>();
        out.extend(
            (0..column.len())
                .filter(|&i| column.is_valid(i))
                .map(|i| column.value(i).to_string()),
        );
    }
    out
}

/// The columns of `events` with up to 40 of their values each, and the
/// attribute keys with theirs.
async fn generator(ctx: &SessionContext, rng: &mut ChaCha8Rng) -> Generator {
    const COLUMNS: &[(&str, Kind)] = &[
        ("ts", Kind::Time),
        ("tenant", Kind::Text),
        ("family", Kind::Text),
        ("action", Kind::Text),
        ("outcome", Kind::Text),
        ("severity", Kind::Text),
        ("user", Kind::Text),
        ("role", Kind::Text),
        ("host", Kind::Text),
        ("app", Kind::Text),
        ("resource", Kind::Text),
        ("resource_type", Kind::Text),
        ("session_id", Kind::Text),
        ("message", Kind::Text),
        ("src_ip", Kind::Text),
        ("bytes", Kind::Unsigned),
        ("records", Kind::Unsigned),
        ("duration_ms", Kind::Float),
        ("event_id", Kind::Text),
        ("ingested_at", Kind::Time),
    ];
    let mut columns = Vec::new();
    for &(name, kind) in COLUMNS {
        let expr = match kind {
            Kind::Time => format!("CAST(\"{name}\" AS BIGINT)"),
            _ => format!("\"{name}\""),
        };
        let mut values = strings(ctx, &format!("SELECT DISTINCT {expr} FROM events")).await;
        if name == "ts" {
            // Every file's first and last instant, and the first instant of each month.
            for bound in ["min_ts", "max_ts"] {
                values.extend(
                    strings(
                        ctx,
                        &format!("SELECT DISTINCT CAST({bound} AS BIGINT) FROM strata_files"),
                    )
                    .await,
                );
            }
            values.extend(
                strings(
                    ctx,
                    "SELECT DISTINCT CAST(date_trunc('month', ts) AS BIGINT) FROM events",
                )
                .await,
            );
        }
        values.sort();
        values.dedup();
        let sample: Vec<&String> = values.choose_multiple(rng, 40).collect();
        let values = sample
            .into_iter()
            .map(|v| match kind {
                Kind::Text => Literal::Text(v.clone()),
                Kind::Unsigned => Literal::Unsigned(v.parse().unwrap()),
                Kind::Float => Literal::Float(v.parse().unwrap()),
                Kind::Time => Literal::Time(v.parse::<i64>().unwrap() * 1_000),
            })
            .collect();
        columns.push(Column { name, kind, values });
    }
    let mut attrs = Vec::new();
    for key in [
        "k", "n", "mfa", "country", "retry", "reason", "ticket", "channel", "absent",
    ] {
        let values = strings(ctx, &format!("SELECT DISTINCT attrs['{key}'] FROM events")).await;
        attrs.push((key.to_string(), values));
    }
    Generator { columns, attrs }
}

/// A session over the same rows as `session`'s `events`, held in memory:
/// nothing to prune, no rewrites, plain DataFusion.
async fn unpruned_copy(session: &QuerySession) -> SessionContext {
    let batches = session.query("SELECT * FROM events").await.unwrap();
    let schema = batches[0].schema();
    let ctx = SessionContext::new();
    ctx.register_table(
        "events",
        Arc::new(MemTable::try_new(schema, vec![batches]).unwrap()),
    )
    .unwrap();
    for family in ["access", "data_usage", "technical"] {
        ctx.sql(&format!(
            "CREATE VIEW {family} AS SELECT * FROM events WHERE family = '{family}'"
        ))
        .await
        .unwrap();
    }
    ctx
}

async fn count(ctx: &SessionContext, sql: &str) -> Result<u64, String> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await;
    let batches = batches.map_err(|e| e.to_string())?;
    let column = cast(batches[0].column(0), &DataType::UInt64).map_err(|e| e.to_string())?;
    Ok(column
        .as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
        .value(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_never_changes_an_answer_to_random_filters() {
    let seed = std::env::var("STRATA_PRUNING_SEED").map_or(20_251_202, |s| s.parse().unwrap());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let archive_path = build_archive(dir.path());
    let archive = open_archive(archive_path.to_str().unwrap(), Missing::Fail).unwrap();
    let session = QuerySession::open(&archive, None).await.unwrap();
    let files = session.snapshot.files.len();
    assert!(files > 40, "the archive has many files to prune ({files})");
    let oracle = unpruned_copy(&session).await;
    let generator = generator(&session.ctx, &mut rng).await;

    let cases: Vec<(String, Filter)> = (0..FILTERS)
        .map(|_| {
            let table = *[
                "events",
                "events",
                "events",
                "access",
                "data_usage",
                "technical",
            ]
            .choose(&mut rng)
            .unwrap();
            (table.to_string(), generator.filter(&mut rng, 2))
        })
        .collect();
    let results: Vec<(Result<u64, String>, Result<u64, String>)> =
        futures::stream::iter(cases.iter().map(|(table, filter)| {
            let sql = format!(
                "SELECT count(*) FROM {table} WHERE {}",
                filter.render(Dialect::DataFusion).unwrap()
            );
            let (session, oracle) = (&session, &oracle);
            async move { (count(&session.ctx, &sql).await, count(oracle, &sql).await) }
        }))
        .buffered(4)
        .collect()
        .await;

    let mut errors = 0;
    let mut matched = 0;
    for ((table, filter), (pruned, unpruned)) in cases.iter().zip(&results) {
        let sql = filter.render(Dialect::DataFusion).unwrap();
        // Pruning only ever drops files, and every filter is applied to the
        // rows it reads: equal counts mean equal rows.
        assert_eq!(
            pruned.as_ref().ok(),
            unpruned.as_ref().ok(),
            "seed {seed}: SELECT count(*) FROM {table} WHERE {sql}\npruned: {pruned:?}\nunpruned: {unpruned:?}"
        );
        match pruned {
            Ok(n) if *n > 0 => matched += 1,
            Ok(_) => {}
            Err(_) => errors += 1,
        }
    }
    assert!(
        errors < FILTERS / 50,
        "{errors} of {FILTERS} filters failed to run"
    );
    assert!(
        matched > FILTERS / 4,
        "only {matched} of {FILTERS} filters matched any row: the generator misses the data"
    );

    // The same filters in DuckDB over the catalogued files.
    let sample: Vec<(String, u64)> = cases
        .iter()
        .zip(&results)
        .filter_map(|((table, filter), (pruned, _))| {
            let sql = filter.render(Dialect::DuckDb)?;
            let sql = match table.as_str() {
                "events" => format!("SELECT count(*) FROM events WHERE {sql}"),
                family => {
                    format!("SELECT count(*) FROM events WHERE family = '{family}' AND ({sql})")
                }
            };
            Some((sql, *pruned.as_ref().ok()?))
        })
        .take(DUCKDB_SAMPLE)
        .collect();
    assert_eq!(sample.len(), DUCKDB_SAMPLE, "enough filters DuckDB can run");
    let paths: Vec<String> = session
        .snapshot
        .files
        .keys()
        .map(|p| format!("'{}'", archive_path.join(p).display()))
        .collect();
    // Shredded attributes (`attrs__<key>` columns) back into the map, as a
    // reader without strata puts them (docs/engines.md).
    let keys: std::collections::BTreeSet<&String> = (session.snapshot.files.values())
        .flat_map(|f| &f.shredded)
        .collect();
    let entries: Vec<String> = (keys.iter())
        .map(|k| format!("{{'key': '{k}', 'value': \"attrs__{k}\"}}"))
        .collect();
    let attrs = match keys.is_empty() {
        true => "attrs".to_string(),
        false => format!(
            "CASE WHEN attrs IS NULL AND {none} THEN NULL ELSE map_concat(coalesce(attrs, MAP {{}}),
               map_from_entries(list_filter([{entries}], lambda e: e.value IS NOT NULL))) END",
            none = (keys.iter())
                .map(|k| format!("\"attrs__{k}\" IS NULL"))
                .collect::<Vec<_>>()
                .join(" AND "),
            entries = entries.join(", "),
        ),
    };
    let setup = format!(
        "CREATE VIEW events AS SELECT * REPLACE ({attrs} AS attrs)
         FROM read_parquet([{}], hive_partitioning = false, union_by_name = true)",
        paths.join(", ")
    );
    let queries: Vec<String> = sample.iter().map(|(sql, _)| sql.clone()).collect();
    let answers = duckdb_each(&setup, &queries);
    assert_eq!(answers.len(), sample.len());
    for ((sql, ours), theirs) in sample.iter().zip(answers) {
        assert_eq!(Some(*ours), theirs[0].as_u64(), "seed {seed}: {sql}");
    }
}
