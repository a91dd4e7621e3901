//! Accumulates parsed events into an Arrow record batch of the contract schema.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, MapBuilder, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::contract::{FieldKind, contract};
use crate::event::{Event, Value};

enum Column {
    Timestamp(TimestampMicrosecondBuilder),
    Text(StringBuilder),
    Count(Int64Builder),
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

/// What one column's values of a set of events take: text bytes (map keys'
/// bytes for `attrs`), and for `attrs` the entries and their values' bytes.
#[derive(Debug, Default, Clone, Copy)]
struct ColumnSize {
    text_bytes: usize,
    entries: usize,
    value_bytes: usize,
}

impl EventBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::with_capacity(0, &[])
    }

    /// The batch of `events`, in order, stamped with `ingested_at`, each
    /// buffer allocated once at its final size: no growth and no copy on
    /// the way, and no unused capacity kept in the batch.
    pub fn batch_of(events: &[&Event], ingested_at: i64) -> Result<RecordBatch, ArrowError> {
        let mut sizes = vec![ColumnSize::default(); contract().fields.len()];
        for event in events {
            for (size, value) in sizes.iter_mut().zip(&event.values) {
                match value {
                    Value::Text(text) => size.text_bytes += text.len(),
                    Value::Attrs(entries) => {
                        size.entries += entries.len();
                        for (key, value) in entries {
                            size.text_bytes += key.len();
                            size.value_bytes += value.len();
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut builder = Self::with_capacity(events.len(), &sizes);
        for event in events {
            builder.append(event);
        }
        builder.finish(ingested_at)
    }

    /// A builder with room for `rows` events whose columns take `sizes`
    /// (missing sizes count as empty).
    fn with_capacity(rows: usize, sizes: &[ColumnSize]) -> Self {
        let columns = contract()
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let size = sizes.get(i).copied().unwrap_or_default();
                match f.kind {
                    _ if f.system => Column::System,
                    FieldKind::Timestamp => Column::Timestamp(
                        TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
                    ),
                    FieldKind::Tenant | FieldKind::Enum | FieldKind::String | FieldKind::Ip => {
                        Column::Text(StringBuilder::with_capacity(rows, size.text_bytes))
                    }
                    FieldKind::Count => Column::Count(Int64Builder::with_capacity(rows)),
                    FieldKind::Float64 => Column::Float(Float64Builder::with_capacity(rows)),
                    FieldKind::Attrs => Column::Attrs(Box::new(MapBuilder::with_capacity(
                        None,
                        StringBuilder::with_capacity(size.entries, size.text_bytes),
                        StringBuilder::with_capacity(size.entries, size.value_bytes),
                        rows,
                    ))),
                }
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
                (Column::Count(b), Value::Count(v)) => b.append_value(*v),
                (Column::Count(b), _) => b.append_null(),
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
                    Column::Count(b) => Arc::new(b.finish()),
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
    use arrow::datatypes::Int64Type;

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
            .as_primitive::<Int64Type>();
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

    #[test]
    fn a_batch_built_at_its_final_size_holds_the_same_rows_and_no_spare_room() {
        let lines = [
            r#"{"ts":"2025-01-01T00:00:00Z","tenant":"acme","family":"access","action":"login","user":"u1","message":"hello there","attrs":{"k":"v","long key":"long value"}}"#,
            r#"{"ts":1000,"tenant":"b","family":"technical","action":"error","severity":"error","duration_ms":2.5}"#,
            r#"{"ts":2000,"tenant":"b","family":"data_usage","action":"export","bytes":7,"shift":"night","attrs":{}}"#,
        ];
        let events: Vec<Event> = (0..40)
            .flat_map(|_| lines)
            .map(|l| parse_line(l.as_bytes()).unwrap())
            .collect();
        let mut builder = EventBatchBuilder::new();
        events.iter().for_each(|e| builder.append(e));
        let grown = builder.finish(5).unwrap();
        let sized = EventBatchBuilder::batch_of(&events.iter().collect::<Vec<_>>(), 5).unwrap();
        assert_eq!(sized, grown);
        // Room beyond what each text column holds, past MutableBuffer's
        // 64-byte rounding: none at the final size, some after growing.
        let spare = |batch: &RecordBatch| -> usize {
            let texts = batch
                .columns()
                .iter()
                .filter_map(|c| c.as_string_opt::<i32>());
            texts
                .map(|text| {
                    let values = text.values();
                    values
                        .capacity()
                        .saturating_sub(values.len().next_multiple_of(64))
                })
                .sum()
        };
        assert_eq!(spare(&sized), 0);
        assert!(
            spare(&grown) > 0,
            "the growing builder should over-allocate here"
        );
    }
}
