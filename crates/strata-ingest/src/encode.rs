//! Encoding a batch of one partition as a sorted, zstd-compressed Parquet file.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::{SortOptions, sort_to_indices, take_record_batch};
use arrow::datatypes::TimestampMicrosecondType;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use strata_schema::{TS_COLUMN, contract};
use strata_store::{FileMeta, PartitionKey, data_file_path, sha256_hex};

/// zstd level of freshly ingested files: fast, and about as small as level 9 on sorted logs.
pub const ZSTD_LEVEL_DEFAULT: i32 = 3;

const ROW_GROUP_ROWS: usize = 1 << 20;

/// How a new file is encrypted: its properties (data key and wrapped key
/// metadata) and the tenant master key version that wraps the data key.
pub type Encryption = (Arc<FileEncryptionProperties>, u32);

fn writer_properties(
    zstd_level: i32,
    encryption: Option<Arc<FileEncryptionProperties>>,
) -> Result<WriterProperties, ParquetError> {
    let ts_index = contract().index_of(TS_COLUMN).expect("contract has ts") as i32;
    let ts = ColumnPath::from(TS_COLUMN);
    let builder = match encryption {
        Some(encryption) => WriterProperties::builder().with_file_encryption_properties(encryption),
        None => WriterProperties::builder(),
    };
    Ok(builder
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(zstd_level)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_dictionary_enabled(ts.clone(), false)
        .set_column_encoding(ts, Encoding::DELTA_BINARY_PACKED)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: ts_index,
            descending: false,
            nulls_first: false,
        }]))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "strata.contract".to_string(),
            format!("{} v{}", contract().name, contract().version),
        )]))
        .build())
}

/// Sorts `batches` (all of partition `key`) by `ts` and encodes them as one
/// Parquet file, encrypted if asked; returns its bytes and its catalog record.
pub fn encode_sorted(
    key: &PartitionKey,
    batches: &[RecordBatch],
    zstd_level: i32,
    encryption: Option<Encryption>,
) -> Result<(Bytes, FileMeta), ParquetError> {
    let batch = arrow::compute::concat_batches(&contract().arrow_schema(), batches)?;
    let ts = batch.column(contract().index_of(TS_COLUMN).expect("contract has ts"));
    let order = sort_to_indices(
        ts,
        Some(SortOptions {
            descending: false,
            nulls_first: false,
        }),
        None,
    )?;
    let sorted = take_record_batch(&batch, &order)?;
    let ts = sorted.column(0).as_primitive::<TimestampMicrosecondType>();
    let (min_ts, max_ts) = match ts.len() {
        0 => (0, 0),
        n => (ts.value(0), ts.value(n - 1)),
    };

    let mut buffer = Vec::with_capacity(sorted.get_array_memory_size() / 8);
    let mut writer = ArrowWriter::try_new(
        &mut buffer,
        sorted.schema(),
        Some(writer_properties(
            zstd_level,
            encryption
                .as_ref()
                .map(|(properties, _)| properties.clone()),
        )?),
    )?;
    writer.write(&sorted)?;
    writer.close()?;

    let meta = FileMeta {
        path: data_file_path(key),
        tenant: key.tenant.clone(),
        family: key.family.to_string(),
        month: key.month_label(),
        size: buffer.len() as u64,
        sha256: sha256_hex(&buffer),
        rows: sorted.num_rows() as u64,
        min_ts,
        max_ts,
        location: None,
        key_version: encryption.map(|(_, version)| version),
    };
    Ok((Bytes::from(buffer), meta))
}

/// Decodes a whole Parquet file held in memory, decrypting it if needed.
pub fn read_file(
    bytes: Bytes,
    decryption: Option<Arc<FileDecryptionProperties>>,
) -> Result<Vec<RecordBatch>, ParquetError> {
    let options = match decryption {
        Some(decryption) => ArrowReaderOptions::new().with_file_decryption_properties(decryption),
        None => ArrowReaderOptions::new(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)?
        .with_batch_size(64 * 1024)
        .build()?;
    let schema = Arc::clone(&contract().arrow_schema());
    reader
        .map(|batch| {
            let batch = batch?;
            // Files carry the same columns; re-attach the canonical schema (metadata included).
            Ok(RecordBatch::try_new(
                Arc::clone(&schema),
                batch.columns().to_vec(),
            )?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_schema::{EventBatchBuilder, Family, parse_line};

    #[test]
    fn encodes_sorted_with_stats_and_round_trips() {
        let mut builder = EventBatchBuilder::new();
        for ts in [5_000, 1_000, 3_000] {
            let line = format!(
                r#"{{"ts":{ts},"tenant":"t","family":"access","action":"login","message":"m{ts}"}}"#
            );
            builder.append(&parse_line(line.as_bytes()).unwrap());
        }
        let batch = builder.finish(9).unwrap();
        let key = PartitionKey::of("t", Family::Access, 1_000_000);
        let (bytes, meta) = encode_sorted(&key, &[batch], 3, None).unwrap();
        assert_eq!(meta.rows, 3);
        assert_eq!((meta.min_ts, meta.max_ts), (1_000_000, 5_000_000));
        assert_eq!(meta.size, bytes.len() as u64);
        assert_eq!(meta.sha256, sha256_hex(&bytes));
        let back = read_file(bytes, None).unwrap();
        let ts = back[0].column(0).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.values().to_vec(), [1_000_000, 3_000_000, 5_000_000]);
        let message = back[0]
            .column_by_name("message")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(message.value(0), "m1000");
    }
}
