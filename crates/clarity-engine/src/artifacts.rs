//! The sweep directory: `plan.json`, `journal.jsonl` (while running), `observations.parquet`,
//! `bundle.json`, `telemetry.json` (layout in the crate docs).

use std::collections::HashMap;
use std::path::Path;

use clarity_core::{RunRecord, SCHEMA_VERSION};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Digest;

use crate::EngineError;
use crate::fsutil::{write_atomic, write_atomic_owned, write_atomic_with};
use crate::journal;
use crate::lock::{LOCK_FILE, OutputLock};
use crate::plan::{Plan, key_bytes};
use std::io::Write as _;

/// The reader of a sweep directory's records, whatever its format (re-exported for the
/// engine's consumers).
pub use clarity_store::SweepRecords;

pub const PLAN_FILE: &str = "plan.json";
pub const JOURNAL_FILE: &str = clarity_store::JOURNAL_FILE;
/// The observations table (Parquet, [`clarity_store`]), written when the sweep is sealed.
pub const OBSERVATIONS_FILE: &str = clarity_store::OBSERVATIONS_FILE;
/// The JSONL observations of format-1 sweep directories (and of `clarity export --jsonl`).
pub const LEGACY_OBSERVATIONS_FILE: &str = clarity_store::LEGACY_OBSERVATIONS_FILE;
/// Layout version of the sweep directory written by this version (recorded in `bundle.json`
/// and in the table's `clarity.format` metadata): 1 = `observations.jsonl` next to the
/// journal, 2 = `observations.parquet`, journal removed once sealed.
pub const FORMAT_VERSION: u32 = 2;
pub const BUNDLE_FILE: &str = "bundle.json";
pub const TELEMETRY_FILE: &str = "telemetry.json";
/// Per-run scratch directories live under this subdirectory (removed after each run).
pub const WORK_DIR: &str = "work";

/// Files never listed in `bundle.json`: the bundle itself, non-deterministic files (telemetry,
/// the journal in completion order) and the report, which shows the bundle's hash.
const NOT_BUNDLED: &[&str] = &[
    BUNDLE_FILE,
    TELEMETRY_FILE,
    JOURNAL_FILE,
    "report.html",
    "report.pdf",
];

/// Checks that `dir` can hold this plan's sweep without clobbering anything, creates it and
/// takes its lock ([`OutputLock`]; held until the returned value is dropped).
/// Accepts: a missing or empty directory, or one holding the same plan (resume).
pub fn prepare_output_dir(dir: &Path, plan: &Plan) -> Result<OutputLock, EngineError> {
    check_output_dir(dir, plan)?;
    fs_err::create_dir_all(dir)?;
    let lock = OutputLock::acquire(dir)?;
    // Again under the lock: another process may have finished a different sweep here between
    // the first check and the lock.
    check_output_dir(dir, plan)?;
    // Temporaries left by a killed holder: nobody else writes here while we hold the lock.
    for e in fs_err::read_dir(dir)?.filter_map(|e| e.ok()) {
        if crate::fsutil::is_temporary(&e.file_name().to_string_lossy())
            && e.file_type().is_ok_and(|t| t.is_file())
        {
            fs_err::remove_file(e.path())?;
        }
    }
    Ok(lock)
}

fn check_output_dir(dir: &Path, plan: &Plan) -> Result<(), EngineError> {
    check_output_dir_hash(dir, &plan.plan_hash)
}

