//! The content-addressed observation cache: `CACHE/v1/<2 hex>/<key>.json`, one canonical JSON
//! object per successful run, written to a temporary file and renamed into place, so readers
//! only ever see complete entries. A key fully determines its observation, so a cached key is
//! never run again; a shared directory works across sweeps and machines.

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

    /// The cached observation of `key`, if any. A damaged entry counts as a miss.
    pub fn get(&self, key: &str) -> Option<Observation> {
        let path = self.entry_path(key);
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(e) if e.key == key => Some(e.observation),
            _ => {
                tracing::warn!("{}: damaged cache entry ignored", path.display());
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
        };
        let text = clarity_core::json::to_canonical_line(&entry)?;
        write_atomic(&path, text.as_bytes())?;
        Ok(())
    }

    /// Removes leftover temporary files and damaged entries; with `max_bytes`, then evicts the
    /// least recently modified entries until the cache fits.
    pub fn gc(&self, max_bytes: Option<u64>) -> std::io::Result<GcReport> {
        let mut report = GcReport::default();
        let mut entries: Vec<(std::time::SystemTime, PathBuf, u64)> = Vec::new();
        let v1 = self.root.join("v1");
        if !v1.exists() {
            return Ok(report);
        }
        let mut shards: Vec<PathBuf> = fs_err::read_dir(&v1)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        shards.sort();
        for shard in shards {
            for e in fs_err::read_dir(&shard)? {
                let e = e?;
                let path = e.path();
                let meta = e.metadata()?;
                let name = e.file_name().to_string_lossy().into_owned();
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
                let key = name.strip_suffix(".json").unwrap_or("");
                let ok = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
                    .is_some_and(|en| en.key == key);
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
