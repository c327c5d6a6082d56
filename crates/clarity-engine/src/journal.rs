//! The append-only journal `DIR/journal.jsonl`: one canonical [`RunRecord`] per line, written
//! as each run finishes and fsynced in small batches. A torn last line (the process was killed
//! mid-write) is dropped on open; a malformed line elsewhere is an error naming the line.
//!
//! Each line carries `digest`: BLAKE3 of the canonical record without it (key, case, cell, seed
//! and outcome). A complete line whose digest is missing or does not match (edited, or from an
//! older version) is not used: the run is executed again and a good line appended after it;
//! [`Journal::open`] warns naming the line. Like the cache's digest, this detects damage and
//! naive edits, not a forger who recomputes it.
//!
//! The journal is read as a stream ([`Journal::open`], [`scan`]): nothing holds every record
//! in memory.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use clarity_core::RunRecord;

use crate::EngineError;

/// Records between two fsyncs. Lines reach the OS at once (they survive `kill -9`); the batch
/// only bounds what a power loss could take.
const SYNC_EVERY: usize = 16;

pub struct Journal {
    path: PathBuf,
    file: fs_err::File,
    unsynced: usize,
}

/// BLAKE3 (hex) of the canonical line of `record`.
fn record_digest(record: &RunRecord) -> Result<String, EngineError> {
    let text = clarity_core::json::to_canonical_line(record)?;
    Ok(blake3::hash(text.as_bytes()).to_hex().to_string())
}

/// A journal line: the record's fields and its digest.
#[derive(serde::Deserialize)]
struct Line {
    #[serde(flatten)]
    record: RunRecord,
    #[serde(default)]
    digest: Option<String>,
}

/// Why a parsed line is not used, if it is not.
fn refusal(line: &Line) -> Result<Option<&'static str>, EngineError> {
    Ok(match &line.digest {
        None => Some("has no digest (written by an older version)"),
        Some(d) if *d != record_digest(&line.record)? => {
            Some("does not match its digest (edited or damaged)")
        }
        Some(_) => None,
    })
}

/// Calls `f(byte offset, record)` for every complete, verified record of the journal at
/// `path`, in file order, and returns the length of the good prefix (a torn last line is not
/// part of it). Lines that fail verification are skipped. A missing file has no records.
pub fn scan(
    path: &Path,
    f: impl FnMut(u64, RunRecord) -> Result<(), EngineError>,
) -> Result<u64, EngineError> {
    scan_verified(path, |_, _| {}, f)
}

/// As [`scan`], calling `refused(line number, reason)` for each line that fails verification.
fn scan_verified(
    path: &Path,
    mut refused: impl FnMut(usize, &'static str),
    mut f: impl FnMut(u64, RunRecord) -> Result<(), EngineError>,
) -> Result<u64, EngineError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())).into());
        }
    };
    let len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    let mut offset = 0u64;
    let mut line_no = 0usize;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let complete = line.last() == Some(&b'\n');
        let next = offset + n as u64;
        let text = if complete {
            &line[..line.len() - 1]
        } else {
            &line[..]
        };
        let parsed = std::str::from_utf8(text)
            .ok()
            .and_then(|l| serde_json::from_str::<Line>(l).ok());
        match parsed {
            Some(l) if complete => match refusal(&l)? {
                None => f(offset, l.record)?,
                Some(reason) => refused(line_no, reason),
            },
            // The last line: torn by a kill; ignore it.
            _ if next >= len => {
                tracing::warn!(
                    "{}: ignoring a torn last line {line_no} (interrupted write)",
                    path.display()
                );
                break;
            }
            _ => {
                return Err(EngineError::Journal {
                    path: path.to_path_buf(),
                    line: line_no,
                    message: "not a run record; the journal is damaged (remove the line or the output directory)".into(),
                });
            }
        }
        offset = next;
    }
    Ok(offset)
}

/// The journal line of `record`: its canonical JSON with `digest`, and a newline (what
/// [`Journal::append`] writes; [`crate::artifacts::unseal`] rebuilds a journal with it).
pub(crate) fn line_of(record: &RunRecord) -> Result<String, EngineError> {
    // The digest is of the record as a reader will see it (parsed back from its canonical
    // line), so that both sides hash the same canonical text.
    let text = clarity_core::json::to_canonical_line(record)?;
    let read_back: RunRecord = serde_json::from_str(&text)
        .map_err(|e| EngineError::Internal(format!("journal record does not read back: {e}")))?;
    let mut value = clarity_core::json::to_canonical_value(&read_back)?;
    if let serde_json::Value::Object(map) = &mut value {
        map.insert(
            "digest".into(),
            serde_json::Value::String(record_digest(&read_back)?),
        );
    }
    let mut line = clarity_core::json::to_canonical_line(&value)?;
    line.push('\n');
    Ok(line)
}

/// Reads the record whose line starts at `offset` (from [`scan`]).
pub fn read_at(
    file: &mut BufReader<std::fs::File>,
    path: &Path,
    offset: u64,
) -> Result<RunRecord, EngineError> {
    file.seek(SeekFrom::Start(offset))?;
    let mut line = Vec::new();
    file.read_until(b'\n', &mut line)?;
    serde_json::from_slice::<Line>(&line)
        .map(|l| l.record)
        .map_err(|e| EngineError::Journal {
            path: path.to_path_buf(),
            line: 0,
            message: format!("record at byte {offset} unreadable: {e}"),
        })
}

impl Journal {
    /// Opens (creating) the journal, calling `f` on each record already in it (see [`scan`]);
    /// a torn last line is cut off.
    pub fn open(
        path: &Path,
        f: impl FnMut(u64, RunRecord) -> Result<(), EngineError>,
    ) -> Result<Journal, EngineError> {
        let mut file = fs_err::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let good_len = scan_verified(
            path,
            |line, reason| {
                tracing::warn!(
                    "{}: line {line} {reason}: not used; its run is executed again",
                    path.display()
                );
            },
            f,
        )?;
        let len = file.metadata()?.len();
        if good_len < len {
            file.file().set_len(good_len)?;
            file.seek(SeekFrom::End(0))?;
            file.sync_all()?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            unsynced: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record (one `write` call per line).
    pub fn append(&mut self, record: &RunRecord) -> Result<(), EngineError> {
        let line = line_of(record)?;
        self.file.write_all(line.as_bytes())?;
        self.unsynced += 1;
        if self.unsynced >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    /// Flushes and fsyncs what was appended.
    pub fn sync(&mut self) -> Result<(), EngineError> {
        if self.unsynced > 0 {
            self.file.flush()?;
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}
