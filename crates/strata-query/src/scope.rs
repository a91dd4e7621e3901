//! What a session may see: the engine's tenant boundary, and the
//! analyst's pseudonyms.
//!
//! A scoped session is built only from its tenants' data, so no SQL can
//! reach past it: `events` (and the family views over it) plans scans of
//! the scope's files alone and filters the server's buffered rows before
//! any query sees them; `strata_files` lists the same files; `strata_audit`
//! keeps the receipts about the scope's tenants. Nothing depends on a
//! predicate that the optimiser could move or a query could step around:
//! the other tenants' files are not in the session at all. An analyst's
//! session reads every tenant but the server's own, through a scan that
//! replaces personal values by pseudonyms ([`crate::pseudonym`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::error::{DataFusionError, Result};
use strata_schema::SYSTEM_TENANT;

use crate::pseudonym::Pseudonyms;

/// What a session shows.
#[derive(Debug, Clone, Default)]
pub enum Scope {
    /// Every tenant: administrators, auditors and the command line.
    #[default]
    AllTenants,
    /// Only these tenants (a BPO's client). An empty set shows nothing.
    Tenants(Arc<BTreeSet<String>>),
    /// Every tenant's events but the server's own (whose query texts
    /// would name people), personal values replaced by these pseudonyms:
    /// an analyst. No other table.
    Pseudonymised(Arc<Pseudonyms>),
}

impl Scope {
    /// A scope of exactly `tenants`.
    pub fn tenants<I: IntoIterator<Item = S>, S: Into<String>>(tenants: I) -> Scope {
        Scope::Tenants(Arc::new(tenants.into_iter().map(Into::into).collect()))
    }

    /// Whether `tenant`'s rows are in the scope.
    pub fn covers(&self, tenant: &str) -> bool {
        match self {
            Scope::AllTenants => true,
            Scope::Tenants(tenants) => tenants.contains(tenant),
            Scope::Pseudonymised(_) => tenant != SYSTEM_TENANT,
        }
    }

    /// Whether it shows every tenant's raw rows.
    pub fn is_everything(&self) -> bool {
        matches!(self, Scope::AllTenants)
    }

    /// `batch`'s rows of the scope's tenants; `batch` has a `tenant` text
    /// column (the contract's schema).
    pub fn rows_of(&self, batch: RecordBatch) -> Result<RecordBatch> {
        if self.is_everything() {
            return Ok(batch);
        }
        let tenants = batch
            .column_by_name("tenant")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| DataFusionError::Internal("rows without a text `tenant`".into()))?;
        let keep: BooleanArray = tenants
            .iter()
            .map(|t| Some(t.is_some_and(|t| self.covers(t))))
            .collect();
        Ok(filter_record_batch(&batch, &keep)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::UInt64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn only_the_scope_tenants_rows_are_kept() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("tenant", DataType::Utf8, false),
            Field::new("n", DataType::UInt64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "a", "c"])),
                Arc::new(UInt64Array::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap();
        let kept = Scope::tenants(["a", "c"]).rows_of(batch.clone()).unwrap();
        let n = kept
            .column(1)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        assert_eq!(n.values(), &[1, 3, 4]);
        assert_eq!(Scope::AllTenants.rows_of(batch.clone()).unwrap(), batch);
        let none = Scope::tenants(Vec::<String>::new()).rows_of(batch).unwrap();
        assert_eq!(none.num_rows(), 0);
        assert!(!Scope::tenants(["a"]).covers("b"));
        assert!(Scope::AllTenants.covers("b"));
        let analyst = Scope::Pseudonymised(Arc::new(Pseudonyms::new([1; 32])));
        assert!(analyst.covers("b") && !analyst.covers(SYSTEM_TENANT));
    }
}
