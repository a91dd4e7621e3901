//! Encoding a batch of one partition as a sorted, zstd-compressed Parquet file.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::{SortOptions, sort_to_indices, take_record_batch};
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataWriter};
use parquet::file::statistics::Statistics;
use strata_schema::shred::{file_schema, shred, unshred};
use strata_schema::{TS_COLUMN, contract};
use strata_store::{FileMeta, PartitionKey, data_file_path, sha256_hex};

use crate::layout::{FileLayout, writer_options};

/// zstd level of freshly ingested files: fast, and about as small as level 9 on sorted logs.
pub const ZSTD_LEVEL_DEFAULT: i32 = 3;

/// How a new file is encrypted: its properties (data key and wrapped key
/// metadata) and the tenant master key version that wraps the data key.
pub type Encryption = (Arc<FileEncryptionProperties>, u32);

/// The `ts` column of a batch of the contract's schema (required: no nulls).
pub(crate) fn ts_of(batch: &RecordBatch) -> &TimestampMicrosecondArray {
    batch
        .column(contract().index_of(TS_COLUMN).expect("contract has ts"))
        .as_primitive::<TimestampMicrosecondType>()
}

/// Sorts `batches` (all of partition `key`) by `ts` and encodes them as one
/// Parquet file, encrypted if asked; returns its bytes and its catalog record.
pub fn encode_sorted(
    key: &PartitionKey,
    batches: &[RecordBatch],
    zstd_level: i32,
    encryption: Option<Encryption>,
) -> Result<(Bytes, FileMeta), ParquetError> {
    // One batch: ArrowWriter is much faster on one large batch than on
    // the many small ones a partition collects, block by block.
    let batch = match batches {
        [one] => one.clone(),
        _ => arrow::compute::concat_batches(&contract().arrow_schema(), batches)?,
    };
    // Logs mostly arrive in time order: then there is nothing to sort.
    let sorted = if ts_of(&batch).values().is_sorted() {
        batch
    } else {
        let order = sort_to_indices(
            ts_of(&batch),
            Some(SortOptions {
                descending: false,
                nulls_first: false,
            }),
            None,
        )?;
        take_record_batch(&batch, &order)?
    };
    let expected = Expected {
        bytes: sorted.get_array_memory_size() / 8,
        rows: sorted.num_rows() as u64,
    };
    let mut writer =
        SortedFileWriter::new(data_file_path(key), key, zstd_level, encryption, expected);
    writer.write(&sorted)?;
    writer.finish()
}

/// What a file is expected to hold: its size guides the buffer, its rows
/// whether it gets a page index.
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    /// Bytes of the encoded file, about.
    pub bytes: usize,
    /// Rows of the file in all.
    pub rows: u64,
}

/// Writes rows that come in `ts` order, batch by batch, as one Parquet file
/// in memory, keeping the facts the catalog records (rows, time range) as
/// they pass. The `attrs` keys to shred and the encodings that depend on the
/// data are chosen from the first batch (a whole partition at ingest, the
/// first 16 Ki merged rows in a merge).
pub struct SortedFileWriter {
    path: String,
    key: PartitionKey,
    zstd_level: i32,
    encryption: Option<Arc<FileEncryptionProperties>>,
    expected: Expected,
    /// Created with the first batch, which decides the file's columns.
    writer: Option<ArrowWriter<Vec<u8>>>,
    rows: u64,
    /// First and last `ts` written.
    range: Option<(i64, i64)>,
    key_version: Option<u32>,
    /// The `attrs` keys written as columns of their own.
    shredded: Vec<String>,
}

impl SortedFileWriter {
    /// A file of partition `key` to be stored at `path`, encoded at
    /// `zstd_level` and encrypted if asked.
    pub fn new(
        path: String,
        key: &PartitionKey,
        zstd_level: i32,
        encryption: Option<Encryption>,
        expected: Expected,
    ) -> Self {
        let (encryption, key_version) = match encryption {
            Some((properties, version)) => (Some(properties), Some(version)),
            None => (None, None),
        };
        SortedFileWriter {
            path,
            key: key.clone(),
            zstd_level,
            encryption,
            expected,
            writer: None,
            rows: 0,
            range: None,
            key_version,
            shredded: Vec::new(),
        }
    }

