//! The sqllogictest suite: every `.slt` file in `tests/slt/` runs against an
//! archive made from `tests/slt/events.ndjson`, ingested in two parts so that
//! partitions have several files.

use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use strata_query::{QueryError, QuerySession};
use strata_store::{Missing, open_archive};

use crate::common::*;

/// A Strata query session as a sqllogictest database.
struct Strata(QuerySession);

#[async_trait::async_trait]
impl AsyncDB for Strata {
    type Error = QueryError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, QueryError> {
        let batches = self.0.query(sql).await?;
        let columns = batches.first().map_or(0, RecordBatch::num_columns);
        let mut rows = Vec::new();
        // NULL and the empty string as DataFusion's own suite writes them.
        let options = FormatOptions::default().with_null("NULL");
        for batch in &batches {
            let formatters: Vec<ArrayFormatter> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<_, _>>()
                .map_err(datafusion::error::DataFusionError::from)?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| match f.value(row).to_string() {
                            s if s.is_empty() => "(empty)".to_string(),
                            s => s,
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; columns],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "strata"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_suite() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let text = std::fs::read_to_string(suite.join("events.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (i, part) in lines.chunks(lines.len().div_ceil(2)).enumerate() {
        let path = dir.path().join(format!("part{i}.ndjson"));
        std::fs::write(&path, part.join("\n")).unwrap();
        run_ok(strata(&archive).args(["ingest", "--no-compact"]).arg(&path));
    }
    let mut files: Vec<_> = std::fs::read_dir(&suite)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the suite has its files: {files:?}");
    let location = archive.to_str().unwrap().to_string();
    for file in files {
        let location = location.clone();
        let mut runner = Runner::new(move || {
            let location = location.clone();
            async move {
                let archive = open_archive(&location, Missing::Fail).expect("archive opens");
                Ok(Strata(QuerySession::open(&archive, None).await?))
            }
        });
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}:\n{e}", file.display());
        }
    }
}
