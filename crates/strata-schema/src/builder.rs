//! Accumulates parsed events into an Arrow record batch of the contract schema.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, MapBuilder, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::contract::{FieldKind, contract};
use crate::event::{Event, Value};

enum Column {
    Timestamp(TimestampMicrosecondBuilder),
    Text(StringBuilder),
    UInt(UInt64Builder),
    Float(Float64Builder),
    Attrs(Box<MapBuilder<StringBuilder, StringBuilder>>),
    /// `ingested_at`: one value for the whole batch, filled in by `finish`.
    System,
}

/// Builds a [`RecordBatch`] of the event schema from parsed events.
pub struct EventBatchBuilder {
    columns: Vec<Column>,
    rows: usize,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        let columns = contract()
            .fields
            .iter()
            .map(|f| match f.kind {
                _ if f.system => Column::System,
                FieldKind::Timestamp => {
                    Column::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
                }
                FieldKind::Tenant | FieldKind::Enum | FieldKind::String | FieldKind::Ip => {
                    Column::Text(StringBuilder::new())
                }
                FieldKind::Uint64 => Column::UInt(UInt64Builder::new()),
                FieldKind::Float64 => Column::Float(Float64Builder::new()),
                FieldKind::Attrs => Column::Attrs(Box::new(MapBuilder::new(
                    None,
                    StringBuilder::new(),
                    StringBuilder::new(),
                ))),
            })
            .collect();
        Self { columns, rows: 0 }
    }

    /// Number of events appended since the last `finish`.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no event is buffered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one event.
    pub fn append(&mut self, event: &Event) {
        for (column, value) in self.columns.iter_mut().zip(&event.values) {
            match (column, value) {
                (Column::System, _) => {}
                (Column::Timestamp(b), Value::Timestamp(v)) => b.append_value(*v),
                (Column::Timestamp(b), _) => b.append_null(),
                (Column::Text(b), Value::Text(v)) => b.append_value(v),
                (Column::Text(b), _) => b.append_null(),
                (Column::UInt(b), Value::UInt(v)) => b.append_value(*v),
                (Column::UInt(b), _) => b.append_null(),
                (Column::Float(b), Value::Float(v)) => b.append_value(*v),
                (Column::Float(b), _) => b.append_null(),
                (Column::Attrs(b), Value::Attrs(entries)) => {
                    for (k, v) in entries {
                        b.keys().append_value(k);
                        b.values().append_value(v);
                    }
                    b.append(true).expect("keys and values have equal length");
                }
                (Column::Attrs(b), _) => {
                    b.append(false).expect("keys and values have equal length")
                }
            }
        }
        self.rows += 1;
    }

    /// Takes the buffered events as a batch, stamping `ingested_at` (UTC microseconds).
    pub fn finish(&mut self, ingested_at: i64) -> Result<RecordBatch, ArrowError> {
        let rows = std::mem::take(&mut self.rows);
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|column| -> ArrayRef {
                match column {
                    Column::Timestamp(b) => Arc::new(b.finish()),
                    Column::Text(b) => Arc::new(b.finish()),
                    Column::UInt(b) => Arc::new(b.finish()),
                    Column::Float(b) => Arc::new(b.finish()),
                    Column::Attrs(b) => Arc::new(b.finish()),
                    Column::System => Arc::new(
                        TimestampMicrosecondArray::from(vec![ingested_at; rows])
                            .with_timezone("UTC"),
                    ),
                }
            })
            .collect();
        RecordBatch::try_new(contract().arrow_schema(), arrays)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_line;
    use arrow::array::{Array, AsArray, MapArray};
    use arrow::datatypes::UInt64Type;

    #[test]
    fn builds_a_batch_matching_the_contract_schema() {
        let lines = [
            r#"{"ts":"2025-01-01T00:00:00Z","tenant":"a","family":"access","action":"login","user":"u1","bytes":7,"attrs":{"k":"v"}}"#,
            r#"{"ts":1000,"tenant":"b","family":"technical","action":"error","severity":"error","duration_ms":2.5}"#,
        ];
        let mut builder = EventBatchBuilder::new();
        for line in lines {
            builder.append(&parse_line(line.as_bytes()).unwrap());
        }
        let batch = builder.finish(123).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), contract().arrow_schema());
        let user = batch.column_by_name("user").unwrap().as_string::<i32>();
        assert_eq!(user.value(0), "u1");
        assert!(user.is_null(1));
        let bytes = batch
            .column_by_name("bytes")
            .unwrap()
            .as_primitive::<UInt64Type>();
        assert_eq!(bytes.value(0), 7);
        assert!(bytes.is_null(1));
        let attrs = batch
            .column_by_name("attrs")
            .unwrap()
            .as_any()
            .downcast_ref::<MapArray>()
            .unwrap();
        assert_eq!(attrs.value(0).len(), 1);
        assert!(attrs.is_null(1));
        assert!(builder.is_empty());
    }
}
