//! Sharded sweeps: the `shard.json` marker of a shard's output directory, and [`merge_shards`],
//! which combines the directories of shards `0/N … N-1/N` into one sweep directory equal, byte
//! for byte, to the unsharded run's (`plan.json`, `observations.parquet`, `bundle.json`).
//!
//! A shard directory holds the full `plan.json`, `shard.json` (`plan_hash`, `index`, `count`,
//! `complete`), while running its own `journal.jsonl`, and once finished its own
//! `observations.parquet` with the shard's runs in plan order. Shards write nothing in common,
//! so they may run on different machines; a shared cache directory is safe too.
//!
//! The merge reads the shard tables in step: the plan's runs are enumerated from `plan.json`
//! (cases × cells × seeds) and each run is taken from the one shard whose next row it is. Memory:
//! one row group per shard.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clarity_core::SCHEMA_VERSION;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EngineError;
use crate::artifacts::{self, OBSERVATIONS_FILE, PLAN_FILE};
use crate::fsutil::{write_atomic, write_atomic_owned};
use crate::lock::OutputLock;
use crate::plan::key_bytes;
use crate::shard::Shard;

/// The marker file of a shard's output directory.
pub const SHARD_FILE: &str = "shard.json";

/// Content of `shard.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMarker {
    pub schema_version: u32,
    pub plan_hash: String,
    pub index: u32,
    pub count: u32,
    /// Every run of the shard is recorded and the shard's table written.
    pub complete: bool,
    /// Runs of the plan in this shard.
    pub runs: u64,
}

impl ShardMarker {
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
        }
    }
}

