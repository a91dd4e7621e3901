//! Reading files that shred `attrs` (see `strata_schema::shred`).
//!
//! DataFusion plans `attrs['key']` as `get_field(attrs, 'key')` and pushes it
//! into the Parquet scan, which rewrites every projected and filtering
//! expression for each file through a [`PhysicalExprAdapter`]. Ours turns
//! `get_field(attrs, 'key')` into the file's `attrs__key` column when the
//! file shreds `key` (so only that column, with its statistics, is read), and
//! a bare `attrs` into [`merge_attrs`] of the map and the shredded columns.
//! Files that do not shred `key` keep the map lookup.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::functions::core::getfield::GetFieldFunc;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{Column, Literal, lit};
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};
use datafusion::physical_plan::PhysicalExpr;
use strata_schema::contract;
use strata_schema::shred::{shredded_column, shredded_key};

/// The adapter factory of scans of the archive's files.
#[derive(Debug, Default)]
pub struct ShreddedAttrs;

impl PhysicalExprAdapterFactory for ShreddedAttrs {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let keys: Vec<String> = (physical_file_schema.fields().iter())
            .filter_map(|f| shredded_key(f.name()).map(String::from))
            .collect();
        if keys.is_empty() {
            return DefaultPhysicalExprAdapterFactory
                .create(logical_file_schema, physical_file_schema);
        }
        // The shredded columns, as text, join the logical schema so that the
        // default adapter resolves them (and casts the file's type if it differs).
        let mut fields: Vec<_> = logical_file_schema.fields().iter().cloned().collect();
        fields.extend(
            keys.iter()
                .map(|k| Arc::new(Field::new(shredded_column(k), DataType::Utf8, true))),
        );
        let logical = Arc::new(Schema::new(fields));
        Ok(Arc::new(ShreddedAttrsAdapter {
            keys,
            inner: DefaultPhysicalExprAdapterFactory
                .create(Arc::clone(&logical), physical_file_schema)?,
            logical,
        }))
    }
}

/// The adapter of one file that shreds `keys`.
#[derive(Debug)]
struct ShreddedAttrsAdapter {
    keys: Vec<String>,
    /// The table's columns, then the shredded ones.
    logical: SchemaRef,
    inner: Arc<dyn PhysicalExprAdapter>,
}

impl ShreddedAttrsAdapter {
    fn column(&self, name: &str) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Column::new(name, self.logical.index_of(name)?)))
    }

    /// The key `get_field(attrs, 'key')` reads, if `expr` is that.
    fn attrs_lookup(expr: &dyn PhysicalExpr) -> Option<&str> {
        let get_field = ScalarFunctionExpr::try_downcast_func::<GetFieldFunc>(expr)?;
        let [source, key] = get_field.args() else {
            return None;
        };
        let column = source.downcast_ref::<Column>()?;
        let key = key.downcast_ref::<Literal>()?.value().try_as_str()??;
        (column.name() == "attrs").then_some(key)
    }

    /// `merge_attrs(attrs, 'key1', attrs__key1, …)`.
    fn merged(&self, attrs: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        let mut args = vec![attrs];
        for key in &self.keys {
            args.push(lit(key.as_str()));
            args.push(self.column(&shredded_column(key))?);
        }
        Ok(Arc::new(ScalarFunctionExpr::try_new(
            merge_attrs(),
            args,
            &self.logical,
            Arc::new(ConfigOptions::default()),
        )?))
    }
}

impl PhysicalExprAdapter for ShreddedAttrsAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        let rewritten = expr
            .transform_down(|expr| {
                if let Some(key) = Self::attrs_lookup(expr.as_ref()) {
                    return match self.keys.iter().any(|k| k == key) {
                        true => Ok(Transformed::yes(self.column(&shredded_column(key))?)),
                        // Every value of a key the file does not shred is in the map.
                        false => Ok(Transformed::new(expr, false, TreeNodeRecursion::Jump)),
                    };
                }
                match expr.downcast_ref::<Column>() {
                    // The merge's own `attrs` must not be merged again.
                    Some(column) if column.name() == "attrs" => Ok(Transformed::new(
                        self.merged(Arc::clone(&expr))?,
                        true,
                        TreeNodeRecursion::Jump,
                    )),
                    _ => Ok(Transformed::no(expr)),
                }
            })
            .data()?;
        self.inner.rewrite(rewritten)
    }
}

/// `merge_attrs(attrs, key1, value1, …)`: the contract's `attrs` with each
/// non-null `value_i` put back under `key_i` (see `strata_schema::shred::merge_attrs`).
pub fn merge_attrs() -> Arc<ScalarUDF> {
    static UDF: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::new_from_impl(MergeAttrs::default())));
    UDF.clone()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MergeAttrs {
    signature: Signature,
}

impl Default for MergeAttrs {
    fn default() -> Self {
        MergeAttrs {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MergeAttrs {
    fn name(&self) -> &str {
        "merge_attrs"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(contract()
            .arrow_schema()
            .field_with_name("attrs")?
            .data_type()
            .clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some((attrs, shredded)) = args.args.split_first() else {
            return exec_err!("merge_attrs takes attrs, then keys and their values");
        };
        let attrs = attrs.to_array(rows)?;
        let Some(map) = attrs.as_map_opt() else {
            return exec_err!("merge_attrs takes a map, not {}", attrs.data_type());
        };
        let mut columns: Vec<(String, ArrayRef)> = Vec::new();
        for pair in shredded.chunks(2) {
            let [ColumnarValue::Scalar(ScalarValue::Utf8(Some(key))), values] = pair else {
                return exec_err!("merge_attrs takes text keys, each with its values");
            };
            let values = values.to_array(rows)?;
            columns.push((
                key.clone(),
                datafusion::arrow::compute::cast(&values, &DataType::Utf8)?,
            ));
        }
        let shredded: Vec<(&str, &_)> = (columns.iter())
            .map(|(key, values)| (key.as_str(), values.as_string::<i32>()))
            .collect();
        let merged = strata_schema::shred::merge_attrs(map, &shredded)?;
        Ok(ColumnarValue::Array(Arc::new(merged)))
    }
}