/// As [`prepare_output_dir`]'s check, by plan hash: `dir` is missing, empty, or holds the sweep
/// of `plan_hash`.
pub fn check_output_dir_hash(dir: &Path, plan_hash: &str) -> Result<(), EngineError> {
    let err = |message: String| EngineError::OutputDir {
        path: dir.to_path_buf(),
        message,
    };
    if dir.exists() {
        if !dir.is_dir() {
            return Err(err("exists and is not a directory".into()));
        }
        let plan_path = dir.join(PLAN_FILE);
        if plan_path.exists() {
            let text = fs_err::read_to_string(&plan_path)?;
            match plan_hash_of(&text) {
                Some(h) if h == plan_hash => {}
                Some(h) => {
                    return Err(err(format!(
                        "holds a different sweep (plan_hash {}…, this config gives {}…); choose another output directory or remove it",
                        &h[..h.len().min(12)],
                        &plan_hash[..plan_hash.len().min(12)]
                    )));
                }
                None => return Err(err("plan.json is unreadable; not touching it".into())),
            }
        } else if fs_err::read_dir(dir)?
            .filter_map(|e| e.ok())
            // Clarity's own leftovers (the lock; temporaries of a writer killed before its
            // rename, e.g. of plan.json) do not make the directory foreign.
            .any(|e| {
                e.file_name() != LOCK_FILE
                    && !crate::fsutil::is_temporary(&e.file_name().to_string_lossy())
            })
        {
            return Err(err(
                "is not empty and holds no Clarity sweep (no plan.json); choose an empty or new directory".into(),
            ));
        }
    }
    Ok(())
}

/// The `plan_hash` recorded in a `plan.json` text (`None`: not JSON, or no such key).
pub fn plan_hash_of(plan_json: &str) -> Option<String> {
    serde_json::from_str::<Value>(plan_json)
        .ok()
        .and_then(|v| v.get("plan_hash")?.as_str().map(str::to_string))
}

/// Writes `plan.json` (streamed: memory does not grow with the number of cells).
pub fn write_plan(dir: &Path, plan: &Plan) -> Result<(), EngineError> {
    write_atomic_with(&dir.join(PLAN_FILE), |w| plan.write_json(w))
}

/// Whether `dir` holds a finished sweep's observations (the table, or the `observations.jsonl`
/// of a format-1 directory).
pub fn has_observations(dir: &Path) -> bool {
    clarity_store::SweepRecords::finished(dir).is_some()
}

