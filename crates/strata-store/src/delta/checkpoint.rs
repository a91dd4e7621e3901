//! Delta checkpoints: the whole table as of a version in one Parquet file,
//! so that readers of a long log read it and the few versions after it.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use super::DELTA_LOG_PREFIX;
use super::actions::{self, Add, MetaData, Protocol, millis};
use crate::catalog::{CatalogError, Entry, Snapshot};

/// A checkpoint is written at every version that is a multiple of this.
pub const CHECKPOINT_INTERVAL: u64 = 100;

/// Where the checkpoint of version `version` is stored.
pub fn delta_checkpoint_path(version: u64) -> Path {
    Path::from(format!(
        "{DELTA_LOG_PREFIX}/{version:020}.checkpoint.parquet"
    ))
}

fn text() -> Field {
    Field::new("x", DataType::Utf8, true)
}

fn named(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// `map<string, string>` as Spark and delta-rs write it in checkpoints.
fn string_map(name: &str) -> Field {
    let entries = Fields::from(vec![
        named("key", DataType::Utf8, false),
        named("value", DataType::Utf8, true),
    ]);
    let entry = Field::new("key_value", DataType::Struct(entries), false);
    named(name, DataType::Map(Arc::new(entry), false), true)
}

fn strukt(name: &str, fields: Vec<Field>) -> Field {
    named(name, DataType::Struct(Fields::from(fields)), true)
}

/// The checkpoint schema of the Delta protocol, for the actions strata writes.
fn checkpoint_schema() -> SchemaRef {
    let string = |name: &str| text().with_name(name);
    let long = |name: &str| named(name, DataType::Int64, true);
    let flag = |name: &str| named(name, DataType::Boolean, true);
    let partition_values = string_map("partitionValues");
    Arc::new(Schema::new(vec![
        strukt(
            "add",
            vec![
                string("path"),
                partition_values.clone(),
                long("size"),
                long("modificationTime"),
                flag("dataChange"),
                string("stats"),
                string_map("tags"),
            ],
        ),
        strukt(
            "remove",
            vec![
                string("path"),
                long("deletionTimestamp"),
                flag("dataChange"),
                flag("extendedFileMetadata"),
                partition_values,
                long("size"),
            ],
        ),
        strukt(
            "metaData",
            vec![
                string("id"),
                string("name"),
                string("description"),
                strukt("format", vec![string("provider"), string_map("options")]),
                string("schemaString"),
                named(
                    "partitionColumns",
                    DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
                    true,
                ),
                string_map("configuration"),
                long("createdTime"),
            ],
        ),
        strukt(
            "protocol",
            vec![
                named("minReaderVersion", DataType::Int32, true),
                named("minWriterVersion", DataType::Int32, true),
            ],
        ),
    ]))
}

/// One row of a checkpoint: exactly one action.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Row {
    Add(Add),
    MetaData(MetaData),
    Protocol(Protocol),
}

/// The checkpoint of the table as of `after` (the state after the entry of
/// the checkpoint's version), with the metadata derived from the first
/// entry (`first`, hashing to `first_hash`), and its number of actions.
pub fn checkpoint_bytes(
    first: &Entry,
    first_hash: &str,
    after: &Snapshot,
) -> Result<(Vec<u8>, u64), CatalogError> {
    let mut rows = vec![
        Row::Protocol(actions::PROTOCOL),
        Row::MetaData(actions::metadata(first, first_hash, after)),
    ];
    // A file's modification time is that of the entry that added it; the
    // state keeps no such time, so a checkpoint gives the table's creation.
    let created = millis(&first.committed_at);
    rows.extend((after.visible_files()).map(|file| Row::Add(actions::add(file, created, false))));
    let count = rows.len() as u64;
    let schema = checkpoint_schema();
    let encode = |rows: &[Row]| -> Result<Vec<u8>, String> {
        let mut decoder = arrow::json::ReaderBuilder::new(schema.clone())
            .with_batch_size(rows.len() + 1)
            .build_decoder()
            .map_err(|e| e.to_string())?;
        decoder.serialize(rows).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut out, schema.clone(), None).map_err(|e| e.to_string())?;
        while let Some(batch) = decoder.flush().map_err(|e| e.to_string())? {
            writer.write(&batch).map_err(|e| e.to_string())?;
        }
        writer.close().map_err(|e| e.to_string())?;
        Ok(out)
    };
    let bytes = encode(&rows).map_err(|reason| CatalogError::Inconsistent {
        seq: after.seq,
        reason: format!("cannot encode its Delta checkpoint: {reason}"),
    })?;
    Ok((bytes, count))
}

/// Whether the stored checkpoint `stored` holds the same actions as
/// `expected` (as [`checkpoint_bytes`] makes them). Compared decoded, not
/// byte for byte: a later Parquet writer may lay out the same rows differently.
pub fn same_checkpoint(stored: bytes::Bytes, expected: Vec<u8>) -> bool {
    let decode = |bytes: bytes::Bytes| -> Option<arrow::array::RecordBatch> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .ok()?
            .build()
            .ok()?;
        let batches = reader.collect::<Result<Vec<_>, _>>().ok()?;
        arrow::compute::concat_batches(&checkpoint_schema(), &batches).ok()
    };
    match (decode(stored), decode(expected.into())) {
        (Some(stored), Some(expected)) => stored.columns() == expected.columns(),
        _ => false,
    }
}
