//! How each column of a data file is written: encodings, zstd levels,
//! statistics and page sizes, some chosen per file from its rows. Chosen
//! by measuring three differently shaped data sets against DuckDB
//! (`benches/storage.sh`, docs/layout.md).

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use foldhash::HashSet;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use strata_schema::shred::{frequent_keys, shredded_column};
use strata_schema::{TS_COLUMN, contract};

/// Lowest zstd level of the long free-text columns: level 6 stores
/// `message` about 9% and `resource` about 8% smaller than level 3 on the
/// benchmark's data sets, for a slower compression of those columns alone.
const TEXT_ZSTD_LEVEL: i32 = 6;
const TEXT_COLUMNS: &[&str] = &["message", "resource"];
/// zstd level of the id columns. Random ids (UUIDs, hex) hold no repeats
/// for zstd to find, only its entropy coding pays: level 1 stored them 3%
/// smaller than level 3 (fewer spurious short matches), and faster.
const ID_ZSTD_LEVEL: i32 = 1;
const ID_COLUMNS: &[&str] = &["event_id", "session_id"];

const ROW_GROUP_ROWS: usize = 1 << 20;
/// Encoded bytes of a data page. A reader holds one decoded page per
/// column: merging many files at once reads them all side by side.
const PAGE_BYTES: usize = 128 << 10;
/// Encoded bytes of a `message` page: zstd compresses each page on its own,
/// and free text repeats itself across more than 128 KB (large partitions'
/// messages stored 6% smaller in 1 MB pages).
const MESSAGE_PAGE_BYTES: usize = 1 << 20;
/// Rows of a data page at most (parquet's default, stated here because
/// `PAGE_INDEX_MIN_ROWS` depends on it).
const PAGE_ROWS: usize = 20_000;
/// Files of fewer rows are written without a page index: their `ts` and
/// `resource` fit one page, so per-page min/max would repeat the chunk's,
/// while the index costs about 1 KB a file (offset index of every column
/// and its footer pointers).
const PAGE_INDEX_MIN_ROWS: u64 = PAGE_ROWS as u64;
/// A text column whose values share at least this share of their bytes
/// with the value before them (ids counting up, paths under one prefix)
/// is written as DELTA_BYTE_ARRAY, which stores each shared prefix as a
/// length: event ids of the `gen` and `long` benchmark sets stored 30-40%
/// smaller; random ids and free text stay DELTA_LENGTH_BYTE_ARRAY.
const PREFIX_SHARE_FOR_DELTA: f64 = 0.5;
/// Text columns stored without a dictionary but in files where their values
/// repeat: sessions of several events each. Where a file's session ids
/// held fewer distinct values than 40% of its rows, a dictionary stored
/// them 4-7% smaller (the `wide` set); above, or all distinct (`gen`),
/// 2-18% larger.
const DICTIONARY_IF_REPEATED: &[&str] = &["session_id"];
const DISTINCT_SHARE_FOR_DICTIONARY: f64 = 0.4;

/// Columns stored without zstd (see `writer_properties`).
const UNCOMPRESSED_COLUMNS: &[&str] = &[
    "tenant",
    "family",
    "ingested_at",
    "ts",
    "app",
    "resource_type",
];
/// Columns stored without a dictionary (see `writer_properties`).
const PLAIN_COLUMNS: &[&str] = &[
    "ts",
    "event_id",
    "message",
    "session_id",
    "bytes",
    "records",
    "duration_ms",
];
/// Text columns stored as DELTA_LENGTH_BYTE_ARRAY (see `writer_properties`).
const DELTA_LENGTH_COLUMNS: &[&str] = &["event_id", "message", "session_id"];
/// Integer columns stored as DELTA_BINARY_PACKED (see `writer_properties`).
const DELTA_COLUMNS: &[&str] = &["ts", "bytes", "records"];
/// Columns whose min/max can prune a file or row group: one value per file,
/// few values, or numbers (see `writer_properties`).
const PRUNING_COLUMNS: &[&str] = &[
    "tenant",
    "family",
    "action",
    "outcome",
    "severity",
    "role",
    "app",
    "resource_type",
    "bytes",
    "records",
    "duration_ms",
    "ingested_at",
];

