//! The `strata_files` table: the catalog's files that queries see, for
//! auditors and operators.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ListArray, ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
    UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use strata_store::FileMeta;

/// The files as a table, built only when a query reads it: a session over a
/// catalog of 100,000 files should not pay for a table it may never use.
#[derive(Debug)]
pub struct FilesTable {
    files: Arc<[FileMeta]>,
}

impl FilesTable {
    /// A table listing `files`.
    pub fn new(files: Arc<[FileMeta]>) -> Self {
        FilesTable { files }
    }

    fn batch(&self) -> Result<RecordBatch> {
        let files = &self.files;
        let text =
            |f: fn(&FileMeta) -> &str| Arc::new(StringArray::from_iter_values(files.iter().map(f)));
        let time = |f: fn(&FileMeta) -> i64| {
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(files.iter().map(f))
                    .with_timezone("UTC"),
            )
        };
        Ok(RecordBatch::try_new(
            self.schema(),
            vec![
                text(|m| &m.path),
                text(|m| &m.tenant),
                text(|m| &m.family),
                text(|m| &m.month),
                Arc::new(UInt64Array::from_iter_values(files.iter().map(|m| m.rows))),
                Arc::new(UInt64Array::from_iter_values(files.iter().map(|m| m.size))),
                text(|m| &m.sha256),
                time(|m| m.min_ts),
                time(|m| m.max_ts),
                Arc::new(StringArray::from_iter(
                    files.iter().map(|m| m.location.as_deref()),
                )),
                Arc::new(UInt32Array::from_iter(files.iter().map(|m| m.key_version))),
                Arc::new(shredded_keys(files)),
            ],
        )?)
    }
}

/// Each file's shredded `attrs` keys: those `attrs['key']` reads from a
/// column of their own in that file, with its statistics.
fn shredded_keys(files: &[FileMeta]) -> ListArray {
    let mut keys = ListBuilder::new(StringBuilder::new()).with_field(shredded_key_field());
    for file in files {
        keys.values().extend(file.shredded.iter().map(Some));
        keys.append(true);
    }
    keys.finish()
}

fn shredded_key_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Utf8, false))
}

#[async_trait]
impl TableProvider for FilesTable {
    fn schema(&self) -> SchemaRef {
        static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
            let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
            Arc::new(Schema::new(vec![
                Field::new("path", DataType::Utf8, false),
                Field::new("tenant", DataType::Utf8, false),
                Field::new("family", DataType::Utf8, false),
                Field::new("month", DataType::Utf8, false),
                Field::new("rows", DataType::UInt64, false),
                Field::new("size", DataType::UInt64, false),
                Field::new("sha256", DataType::Utf8, false),
                Field::new("min_ts", ts(), false),
                Field::new("max_ts", ts(), false),
                Field::new("location", DataType::Utf8, true),
                Field::new("key_version", DataType::UInt32, true),
                Field::new("shredded", DataType::List(shredded_key_field()), false),
            ]))
        });
        SCHEMA.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table = MemTable::try_new(self.schema(), vec![vec![self.batch()?]])?;
        table.scan(state, projection, filters, limit).await
    }
}
