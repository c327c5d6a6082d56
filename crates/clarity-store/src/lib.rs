//! The observations table of a sweep: one row per run, in plan order, as an Apache Parquet file
//! (`observations.parquet`) that pandas, polars, DuckDB, Spark and R (arrow) open directly.
//!
//! Written with the low-level `parquet` column writers (no Arrow, no C codecs: Snappy via the
//! pure-Rust `snap`), deterministically: the same records give the same bytes, whatever machine
//! or process wrote them, so a merged set of shards equals the unsharded sweep byte for byte.
//! Fixed writer settings ([`writer_properties`]):
//!
//! - format version 1.0 pages (`PARQUET_1_0`, the most widely readable), Snappy on every column,
//!   dictionary encoding on (parquet-rs's default fallback rules), column statistics per chunk;
//! - a row group every [`ROWS_PER_GROUP`] rows, counted from the first row (never by time or
//!   memory);
//! - `created_by` = [`CREATED_BY`] (no library version or timestamp) and two key/value entries:
//!   `clarity.table` = [`TABLE_KIND`] and `clarity.format` = [`FORMAT_VERSION`].
//!
//! Columns ([`SCHEMA`]):
//!
//! | column | type | content |
//! |---|---|---|
//! | `key` | string | the run's content key (64 hex digits) |
//! | `case_id` | string | |
//! | `cell` | uint32 | index of the cell in `plan.json`'s `cells` |
//! | `seed` | uint64 | |
//! | `status` | string | `ok` or `failed` |
//! | `error`, `attempts` | string, uint32 | failed runs only |
//! | `answer`, `justification` | string | ok runs, when the model gave them |
//! | `confidence`, `entropy` | double | idem |
//! | `probabilities_json` | string | the class probabilities as canonical JSON, when any |
//! | `metadata_json` | string | adapter extras as canonical JSON, when any |
//! | `saliency_width`, `saliency_height` | uint32 | when the model gave a saliency map |
//! | `saliency` | binary | its values, row-major, 32-bit little-endian floats (`width × height × 4` bytes) |
//!
//! Saliency is stored once (this file replaces the JSONL copies), exactly (the floats of the
//! journal), in 4 bytes per value before compression; `numpy.frombuffer(b, "<f4")` reads it.
//! [`read`] streams a file back into [`RunRecord`]s, one row group at a time.
//!
//! [`SweepRecords`] ([`sweep`]) finds a sweep directory's records whatever its format (this
//! table, the `observations.jsonl` of format-1 directories, or the journal of an unfinished
//! sweep): every consumer reads them through it.

pub mod sweep;

pub use sweep::{JOURNAL_FILE, LEGACY_OBSERVATIONS_FILE, SweepRecords};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clarity_core::{Observation, Outcome, RunRecord, Saliency};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// File name of the table in a sweep directory.
pub const OBSERVATIONS_FILE: &str = "observations.parquet";
/// `created_by` of every file (fixed: no library version, no timestamp).
pub const CREATED_BY: &str = "clarity (parquet-rs, clarity-store)";
/// `clarity.table` key/value metadata.
pub const TABLE_KIND: &str = "clarity.observations";
/// `clarity.format` key/value metadata: the version of the sweep directory layout that keeps
/// observations in Parquet (version 1: `observations.jsonl`).
pub const FORMAT_VERSION: &str = "2";
/// Rows per row group.
pub const ROWS_PER_GROUP: usize = 1 << 16;

/// The Parquet schema.
pub const SCHEMA: &str = "
message clarity_observations {
  required binary key (STRING);
  required binary case_id (STRING);
  required int32 cell (INTEGER(32,false));
  required int64 seed (INTEGER(64,false));
  required binary status (STRING);
  optional binary error (STRING);
  optional int32 attempts (INTEGER(32,false));
  optional binary answer (STRING);
  optional binary justification (STRING);
  optional double confidence;
  optional double entropy;
  optional binary probabilities_json (STRING);
  optional binary metadata_json (STRING);
  optional int32 saliency_width (INTEGER(32,false));
  optional int32 saliency_height (INTEGER(32,false));
  optional binary saliency;
}
";

