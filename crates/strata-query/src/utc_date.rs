//! `CAST(ts AS DATE)` on UTC timestamps, without a time-zone lookup per value.
//!
//! Arrow casts a zoned timestamp to a date through chrono-tz for every value,
//! even when the zone is UTC: a fifth of a year-long daily count went there
//! (see `benches/README.md`). A UTC (or zone-less) timestamp's day is a floor
//! division, so the analyzer rewrites such casts to [`utc_date`], which does
//! exactly that. Casts from other zones keep Arrow's path.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Date32Array};
use datafusion::arrow::datatypes::{
    DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// Rewrites `CAST(x AS DATE)`, where `x` is a UTC or zone-less timestamp,
/// into `utc_date(x)`; register with `SessionContext::register_function_rewrite`.
#[derive(Debug)]
pub struct UtcDateRewrite;

impl FunctionRewrite for UtcDateRewrite {
    fn name(&self) -> &str {
        "utc_date"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        let Expr::Cast(Cast { expr: input, field }) = &expr else {
            return Ok(Transformed::no(expr));
        };
        if field.data_type() != &DataType::Date32 {
            return Ok(Transformed::no(expr));
        }
        match input.get_type(schema)? {
            DataType::Timestamp(_, zone) if zone.as_deref().is_none_or(is_utc) => {
                Ok(Transformed::yes(utc_date().call(vec![*input.clone()])))
            }
            _ => Ok(Transformed::no(expr)),
        }
    }
}

/// Spellings of UTC that Arrow parses (`Tz::from_str`: a zero offset, or a
/// chrono-tz name). Zones Arrow rejects stay with its cast, and its error.
fn is_utc(zone: &str) -> bool {
    matches!(zone, "UTC" | "Etc/UTC" | "+00:00" | "+0000" | "+00")
}

/// `utc_date(ts)`: the UTC calendar day of a timestamp, as a `DATE`.
pub fn utc_date() -> Arc<ScalarUDF> {
    static UDF: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::new_from_impl(UtcDate::default())));
    UDF.clone()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct UtcDate {
    signature: Signature,
}

impl Default for UtcDate {
    fn default() -> Self {
        UtcDate {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for UtcDate {
    fn name(&self) -> &str {
        "utc_date"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [input] = args.args.as_slice() else {
            return exec_err!("utc_date takes one timestamp");
        };
        match input {
            ColumnarValue::Array(array) => Ok(ColumnarValue::Array(Arc::new(days(array)?))),
            ColumnarValue::Scalar(scalar) => {
                let day = days(&scalar.to_array()?)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&day, 0)?))
            }
        }
    }
}

