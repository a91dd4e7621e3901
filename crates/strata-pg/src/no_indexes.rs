//! The session's `pg_catalog` without indexes or constraints.
//!
//! A Strata session has neither, but `datafusion-pg-catalog` carries a
//! PostgreSQL server's own `pg_index` and `pg_constraint` rows (of its
//! system tables), with their key columns (`int2vector`, `oidvector`:
//! `indkey`, `conkey`, …) as text. Drivers reflecting a table's primary
//! key, indexes and unique constraints (SQLAlchemy) `unnest` those columns,
//! which DataFusion refuses on text. Here both tables are empty, with their
//! key columns as arrays of integers: every such query plans, and answers
//! that there is no index and no constraint, which is true. `pg_class`
//! gains the `reloptions` column (NULL) those queries read.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::common::Column;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::logical_expr::{LogicalPlanBuilder, cast, col, lit};
use datafusion::prelude::SessionContext;

/// The tables emptied.
const EMPTIED: [&str; 2] = ["pg_index", "pg_constraint"];

/// Their columns that list attribute numbers or OIDs.
const KEY_COLUMNS: [&str; 11] = [
    "indkey",
    "indcollation",
    "indclass",
    "indoption",
    "conkey",
    "confkey",
    "conpfeqop",
    "conppeqop",
    "conffeqop",
    "conexclop",
    "confdelsetcols",
];

/// Replaces `ctx`'s `pg_catalog` (set up by `setup_pg_catalog`) by one
/// whose `pg_index` and `pg_constraint` are empty, and registers the
/// functions those queries name.
pub(crate) fn register(ctx: &SessionContext) -> Result<()> {
    ctx.register_udf(generate_subscripts());
    // The definition of an index (any of its forms), of which there is none.
    let no_index = ScalarValue::Utf8(None);
    ctx.register_udf(crate::compat::any_arguments("pg_get_indexdef", no_index));
    let catalog = (ctx.catalog("datafusion"))
        .ok_or_else(|| DataFusionError::Internal("no catalog `datafusion`".into()))?;
    if let Some(inner) = catalog.schema("pg_catalog") {
        catalog.register_schema("pg_catalog", Arc::new(NoIndexes { inner }))?;
    }
    Ok(())
}

/// `generate_subscripts(array, dimension)`, which PostgreSQL answers as a
/// set of rows: planned over the empty key columns above, where it meets no
/// row; on any row it refuses rather than answer as a scalar.
fn generate_subscripts() -> ScalarUDF {
    create_udf(
        "generate_subscripts",
        vec![DataType::new_list(DataType::Int64, true), DataType::Int32],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args| {
            let rows = ColumnarValue::values_to_arrays(args)?[0].len();
            if rows > 0 {
                return Err(DataFusionError::NotImplemented(
                    "generate_subscripts() returns a set of rows, which this server does not \
                     answer; use unnest() with row_number()"
                        .into(),
                ));
            }
            Ok(ColumnarValue::Array(Arc::new(Int64Array::from(
                Vec::<i64>::new(),
            ))))
        }),
    )
}

#[derive(Debug)]
struct NoIndexes {
    inner: Arc<dyn SchemaProvider>,
}

#[async_trait]
impl SchemaProvider for NoIndexes {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = self.inner.table(name).await?;
        match table {
            Some(table) if EMPTIED.contains(&name) => {
                let schema = table.schema();
                let fields = schema.fields().iter().map(|field| {
                    match KEY_COLUMNS.contains(&field.name().as_str()) {
                        true => {
                            let list = DataType::new_list(DataType::Int64, true);
                            Arc::new(Field::new(field.name(), list, true))
                        }
                        false => field.clone(),
                    }
                });
                let schema = Arc::new(Schema::new(fields.collect::<Vec<_>>()));
                Ok(Some(Arc::new(MemTable::try_new(schema, vec![vec![]])?)))
            }
            // `pg_class` as the index queries read it: with `reloptions`.
            Some(table) if name == "pg_class" && table.schema().index_of("reloptions").is_err() => {
                let schema = table.schema();
                let columns = (schema.fields().iter())
                    .map(|f| col(Column::new(Some("pg_class"), f.name())))
                    .chain([cast(
                        lit(ScalarValue::Null),
                        DataType::new_list(DataType::Utf8, true),
                    )
                    .alias("reloptions")])
                    .collect::<Vec<_>>();
                let plan = LogicalPlanBuilder::scan("pg_class", provider_as_source(table), None)?
                    .project(columns)?
                    .build()?;
                Ok(Some(Arc::new(ViewTable::new(plan, None))))
            }
            other => Ok(other),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}
