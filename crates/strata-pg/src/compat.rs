//! Functions PostgreSQL drivers call that neither DataFusion nor
//! `datafusion-pg-catalog` has, answered as PostgreSQL answers them, and
//! comparisons of its `regproc` columns as drivers write them.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr_fn::SimpleScalarUDF;
use datafusion::logical_expr::{
    ColumnarValue, ScalarUDF, Signature, TypeSignature, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use pgwire::api::Type;

/// Registers them in `ctx`.
pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udf(version());
    ctx.register_udf(to_regtype());
    ctx.register_udf(current_setting());
    ctx.register_udf(pg_size_pretty());
    // psql's `\d+` and `\df`: no column has a comment, every function is
    // visible; sizes, view texts and function signatures are not known (NULL).
    for no_comment in ["col_description", "obj_description", "shobj_description"] {
        ctx.register_udf(any_arguments(no_comment, ScalarValue::Utf8(None)));
    }
    let visible = ScalarValue::Boolean(Some(true));
    ctx.register_udf(any_arguments("pg_function_is_visible", visible));
    for unknown_text in [
        "pg_get_viewdef",
        "pg_get_function_result",
        "pg_get_function_arguments",
    ] {
        ctx.register_udf(any_arguments(unknown_text, ScalarValue::Utf8(None)));
    }
    let sizes = [
        "pg_table_size",
        "pg_total_relation_size",
        "pg_indexes_size",
        "pg_database_size",
    ];
    for unknown_size in sizes {
        ctx.register_udf(any_arguments(unknown_size, ScalarValue::Int64(None)));
    }
}

/// A function of any arguments answering `value`.
pub(crate) fn any_arguments(name: &str, value: ScalarValue) -> ScalarUDF {
    constant(name, Signature::variadic_any(Volatility::Immutable), value)
}

/// A function of `signature` answering `value` whatever its arguments.
fn constant(name: &str, signature: Signature, value: ScalarValue) -> ScalarUDF {
    let data_type = value.data_type();
    let answer = ColumnarValue::Scalar(value);
    ScalarUDF::new_from_impl(SimpleScalarUDF::new_with_signature(
        name,
        signature,
        data_type,
        Arc::new(move |_| Ok(answer.clone())),
    ))
}

/// `pg_size_pretty(bytes)` as PostgreSQL 16 words it (its algorithm and
/// units: bytes below 10 kB, then each unit below 20 480 of it, halved
/// with rounding away from zero).
fn pg_size_pretty() -> ScalarUDF {
    const UNITS: [(&str, u64, bool, u32); 6] = [
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    fn pretty(bytes: i64) -> String {
        let mut size = bytes;
        for (i, &(name, limit, round, bits)) in UNITS.iter().enumerate() {
            let next = UNITS.get(i + 1).filter(|_| size.unsigned_abs() >= limit);
            let Some(&(_, _, next_round, next_bits)) = next else {
                if round {
                    let away = if size < 0 { -1 } else { 1 };
                    size = (size + away) / 2;
                }
                return format!("{size} {name}");
            };
            size /= 1 << (next_bits - bits - u32::from(next_round) + u32::from(round));
        }
        unreachable!("the last unit answers")
    }
    create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args| {
            let sizes = ColumnarValue::values_to_arrays(args)?;
            let sizes = sizes[0].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let text: StringArray = sizes.iter().map(|s| s.map(pretty)).collect();
            Ok(ColumnarValue::Array(Arc::new(text)))
        }),
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
    let nullary = Signature::nullary(Volatility::Immutable);
    constant("version", nullary, ScalarValue::Utf8(Some(text)))
}

/// Server settings drivers read with `current_setting(name)` (SQLAlchemy's
/// table options); any other is NULL, as `current_setting(name, true)`
/// answers for a setting it does not know.
const SETTINGS: &[(&str, &str)] = &[
    ("default_table_access_method", "heap"),
    ("search_path", "\"$user\", public"),
    ("server_version", "16.6"),
    ("server_version_num", "160006"),
    ("standard_conforming_strings", "on"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("default_transaction_read_only", "on"),
];

/// `current_setting(name [, missing_ok])` over [`SETTINGS`].
fn current_setting() -> ScalarUDF {
    let value = |name: Option<&str>| {
        let name = name?.trim().to_lowercase();
        SETTINGS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    };
    ScalarUDF::new_from_impl(SimpleScalarUDF::new_with_signature(
        "current_setting",
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
            ],
            Volatility::Stable,
        ),
        DataType::Utf8,
        Arc::new(move |args| {
            let names = ColumnarValue::values_to_arrays(&args[..1])?;
            let values: StringArray = names[0].as_string::<i32>().iter().map(value).collect();
            Ok(ColumnarValue::Array(Arc::new(values)))
        }),
    ))
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

