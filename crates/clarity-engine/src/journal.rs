//! The append-only journal `DIR/journal.jsonl`: one canonical [`RunRecord`] per line, written
//! as each run finishes and fsynced in small batches. A torn last line (the process was killed
//! mid-write) is dropped on open; a malformed line elsewhere is an error naming the line.

use std::io::{Seek, SeekFrom, Write};
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

impl Journal {
    /// Opens (creating) the journal and returns the records already in it.
    pub fn open(path: &Path) -> Result<(Journal, Vec<RunRecord>), EngineError> {
        let mut file = fs_err::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let bytes = fs_err::read(path)?;
        let mut records = Vec::new();
        let mut good_len = 0usize;
        let mut start = 0usize;
        let mut line_no = 0usize;
        while start < bytes.len() {
            line_no += 1;
            let end = bytes[start..].iter().position(|&b| b == b'\n');
            let (line, complete) = match end {
                Some(e) => (&bytes[start..start + e], true),
                None => (&bytes[start..], false),
            };
            let next = start + line.len() + complete as usize;
            let parsed = std::str::from_utf8(line)
                .ok()
                .and_then(|l| serde_json::from_str::<RunRecord>(l).ok());
            match parsed {
                Some(r) if complete => {
                    records.push(r);
                    good_len = next;
                }
                // The last line: torn by a kill; ignore it.
                _ if next >= bytes.len() => {
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
            start = next;
        }
        if good_len < bytes.len() {
            file.file().set_len(good_len as u64)?;
            file.seek(SeekFrom::End(0))?;
            file.sync_all()?;
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
                unsynced: 0,
            },
            records,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record (one `write` call per line).
    pub fn append(&mut self, record: &RunRecord) -> Result<(), EngineError> {
        let mut line = clarity_core::json::to_canonical_line(record)?;
        line.push('\n');
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