/// Reopens a sealed sweep for more runs (`--retry-failed`, a rerun): when `dir` holds the
/// observations table but no journal, the journal is rebuilt from the table (one record per
/// distinct key, in table order), so resuming works as before sealing. A no-op otherwise.
pub fn unseal(dir: &Path) -> Result<(), EngineError> {
    let table = dir.join(OBSERVATIONS_FILE);
    let journal = dir.join(JOURNAL_FILE);
    if journal.exists() || !table.is_file() {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    write_atomic_owned(&journal, |mut w| {
        let mut failed: Option<EngineError> = None;
        clarity_store::read(&table, |r| {
            if failed.is_some() {
                return Ok(());
            }
            if let Some(k) = key_bytes(&r.key)
                && !seen.insert(k)
            {
                return Ok(());
            }
            // With its digest, as the executor appends it: a line without one is not used.
            let line = match journal::line_of(&r) {
                Ok(l) => l,
                Err(e) => {
                    failed = Some(e);
                    return Ok(());
                }
            };
            if let Err(e) = w.write_all(line.as_bytes()) {
                failed = Some(e.into());
            }
            Ok(())
        })
        .map_err(store_err)?;
        match failed {
            Some(e) => Err(e),
            None => Ok(w),
        }
    })
}

/// Writes the observations table of `plan` (of its `shard`) from the journal, then removes the
/// journal: the table holds every record (see [`unseal`] for the way back).
pub fn seal(
    dir: &Path,
    plan: &Plan,
    shard: Option<&crate::shard::Shard>,
) -> Result<(), EngineError> {
    write_table(dir, plan, shard)?;
    let journal = dir.join(JOURNAL_FILE);
    if journal.exists() {
        fs_err::remove_file(&journal)?;
        crate::fsutil::sync_dir(dir);
    }
    Ok(())
}

pub(crate) fn store_err(e: clarity_store::StoreError) -> EngineError {
    match e {
        clarity_store::StoreError::Io(e) => EngineError::Io(e),
        e => EngineError::Internal(e.to_string()),
    }
}

/// Calls `f` on every record of a finished sweep in `dir`, in plan order
/// ([`clarity_store::SweepRecords`]: the table, else a format-1 `observations.jsonl`).
pub fn for_each_record(
    dir: &Path,
    f: &mut dyn FnMut(RunRecord) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let records = clarity_store::SweepRecords::finished(dir).ok_or_else(|| EngineError::OutputDir {
        path: dir.to_path_buf(),
        message: format!(
            "holds no finished sweep (no {OBSERVATIONS_FILE} or {LEGACY_OBSERVATIONS_FILE}); run it to the end first"
        ),
    })?;
    records.for_each(|_, r| f(r))
}

/// Key (32 bytes) → byte offset of its latest record in the journal.
fn journal_index(path: &Path) -> Result<HashMap<[u8; 32], u64>, EngineError> {
    let mut index = HashMap::new();
    journal::scan(path, |offset, r| {
        if let Some(k) = key_bytes(&r.key) {
            index.insert(k, offset);
        }
        Ok(())
    })?;
    Ok(index)
}

/// Calls `f` on one record per run of `plan` (of its shard when `shard` is set), in plan
/// order, read from the journal in `dir`: the record of the run's key, with the run's case,
/// cell and seed (runs sharing a key share the outcome). Holds an index of 40 bytes per key,
/// not the records.
pub fn for_each_planned(
    dir: &Path,
    plan: &Plan,
    shard: Option<&crate::shard::Shard>,
    f: &mut dyn FnMut(RunRecord) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let path = dir.join(JOURNAL_FILE);
    let index = journal_index(&path)?;
    let mut reader =
        std::io::BufReader::with_capacity(1 << 14, fs_err::File::open(&path)?.into_parts().0);
    for run in plan.runs() {
        let k = key_bytes(&run.key).expect("hex key");
        if shard.is_some_and(|s| !s.contains(&k)) {
            continue;
        }
        let offset = index.get(&k).ok_or_else(|| {
            EngineError::Internal(format!("run {} has no record after the sweep", run.key))
        })?;
        let rec = journal::read_at(&mut reader, &path, *offset)?;
        f(RunRecord {
            key: run.key,
            case_id: plan.cases[run.case].id.clone(),
            cell: run.cell,
            seed: run.seed,
            outcome: rec.outcome,
        })?;
    }
    Ok(())
}

/// Writes `observations.parquet`: one record per run (of `shard`'s runs when set), in plan
/// order, from the journal. Deterministic: the same records give the same bytes.
pub fn write_table(
    dir: &Path,
    plan: &Plan,
    shard: Option<&crate::shard::Shard>,
) -> Result<(), EngineError> {
    write_atomic_owned(&dir.join(OBSERVATIONS_FILE), |w| {
        let mut table = clarity_store::TableWriter::new(w).map_err(store_err)?;
        for_each_planned(dir, plan, shard, &mut |rec| {
            table.push(&rec).map_err(store_err)
        })?;
        Ok(table.finish().map_err(store_err)?.0)
    })
}

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Writes `bundle.json`: SHA-256 and size of every regular file at the top of `dir`, sorted by
/// name, except the bundle itself, telemetry, the journal, the report (which shows this
/// bundle's hash) and hidden temporary files. Call again after adding artifacts.
pub fn write_bundle(dir: &Path) -> Result<Vec<BundleEntry>, EngineError> {
    let mut names: Vec<String> = fs_err::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !NOT_BUNDLED.contains(&n.as_str()))
        .collect();
    names.sort();
    let mut files = Vec::new();
    for name in names {
        let bytes = fs_err::read(dir.join(&name))?;
        files.push(BundleEntry {
            sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            bytes: bytes.len() as u64,
            name,
        });
    }
    let v = json!({
        "schema_version": SCHEMA_VERSION,
        "format": FORMAT_VERSION,
        "algorithm": "sha256",
        "files": files,
    });
    let text = clarity_core::json::to_canonical_string(&v)?;
    write_atomic(&dir.join(BUNDLE_FILE), text.as_bytes())?;
    Ok(files)
}

/// Writes `telemetry.json` (timings and counts; not deterministic, not bundled).
pub fn write_telemetry<T: Serialize>(dir: &Path, telemetry: &T) -> Result<(), EngineError> {
    let text = clarity_core::json::to_canonical_string(&json!({
        "schema_version": SCHEMA_VERSION,
        "telemetry": telemetry,
    }))?;
    write_atomic(&dir.join(TELEMETRY_FILE), text.as_bytes())?;
    Ok(())
}