fn dir_err(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::OutputDir {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads `dir/shard.json` (`None` when absent).
pub fn read_marker(dir: &Path) -> Result<Option<ShardMarker>, EngineError> {
    let path = dir.join(SHARD_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = fs_err::read_to_string(&path)?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        dir_err(
            &path,
            format!("not a shard marker ({e}); expected plan_hash, index, count, complete, runs"),
        )
    })
}

/// Writes `dir/shard.json`.
pub fn write_marker(dir: &Path, marker: &ShardMarker) -> Result<(), EngineError> {
    let text = clarity_core::json::to_canonical_string(marker)?;
    write_atomic(&dir.join(SHARD_FILE), text.as_bytes())?;
    Ok(())
}

/// Before running into `dir`: a shard run needs a directory that is new or holds the same shard
/// of the same plan; an unsharded run one that holds no shard.
pub fn check_dir_for(dir: &Path, plan_hash: &str, shard: Option<Shard>) -> Result<(), EngineError> {
    let marker = read_marker(dir)?;
    match (shard, marker) {
        (None, None) => Ok(()),
        (None, Some(m)) => Err(dir_err(
            dir,
            format!(
                "holds shard {} of this sweep; run it with --shard {}, merge the shards with `clarity merge`, or choose another output directory",
                m.shard(),
                m.shard()
            ),
        )),
        (Some(s), Some(m)) if m.shard() == s && m.plan_hash == plan_hash => Ok(()),
        (Some(s), Some(m)) => Err(dir_err(
            dir,
            format!(
                "holds shard {} (plan_hash {}…), not shard {s} of this plan; give each shard its own directory",
                m.shard(),
                &m.plan_hash[..m.plan_hash.len().min(12)]
            ),
        )),
        (Some(s), None) if dir.join(PLAN_FILE).exists() => Err(dir_err(
            dir,
            format!("holds an unsharded run of this sweep; give shard {s} its own (new) directory"),
        )),
        (Some(_), None) => Ok(()),
    }
}

/// What [`merge_shards`] produced.
#[derive(Debug, Clone, Serialize)]
pub struct MergeOutcome {
    pub output_dir: PathBuf,
    pub plan_hash: String,
    pub shards: u32,
    pub runs: u64,
    pub failed: u64,
    pub bundle: Vec<artifacts::BundleEntry>,
    #[serde(skip)]
    pub lock: std::sync::Arc<OutputLock>,
}

struct ShardIn {
    dir: PathBuf,
    marker: ShardMarker,
    reader: clarity_store::TableReader,
}

/// Combines finished shard directories into the sweep directory `out` (new, empty, or holding
/// an earlier merge of the same plan). Errors (nothing written to `out`): a directory that is
/// not a shard, shards of different plans or shard counts, the same shard twice (overlap), a
/// missing shard, an unfinished shard, or a shard table that does not hold exactly its runs.
pub fn merge_shards(out: &Path, dirs: &[PathBuf]) -> Result<MergeOutcome, EngineError> {
    if dirs.is_empty() {
        return Err(dir_err(out, "no shard directories to merge"));
    }
    // Check every shard before touching `out`.
    let mut shards: Vec<ShardIn> = Vec::new();
    let mut plan_text: Option<(PathBuf, Vec<u8>)> = None;
    for dir in dirs {
        let marker = read_marker(dir)?.ok_or_else(|| {
            dir_err(
                dir,
                format!(
                    "not a shard directory (no {SHARD_FILE}); shards are written by `clarity run CONFIG --shard i/N`"
                ),
            )
        })?;
        let text = fs_err::read(dir.join(PLAN_FILE))?;
        match &plan_text {
            None => plan_text = Some((dir.clone(), text)),
            Some((first, t)) if *t != text => {
                return Err(dir_err(
                    dir,
                    format!(
                        "is a shard of another plan (plan_hash {}…) than {} (plan_hash {}…); merge only shards of one config",
                        &marker.plan_hash[..marker.plan_hash.len().min(12)],
                        first.display(),
                        &shards[0].marker.plan_hash[..shards[0].marker.plan_hash.len().min(12)]
                    ),
                ));
            }
            Some(_) => {}
        }
        if let Some(first) = shards.first()
            && first.marker.count != marker.count
        {
            return Err(dir_err(
                dir,
                format!(
                    "is shard {} but {} is shard {}: all shards must be of the same count",
                    marker.shard(),
                    first.dir.display(),
                    first.marker.shard()
                ),
            ));
        }
        if let Some(other) = shards.iter().find(|s| s.marker.index == marker.index) {
            return Err(dir_err(
                dir,
                format!(
                    "overlapping shards: {} is shard {} too",
                    other.dir.display(),
                    marker.shard()
                ),
            ));
        }
        if !marker.complete || !dir.join(OBSERVATIONS_FILE).is_file() {
            return Err(dir_err(
                dir,
                format!(
                    "shard {} is not finished; run the same `clarity run … --shard {}` again to resume it",
                    marker.shard(),
                    marker.shard()
                ),
            ));
        }
        let reader = clarity_store::TableReader::open(&dir.join(OBSERVATIONS_FILE))
            .map_err(artifacts::store_err)?;
        if reader.rows() != marker.runs {
            return Err(dir_err(
                dir,
                format!(
                    "{OBSERVATIONS_FILE} has {} rows, {SHARD_FILE} says {} runs",
                    reader.rows(),
                    marker.runs
                ),
            ));
        }
        shards.push(ShardIn {
            dir: dir.clone(),
            marker,
            reader,
        });
    }
    let count = shards[0].marker.count;
    let missing: Vec<String> = (0..count)
        .filter(|i| !shards.iter().any(|s| s.marker.index == *i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(dir_err(
            out,
            format!(
                "missing shards: {} (got {} of {count} shard directories)",
                missing.join(", "),
                shards.len()
            ),
        ));
    }
    let (_, plan_bytes) = plan_text.expect("at least one shard");
    let plan_hash = shards[0].marker.plan_hash.clone();
    let order = PlanOrder::parse(&plan_bytes, &shards[0].dir)?;

    if dirs.iter().any(|d| same_dir(d, out)) {
        return Err(dir_err(
            out,
            "is one of the shard directories; merge into a new directory",
        ));
    }
    artifacts::check_output_dir_hash(out, &plan_hash)?;
    if read_marker(out)?.is_some() {
        return Err(dir_err(
            out,
            "is a shard directory; merge into a new directory",
        ));
    }
    fs_err::create_dir_all(out)?;
    let lock = OutputLock::acquire(out)?;
    artifacts::check_output_dir_hash(out, &plan_hash)?;
    write_atomic(&out.join(PLAN_FILE), &plan_bytes)?;

    let mut failed = 0u64;
    let mut runs = 0u64;
    write_atomic_owned(&out.join(OBSERVATIONS_FILE), |w| {
        let mut table = clarity_store::TableWriter::new(w).map_err(artifacts::store_err)?;
        // (case id, cell, seed) of each shard's next row → shard.
        let mut heads: HashMap<(String, usize, u64), usize> = HashMap::new();
        for i in 0..shards.len() {
            push_head(&mut shards, i, &mut heads)?;
        }
        for (case, cell, seed) in order.runs() {
            let k = (order.cases[case].clone(), cell, order.seeds[seed]);
            let Some(i) = heads.remove(&k) else {
                return Err(EngineError::OutputDir {
                    path: out.to_path_buf(),
                    message: format!(
                        "run (case {}, cell {cell}, seed {}) is in no shard's table: the shards do not cover the plan",
                        k.0, k.2
                    ),
                });
            };
            let s = &mut shards[i];
            let rec = s
                .reader
                .next_record()
                .map_err(artifacts::store_err)?
                .expect("peeked");
            let owner = key_bytes(&rec.key).map(|k| Shard::of(&k, count));
            if owner != Some(s.marker.index) {
                return Err(dir_err(
                    &s.dir,
                    format!(
                        "its table holds run (case {}, cell {cell}, seed {}) of another shard",
                        rec.case_id, rec.seed
                    ),
                ));
            }
            if rec.observation().is_none() {
                failed += 1;
            }
            runs += 1;
            table.push(&rec).map_err(artifacts::store_err)?;
            push_head(&mut shards, i, &mut heads)?;
        }
        if let Some((k, i)) = heads.into_iter().next() {
            return Err(dir_err(
                &shards[i].dir,
                format!(
                    "its table holds run (case {}, cell {}, seed {}) that is not in the plan, or out of plan order",
                    k.0, k.1, k.2
                ),
            ));
        }
        Ok(table.finish().map_err(artifacts::store_err)?.0)
    })?;
    let bundle = artifacts::write_bundle(out)?;
    let telemetry: Vec<Value> = shards
        .iter()
        .map(|s| {
            let t = fs_err::read_to_string(s.dir.join(artifacts::TELEMETRY_FILE))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v.get("telemetry").cloned())
                .unwrap_or(Value::Null);
            serde_json::json!({ "shard": s.marker.shard().to_string(), "telemetry": t })
        })
        .collect();
    artifacts::write_telemetry(out, &serde_json::json!({ "merged_shards": telemetry }))?;
    let _ = SCHEMA_VERSION;
    Ok(MergeOutcome {
        output_dir: out.to_path_buf(),
        plan_hash,
        shards: count,
        runs,
        failed,
        bundle,
        lock: std::sync::Arc::new(lock),
    })
}

/// Registers shard `i`'s next row in `heads` (an error when two shards offer the same run).
fn push_head(
    shards: &mut [ShardIn],
    i: usize,
    heads: &mut HashMap<(String, usize, u64), usize>,
) -> Result<(), EngineError> {
    let Some(r) = shards[i].reader.peek().map_err(artifacts::store_err)? else {
        return Ok(());
    };
    let k = (r.case_id.clone(), r.cell, r.seed);
    if let Some(j) = heads.insert(k.clone(), i) {
        return Err(dir_err(
            &shards[i].dir,
            format!(
                "overlapping shards: run (case {}, cell {}, seed {}) is in {} too",
                k.0,
                k.1,
                k.2,
                shards[j].dir.display()
            ),
        ));
    }
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// The run order of a `plan.json`: case ids, cell count, seeds.
struct PlanOrder {
    cases: Vec<String>,
    cells: usize,
    seeds: Vec<u64>,
}

impl PlanOrder {
    fn parse(bytes: &[u8], dir: &Path) -> Result<PlanOrder, EngineError> {
        let path = dir.join(PLAN_FILE);
        let bad = |m: &str| dir_err(&path, format!("unreadable plan: {m}"));
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(&e.to_string()))?;
        let cases = v
            .get("cases")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `cases` array"))?
            .iter()
            .map(|c| c.get("id").and_then(Value::as_str).map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("a case without `id`"))?;
        let cells = v
            .get("cells")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `cells` array"))?
            .len();
        let seeds = v
            .get("seeds")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `seeds` array"))?
            .iter()
            .map(Value::as_u64)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("a seed that is not a non-negative integer"))?;
        Ok(PlanOrder {
            cases,
            cells,
            seeds,
        })
    }

    /// (case index, cell, seed index) in plan order.
    fn runs(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let (c, s) = (self.cells, self.seeds.len());
        (0..self.cases.len() * c * s).map(move |i| (i / (c * s), (i / s) % c, i % s))
    }
}
