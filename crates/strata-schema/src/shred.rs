//! Shredded attributes: the `attrs` keys frequent in a file stored as text
//! columns of their own (`attrs__<key>`), the rest kept in the map.
//!
//! A file either shreds a key or does not: when it does, every value of that
//! key in the file is in the column and none in the map, so a reader of one
//! column (`attrs['key']` in SQL) or of its statistics sees all of them.
//! [`unshred`] puts the file's rows back into the contract's shape.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, MapArray, MapBuilder, MapFieldNames, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::contract::{contract, text_map_type};

/// Prefix of a shredded attribute's column name: `attrs__channel` holds
/// `attrs['channel']`. Two underscores, not a dot: engines read a dot as a
/// path into a nested column.
pub const SHREDDED_PREFIX: &str = "attrs__";

/// Share of a file's rows, in percent, that must carry a key for it to be
/// shredded. Measured on the storage benchmark's three data sets: at 30%
/// shredding saved 3.5% of the bytes on the one with many keys and cost
/// nothing on the others; at 5% the sparse columns' overhead outweighed it.
pub const SHRED_MIN_PERCENT: usize = 30;

/// Most keys a file shreds: each is a column every reader of the file's
/// footer pays for.
pub const MAX_SHREDDED_KEYS: usize = 32;

/// Whether `key` may become a column: lower-case ASCII letters, digits,
/// `_`, `.` and `-` (OpenTelemetry's `http.method`), at most 64 characters,
/// so that no two keys' columns collide in engines that fold case (Spark,
/// Trino, Athena) and no name needs escaping beyond quotes.
pub fn shreddable(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && (key.bytes()).all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// The column of shredded attribute `key`.
pub fn shredded_column(key: &str) -> String {
    format!("{SHREDDED_PREFIX}{key}")
}

/// The attribute a column holds, if it is a shredded attribute's column.
pub fn shredded_key(column: &str) -> Option<&str> {
    column
        .strip_prefix(SHREDDED_PREFIX)
        .filter(|k| shreddable(k))
}

/// The names of `attrs`' parts in files: those Parquet's specification
/// gives a map (`key_value`, `key`, `value`), which Delta readers (DuckDB's
/// `delta_scan`) look for; the contract's Arrow names are `entries`, `keys`
/// and `values`.
fn file_map_names() -> MapFieldNames {
    MapFieldNames {
        entry: "key_value".into(),
        key: "key".into(),
        value: "value".into(),
    }
}

/// `attrs` as files store it (see [`file_map_names`]).
fn file_attrs_type() -> DataType {
    text_map_type(&file_map_names())
}

/// The schema of a file that shreds `keys`: the contract's columns (`attrs`
/// with Parquet's names for its parts), then one nullable text column per key.
pub fn file_schema(keys: &[String]) -> SchemaRef {
    let contract_schema = contract().arrow_schema();
    let mut fields: Vec<_> = (contract_schema.fields().iter())
        .map(|f| match f.name().as_str() {
            "attrs" => Arc::new(f.as_ref().clone().with_data_type(file_attrs_type())),
            _ => Arc::clone(f),
        })
        .collect();
    fields.extend(
        keys.iter()
            .map(|k| Arc::new(Field::new(shredded_column(k), DataType::Utf8, true))),
    );
    Arc::new(Schema::new_with_metadata(
        fields,
        contract_schema.metadata().clone(),
    ))
}

fn attrs_of(batch: &RecordBatch) -> Result<&MapArray, ArrowError> {
    (batch.column_by_name("attrs").and_then(|c| c.as_map_opt()))
        .ok_or_else(|| ArrowError::SchemaError("the batch has no attrs map".into()))
}

/// The keys to shred in a file whose rows `batch` (of the contract's
/// schema) stands for: shreddable keys on at least [`SHRED_MIN_PERCENT`] of
/// its rows, the most frequent first, at most [`MAX_SHREDDED_KEYS`],
/// returned in name order.
pub fn frequent_keys(batch: &RecordBatch) -> Result<Vec<String>, ArrowError> {
    // foldhash: these maps see every key of every event ingested; SipHash
    // was 1.5% of an ingest's time.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for key in attrs_of(batch)?.keys().as_string::<i32>().iter().flatten() {
        *counts.entry(key).or_default() += 1;
    }
    let rows = batch.num_rows();
    // A key twice in a row counts twice: rare enough not to matter.
    let mut keys: Vec<(usize, &str)> = (counts.into_iter())
        .filter(|(key, count)| shreddable(key) && count * 100 >= rows * SHRED_MIN_PERCENT)
        .map(|(key, count)| (count, key))
        .collect();
    keys.sort_by(|a, b| b.cmp(a));
    keys.truncate(MAX_SHREDDED_KEYS);
    let mut keys: Vec<String> = keys.into_iter().map(|(_, k)| k.to_string()).collect();
    keys.sort();
    Ok(keys)
}

