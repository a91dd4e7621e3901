//! A query's answer in the format the client asked for by `Accept`,
//! encoded batch by batch so that it is streamed rather than held whole.

use axum::http::{HeaderMap, header};
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::writer::{JsonArray, LineDelimited, Writer, WriterBuilder};

/// The formats an answer comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON array of row objects (the default).
    Json,
    /// One JSON object per row and line.
    Ndjson,
    /// CSV with a header line.
    Csv,
    /// An Arrow IPC stream: the schema, then the batches.
    Arrow,
}

/// Media types and their formats, in the order a 406 lists them.
const MEDIA_TYPES: &[(&str, Format)] = &[
    ("application/json", Format::Json),
    ("application/x-ndjson", Format::Ndjson),
    ("application/jsonl", Format::Ndjson),
    ("text/csv", Format::Csv),
    ("application/vnd.apache.arrow.stream", Format::Arrow),
];

impl Format {
    /// The first format of `Accept` that is served (JSON without one or
    /// for `*/*`), or why none is (for a 406), listing those that are.
    pub fn accepted(headers: &HeaderMap) -> Result<Format, String> {
        let Some(accept) = headers.get(header::ACCEPT) else {
            return Ok(Format::Json);
        };
        let accept = accept.to_str().unwrap_or("");
        for media in accept.split(',') {
            let media = media.split(';').next().unwrap_or("").trim();
            if media == "*/*" || media == "application/*" {
                return Ok(Format::Json);
            }
            let known = MEDIA_TYPES
                .iter()
                .find(|(name, _)| media.eq_ignore_ascii_case(name));
            if let Some((_, format)) = known {
                return Ok(*format);
            }
        }
        let served: Vec<&str> = MEDIA_TYPES.iter().map(|(name, _)| *name).collect();
        Err(format!(
            "no format of `Accept: {accept}` is served; ask for one of {}",
            served.join(", ")
        ))
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
        }
    }
}

/// Encodes an answer's batches one at a time.
pub enum Encoder {
    /// JSON array.
    Json(Writer<Vec<u8>, JsonArray>),
    /// NDJSON.
    Ndjson(Writer<Vec<u8>, LineDelimited>),
    /// CSV; whether the header is still to be written.
    Csv(bool),
    /// Arrow IPC stream.
    Arrow(StreamWriter<Vec<u8>>),
}

impl Encoder {
    /// An encoder of `format` for batches of `schema`; what it writes first
    /// (the Arrow schema message) waits in it for the first batch.
    pub fn new(format: Format, schema: &SchemaRef) -> Result<Encoder, ArrowError> {
        // Nulls are written out, so that every row names every column.
        let json = || WriterBuilder::new().with_explicit_nulls(true);
        Ok(match format {
            Format::Json => Encoder::Json(json().build(Vec::new())),
            Format::Ndjson => Encoder::Ndjson(json().build(Vec::new())),
            Format::Csv => Encoder::Csv(true),
            Format::Arrow => Encoder::Arrow(StreamWriter::try_new(Vec::new(), schema)?),
        })
    }

    /// The bytes that encode `batch`.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes, ArrowError> {
        match self {
            Encoder::Json(writer) => writer.write(batch)?,
            Encoder::Ndjson(writer) => writer.write(batch)?,
            Encoder::Arrow(writer) => writer.write(batch)?,
            // arrow's CSV writer cannot hand out what it wrote so far:
            // one writer per batch, the header from the first.
            Encoder::Csv(header) => {
                let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(std::mem::take(header))
                    .build(Vec::new());
                writer.write(batch)?;
                return Ok(writer.into_inner().into());
            }
        }
        Ok(self.drain())
    }

    /// The bytes that end the answer, whose rows had `schema`.
    pub fn finish(mut self, schema: &SchemaRef) -> Result<Bytes, ArrowError> {
        match &mut self {
            Encoder::Json(writer) => writer.finish()?,
            Encoder::Ndjson(writer) => writer.finish()?,
            Encoder::Arrow(writer) => writer.finish()?,
            // An answer without rows still has its header.
            Encoder::Csv(true) => return self.batch(&RecordBatch::new_empty(schema.clone())),
            Encoder::Csv(false) => {}
        }
        Ok(self.drain())
    }

    /// What the writer holds and has not handed out.
    fn drain(&mut self) -> Bytes {
        let buffer = match self {
            Encoder::Json(writer) => writer.get_mut(),
            Encoder::Ndjson(writer) => writer.get_mut(),
            Encoder::Arrow(writer) => writer.get_mut(),
            Encoder::Csv(_) => return Bytes::new(),
        };
        std::mem::take(buffer).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("tenant", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("acme"), None])),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
        )
        .unwrap()
    }

    /// The whole answer of `batches` in `format`.
    fn encode(format: Format, batches: &[RecordBatch]) -> Vec<u8> {
        let schema = batch().schema();
        let mut encoder = Encoder::new(format, &schema).unwrap();
        let mut out = Vec::new();
        for b in batches {
            out.extend_from_slice(&encoder.batch(b).unwrap());
        }
        out.extend_from_slice(&encoder.finish(&schema).unwrap());
        out
    }

    #[test]
    fn each_format_encodes_the_rows_across_batches() {
        let two = [batch(), batch()];
        let json: serde_json::Value = serde_json::from_slice(&encode(Format::Json, &two)).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 4);
        assert_eq!(json[1], serde_json::json!({"tenant": null, "n": 2}));
        assert_eq!(encode(Format::Json, &[]), b"[]");
        let ndjson = String::from_utf8(encode(Format::Ndjson, &two)).unwrap();
        assert_eq!(ndjson.lines().count(), 4);
        assert!(
            ndjson.starts_with("{\"tenant\":\"acme\",\"n\":1}\n"),
            "{ndjson}"
        );
        let csv = String::from_utf8(encode(Format::Csv, &two)).unwrap();
        assert_eq!(csv, "tenant,n\nacme,1\n,2\nacme,1\n,2\n");
        assert_eq!(encode(Format::Csv, &[]), b"tenant,n\n");
        let arrow = encode(Format::Arrow, &two);
        let reader =
            datafusion::arrow::ipc::reader::StreamReader::try_new(&arrow[..], None).unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 4);
    }

    #[test]
    fn accept_picks_the_first_served_format() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, accept.parse().unwrap());
            Format::accepted(&headers)
        };
        assert_eq!(Format::accepted(&HeaderMap::new()).unwrap(), Format::Json);
        assert_eq!(
            with("text/csv;q=0.9, application/json").unwrap(),
            Format::Csv
        );
        assert_eq!(
            with("text/html, application/x-ndjson").unwrap(),
            Format::Ndjson
        );
        assert_eq!(with("*/*").unwrap(), Format::Json);
        assert_eq!(
            with("application/vnd.apache.arrow.stream").unwrap(),
            Format::Arrow
        );
        assert!(with("text/html").unwrap_err().contains("text/csv"));
    }
}