    /// The Parquet writer, created for a file of `layout`.
    fn open(&mut self, layout: FileLayout) -> Result<&mut ArrowWriter<Vec<u8>>, ParquetError> {
        let options = writer_options(self.zstd_level, self.encryption.take(), &layout)?;
        let writer = ArrowWriter::try_new_with_options(
            Vec::with_capacity(self.expected.bytes),
            file_schema(&layout.shredded),
            options,
        )?;
        self.shredded = layout.shredded;
        Ok(self.writer.insert(writer))
    }

    /// Appends rows (of the contract's schema) sorted by `ts`, none earlier
    /// than those written before.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetError> {
        let ts = ts_of(batch).values();
        if let (Some(&first), Some(&last)) = (ts.first(), ts.last()) {
            let start = self.range.map_or(first, |(start, _)| start);
            self.range = Some((start, last));
        }
        self.rows += batch.num_rows() as u64;
        if self.writer.is_none() {
            self.open(FileLayout::choose(batch, self.expected.rows)?)?;
        }
        let file_batch = shred(batch, &self.shredded)?;
        self.writer
            .as_mut()
            .expect("opened above")
            .write(&file_batch)
    }

    /// Closes the file: its bytes and its catalog record.
    pub fn finish(mut self) -> Result<(Bytes, FileMeta), ParquetError> {
        if self.writer.is_none() {
            let empty = RecordBatch::new_empty(contract().arrow_schema());
            self.open(FileLayout::choose(&empty, 0)?)?;
        }
        let mut writer = self.writer.take().expect("opened above");
        let metadata = writer.finish()?;
        let mut buffer = std::mem::take(writer.inner_mut());
        let page_index = (metadata.row_groups().iter())
            .flat_map(|row_group| row_group.columns())
            .any(|column| column.offset_index_offset().is_some());
        // An encrypted file (it has a key version) has an encrypted footer.
        if self.key_version.is_none() && !page_index {
            buffer = slim_footer(buffer, metadata)?;
        }
        let (min_ts, max_ts) = self.range.unwrap_or_default();
        let meta = FileMeta {
            path: self.path,
            tenant: self.key.tenant.clone(),
            family: self.key.family.to_string(),
            month: self.key.month_label(),
            size: buffer.len() as u64,
            sha256: sha256_hex(&buffer),
            rows: self.rows,
            min_ts,
            max_ts,
            location: None,
            key_version: self.key_version,
            shredded: self.shredded,
        };
        Ok((Bytes::from(buffer), meta))
    }
}

/// `file` (written without a page index, its footer in plain text) with
/// its footer written again without optional facts no reader of ours uses:
/// page encoding counts, the size statistics (byte-array bytes and level
/// histograms) that come with min/max, and the deprecated copy of min/max.
/// About 750 bytes of a small file's 3.5 KB footer; min/max stay. The
/// encoded data is untouched, so every offset in the footer stays right.
fn slim_footer(mut file: Vec<u8>, metadata: ParquetMetaData) -> Result<Vec<u8>, ParquetError> {
    // The file ends in: footer, its length (4 bytes), "PAR1".
    let footer_start = (file.len().checked_sub(8))
        .and_then(|tail| {
            let len = u32::from_le_bytes(file[tail..tail + 4].try_into().expect("4 bytes"));
            tail.checked_sub(len as usize)
        })
        .ok_or_else(|| ParquetError::General("a footer longer than its file".into()))?;
    let mut builder = metadata.into_builder();
    let row_groups = (builder.take_row_groups().into_iter())
        .map(|row_group| {
            let mut row_group = row_group.into_builder();
            let columns = (row_group.take_columns().into_iter())
                .map(|column| {
                    let statistics = column.statistics().cloned().map(without_deprecated_min_max);
                    let column = column.into_builder();
                    let column = match statistics {
                        Some(statistics) => column.set_statistics(statistics),
                        None => column,
                    };
                    column
                        .clear_page_encoding_stats()
                        .set_unencoded_byte_array_data_bytes(None)
                        .set_repetition_level_histogram(None)
                        .set_definition_level_histogram(None)
                        .build()
                })
                .collect::<Result<_, _>>()?;
            row_group.set_column_metadata(columns).build()
        })
        .collect::<Result<_, ParquetError>>()?;
    let slim = (builder.set_row_groups(row_groups))
        .set_column_index(None)
        .set_offset_index(None)
        .build();
    file.truncate(footer_start);
    ParquetMetaDataWriter::new(&mut file, &slim).finish()?;
    Ok(file)
}

