//! Write-then-rename with fsync, so an artifact is either the old one or the complete new one.

use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsynced, then
/// renamed over `path`, then the directory fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// As [`write_atomic`], the content written by `f` through a buffered writer.
pub fn write_atomic_with<E: From<std::io::Error>>(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<(), E> {
    write_atomic_owned(path, |mut w| {
        f(&mut w)?;
        Ok(w)
    })
}

/// As [`write_atomic_with`], for writers that must own their sink (the Parquet writer): `f`
/// gets the buffered temporary file and hands it back when done.
pub fn write_atomic_owned<E: From<std::io::Error>>(
    path: &Path,
    f: impl FnOnce(BufWriter<std::fs::File>) -> Result<BufWriter<std::fs::File>, E>,
) -> Result<(), E> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), unique()));
    let result = (|| {
        let file = fs_err::File::create(&tmp)?.into_parts().0;
        let w = f(BufWriter::with_capacity(1 << 16, file))?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs_err::rename(&tmp, path)?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Best-effort fsync of a directory (makes a rename durable on Unix; a no-op elsewhere).
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Whether `name` is a temporary of [`write_atomic_with`] (`.NAME.tmp-PID-N`): what a writer
/// killed between create and rename (kill -9, power loss) leaves behind.
pub(crate) fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        && name.rsplit_once(".tmp-").is_some_and(|(_, rest)| {
            rest.split_once('-').is_some_and(|(pid, n)| {
                !pid.is_empty()
                    && !n.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && n.bytes().all(|b| b.is_ascii_digit())
            })
        })
}
