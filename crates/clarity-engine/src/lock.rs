//! The output-directory lock: `DIR/.clarity.lock`, an advisory exclusive lock on an open file
//! (`flock` on Unix, `LockFileEx` on Windows, through [`std::fs::File::try_lock`]) holding the
//! holder's PID as text.
//!
//! A second `clarity` on the same directory fails at once with [`EngineError::Locked`] naming the
//! holder's PID (exit code 1). The operating system releases the lock when the holder exits, however
//! it exits (`kill -9` included), so a lock file left by a dead process is simply locked again and
//! rewritten: there is no stale-lock heuristic to get wrong.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::EngineError;

/// The lock file's name inside the output directory (hidden: never bundled).
pub const LOCK_FILE: &str = ".clarity.lock";

/// Holds the lock until dropped.
#[must_use = "the lock is released when this value is dropped"]
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    // Kept open: closing the file releases the lock.
    _file: std::fs::File,
}

impl OutputLock {
    /// Takes the lock of the existing directory `dir`, or fails at once if another process (or
    /// another lock in this process) holds it.
    pub fn acquire(dir: &Path) -> Result<OutputLock, EngineError> {
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| EngineError::OutputDir {
                path: dir.to_path_buf(),
                message: format!("cannot open the lock file {LOCK_FILE}: {e}"),
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The holder writes its PID right after locking; a holder caught in between
                // shows no PID.
                let _ = file.take(64).read_to_string(&mut text);
                return Err(EngineError::Locked {
                    path: dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(EngineError::OutputDir {
                    path: dir.to_path_buf(),
                    message: format!("cannot lock {LOCK_FILE}: {e}"),
                });
            }
        }
        // Ours now (a previous holder's PID, if any, is stale): record our PID.
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        file.flush()?;
        Ok(OutputLock { path, _file: file })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