/// A builder of maps named as `names` says (the contract's: `None`).
fn map_builder(
    names: Option<MapFieldNames>,
    rows: usize,
    entries: usize,
) -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::with_capacity(
        names,
        StringBuilder::with_capacity(entries, entries * 8),
        StringBuilder::with_capacity(entries, entries * 16),
        rows,
    )
}

/// `batch` (of the contract's schema) as a file shredding `keys` writes it
/// ([`file_schema`]): each key's values moved from `attrs` into its column.
/// A map left without entries stays an empty map, not null, so that
/// [`unshred`] gives back what was written.
pub fn shred(batch: &RecordBatch, keys: &[String]) -> Result<RecordBatch, ArrowError> {
    let attrs = attrs_of(batch)?;
    let attrs_index = batch.schema().index_of("attrs")?;
    let mut columns = batch.columns().to_vec();
    if keys.is_empty() {
        columns[attrs_index] = arrow::compute::cast(attrs, &file_attrs_type())?;
        return RecordBatch::try_new(file_schema(keys), columns);
    }
    let (names, values) = (
        attrs.keys().as_string::<i32>(),
        attrs.values().as_string::<i32>(),
    );
    let column_of: HashMap<&str, usize> = (keys.iter().enumerate())
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let rows = batch.num_rows();
    let mut shredded: Vec<StringBuilder> = (keys.iter())
        .map(|_| StringBuilder::with_capacity(rows, rows * 8))
        .collect();
    let mut rest = map_builder(Some(file_map_names()), rows, names.len());
    // This row's value of each shredded key; `Some(None)`: a null value.
    let mut row_values: Vec<Option<Option<&str>>> = vec![None; keys.len()];
    for row in 0..rows {
        let (start, end) = (attrs.value_offsets()[row], attrs.value_offsets()[row + 1]);
        for entry in start as usize..end as usize {
            let value = values.is_valid(entry).then(|| values.value(entry));
            match column_of.get(names.value(entry)) {
                // A key repeated in one row: the first value in the column
                // (`attrs['key']` reads the first), the others in the map.
                Some(&column) if row_values[column].is_none() => row_values[column] = Some(value),
                _ => {
                    rest.keys().append_value(names.value(entry));
                    rest.values().append_option(value);
                }
            }
        }
        rest.append(attrs.is_valid(row))?;
        for (builder, value) in shredded.iter_mut().zip(&mut row_values) {
            builder.append_option(value.take().flatten());
        }
    }
    columns[attrs_index] = Arc::new(rest.finish());
    columns.extend((shredded.iter_mut()).map(|builder| Arc::new(builder.finish()) as ArrayRef));
    RecordBatch::try_new(file_schema(keys), columns)
}

/// `attrs` with the shredded columns' values put back: for each row,
/// `(key, value)` for each shredded column not null in that row, then the
/// map's entries. A row is null when its map is and no shredded column has
/// a value. Field names and types are the contract's, whatever the file used.
pub fn merge_attrs(
    attrs: &MapArray,
    shredded: &[(&str, &StringArray)],
) -> Result<MapArray, ArrowError> {
    let (names, values) = (
        attrs.keys().as_string::<i32>(),
        attrs.values().as_string::<i32>(),
    );
    let rows = attrs.len();
    let mut out = map_builder(None, rows, names.len() + shredded.len() * rows);
    for row in 0..rows {
        let mut any = false;
        for (key, column) in shredded {
            if column.is_valid(row) {
                out.keys().append_value(key);
                out.values().append_value(column.value(row));
                any = true;
            }
        }
        let (start, end) = (attrs.value_offsets()[row], attrs.value_offsets()[row + 1]);
        for entry in start as usize..end as usize {
            out.keys().append_value(names.value(entry));
            out.values()
                .append_option(values.is_valid(entry).then(|| values.value(entry)));
        }
        out.append(attrs.is_valid(row) || any)?;
    }
    Ok(out.finish())
}