/// Each timestamp's day since 1970-01-01, rounding down (so before 1970 too).
fn days(array: &dyn Array) -> Result<Date32Array> {
    let DataType::Timestamp(unit, _) = array.data_type() else {
        return exec_err!("utc_date takes a timestamp, not {}", array.data_type());
    };
    let per_day: i64 = match unit {
        TimeUnit::Second => 86_400,
        TimeUnit::Millisecond => 86_400_000,
        TimeUnit::Microsecond => 86_400_000_000,
        TimeUnit::Nanosecond => 86_400_000_000_000,
    };
    let day = |v: i64| {
        i32::try_from(v.div_euclid(per_day)).map_err(|_| {
            datafusion::arrow::error::ArrowError::CastError(format!(
                "timestamp {v} ({unit:?}) is out of the DATE range"
            ))
        })
    };
    Ok(match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().try_unary(day)?,
        TimeUnit::Millisecond => array
            .as_primitive::<TimestampMillisecondType>()
            .try_unary(day)?,
        TimeUnit::Microsecond => array
            .as_primitive::<TimestampMicrosecondType>()
            .try_unary(day)?,
        TimeUnit::Nanosecond => array
            .as_primitive::<TimestampNanosecondType>()
            .try_unary(day)?,
    })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ArrayRef, TimestampMicrosecondArray, TimestampSecondArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::Field;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::execution::FunctionRegistry;
    use datafusion::prelude::SessionContext;
    use proptest::prelude::*;

    use super::*;

    /// Arrow's own cast, the reference `days` must agree with.
    fn arrow_days(array: &dyn Array) -> Date32Array {
        cast(array, &DataType::Date32)
            .expect("arrow casts")
            .as_primitive()
            .clone()
    }

    proptest! {
        #[test]
        fn agrees_with_arrow_for_utc_and_naive_timestamps(
            // Years 1500 to 2500, around the day boundaries too.
            values in proptest::collection::vec(-15_000_000_000_000_000i64..16_700_000_000_000_000, 1..50),
        ) {
            let utc = TimestampMicrosecondArray::from(values.clone()).with_timezone("UTC");
            prop_assert_eq!(days(&utc).unwrap(), arrow_days(&utc));
            let naive = TimestampMicrosecondArray::from(values);
            prop_assert_eq!(days(&naive).unwrap(), arrow_days(&naive));
        }
    }

    #[test]
    fn every_utc_spelling_is_utc_to_arrow() {
        use datafusion::arrow::array::timezone::Tz;
        use datafusion::arrow::array::types::TimestampMicrosecondType as Micros;
        use datafusion::arrow::temporal_conversions::as_datetime_with_timezone;
        // Noon on 1 January and 1 July: a zone with summer time differs on one.
        for zone in ["UTC", "Etc/UTC", "+00:00", "+0000", "+00"] {
            assert!(is_utc(zone));
            let tz: Tz = zone.parse().unwrap();
            for micros in [1_704_110_400_000_000, 1_719_835_200_000_000] {
                let local = as_datetime_with_timezone::<Micros>(micros, tz).unwrap();
                assert_eq!(
                    local.naive_local().and_utc().timestamp_micros(),
                    micros,
                    "{zone}"
                );
            }
        }
        assert!(!is_utc("Europe/London") && !is_utc("Z") && !is_utc("utc"));
    }

    #[test]
    fn rounds_down_before_1970_and_keeps_nulls() {
        let array = TimestampSecondArray::from(vec![Some(-1), None, Some(86_399), Some(86_400)]);
        assert_eq!(
            days(&array).unwrap(),
            Date32Array::from(vec![Some(-1), None, Some(0), Some(1)])
        );
        let huge = TimestampSecondArray::from(vec![i64::MAX]);
        let error = days(&huge).unwrap_err().to_string();
        assert!(error.contains("out of the DATE range"), "{error}");
    }

    #[tokio::test]
    async fn only_utc_casts_are_rewritten_and_answers_keep_their_names() {
        let mut ctx = SessionContext::new();
        ctx.register_function_rewrite(Arc::new(UtcDateRewrite))
            .unwrap();
        let zoned = |zone: &str| {
            let values =
                TimestampMicrosecondArray::from(vec![1_700_000_000_000_000, 1_699_999_000_000_000]);
            Arc::new(values.with_timezone(zone)) as ArrayRef
        };
        let batch =
            RecordBatch::try_from_iter([("utc", zoned("UTC")), ("tokyo", zoned("Asia/Tokyo"))])
                .unwrap();
        ctx.register_batch("t", batch).unwrap();
        let frame = ctx
            .sql("SELECT CAST(utc AS DATE), CAST(tokyo AS DATE) AS local FROM t")
            .await
            .unwrap();
        let plan = format!(
            "{}",
            frame
                .clone()
                .into_optimized_plan()
                .unwrap()
                .display_indent()
        );
        assert!(plan.contains("utc_date(t.utc)"), "{plan}");
        assert!(!plan.contains("utc_date(t.tokyo)"), "{plan}");
        let batches = frame.collect().await.unwrap();
        let schema = batches[0].schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["t.utc", "local"]);
        assert_eq!(
            schema.field(0),
            &Field::new("t.utc", DataType::Date32, true)
        );
        // 2023-11-14 22:13:20 UTC is already the 15th in Tokyo.
        assert_eq!(
            batches[0]
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                .values(),
            &[19675, 19675]
        );
        assert_eq!(
            batches[0]
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                .values(),
            &[19676, 19676]
        );
    }
}