/// `pg_type`'s columns naming functions (`regproc` in PostgreSQL, where
/// they compare with an OID and display as a name or `-`); the session's
/// `pg_type` keeps them as that text.
const REGPROC_COLUMNS: [&str; 7] = [
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
];

/// `sql` with comparisons of a `regproc` column made text comparisons:
/// `typreceive != 0` (no function, ADBC's type query) becomes
/// `typreceive != '-'`, and `typinput = 'pg_catalog.array_in'::regproc`
/// (DBeaver's) becomes `typinput = 'array_in'`. Other text is kept as is.
pub(crate) fn regproc_comparisons(sql: &str) -> std::borrow::Cow<'_, str> {
    let lower = sql.to_ascii_lowercase();
    if !REGPROC_COLUMNS.iter().any(|c| lower.contains(c)) {
        return sql.into();
    }
    let Ok(mut tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return sql.into();
    };
    let mut changed = false;
    let significant = |tokens: &[Token], from: usize| {
        (from..tokens.len()).find(|&i| !matches!(tokens[i], Token::Whitespace(_)))
    };
    let mut at = 0;
    while at < tokens.len() {
        let is_column = matches!(&tokens[at], Token::Word(w)
            if REGPROC_COLUMNS.contains(&w.value.to_ascii_lowercase().as_str()));
        let operator =
            significant(&tokens, at + 1).filter(|&i| matches!(tokens[i], Token::Eq | Token::Neq));
        let (true, Some(operator)) = (is_column, operator) else {
            at += 1;
            continue;
        };
        let Some(value) = significant(&tokens, operator + 1) else {
            break;
        };
        match tokens[value].clone() {
            Token::Number(n, _) if n == "0" => {
                tokens[value] = Token::SingleQuotedString("-".into());
                changed = true;
            }
            Token::SingleQuotedString(name) => {
                let cast = significant(&tokens, value + 1)
                    .filter(|&i| tokens[i] == Token::DoubleColon)
                    .and_then(|i| significant(&tokens, i + 1))
                    .filter(|&i| {
                        matches!(&tokens[i], Token::Word(w)
                        if w.value.eq_ignore_ascii_case("regproc"))
                    });
                if let Some(end) = cast {
                    let bare = name.rsplit('.').next().unwrap_or(&name).to_string();
                    tokens.splice(value..=end, [Token::SingleQuotedString(bare)]);
                    changed = true;
                }
            }
            _ => {}
        }
        at = value + 1;
    }
    if !changed {
        return sql.into();
    }
    tokens
        .iter()
        .map(Token::to_string)
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_worded_as_postgresql_words_them() {
        let ctx = SessionContext::new();
        ctx.register_udf(pg_size_pretty());
        let sizes = [0_i64, 10239, 10240, 1048576, 10485760, -10485760, 5 << 40];
        let words = [
            "0 bytes",
            "10239 bytes",
            "10 kB",
            "1024 kB",
            "10 MB",
            "-10 MB",
            "5120 GB",
        ];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (size, words) in sizes.into_iter().zip(words) {
            let sql = format!("SELECT pg_size_pretty(CAST({size} AS BIGINT))");
            let batches = runtime.block_on(async { ctx.sql(&sql).await?.collect().await });
            let batches = batches.unwrap();
            assert_eq!(
                batches[0].column(0).as_string::<i32>().value(0),
                words,
                "{size}"
            );
        }
    }

    #[test]
    fn regproc_columns_compare_as_the_text_the_session_keeps() {
        let adbc = "SELECT oid, typname FROM pg_catalog.pg_type WHERE (typreceive != 0 OR \
                    typsend <> 0) AND typtype != 'r' AND typreceive::TEXT != 'array_recv'";
        assert_eq!(
            regproc_comparisons(adbc),
            "SELECT oid, typname FROM pg_catalog.pg_type WHERE (typreceive <> '-' OR \
             typsend <> '-') AND typtype <> 'r' AND typreceive::TEXT <> 'array_recv'"
        );
        let dbeaver =
            "SELECT t.oid FROM pg_type t WHERE t.typinput = 'pg_catalog.array_in'::regproc";
        assert_eq!(
            regproc_comparisons(dbeaver),
            "SELECT t.oid FROM pg_type t WHERE t.typinput = 'array_in'"
        );
        for kept in [
            "SELECT typinput FROM pg_type WHERE oid = 0",
            "SELECT 1 WHERE typsend = 1",
            "SELECT user FROM events WHERE message = 'typreceive != 0'",
        ] {
            assert_eq!(regproc_comparisons(kept), kept);
        }
    }
}
