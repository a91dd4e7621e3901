//! Writing query results in the formats `strata sql` offers.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;

use crate::cli::Format;

/// Streams `stream` to every output, each in its format; returns the number of rows.
pub async fn write(
    mut stream: SendableRecordBatchStream,
    outputs: Vec<(Format, Box<dyn Write + Send>)>,
) -> anyhow::Result<usize> {
    let schema = stream.schema();
    let mut rows = 0;
    let mut sinks = outputs
        .into_iter()
        .map(|(format, out)| Sink::new(format, schema.clone(), out))
        .collect::<anyhow::Result<Vec<_>>>()?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        for sink in &mut sinks {
            sink.write(batch.clone())?;
        }
    }
    for sink in sinks {
        sink.finish()?;
    }
    Ok(rows)
}

enum Sink {
    /// Tables need every row to size their columns.
    Table(Vec<RecordBatch>, Box<dyn Write + Send>),
    Csv(arrow::csv::Writer<Box<dyn Write + Send>>),
    Json(arrow::json::ArrayWriter<Box<dyn Write + Send>>),
    Ndjson(arrow::json::LineDelimitedWriter<Box<dyn Write + Send>>),
    Parquet(ArrowWriter<Box<dyn Write + Send>>),
}

impl Sink {
    fn new(format: Format, schema: SchemaRef, out: Box<dyn Write + Send>) -> anyhow::Result<Sink> {
        Ok(match format {
            Format::Table => Sink::Table(Vec::new(), out),
            Format::Csv => Sink::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out),
            ),
            Format::Json => Sink::Json(arrow::json::ArrayWriter::new(out)),
            Format::Ndjson => Sink::Ndjson(arrow::json::LineDelimitedWriter::new(out)),
            Format::Parquet => Sink::Parquet(ArrowWriter::try_new(out, schema, None)?),
        })
    }

    fn write(&mut self, batch: RecordBatch) -> anyhow::Result<()> {
        match self {
            Sink::Table(batches, _) => batches.push(batch),
            Sink::Csv(w) => w.write(&flatten_nested(&batch)?)?,
            Sink::Json(w) => w.write(&batch)?,
            Sink::Ndjson(w) => w.write(&batch)?,
            Sink::Parquet(w) => w.write(&batch)?,
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Table(batches, mut out) => {
                // Auditors must tell a missing value from an empty one.
                let options = FormatOptions::default().with_null("NULL");
                let table =
                    arrow::util::pretty::pretty_format_batches_with_options(&batches, &options)?;
                writeln!(out, "{table}")?;
                out.flush()?;
            }
            Sink::Csv(w) => w.into_inner().flush()?,
            Sink::Json(mut w) => {
                w.finish()?;
                let mut out = w.into_inner();
                writeln!(out)?;
                out.flush()?;
            }
            Sink::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner().flush()?;
            }
            Sink::Parquet(w) => {
                w.close().context("cannot finish the Parquet output")?;
            }
        }
        Ok(())
    }
}

/// CSV has no maps, lists or structs: render them as their display text.
fn flatten_nested(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.data_type().is_nested() {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            let mut text = StringBuilder::new();
            for row in 0..column.len() {
                if column.is_null(row) {
                    text.append_null();
                } else {
                    text.append_value(formatter.value(row).to_string());
                }
            }
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(text.finish()));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
