//! The analyst's `events`: the archive's table with personal values
//! replaced by pseudonyms inside the scan, so that nothing above it (a
//! filter, join, function, error or `EXPLAIN`) ever holds a raw value.
//!
//! Two doors are shut besides: a filter on a personal column is never
//! handed to the inner scan (its pruning would compare raw values, and
//! counting what it keeps would test a guess), and the scan node hands no
//! statistics, filters or limits through (Parquet's min/max of `user` are
//! raw values).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

use crate::pseudonym::{ATTRS_COLUMN, PERSONAL_COLUMNS, Pseudonyms};

/// A table whose personal columns are pseudonymised (see the module).
#[derive(Debug)]
pub struct PseudonymTable {
    inner: Arc<dyn TableProvider>,
    pseudonyms: Arc<Pseudonyms>,
}

impl PseudonymTable {
    /// `inner` (of the contract's schema) as an analyst sees it.
    pub fn new(inner: Arc<dyn TableProvider>, pseudonyms: Arc<Pseudonyms>) -> PseudonymTable {
        PseudonymTable { inner, pseudonyms }
    }
}

fn is_personal(name: &str) -> bool {
    PERSONAL_COLUMNS.contains(&name) || name == ATTRS_COLUMN
}

/// Whether `filter` reads no personal column, so the inner scan may prune by it.
fn reads_nothing_personal(filter: &Expr) -> bool {
    !filter.column_refs().iter().any(|c| is_personal(&c.name))
}

#[async_trait]
impl TableProvider for PseudonymTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let inner: Vec<&Expr> = filters
            .iter()
            .copied()
            .filter(|f| reads_nothing_personal(f))
            .collect();
        let mut inner = self.inner.supports_filters_pushdown(&inner)?.into_iter();
        Ok(filters
            .iter()
            .map(|f| match reads_nothing_personal(f) {
                true => inner
                    .next()
                    .unwrap_or(TableProviderFilterPushDown::Unsupported),
                false => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.schema();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..schema.fields().len()).collect(),
        };
        // The inner scan also reads `tenant`, which keys the pseudonyms.
        let mut read = wanted.clone();
        let tenant = schema.index_of("tenant")?;
        if !read.contains(&tenant) && wanted.iter().any(|&i| is_personal(schema.field(i).name())) {
            read.push(tenant);
        }
        let filters: Vec<Expr> = (filters.iter())
            .filter(|f| reads_nothing_personal(f))
            .cloned()
            .collect();
        let input = self.inner.scan(state, Some(&read), &filters, limit).await?;
        let output = Arc::new(schema.project(&wanted)?);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(output.clone()),
            Partitioning::UnknownPartitioning(input.properties().partitioning.partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Arc::new(PseudonymExec {
            input,
            pseudonyms: self.pseudonyms.clone(),
            keep: (0..wanted.len()).collect(),
            output,
            properties: Arc::new(properties),
        }))
    }
}

/// Replaces the personal values of its input's batches by pseudonyms and
/// keeps the first `keep` columns (dropping the `tenant` read for keys).
#[derive(Debug)]
struct PseudonymExec {
    input: Arc<dyn ExecutionPlan>,
    pseudonyms: Arc<Pseudonyms>,
    keep: Vec<usize>,
    output: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for PseudonymExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PseudonymExec: {}", PERSONAL_COLUMNS.join(", "))
    }
}

impl ExecutionPlan for PseudonymExec {
    fn name(&self) -> &str {
        "PseudonymExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(PseudonymExec {
            input: children.swap_remove(0),
            pseudonyms: self.pseudonyms.clone(),
            keep: self.keep.clone(),
            output: self.output.clone(),
            properties: self.properties.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let (pseudonyms, keep) = (self.pseudonyms.clone(), self.keep.clone());
        let batches = input.map(move |batch| Ok(pseudonyms.replace(&batch?)?.project(&keep)?));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.output.clone(),
            batches,
        )))
    }
}
