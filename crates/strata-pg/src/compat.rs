//! Functions PostgreSQL drivers call that neither DataFusion nor
//! `datafusion-pg-catalog` has, answered as PostgreSQL answers them.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int32Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use pgwire::api::Type;

/// Registers them in `ctx`.
pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udf(version());
    ctx.register_udf(to_regtype());
}

/// A function of `args` answering `value` whatever they are.
fn constant(name: &str, args: Vec<DataType>, value: ScalarValue) -> ScalarUDF {
    let data_type = value.data_type();
    let answer = ColumnarValue::Scalar(value);
    create_udf(
        name,
        args,
        data_type,
        Volatility::Immutable,
        Arc::new(move |_| Ok(answer.clone())),
    )
}

/// `version()` as PostgreSQL words it: drivers (SQLAlchemy, JDBC) read the
/// server's version from its start.
fn version() -> ScalarUDF {
    let text = format!(
        "PostgreSQL 16.6 (Strata {}, Apache DataFusion {})",
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION
    );
    constant("version", vec![], ScalarValue::Utf8(Some(text)))
}

/// `to_regtype(name)`: the OID of a built-in type named `name`, or NULL
/// (psycopg asks it for the types it adapts, such as `hstore`).
fn to_regtype() -> ScalarUDF {
    const KNOWN: &[Type] = &[
        Type::BOOL,
        Type::BYTEA,
        Type::CHAR,
        Type::NAME,
        Type::INT8,
        Type::INT2,
        Type::INT4,
        Type::TEXT,
        Type::OID,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::VARCHAR,
        Type::DATE,
        Type::TIME,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::INTERVAL,
        Type::NUMERIC,
        Type::UUID,
        Type::JSON,
        Type::JSONB,
        Type::INET,
    ];
    let oid = |name: Option<&str>| {
        let name = name?.trim().to_lowercase();
        let found = KNOWN.iter().find(|t| t.name() == name);
        found.map(|t| t.oid() as i32)
    };
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(move |args| {
            let names = ColumnarValue::values_to_arrays(args)?;
            let oids: Int32Array = names[0].as_string::<i32>().iter().map(oid).collect();
            Ok(ColumnarValue::Array(Arc::new(oids)))
        }),
    )
}