/// Column names in schema order.
pub const COLUMNS: [&str; 16] = [
    "key",
    "case_id",
    "cell",
    "seed",
    "status",
    "error",
    "attempts",
    "answer",
    "justification",
    "confidence",
    "entropy",
    "probabilities_json",
    "metadata_json",
    "saliency_width",
    "saliency_height",
    "saliency",
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("observations table: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("observations table: {0}")]
    Json(#[from] clarity_core::json::JsonError),
    #[error("observations table: {0}")]
    Record(String),
}

/// The fixed writer settings (see the crate docs).
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by(CREATED_BY.to_string())
        .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
        .set_key_value_metadata(Some(vec![
            KeyValue::new("clarity.table".to_string(), TABLE_KIND.to_string()),
            KeyValue::new("clarity.format".to_string(), FORMAT_VERSION.to_string()),
        ]))
        .build()
}

/// Column buffers of one row group.
#[derive(Default)]
struct Columns {
    key: Vec<ByteArray>,
    case_id: Vec<ByteArray>,
    cell: Vec<i32>,
    seed: Vec<i64>,
    status: Vec<ByteArray>,
    error: Opt<ByteArray>,
    attempts: Opt<i32>,
    answer: Opt<ByteArray>,
    justification: Opt<ByteArray>,
    confidence: Opt<f64>,
    entropy: Opt<f64>,
    probabilities: Opt<ByteArray>,
    metadata: Opt<ByteArray>,
    sal_w: Opt<i32>,
    sal_h: Opt<i32>,
    saliency: Opt<ByteArray>,
    rows: usize,
}

/// An optional column: present values and a definition level per row.
struct Opt<T> {
    values: Vec<T>,
    def: Vec<i16>,
}

impl<T> Default for Opt<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            def: Vec::new(),
        }
    }
}

impl<T> Opt<T> {
    fn push(&mut self, v: Option<T>) {
        match v {
            Some(v) => {
                self.values.push(v);
                self.def.push(1);
            }
            None => self.def.push(0),
        }
    }
}

fn bytes(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

/// Writes records as an observations table. Rows must come in plan order; call
/// [`TableWriter::finish`] at the end.
pub struct TableWriter<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    cols: Columns,
    rows: u64,
}

impl<W: Write + Send> TableWriter<W> {
    pub fn new(sink: W) -> Result<Self, StoreError> {
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        let writer = SerializedFileWriter::new(sink, schema, Arc::new(writer_properties()))?;
        Ok(Self {
            writer,
            cols: Columns::default(),
            rows: 0,
        })
    }

