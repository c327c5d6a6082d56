//! The content-addressed observation cache: `CACHE/v1/<2 hex>/<key>.json`, one canonical JSON
//! object per successful run, written to a temporary file and renamed into place, so readers
//! only ever see complete entries. A key fully determines its observation, so a cached key is
//! never run again; a shared directory works across sweeps and machines.
//!
//! Each entry is verified against its key before use: it must name the key of its file name and
//! carry `digest`, the BLAKE3 hash of the key and the canonical observation. An entry whose
//! digest does not match (edited, truncated, copied under another key, written by an older
//! version without a digest) is refused with a warning and the run is executed again, its
//! entry rewritten. The digest detects damage and naive tampering; it is not a signature: whoever
//! can write a shared cache can still forge entries, so share a cache only with writers you
//! trust (docs/reliability.md).

use std::path::{Path, PathBuf};

use clarity_core::{Observation, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// Environment variable overriding the default cache directory.
pub const CACHE_ENV: &str = "CLARITY_CACHE_DIR";

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    schema_version: u32,
    key: String,
    observation: Observation,
    /// [`entry_digest`] of `key` and `observation` (absent in entries of older versions, which
    /// are therefore refused and redone).
    #[serde(default)]
    digest: Option<String>,
}

/// BLAKE3 of `key`, a newline and the canonical JSON of `observation` (hex).
fn entry_digest(key: &str, observation: &Observation) -> Option<String> {
    let text = clarity_core::json::to_canonical_line(observation).ok()?;
    let mut h = blake3::Hasher::new();
    h.update(key.as_bytes());
    h.update(b"\n");
    h.update(text.as_bytes());
    Some(h.finalize().to_hex().to_string())
}

/// The observation of a valid entry of `key`, or why the bytes are not one.
fn verify_entry(key: &str, bytes: &[u8]) -> Result<Observation, &'static str> {
    let e: Entry = serde_json::from_slice(bytes).map_err(|_| "not a cache entry")?;
    if e.key != key {
        return Err("names another key");
    }
    match (&e.digest, entry_digest(key, &e.observation)) {
        (Some(d), Some(want)) if *d == want => Ok(e.observation),
        (None, _) => Err("has no digest (written by an older version)"),
        _ => Err("does not match its digest (edited or damaged)"),
    }
}

/// What `cache gc` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub entries_kept: u64,
    pub bytes_kept: u64,
    pub removed_temporary: u64,
    pub removed_corrupt: u64,
    pub evicted: u64,
    pub bytes_freed: u64,
    /// Paths under `v1/` that are not cache entries (directories, other files), left alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unexpected: Vec<PathBuf>,
}