/// `statistics` without the second copy of min/max that parquet-rs adds to
/// signed numbers for readers from before 2017 (Parquet's deprecated `min`
/// and `max`; every reader since uses `min_value` and `max_value`).
fn without_deprecated_min_max(statistics: Statistics) -> Statistics {
    match statistics {
        Statistics::Int64(s) => Statistics::Int64(s.with_backwards_compatible_min_max(false)),
        Statistics::Double(s) => Statistics::Double(s.with_backwards_compatible_min_max(false)),
        other => other,
    }
}

/// Decodes a whole Parquet file held in memory, decrypting it if needed.
pub fn read_file(
    bytes: Bytes,
    decryption: Option<Arc<FileDecryptionProperties>>,
) -> Result<Vec<RecordBatch>, ParquetError> {
    FileBatches::open(bytes, decryption, 64 * 1024)?.collect()
}

/// The batches of a Parquet file held in memory, decoded one at a time.
pub(crate) struct FileBatches {
    reader: ParquetRecordBatchReader,
    schema: SchemaRef,
}

impl FileBatches {
    /// Opens a file (decrypting it if needed) to read it `batch_rows` rows at a time.
    pub(crate) fn open(
        bytes: Bytes,
        decryption: Option<Arc<FileDecryptionProperties>>,
        batch_rows: usize,
    ) -> Result<Self, ParquetError> {
        let options = match decryption {
            Some(decryption) => {
                ArrowReaderOptions::new().with_file_decryption_properties(decryption)
            }
            None => ArrowReaderOptions::new(),
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)?
            .with_batch_size(batch_rows)
            .build()?;
        Ok(FileBatches {
            reader,
            schema: contract().arrow_schema(),
        })
    }
}

impl Iterator for FileBatches {
    type Item = Result<RecordBatch, ParquetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.reader.next()?;
        // Shredded attributes go back into `attrs`; the canonical schema
        // (metadata included) is re-attached.
        Some(
            batch
                .and_then(|batch| to_contract_types(&self.schema, &unshred(&batch)?))
                .map_err(ParquetError::from),
        )
    }
}

