//! Parquet exports: the [`COLUMNS`] as an Arrow schema (text as UTF-8, `district` nullable,
//! `time_unix_ms` as int64, `time` as a timestamp in ms with time zone UTC, `value` as double),
//! Snappy-compressed, with the organisation's licence and what the values are as the file's
//! key-value metadata (and the Arrow schema's). Rows are gathered into record batches of [`BATCH_ROWS`] and row groups
//! of at most [`ROW_GROUP_ROWS`], so an export holds at most one row group in memory.

use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::Header;
use super::rows::{COLUMNS, SeriesInfo};
use super::sink::ChunkSink;

/// Rows per record batch handed to the writer.
const BATCH_ROWS: usize = 65_536;
/// Rows per row group.
const ROW_GROUP_ROWS: usize = 262_144;

/// Column builders of the batch being gathered.
struct Columns {
    text: [StringBuilder; 6],
    time_unix_ms: Int64Builder,
    time: TimestampMillisecondBuilder,
    value: Float64Builder,
    rows: usize,
}

impl Columns {
    fn new() -> Self {
        Columns {
            text: std::array::from_fn(|_| StringBuilder::new()),
            time_unix_ms: Int64Builder::with_capacity(BATCH_ROWS),
            time: TimestampMillisecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"),
            value: Float64Builder::with_capacity(BATCH_ROWS),
            rows: 0,
        }
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ParquetError> {
        let mut columns: Vec<ArrayRef> = self
            .text
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        columns.push(Arc::new(self.time_unix_ms.finish()));
        columns.push(Arc::new(self.time.finish()));
        columns.push(Arc::new(self.value.finish()));
        self.rows = 0;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// The export's Arrow schema.
fn schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text(COLUMNS[0], false),
        text(COLUMNS[1], false),
        text(COLUMNS[2], false),
        text(COLUMNS[3], true),
        text(COLUMNS[4], false),
        text(COLUMNS[5], false),
        Field::new(COLUMNS[6], DataType::Int64, false),
        Field::new(
            COLUMNS[7],
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(COLUMNS[8], DataType::Float64, false),
    ]))
}

/// Writes a Parquet file into a [`ChunkSink`].
pub(crate) struct ParquetEncoder {
    writer: ArrowWriter<ChunkSink>,
    schema: SchemaRef,
    columns: Columns,
}

impl ParquetEncoder {
    /// Starts the file.
    pub(crate) fn new(sink: ChunkSink, header: &Header) -> Result<Self, ParquetError> {
        let described = header.describe();
        let metadata = described
            .iter()
            .map(|(key, value)| KeyValue::new(key.to_string(), value.clone()))
            .collect();
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_key_value_metadata(Some(metadata))
            .set_created_by(format!("citytel {}", env!("CARGO_PKG_VERSION")))
            .build();
        // Also on the Arrow schema, where Arrow readers (pyarrow's `Table.schema.metadata`)
        // look for it.
        let schema = Arc::new(
            Schema::clone(&schema()).with_metadata(
                described
                    .into_iter()
                    .map(|(key, value)| (key.to_string(), value))
                    .collect::<std::collections::HashMap<String, String>>(),
            ),
        );
        Ok(ParquetEncoder {
            writer: ArrowWriter::try_new(sink, schema.clone(), Some(properties))?,
            schema,
            columns: Columns::new(),
        })
    }

    /// Appends the rows of one series: `times` and `values` side by side.
    pub(crate) fn write(
        &mut self,
        s: &SeriesInfo,
        times: &[i64],
        values: &[f64],
    ) -> Result<(), ParquetError> {
        let mut from = 0;
        while from < times.len() {
            let n = (BATCH_ROWS - self.columns.rows).min(times.len() - from);
            let c = &mut self.columns;
            for _ in 0..n {
                c.text[0].append_value(&s.device_id);
                c.text[1].append_value(&s.site);
                c.text[2].append_value(&s.kind);
                c.text[3].append_option(s.district.as_deref());
                c.text[4].append_value(&s.metric);
                c.text[5].append_value(s.unit);
            }
            c.time_unix_ms.append_slice(&times[from..from + n]);
            c.time.append_slice(&times[from..from + n]);
            c.value.append_slice(&values[from..from + n]);
            c.rows += n;
            from += n;
            if c.rows == BATCH_ROWS {
                let batch = c.finish(&self.schema)?;
                self.writer.write(&batch)?;
            }
        }
        Ok(())
    }

    /// Writes the last rows and the footer, and sends the file's last bytes.
    pub(crate) fn finish(mut self) -> Result<(), ParquetError> {
        if self.columns.rows > 0 {
            let batch = self.columns.finish(&self.schema)?;
            self.writer.write(&batch)?;
        }
        let sink = self.writer.into_inner()?;
        sink.finish()?;
        Ok(())
    }
}
