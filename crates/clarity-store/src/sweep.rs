//! The run records of a sweep directory, whatever its storage format: the one place that knows
//! where they are. Every reader (analysis, report, refine, the CLI's `inspect`, the console)
//! goes through [`SweepRecords`]; none opens the files by name.
//!
//! | format | finished sweep | unfinished sweep |
//! |---|---|---|
//! | 2 (this version) | `observations.parquet` (plan order) | `journal.jsonl` (completion order) |
//! | 1 (older versions) | `observations.jsonl` (plan order), next to `journal.jsonl` | `journal.jsonl` |
//!
//! A finished sweep's records are in plan order, one per run. An unfinished sweep's journal is
//! in completion order: a key may appear more than once (a retried run), and its last line may
//! be torn by a kill (it is skipped here, as the engine skips it when resuming).

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use clarity_core::RunRecord;

use crate::{OBSERVATIONS_FILE, StoreError};

/// The JSONL observations of a format-1 sweep directory (and of `clarity export --jsonl`).
pub const LEGACY_OBSERVATIONS_FILE: &str = "observations.jsonl";
/// The engine's journal: one record per executed key, in completion order, while running.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// Where a sweep directory's records are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepRecords {
    /// The observations table (format 2): finished, plan order.
    Table(PathBuf),
    /// `observations.jsonl` (format 1): finished, plan order.
    Jsonl(PathBuf),
    /// `journal.jsonl` only: the sweep is not finished (completion order).
    Journal(PathBuf),
}

impl SweepRecords {
    /// The records of the sweep in `dir`: its table, else a format-1 `observations.jsonl`, else
    /// its journal. `None`: nothing was recorded there.
    pub fn find(dir: &Path) -> Option<SweepRecords> {
        let table = dir.join(OBSERVATIONS_FILE);
        if table.is_file() {
            return Some(SweepRecords::Table(table));
        }
        let legacy = dir.join(LEGACY_OBSERVATIONS_FILE);
        if legacy.is_file() {
            return Some(SweepRecords::Jsonl(legacy));
        }
        let journal = dir.join(JOURNAL_FILE);
        journal.is_file().then_some(SweepRecords::Journal(journal))
    }

    /// As [`SweepRecords::find`], an error naming the directory when it holds no records.
    pub fn open(dir: &Path) -> Result<SweepRecords, StoreError> {
        SweepRecords::find(dir).ok_or_else(|| StoreError::File {
            path: dir.to_path_buf(),
            message: format!(
                "no {OBSERVATIONS_FILE} (or {LEGACY_OBSERVATIONS_FILE}, {JOURNAL_FILE}): no run is recorded there; run the sweep first"
            ),
        })
    }

    /// The records of a finished sweep in `dir` (table or format-1 JSONL), `None` otherwise.
    pub fn finished(dir: &Path) -> Option<SweepRecords> {
        SweepRecords::find(dir).filter(SweepRecords::is_finished)
    }

    /// Whether these are a finished sweep's records (one per run, in plan order).
    pub fn is_finished(&self) -> bool {
        !matches!(self, SweepRecords::Journal(_))
    }

    /// The file the records are read from.
    pub fn path(&self) -> &Path {
        match self {
            SweepRecords::Table(p) | SweepRecords::Jsonl(p) | SweepRecords::Journal(p) => p,
        }
    }

    /// The file's name (for messages: "see observations.parquet").
    pub fn file_name(&self) -> &'static str {
        match self {
            SweepRecords::Table(_) => OBSERVATIONS_FILE,
            SweepRecords::Jsonl(_) => LEGACY_OBSERVATIONS_FILE,
            SweepRecords::Journal(_) => JOURNAL_FILE,
        }
    }

    /// Calls `f(n, record)` on every record in file order, `n` counting from 1 (the table's row,
    /// or the JSONL line number, for messages). Streams: one row group or line in memory. A
    /// line that is not a run record is an error naming the file and line; a torn last line of
    /// a journal is skipped. `f`'s error stops the reading and is returned.
    pub fn for_each<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(usize, RunRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            SweepRecords::Table(path) => {
                let mut n = 0usize;
                let mut failed: Option<E> = None;
                let r = crate::read(path, |rec| {
                    n += 1;
                    match f(n, rec) {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            failed = Some(e);
                            Err("stopped".into())
                        }
                    }
                });
                match failed {
                    Some(e) => Err(e),
                    None => r.map_err(E::from),
                }
            }
            SweepRecords::Jsonl(path) => for_each_line(path, false, f),
            SweepRecords::Journal(path) => for_each_line(path, true, f),
        }
    }

    /// Every record, in memory (small sweeps, tests).
    pub fn read_all(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut v = Vec::new();
        self.for_each(|_, r| {
            v.push(r);
            Ok::<(), StoreError>(())
        })?;
        Ok(v)
    }
}

/// The records of a JSONL file; `torn_ok`: a last line without its newline is skipped.
fn for_each_line<E: From<StoreError>>(
    path: &Path,
    torn_ok: bool,
    mut f: impl FnMut(usize, RunRecord) -> Result<(), E>,
) -> Result<(), E> {
    let err = |line: usize, message: String| StoreError::File {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    };
    let file = fs_err::File::open(path).map_err(StoreError::from)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| err(n + 1, e.to_string()))?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        let complete = line.last() == Some(&b'\n');
        let text = if complete {
            &line[..line.len() - 1]
        } else {
            &line[..]
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<RunRecord>(text) {
            Ok(r) => f(n, r)?,
            Err(_) if torn_ok && !complete => return Ok(()),
            Err(e) => return Err(err(n, format!("not a run record: {e}")).into()),
        }
    }
}