/// The contract's columns of a batch read from a file (shredding or not),
/// in the contract's order: found by name, `attrs` merged with the shredded
/// columns. Types are the file's, except `attrs` (the contract's).
pub fn unshred(batch: &RecordBatch) -> Result<Vec<ArrayRef>, ArrowError> {
    let schema = batch.schema();
    let shredded: Vec<(&str, &StringArray)> = (schema.fields().iter().zip(batch.columns()))
        .filter_map(|(field, column)| Some((shredded_key(field.name())?, column)))
        .map(|(key, column)| {
            let text = column.as_string_opt::<i32>().ok_or_else(|| {
                ArrowError::SchemaError(format!("{}{key} is not text", SHREDDED_PREFIX))
            })?;
            Ok((key, text))
        })
        .collect::<Result<_, ArrowError>>()?;
    (contract().arrow_schema().fields().iter())
        .map(|field| {
            let column = batch.column_by_name(field.name()).ok_or_else(|| {
                ArrowError::SchemaError(format!("the file has no column {}", field.name()))
            })?;
            match field.name().as_str() {
                "attrs" => Ok(Arc::new(merge_attrs(attrs_of(batch)?, &shredded)?) as ArrayRef),
                _ => Ok(Arc::clone(column)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventBatchBuilder, parse_line};
    use proptest::prelude::*;

    fn batch(attrs: &[Option<&str>]) -> RecordBatch {
        let mut builder = EventBatchBuilder::new();
        for (i, attrs) in attrs.iter().enumerate() {
            let attrs = attrs.map_or(String::new(), |a| format!(r#","attrs":{a}"#));
            let line =
                format!(r#"{{"ts":{i},"tenant":"t","family":"access","action":"x"{attrs}}}"#);
            builder.append(&parse_line(line.as_bytes()).unwrap());
        }
        builder.finish(1).unwrap()
    }

    /// Each row's attributes, order aside.
    fn entries(batch: &RecordBatch) -> Vec<Option<Vec<(String, String)>>> {
        let attrs = attrs_of(batch).unwrap();
        (0..batch.num_rows())
            .map(|row| {
                attrs.is_valid(row).then(|| {
                    let entry = attrs.value(row);
                    let (k, v) = (entry.column(0).as_string::<i32>(), entry.column(1));
                    let v = v.as_string::<i32>();
                    let mut pairs: Vec<_> = (0..entry.len())
                        .map(|i| (k.value(i).to_string(), v.value(i).to_string()))
                        .collect();
                    pairs.sort();
                    pairs
                })
            })
            .collect()
    }

    #[test]
    fn frequent_well_named_keys_are_chosen() {
        let b = batch(&[
            Some(r#"{"a":"1","Big":"x","b":"2","dup":"1","dup":"2"}"#),
            Some(r#"{"a":"2","Big":"y","c":"3"}"#),
            Some(r#"{"a":"3","Big":"z"}"#),
            None,
        ]);
        // a: 3 of 4 rows; dup: twice in one row; b, c: 1 of 4 (under 30%); Big: not lower-case.
        let keys = frequent_keys(&b).unwrap();
        assert_eq!(keys, ["a", "dup"]);
        // A repeated key keeps its first value in the column, the other in the map.
        let file = shred(&b, &keys).unwrap();
        let dup = file
            .column_by_name("attrs__dup")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(dup.value(0), "1");
        let back =
            RecordBatch::try_new(contract().arrow_schema(), unshred(&file).unwrap()).unwrap();
        assert_eq!(entries(&back), entries(&b));
    }

    #[test]
    fn shredding_moves_values_and_unshredding_brings_them_back() {
        let b = batch(&[
            Some(r#"{"a":"1","z":"q"}"#),
            Some(r#"{"a":"2"}"#),
            Some("{}"),
            None,
            Some(r#"{"z":"r"}"#),
        ]);
        let keys = vec!["a".to_string()];
        let file = shred(&b, &keys).unwrap();
        assert_eq!(file.schema(), file_schema(&keys));
        let a = file.column_by_name("attrs__a").unwrap().as_string::<i32>();
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [Some("1"), Some("2"), None, None, None]
        );
        // The map keeps only the rest; a row whose keys all moved keeps an empty map.
        let rest = entries(&file);
        assert_eq!(rest[1], Some(vec![]));
        assert_eq!(rest[3], None);
        assert_eq!(rest[0], Some(vec![("z".into(), "q".into())]));
        let back =
            RecordBatch::try_new(contract().arrow_schema(), unshred(&file).unwrap()).unwrap();
        assert_eq!(entries(&back), entries(&b));
    }

    proptest! {
        #[test]
        fn unshred_inverts_shred_for_any_attributes(
            rows in prop::collection::vec(
                prop::option::of(prop::collection::btree_map("[a-c]{1,2}", "\\PC{0,4}", 0..4)),
                1..20,
            ),
            skip in 0usize..3,
        ) {
            let json: Vec<Option<String>> = rows
                .iter()
                .map(|r| r.as_ref().map(|m| serde_json::to_string(m).unwrap()))
                .collect();
            let b = batch(&json.iter().map(|j| j.as_deref()).collect::<Vec<_>>());
            let keys = frequent_keys(&b).unwrap();
            let file = shred(&b, &keys).unwrap();
            let back = RecordBatch::try_new(contract().arrow_schema(), unshred(&file).unwrap()).unwrap();
            prop_assert_eq!(entries(&back), entries(&b));
            // A slice (a merge writes slices of the batches it reads): its
            // map's entries start past the first.
            let skip = skip.min(b.num_rows() - 1);
            let part = b.slice(skip, b.num_rows() - skip);
            let file = shred(&part, &keys).unwrap();
            let back = RecordBatch::try_new(contract().arrow_schema(), unshred(&file).unwrap()).unwrap();
            prop_assert_eq!(entries(&back), entries(&part));
        }
    }
}