/// What a file's writer chooses from the rows it is first given.
pub(crate) struct FileLayout {
    /// `attrs` keys written as columns of their own.
    pub(crate) shredded: Vec<String>,
    /// Text columns written as DELTA_BYTE_ARRAY (see `PREFIX_SHARE_FOR_DELTA`).
    prefixed: Vec<&'static str>,
    /// Columns of `DICTIONARY_IF_REPEATED` whose values repeat in this file.
    repeated: Vec<&'static str>,
    /// Whether `ts` and `resource` get per-page statistics (see `PAGE_INDEX_MIN_ROWS`).
    page_index: bool,
}

impl FileLayout {
    /// The layout of a file of `rows` rows in all, chosen from its first batch.
    pub(crate) fn choose(batch: &RecordBatch, rows: u64) -> Result<Self, ParquetError> {
        let prefixed = (DELTA_LENGTH_COLUMNS.iter().copied())
            .filter(|column| {
                let values = batch.column_by_name(column).expect("contract column");
                prefix_share(values.as_string::<i32>()) >= PREFIX_SHARE_FOR_DELTA
            })
            .collect();
        let repeated = (DICTIONARY_IF_REPEATED.iter().copied())
            .filter(|column| {
                let values = batch.column_by_name(column).expect("contract column");
                repeats(values.as_string::<i32>(), DISTINCT_SHARE_FOR_DICTIONARY)
            })
            .collect();
        Ok(FileLayout {
            shredded: frequent_keys(batch)?,
            prefixed,
            repeated,
            page_index: rows >= PAGE_INDEX_MIN_ROWS,
        })
    }
}

/// The share of the bytes of `values` that repeat the start of the value
/// before them.
fn prefix_share(values: &StringArray) -> f64 {
    let mut total = 0usize;
    let mut shared = 0usize;
    let mut previous: &[u8] = &[];
    for value in values.iter().flatten() {
        let value = value.as_bytes();
        shared += (previous.iter().zip(value))
            .take_while(|(a, b)| a == b)
            .count();
        total += value.len();
        previous = value;
    }
    match total {
        0 => 0.0,
        total => shared as f64 / total as f64,
    }
}

/// Whether `values` hold fewer distinct values than `share` of those
/// present (nulls left out). Stops counting once they hold that many: most
/// files' sessions are all distinct.
fn repeats(values: &StringArray, share: f64) -> bool {
    let limit = (values.len() - values.null_count()) as f64 * share;
    let mut distinct: HashSet<&str> = HashSet::default();
    for value in values.iter().flatten() {
        if distinct.insert(value) && distinct.len() as f64 >= limit {
            return false;
        }
    }
    (distinct.len() as f64) < limit
}