/// The contract's columns of a file (see `unshred`) as the contract's
/// `schema` types them. Files written before counts were Int64 hold
/// `bytes` and `records` as UInt64; they are cast, and a value above
/// 2^63 − 1 (which no contract accepted since) fails the read rather than
/// wrapping.
fn to_contract_types(
    schema: &SchemaRef,
    columns: &[ArrayRef],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let strict = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    let columns = (schema.fields().iter().zip(columns))
        .map(
            |(field, column)| match column.data_type() == field.data_type() {
                true => Ok(Arc::clone(column)),
                false => arrow::compute::cast_with_options(column, field.data_type(), &strict),
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
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
                r#"{{"ts":{ts},"tenant":"t","family":"access","action":"login","message":"m{ts}","attrs":{{"k":"v{ts}"}}}}"#
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
        // No Arrow schema in the footer: the file's own types read back as the contract's.
        let footer = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
        let kv = footer
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap();
        assert!(kv.iter().all(|entry| entry.key != "ARROW:schema"));
        let back = read_file(bytes, None).unwrap();
        assert_eq!(back[0].schema(), contract().arrow_schema());
        let attrs = back[0].column_by_name("attrs").unwrap().as_map();
        assert_eq!(attrs.values().as_string::<i32>().value(0), "v1000");
        let ts = back[0].column(0).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.values().to_vec(), [1_000_000, 3_000_000, 5_000_000]);
        let message = back[0]
            .column_by_name("message")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(message.value(0), "m1000");
    }

    #[test]
    fn a_small_files_footer_keeps_min_max_but_not_the_optional_size_facts() {
        let mut builder = EventBatchBuilder::new();
        for ts in 0..100 {
            let line = format!(
                r#"{{"ts":{ts},"tenant":"t","family":"access","action":"login","resource":"r{}","bytes":{ts}}}"#,
                ts % 3
            );
            builder.append(&parse_line(line.as_bytes()).unwrap());
        }
        let batch = builder.finish(9).unwrap();
        let key = PartitionKey::of("t", Family::Access, 1_000_000);
        let (bytes, meta) = encode_sorted(&key, std::slice::from_ref(&batch), 3, None).unwrap();
        assert_eq!(meta.sha256, sha256_hex(&bytes));
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
        let row_group = reader.metadata().row_group(0);
        for column in row_group.columns() {
            let name = column.column_path().string();
            assert!(column.page_encoding_stats().is_none(), "{name}");
            assert!(column.unencoded_byte_array_data_bytes().is_none(), "{name}");
            assert!(column.definition_level_histogram().is_none(), "{name}");
        }
        let min_max = |name: &str| {
            let column = (row_group.columns().iter())
                .find(|c| c.column_path().string() == name)
                .unwrap();
            let statistics = column.statistics().unwrap();
            (
                statistics.min_bytes_opt().unwrap().to_vec(),
                statistics.max_bytes_opt().unwrap().to_vec(),
            )
        };
        assert_eq!(
            min_max("ts"),
            (
                0i64.to_le_bytes().to_vec(),
                99_000i64.to_le_bytes().to_vec()
            )
        );
        assert_eq!(
            min_max("bytes"),
            (0i64.to_le_bytes().to_vec(), 99i64.to_le_bytes().to_vec())
        );
        assert_eq!(min_max("resource"), (b"r0".to_vec(), b"r2".to_vec()));
        assert_eq!(read_file(bytes, None).unwrap(), vec![batch]);
    }

    #[test]
    fn a_file_written_with_unsigned_counts_reads_as_the_contract_types() {
        use arrow::datatypes::{DataType, Field, Int64Type, Schema};
        let line = r#"{"ts":1000,"tenant":"t","family":"access","action":"read","bytes":42}"#;
        let mut builder = EventBatchBuilder::new();
        builder.append(&parse_line(line.as_bytes()).unwrap());
        let batch = builder.finish(9).unwrap();
        // The file as strata wrote it before counts were Int64.
        let unsigned = |column: &ArrayRef| match column.data_type() {
            DataType::Int64 => arrow::compute::cast(column, &DataType::UInt64).unwrap(),
            _ => Arc::clone(column),
        };
        let fields = (batch.schema().fields().iter())
            .map(|f| match f.data_type() {
                DataType::Int64 => Arc::new(Field::new(f.name(), DataType::UInt64, true)),
                _ => Arc::clone(f),
            })
            .collect::<Vec<_>>();
        let old = RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            batch.columns().iter().map(unsigned).collect(),
        )
        .unwrap();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, old.schema(), None).unwrap();
        writer.write(&old).unwrap();
        writer.close().unwrap();
        let back = read_file(bytes.into(), None).unwrap();
        assert_eq!(back[0].schema(), contract().arrow_schema());
        let counts = back[0].column_by_name("bytes").unwrap();
        assert_eq!(counts.as_primitive::<Int64Type>().value(0), 42);
    }
}