    /// Appends one row.
    pub fn push(&mut self, r: &RunRecord) -> Result<(), StoreError> {
        let c = &mut self.cols;
        // uint32 in an int32 column (Parquet's unsigned logical type): same bits.
        let cell = u32::try_from(r.cell)
            .map_err(|_| StoreError::Record(format!("cell {} above 2^32", r.cell)))?
            as i32;
        c.key.push(bytes(&r.key));
        c.case_id.push(bytes(&r.case_id));
        c.cell.push(cell);
        c.seed.push(r.seed as i64);
        match &r.outcome {
            Outcome::Failed { error, attempts } => {
                c.status.push(bytes("failed"));
                c.error.push(Some(bytes(error)));
                c.attempts.push(Some(*attempts as i32));
                c.answer.push(None);
                c.justification.push(None);
                c.confidence.push(None);
                c.entropy.push(None);
                c.probabilities.push(None);
                c.metadata.push(None);
                c.sal_w.push(None);
                c.sal_h.push(None);
                c.saliency.push(None);
            }
            Outcome::Ok { observation: o } => {
                c.status.push(bytes("ok"));
                c.error.push(None);
                c.attempts.push(None);
                c.answer.push(o.answer.as_deref().map(bytes));
                c.justification.push(o.justification.as_deref().map(bytes));
                c.confidence
                    .push(o.confidence.map(clarity_core::json::round));
                c.entropy.push(o.entropy.map(clarity_core::json::round));
                c.probabilities.push(if o.probabilities.is_empty() {
                    None
                } else {
                    Some(bytes(&clarity_core::json::to_canonical_line(
                        &o.probabilities,
                    )?))
                });
                c.metadata.push(if o.metadata.is_empty() {
                    None
                } else {
                    Some(bytes(&clarity_core::json::to_canonical_line(&o.metadata)?))
                });
                match &o.saliency {
                    Some(s) => {
                        c.sal_w.push(Some(s.width as i32));
                        c.sal_h.push(Some(s.height as i32));
                        let mut b = Vec::with_capacity(s.values.len() * 4);
                        for v in &s.values {
                            b.extend_from_slice(&v.to_le_bytes());
                        }
                        c.saliency.push(Some(ByteArray::from(b)));
                    }
                    None => {
                        c.sal_w.push(None);
                        c.sal_h.push(None);
                        c.saliency.push(None);
                    }
                }
            }
        }
        c.rows += 1;
        self.rows += 1;
        if c.rows == ROWS_PER_GROUP {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<(), StoreError> {
        let c = std::mem::take(&mut self.cols);
        if c.rows == 0 {
            return Ok(());
        }
        let mut rg = self.writer.next_row_group()?;
        let mut i = 0usize;
        while let Some(mut col) = rg.next_column()? {
            match i {
                0 => req::<ByteArrayType>(&mut col, &c.key)?,
                1 => req::<ByteArrayType>(&mut col, &c.case_id)?,
                2 => req::<Int32Type>(&mut col, &c.cell)?,
                3 => req::<Int64Type>(&mut col, &c.seed)?,
                4 => req::<ByteArrayType>(&mut col, &c.status)?,
                5 => opt::<ByteArrayType>(&mut col, &c.error)?,
                6 => opt::<Int32Type>(&mut col, &c.attempts)?,
                7 => opt::<ByteArrayType>(&mut col, &c.answer)?,
                8 => opt::<ByteArrayType>(&mut col, &c.justification)?,
                9 => opt::<DoubleType>(&mut col, &c.confidence)?,
                10 => opt::<DoubleType>(&mut col, &c.entropy)?,
                11 => opt::<ByteArrayType>(&mut col, &c.probabilities)?,
                12 => opt::<ByteArrayType>(&mut col, &c.metadata)?,
                13 => opt::<Int32Type>(&mut col, &c.sal_w)?,
                14 => opt::<Int32Type>(&mut col, &c.sal_h)?,
                15 => opt::<ByteArrayType>(&mut col, &c.saliency)?,
                _ => return Err(StoreError::Record("schema has more columns".into())),
            }
            col.close()?;
            i += 1;
        }
        rg.close()?;
        Ok(())
    }

    /// Writes the last row group and the footer; returns the sink and the row count.
    pub fn finish(mut self) -> Result<(W, u64), StoreError> {
        self.flush_group()?;
        let rows = self.rows;
        let sink = self.writer.into_inner()?;
        Ok((sink, rows))
    }
}

fn req<T: parquet::data_type::DataType>(
    col: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    values: &[T::T],
) -> Result<(), StoreError> {
    col.typed::<T>().write_batch(values, None, None)?;
    Ok(())
}

fn opt<T: parquet::data_type::DataType>(
    col: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    o: &Opt<T::T>,
) -> Result<(), StoreError> {
    col.typed::<T>()
        .write_batch(&o.values, Some(&o.def), None)?;
    Ok(())
}

/// Whether `path` looks like a Clarity observations table (its key/value metadata).
pub fn is_table(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(reader) = SerializedFileReader::new(file) else {
        return false;
    };
    reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .is_some_and(|kv| {
            kv.iter()
                .any(|e| e.key == "clarity.table" && e.value.as_deref() == Some(TABLE_KIND))
        })
}

/// Number of rows of the table at `path` (from the footer).
pub fn row_count(path: &Path) -> Result<u64, StoreError> {
    let reader = open(path)?;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

fn open(path: &Path) -> Result<SerializedFileReader<std::fs::File>, StoreError> {
    let file = fs_err::File::open(path)?.into_parts().0;
    let reader = SerializedFileReader::new(file).map_err(|e| StoreError::File {
        path: path.to_path_buf(),
        message: format!("not a readable Parquet file: {e}"),
    })?;
    let schema = reader.metadata().file_metadata().schema_descr();
    let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
    if names != COLUMNS {
        return Err(StoreError::File {
            path: path.to_path_buf(),
            message: format!(
                "not a Clarity observations table: columns {names:?}, expected {COLUMNS:?}"
            ),
        });
    }
    Ok(reader)
}

/// Reads one column of a row group: the values and, for optional columns, the definition
/// levels.
fn read_col<T: parquet::data_type::DataType>(
    rg: &dyn parquet::file::reader::RowGroupReader,
    i: usize,
    rows: usize,
    optional: bool,
) -> Result<(Vec<T::T>, Vec<i16>), StoreError>
where
    T::T: Default + Clone,
{
    let reader = rg.get_column_reader(i)?;
    let mut typed = parquet::column::reader::get_typed_column_reader::<T>(reader);
    let mut values: Vec<T::T> = Vec::with_capacity(rows);
    let mut def: Vec<i16> = Vec::with_capacity(if optional { rows } else { 0 });
    let mut read = 0usize;
    while read < rows {
        let (recs, _, _) = typed.read_records(
            rows - read,
            if optional { Some(&mut def) } else { None },
            None,
            &mut values,
        )?;
        if recs == 0 {
            break;
        }
        read += recs;
    }
    if read != rows {
        return Err(StoreError::Record(format!(
            "column {} has {read} rows, expected {rows}",
            COLUMNS[i]
        )));
    }
    Ok((values, def))
}

/// Values of an optional column spread over rows (`None` where absent).
fn spread<T>(values: Vec<T>, def: Vec<i16>) -> Vec<Option<T>> {
    let mut it = values.into_iter();
    def.into_iter()
        .map(|d| if d > 0 { it.next() } else { None })
        .collect()
}

fn text(b: ByteArray, col: &str) -> Result<String, StoreError> {
    String::from_utf8(b.data().to_vec())
        .map_err(|_| StoreError::Record(format!("column {col}: not UTF-8")))
}

/// Calls `f` on every record of the table at `path`, in row order, one row group in memory
/// at a time. Errors name the file.
pub fn read(
    path: &Path,
    mut f: impl FnMut(RunRecord) -> Result<(), String>,
) -> Result<(), StoreError> {
    let reader = open(path)?;
    let mut row = 0u64;
    for g in 0..reader.num_row_groups() {
        read_group(&reader, g, &mut row, &mut f).map_err(|e| named(path, e))?;
    }
    Ok(())
}

fn named(path: &Path, e: StoreError) -> StoreError {
    match e {
        e @ StoreError::File { .. } => e,
        e => StoreError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

/// The records of a table as an iterator (pull), one row group decoded at a time: for merging
/// several tables in step (`clarity merge`).
pub struct TableReader {
    path: PathBuf,
    reader: SerializedFileReader<std::fs::File>,
    group: usize,
    row: u64,
    buf: std::collections::VecDeque<RunRecord>,
}

impl TableReader {
    pub fn open(path: &Path) -> Result<TableReader, StoreError> {
        Ok(TableReader {
            path: path.to_path_buf(),
            reader: open(path)?,
            group: 0,
            row: 0,
            buf: Default::default(),
        })
    }

    /// Rows in the table (from the footer).
    pub fn rows(&self) -> u64 {
        self.reader.metadata().file_metadata().num_rows().max(0) as u64
    }

    /// The next record without taking it.
    pub fn peek(&mut self) -> Result<Option<&RunRecord>, StoreError> {
        while self.buf.is_empty() && self.group < self.reader.num_row_groups() {
            let g = self.group;
            self.group += 1;
            let buf = &mut self.buf;
            read_group(&self.reader, g, &mut self.row, &mut |r| {
                buf.push_back(r);
                Ok(())
            })
            .map_err(|e| named(&self.path, e))?;
        }
        Ok(self.buf.front())
    }

    /// Takes the next record.
    pub fn next_record(&mut self) -> Result<Option<RunRecord>, StoreError> {
        self.peek()?;
        Ok(self.buf.pop_front())
    }
}

/// Decodes row group `g`, calling `f` on each record (`row` counts rows across groups, for
/// error messages).
fn read_group(
    reader: &SerializedFileReader<std::fs::File>,
    g: usize,
    row: &mut u64,
    f: &mut dyn FnMut(RunRecord) -> Result<(), String>,
) -> Result<(), StoreError> {
    let rg = reader.get_row_group(g)?;
    let n = rg.metadata().num_rows().max(0) as usize;
    let rg = rg.as_ref();
    let strs = |i: usize, opt: bool| -> Result<Vec<Option<String>>, StoreError> {
        let (v, d) = read_col::<ByteArrayType>(rg, i, n, opt)?;
        let v: Vec<String> = v
            .into_iter()
            .map(|b| text(b, COLUMNS[i]))
            .collect::<Result<_, _>>()?;
        Ok(if opt {
            spread(v, d)
        } else {
            v.into_iter().map(Some).collect()
        })
    };
    let mut go = || -> Result<(), StoreError> {
        let key = strs(0, false)?;
        let case_id = strs(1, false)?;
        let (cell, _) = read_col::<Int32Type>(rg, 2, n, false)?;
        let (seed, _) = read_col::<Int64Type>(rg, 3, n, false)?;
        let status = strs(4, false)?;
        let error = strs(5, true)?;
        let (a, d) = read_col::<Int32Type>(rg, 6, n, true)?;
        let attempts = spread(a, d);
        let answer = strs(7, true)?;
        let justification = strs(8, true)?;
        let (v, d) = read_col::<DoubleType>(rg, 9, n, true)?;
        let confidence = spread(v, d);
        let (v, d) = read_col::<DoubleType>(rg, 10, n, true)?;
        let entropy = spread(v, d);
        let probabilities = strs(11, true)?;
        let metadata = strs(12, true)?;
        let (v, d) = read_col::<Int32Type>(rg, 13, n, true)?;
        let sal_w = spread(v, d);
        let (v, d) = read_col::<Int32Type>(rg, 14, n, true)?;
        let sal_h = spread(v, d);
        let (v, d) = read_col::<ByteArrayType>(rg, 15, n, true)?;
        let saliency = spread(v, d);
        let mut cols = (
            key.into_iter(),
            case_id.into_iter(),
            status.into_iter(),
            error.into_iter(),
            answer.into_iter(),
            justification.into_iter(),
            probabilities.into_iter(),
            metadata.into_iter(),
            saliency.into_iter(),
        );
        for i in 0..n {
            *row += 1;
            let row = *row;
            let at = |m: String| StoreError::Record(format!("row {row}: {m}"));
            let key = cols.0.next().flatten().unwrap_or_default();
            let case_id = cols.1.next().flatten().unwrap_or_default();
            let status = cols.2.next().flatten().unwrap_or_default();
            let error = cols.3.next().flatten();
            let answer = cols.4.next().flatten();
            let justification = cols.5.next().flatten();
            let probs = cols.6.next().flatten();
            let meta = cols.7.next().flatten();
            let sal = cols.8.next().flatten();
            let outcome = match status.as_str() {
                "failed" => Outcome::Failed {
                    error: error.unwrap_or_default(),
                    attempts: attempts[i].unwrap_or(0) as u32,
                },
                "ok" => {
                    let probabilities: BTreeMap<String, f64> = match probs {
                        Some(p) => serde_json::from_str(&p)
                            .map_err(|e| at(format!("probabilities_json: {e}")))?,
                        None => BTreeMap::new(),
                    };
                    let metadata: BTreeMap<String, serde_json::Value> = match meta {
                        Some(m) => serde_json::from_str(&m)
                            .map_err(|e| at(format!("metadata_json: {e}")))?,
                        None => BTreeMap::new(),
                    };
                    let saliency = match (sal, sal_w[i], sal_h[i]) {
                        (Some(b), Some(w), Some(h)) => {
                            let data = b.data();
                            let (w, h) = (w as u32, h as u32);
                            if data.len() as u64 != w as u64 * h as u64 * 4 {
                                return Err(at(format!(
                                    "saliency has {} bytes, expected {w} x {h} x 4",
                                    data.len()
                                )));
                            }
                            let values = data
                                .chunks_exact(4)
                                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                                .collect();
                            Some(Saliency {
                                width: w,
                                height: h,
                                values,
                            })
                        }
                        (None, None, None) => None,
                        _ => return Err(at("incomplete saliency columns".into())),
                    };
                    Outcome::Ok {
                        observation: Observation {
                            answer,
                            justification,
                            confidence: confidence[i],
                            entropy: entropy[i],
                            probabilities,
                            saliency,
                            metadata,
                        },
                    }
                }
                s => return Err(at(format!("status `{s}`, expected ok or failed"))),
            };
            let rec = RunRecord {
                key,
                case_id,
                cell: cell[i] as u32 as usize,
                seed: seed[i] as u64,
                outcome,
            };
            f(rec).map_err(at)?;
        }
        Ok(())
    };
    go()
}

#[cfg(test)]
mod tests;