/// How each column is written. Chosen by measuring three differently shaped
/// data sets against DuckDB (`benches/storage.sh`, docs/layout.md).
fn writer_properties(
    zstd_level: i32,
    encryption: Option<Arc<FileEncryptionProperties>>,
    layout: &FileLayout,
) -> Result<WriterProperties, ParquetError> {
    let ts_index = contract().index_of(TS_COLUMN).expect("contract has ts") as i32;
    let builder = match encryption {
        Some(encryption) => WriterProperties::builder().with_file_encryption_properties(encryption),
        None => WriterProperties::builder(),
    };
    let zstd = |level| Ok::<_, ParquetError>(Compression::ZSTD(ZstdLevel::try_new(level)?));
    let mut builder = builder.set_compression(zstd(zstd_level)?);
    for column in TEXT_COLUMNS {
        builder = builder.set_column_compression(
            ColumnPath::from(*column),
            zstd(zstd_level.max(TEXT_ZSTD_LEVEL))?,
        );
    }
    for column in ID_COLUMNS {
        builder = builder.set_column_compression(ColumnPath::from(*column), zstd(ID_ZSTD_LEVEL)?);
    }
    // Columns zstd shrinks by under 15% on the benchmark's data: one value
    // per file (or nearly), timestamps once delta-encoded (level 1 took 4-6%
    // off `ts`, but a full scan of small files then ran 8-12% slower), and
    // dictionary indexes over a few values. Each compressed column costs a
    // zstd context per file to write and per read, which costs more than
    // those bytes.
    for column in UNCOMPRESSED_COLUMNS {
        builder =
            builder.set_column_compression(ColumnPath::from(*column), Compression::UNCOMPRESSED);
    }
    // Nearly unique per event (ids, text, times, measures): a dictionary
    // costs hashing every value, and zstd over plain values came out
    // smaller; but for a file's repeated sessions (`DICTIONARY_IF_REPEATED`).
    for column in PLAIN_COLUMNS {
        let repeated = layout.repeated.contains(column);
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), repeated);
    }
    // Lengths apart from the bytes: zstd then sees the ids and words alone;
    // shared prefixes apart too where values share much of them.
    for column in DELTA_LENGTH_COLUMNS {
        let encoding = match layout.prefixed.contains(column) {
            true => Encoding::DELTA_BYTE_ARRAY,
            false => Encoding::DELTA_LENGTH_BYTE_ARRAY,
        };
        builder = builder.set_column_encoding(ColumnPath::from(*column), encoding);
    }
    for column in DELTA_COLUMNS {
        builder =
            builder.set_column_encoding(ColumnPath::from(*column), Encoding::DELTA_BINARY_PACKED);
    }
    // Min/max of users, hosts, addresses, ids, text and attributes prune
    // nothing (every file holds a spread of them) yet cost up to 128 bytes
    // each in the footer, where most files are small. `ts`, by which rows
    // are sorted, and `resource` (records are worked on in bursts) prune
    // files, and pages in files large enough to hold several (see
    // `PAGE_INDEX_MIN_ROWS`).
    // Shredded attributes are frequent keys, most with few values per file
    // (channel, country, queue): they prune like the enumerations.
    let shredded_columns = layout.shredded.iter().map(|key| shredded_column(key));
    for column in PRUNING_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(shredded_columns)
    {
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::Chunk);
    }
    let paged = match layout.page_index {
        true => EnabledStatistics::Page,
        false => EnabledStatistics::Chunk,
    };
    Ok(builder
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_size_limit(PAGE_BYTES)
        .set_column_data_page_size_limit(ColumnPath::from("message"), MESSAGE_PAGE_BYTES)
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_statistics_enabled(ColumnPath::from(TS_COLUMN), paged)
        .set_column_statistics_enabled(ColumnPath::from("resource"), paged)
        .set_offset_index_disabled(!layout.page_index)
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

/// Writer options of a file of `layout`, compressed at `zstd_level` (some
/// columns differ, see `writer_properties`) and encrypted if asked. No
/// Arrow schema in the footer (about 1.7 KB a file, a fifth of a small
/// file's footer): readers take the contract's types instead
/// (`to_contract_types`, and the query engine's schema adapter).
pub(crate) fn writer_options(
    zstd_level: i32,
    encryption: Option<Arc<FileEncryptionProperties>>,
    layout: &FileLayout,
) -> Result<ArrowWriterOptions, ParquetError> {
    Ok(ArrowWriterOptions::new()
        .with_properties(writer_properties(zstd_level, encryption, layout)?)
        .with_skip_arrow_metadata(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Expected, SortedFileWriter, read_file};
    use bytes::Bytes;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use strata_schema::{EventBatchBuilder, Family, parse_line};
    use strata_store::PartitionKey;

    /// `rows` events, the n-th with event id `id(n)` and session id
    /// `session(n)`, one second apart.
    fn events(
        rows: usize,
        id: impl Fn(usize) -> String,
        session: impl Fn(usize) -> String,
    ) -> RecordBatch {
        let mut builder = EventBatchBuilder::new();
        for n in 0..rows {
            let line = format!(
                r#"{{"ts":{},"tenant":"t","family":"access","action":"login","event_id":"{}","session_id":"{}","resource":"r{}"}}"#,
                1_000 + n,
                id(n),
                session(n),
                n % 7
            );
            builder.append(&parse_line(line.as_bytes()).unwrap());
        }
        builder.finish(9).unwrap()
    }

    /// Writes `batch` as one file expected to hold `rows` rows.
    fn write(batch: &RecordBatch, rows: u64) -> Bytes {
        let key = PartitionKey::of("t", Family::Access, 1_000_000);
        let expected = Expected { bytes: 0, rows };
        let mut writer = SortedFileWriter::new("p".into(), &key, 3, None, expected);
        writer.write(batch).unwrap();
        let (bytes, _) = writer.finish().unwrap();
        // Whatever the layout, the file reads back as written.
        let back = read_file(bytes.clone(), None).unwrap();
        assert_eq!(
            &arrow::compute::concat_batches(&back[0].schema(), &back).unwrap(),
            batch
        );
        bytes
    }

    fn encodings(bytes: &Bytes, column: &str) -> Vec<Encoding> {
        let reader = SerializedFileReader::new(bytes.clone()).unwrap();
        let row_group = reader.metadata().row_group(0);
        let index = (row_group.columns().iter())
            .position(|c| c.column_path().string() == column)
            .unwrap();
        row_group.column(index).encodings().collect()
    }

    /// A random-looking id, different for every `n`.
    fn random_id(n: usize) -> String {
        format!(
            "{:016x}",
            (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    }

    #[test]
    fn ids_sharing_prefixes_are_stored_as_delta_byte_array() {
        let counting = events(500, |n| format!("evt-7f3a9c-{:08}", n * 3), random_id);
        let random = events(500, random_id, random_id);
        assert!(
            encodings(&write(&counting, 500), "event_id").contains(&Encoding::DELTA_BYTE_ARRAY)
        );
        let random_encodings = encodings(&write(&random, 500), "event_id");
        assert!(
            random_encodings.contains(&Encoding::DELTA_LENGTH_BYTE_ARRAY),
            "{random_encodings:?}"
        );
        assert!(!random_encodings.contains(&Encoding::DELTA_BYTE_ARRAY));
    }

    #[test]
    fn prefix_share_counts_bytes_repeated_from_the_value_before() {
        let values = StringArray::from(vec![Some("abcd"), None, Some("abXY"), Some("zz")]);
        // "abXY" repeats 2 of its bytes: 2 of 10.
        assert!((prefix_share(&values) - 0.2).abs() < 1e-9);
        assert_eq!(prefix_share(&StringArray::from(Vec::<&str>::new())), 0.0);
    }

    #[test]
    fn sessions_get_a_dictionary_only_in_files_where_they_repeat() {
        // 600 events in sessions of 5 events each, or each its own session.
        let repeated = events(600, random_id, |n| random_id(n / 5));
        let distinct = events(600, random_id, random_id);
        let repeated = encodings(&write(&repeated, 600), "session_id");
        assert!(repeated.contains(&Encoding::RLE_DICTIONARY), "{repeated:?}");
        let distinct = encodings(&write(&distinct, 600), "session_id");
        assert!(
            !distinct.contains(&Encoding::RLE_DICTIONARY),
            "{distinct:?}"
        );
    }

    #[test]
    fn repeats_compares_distinct_values_with_a_share_of_those_present() {
        // Two distinct of three present.
        let values = StringArray::from(vec![Some("a"), Some("a"), None, Some("b")]);
        assert!(repeats(&values, 0.7));
        assert!(!repeats(&values, 2.0 / 3.0));
        assert!(!repeats(&values, 0.6));
        assert!(!repeats(&StringArray::from(vec![None::<&str>]), 0.4));
    }

    #[test]
    fn only_files_of_many_rows_get_a_page_index() {
        let batch = events(50, |n| format!("e{n}"), random_id);
        for (rows, indexed) in [(50, false), (PAGE_INDEX_MIN_ROWS, true)] {
            let bytes = write(&batch, rows);
            let options = parquet::file::serialized_reader::ReadOptionsBuilder::new()
                .with_page_index()
                .build();
            let reader = SerializedFileReader::new_with_options(bytes, options).unwrap();
            assert_eq!(
                reader.metadata().offset_index().is_some(),
                indexed,
                "{rows} rows"
            );
            // Chunk statistics of ts either way: files are pruned by time.
            let ts = reader.metadata().row_group(0).column(0);
            assert!(ts.statistics().is_some_and(|s| s.min_bytes_opt().is_some()));
        }
    }
}