/// Whether `name` is `<64 hex digits>.json`, the name of an entry.
fn is_entry_name(name: &str) -> bool {
    name.strip_suffix(".json")
        .is_some_and(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Cache {
    /// Opens (creating) a cache rooted at `root`.
    pub fn open(root: &Path) -> std::io::Result<Cache> {
        fs_err::create_dir_all(root.join("v1"))?;
        Ok(Cache {
            root: root.to_path_buf(),
        })
    }

    /// `$CLARITY_CACHE_DIR`, else `$XDG_CACHE_HOME/clarity`, else `~/.cache/clarity`
    /// (`~/Library/Caches/clarity` on macOS, `%LOCALAPPDATA%\clarity` on Windows).
    pub fn default_dir() -> Option<PathBuf> {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(d) = env(CACHE_ENV) {
            return Some(d);
        }
        if cfg!(windows) {
            return env("LOCALAPPDATA").map(|d| d.join("clarity"));
        }
        if let Some(d) = env("XDG_CACHE_HOME") {
            return Some(d.join("clarity"));
        }
        let home = env("HOME")?;
        if cfg!(target_os = "macos") {
            Some(home.join("Library/Caches/clarity"))
        } else {
            Some(home.join(".cache/clarity"))
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        let shard = key.get(..2).unwrap_or("xx");
        self.root.join("v1").join(shard).join(format!("{key}.json"))
    }

    /// The cached observation of `key`, if any. An entry that fails verification against `key`
    /// counts as a miss (with a warning): the run is executed again and the entry rewritten.
    pub fn get(&self, key: &str) -> Option<Observation> {
        let path = self.entry_path(key);
        let bytes = std::fs::read(&path).ok()?;
        match verify_entry(key, &bytes) {
            Ok(o) => Some(o),
            Err(why) => {
                tracing::warn!(
                    "{}: cache entry refused: it {why}; running again",
                    path.display()
                );
                None
            }
        }
    }

    /// Stores the observation of `key` (write temp + rename).
    pub fn put(&self, key: &str, observation: &Observation) -> Result<(), crate::EngineError> {
        let path = self.entry_path(key);
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        let entry = Entry {
            schema_version: SCHEMA_VERSION,
            key: key.to_string(),
            observation: observation.clone(),
            digest: entry_digest(key, observation),
        };
        let text = clarity_core::json::to_canonical_line(&entry)?;
        write_atomic(&path, text.as_bytes())?;
        Ok(())
    }

    /// Removes leftover temporary files and entries that fail verification; with `max_bytes`,
    /// then evicts the least recently modified entries until the cache fits. Anything else
    /// under `v1/` (directories, files not named like entries) is left alone and listed in
    /// [`GcReport::unexpected`].
    pub fn gc(&self, max_bytes: Option<u64>) -> std::io::Result<GcReport> {
        let mut report = GcReport::default();
        let mut entries: Vec<(std::time::SystemTime, PathBuf, u64)> = Vec::new();
        let v1 = self.root.join("v1");
        if !v1.exists() {
            return Ok(report);
        }
        let mut shards: Vec<PathBuf> = Vec::new();
        for e in fs_err::read_dir(&v1)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let is_shard = e.file_type().is_ok_and(|t| t.is_dir())
                && name.len() == 2
                && name.bytes().all(|b| b.is_ascii_hexdigit());
            if is_shard {
                shards.push(e.path());
            } else {
                report.unexpected.push(e.path());
            }
        }
        shards.sort();
        for shard in shards {
            for e in fs_err::read_dir(&shard)? {
                let e = e?;
                let path = e.path();
                let meta = match e.metadata() {
                    Ok(m) => m,
                    // Removed by a concurrent gc or writer.
                    Err(_) => continue,
                };
                let name = e.file_name().to_string_lossy().into_owned();
                if !meta.is_file() {
                    report.unexpected.push(path);
                    continue;
                }
                if name.starts_with('.') && name.contains(".tmp-") {
                    // A writer may still be renaming a fresh temporary: keep those under a minute.
                    let old = meta
                        .modified()
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .is_none_or(|age| age.as_secs() > 60);
                    if old {
                        fs_err::remove_file(&path)?;
                        report.removed_temporary += 1;
                        report.bytes_freed += meta.len();
                    }
                    continue;
                }
                if !is_entry_name(&name) {
                    report.unexpected.push(path);
                    continue;
                }
                let key = name.strip_suffix(".json").unwrap_or("");
                let ok = std::fs::read(&path)
                    .ok()
                    .is_some_and(|b| verify_entry(key, &b).is_ok());
                if !ok {
                    fs_err::remove_file(&path)?;
                    report.removed_corrupt += 1;
                    report.bytes_freed += meta.len();
                    continue;
                }
                let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                entries.push((mtime, path, meta.len()));
            }
        }
        report.unexpected.sort();
        let mut total: u64 = entries.iter().map(|e| e.2).sum();
        if let Some(max) = max_bytes {
            entries.sort();
            let mut keep = Vec::new();
            for (t, p, len) in entries {
                if total > max {
                    fs_err::remove_file(&p)?;
                    total -= len;
                    report.evicted += 1;
                    report.bytes_freed += len;
                } else {
                    keep.push((t, p, len));
                }
            }
            entries = keep;
        }
        report.entries_kept = entries.len() as u64;
        report.bytes_kept = total;
        Ok(report)
    }
}
