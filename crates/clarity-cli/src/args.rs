//! Raw command-line arguments (clap derive). Validation happens in the engine.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Clarity: reproducible robustness sweeps for image and vision-language models.
#[derive(Debug, Parser)]
#[command(name = "clarity", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// No progress bar, no summary text; only errors on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Print the summary on stdout as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan, execute, analyse and report a sweep (resumes an interrupted one).
    Run(RunArgs),
    /// Combine the shard directories of `clarity run CONFIG --shard I/N` into one sweep
    /// directory (byte-identical to the unsharded run's), then analyse and report it.
    Merge(MergeArgs),
    /// Print what a sweep would run, without running anything.
    Plan(PlanArgs),
    /// Summarise a sweep directory and verify its bundle.
    Inspect(InspectArgs),
    /// Manage the observation cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Counterfactual probe of the config's `[probe]` settings: writes probe.json and
    /// overlays/ (cached and resumable like a sweep).
    Probe(ProbeArgs),
    /// (Re)analyse a sweep directory: a Clarity sweep or one of the earlier Python CLARITY
    /// (R2L). Writes metrics.json, surface.json, gradients.json, cliffs.json, montecarlo.json
    /// and the CSV tables into it.
    Analyze(AnalyzeArgs),
    /// (Re)render report.html and report.pdf of an analysed sweep directory.
    Report(ReportArgs),
    /// Serve the builtin model behind the OpenAI chat-completions protocol.
    ServeModel(ServeModelArgs),
    /// The web console and its JSON API over every sweep directory under a root.
    Serve(ServeArgs),
    /// Compare two analysed sweeps: per-cell ESI/accuracy differences and changed answers
    /// (writes compare.json, compare_cells.csv, compare_cases.csv).
    Compare(CompareArgs),
    /// Cluster job files for a sharded sweep: a Slurm job-array script or Kubernetes Indexed
    /// Job manifests, each with a merge job after the shards (printed on stdout).
    #[command(subcommand)]
    Jobs(crate::jobs::JobsCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Every sweep directory below this one is served (recursively; Clarity and R2L sweeps).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Address to listen on, HOST:PORT (a host name such as `localhost` is resolved). Off
    /// loopback a bearer token is required (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub addr: String,
    /// Bearer token to require (off loopback one is generated and printed when not given).
    #[arg(long, env = "CLARITY_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Open the console in the desktop's browser.
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Sweep A (analysed: metrics.json).
    pub a: PathBuf,
    /// Sweep B, over the same axes.
    pub b: PathBuf,
    /// Where to write compare.json and the CSV tables.
    #[arg(long, short, default_value = ".")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A sweep directory (`plan.json`, or an R2L `sweep_manifest.json`).
    pub dir: PathBuf,
    /// R2L sweeps without an identity cell: the baseline cell, e.g.
    /// `--baseline brightness=1.0,contrast=0.9` (every axis named once).
    #[arg(long, value_parser = parse_baseline)]
    pub baseline: Option<Baseline>,
    /// Bootstrap iterations of the confidence intervals (overrides the plan's `[analysis]`).
    #[arg(long)]
    pub bootstrap_iterations: Option<usize>,
    /// Seed of the bootstrap resampling.
    #[arg(long)]
    pub bootstrap_seed: Option<u64>,
    /// ESI/accuracy level below which a cell counts as broken (cliffs), in [0, 1].
    #[arg(long)]
    pub cliff_threshold: Option<f64>,
    /// Baseline self-agreement below this is flagged, in [0, 1].
    #[arg(long)]
    pub self_agreement_threshold: Option<f64>,
    /// CI gate: exit 4 when the verdict on this condition is `breaks` (judged on the 95%
    /// interval): `[AXIS:]METRIC OP NUMBER`, e.g. `esi < 0.9`, `blur.sigma:accuracy < 0.8`,
    /// `drift > 0.2` (any axis unless one is named). Repeatable. Inconclusive and not-measured
    /// verdicts fail too (see --fail-if-inconclusive).
    #[arg(long = "fail-if", value_name = "CONDITION", value_parser = parse_condition)]
    pub fail_if: Vec<clarity_analysis::Condition>,
    /// Whether an inconclusive verdict (interval straddling the threshold) fails a --fail-if
    /// gate (a not-measured one always does).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub fail_if_inconclusive: bool,
}

/// `--fail-if`: a condition (a usage error, exit 2, says what is expected).
fn parse_condition(s: &str) -> Result<clarity_analysis::Condition, String> {
    s.parse()
}

/// `--baseline`: `(axis, value)` pairs.
#[derive(Debug, Clone)]
pub struct Baseline(pub Vec<(String, String)>);

/// `axis=value,axis=value` → pairs (a usage error names what is wrong).
fn parse_baseline(s: &str) -> Result<Baseline, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((axis, value)) = part.split_once('=') else {
            return Err(format!("`{part}`: expected axis=value"));
        };
        let (axis, value) = (axis.trim(), value.trim());
        if axis.is_empty() || value.is_empty() {
            return Err(format!("`{part}`: expected axis=value"));
        }
        if pairs.iter().any(|(a, _)| a == axis) {
            return Err(format!("axis `{axis}` named twice"));
        }
        pairs.push((axis.to_string(), value.to_string()));
    }
    if pairs.is_empty() {
        return Err("expected axis=value[,axis=value...]".into());
    }
    Ok(Baseline(pairs))
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// An analysed sweep directory (run `clarity analyze` first when metrics.json is missing).
    pub dir: PathBuf,
    /// The sweep's config: worst-case thumbnails are regenerated from its cohort (it must
    /// plan the directory's `plan.json`). Without it the report shows answers only.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeModelArgs {
    /// Address to listen on, HOST:PORT (a host name such as `localhost` is resolved; port 0:
    /// any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub addr: String,
    /// Open connections at once; at the limit the oldest idle one is closed, and when all have
    /// a request in progress a new one gets 503 [default: 256].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Chat completions handled at once; more get 503 [default: 4 × CPUs].
    #[arg(long)]
    pub max_concurrent_requests: Option<usize>,
    /// Seconds a client has to send a request's headers; idle keep-alive connections are
    /// closed after it too [default: 10].
    #[arg(long, value_parser = positive_seconds)]
    pub header_read_timeout: Option<std::time::Duration>,
    /// Seconds a client has to send a request's body (408 after it) [default: 30].
    #[arg(long, value_parser = positive_seconds)]
    pub body_read_timeout: Option<std::time::Duration>,
    /// Largest request body in bytes (413 above it) [default: 20971520].
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Largest image width or height in pixels [default: 8192].
    #[arg(long)]
    pub max_image_side: Option<u32>,
    /// Largest decoded image in bytes (width × height × channels × bytes per sample, from the
    /// header) [default: 67108864].
    #[arg(long)]
    pub max_decoded_bytes: Option<u64>,
}

impl ServeModelArgs {
    /// The server's limits: the flags over the defaults.
    pub fn options(&self) -> clarity_serve_model::ServeOptions {
        let mut o = clarity_serve_model::ServeOptions::default();
        if let Some(v) = self.max_connections {
            o.max_connections = v;
        }
        if let Some(v) = self.max_concurrent_requests {
            o.max_concurrent_requests = v;
        }
        if let Some(v) = self.header_read_timeout {
            o.header_read_timeout = v;
        }
        if let Some(v) = self.body_read_timeout {
            o.body_read_timeout = v;
        }
        if let Some(v) = self.max_body_bytes {
            o.max_body_bytes = v;
        }
        if let Some(v) = self.max_image_side {
            o.max_image_side = v;
        }
        if let Some(v) = self.max_decoded_bytes {
            o.max_decoded_bytes = v;
        }
        o
    }
}

/// A duration in seconds, > 0 and finite (fractions allowed: `0.5`).
fn positive_seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => {
            Ok(std::time::Duration::from_secs_f64(v))
        }
        _ => Err(format!(
            "expected seconds, a number in (0, 86400], got {s:?}"
        )),
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The sweep config (its `[probe]` table; defaults when absent).
    pub config: PathBuf,
    /// Output directory (overrides the config's `output`).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Parallel CPU jobs (default: the config's `jobs`, else all cores).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Cache directory (default: $CLARITY_CACHE_DIR, else the user cache dir).
    #[arg(long, env = "CLARITY_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Test hook: stop as if interrupted after N recorded runs (per batch).
    #[arg(long, hide = true)]
    pub abort_after: Option<usize>,
    /// Scoped probe: only this case, on its image in `--cell` (recorded under `scope`).
    #[arg(long, requires = "cell")]
    pub case: Option<String>,
    /// Scoped probe: the cell (index into the plan) whose image of `--case` is probed.
    #[arg(long, requires = "case")]
    pub cell: Option<usize>,
    /// Scoped probe: regions from the saliency map's components or a k×k grid.
    #[arg(long, requires = "case", value_parser = ["saliency", "grid"])]
    pub regions: Option<String>,
    /// Scoped probe: tiles per side in grid mode, 1..=16 [default: the config's].
    #[arg(long, requires = "case")]
    pub grid: Option<u32>,
    /// Scoped probe: evidence regions kept, 1..=16 [default: the config's].
    #[arg(long, requires = "case")]
    pub top_k: Option<usize>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sweep config (TOML, or JSON by extension).
    pub config: PathBuf,
    /// Output directory (overrides the config's `output`).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Parallel CPU jobs (default: the config's `jobs`, else all cores).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Stop at the first failed run (exit 1).
    #[arg(long)]
    pub fail_fast: bool,
    /// Cache directory (default: $CLARITY_CACHE_DIR, else the user cache dir).
    #[arg(long, env = "CLARITY_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Run again the runs recorded as failed in the journal.
    #[arg(long)]
    pub retry_failed: bool,
    /// Stop after the observations (no analysis, no report).
    #[arg(long)]
    pub no_analysis: bool,
    /// Analyse but do not render report.html / report.pdf.
    #[arg(long)]
    pub no_report: bool,
    /// After the sweep, bisect every cohort cliff with extra runs (under DIR/refine/) and
    /// write refine.json.
    #[arg(long)]
    pub refine: bool,
    /// With --refine: stop a cliff when its bracket is at most this wide (parameter units).
    #[arg(long, requires = "refine")]
    pub refine_tolerance: Option<f64>,
    /// With --refine: most bisection rounds per cliff (1-30, default 4).
    #[arg(long, requires = "refine")]
    pub refine_rounds: Option<usize>,
    /// CI gate: exit 4 when the verdict on this condition is `breaks` (judged on the 95%
    /// interval): `[AXIS:]METRIC OP NUMBER`, e.g. `esi < 0.9`, `blur.sigma:accuracy < 0.8`,
    /// `drift > 0.2` (any axis unless one is named). Repeatable. Inconclusive and not-measured
    /// verdicts fail too (see --fail-if-inconclusive).
    #[arg(long = "fail-if", value_name = "CONDITION", value_parser = parse_condition, conflicts_with = "no_analysis")]
    pub fail_if: Vec<clarity_analysis::Condition>,
    /// Whether an inconclusive verdict (interval straddling the threshold) fails a --fail-if
    /// gate (a not-measured one always does).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub fail_if_inconclusive: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Run only shard I of N (0-based, e.g. `--shard 0/4`): the runs whose content key falls
    /// in it. The output directory becomes a shard directory (shard.json and the shard's own
    /// observations.parquet; no analysis, no report); `clarity merge` combines the N shards.
    #[arg(long, value_name = "I/N", value_parser = parse_shard, conflicts_with_all = ["refine", "fail_if"])]
    pub shard: Option<clarity_engine::Shard>,
    /// Test hook: stop as if interrupted after N recorded runs.
    #[arg(long, hide = true)]
    pub abort_after: Option<usize>,
}

/// `--shard I/N` (a usage error says what is expected).
fn parse_shard(s: &str) -> Result<clarity_engine::Shard, String> {
    s.parse()
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The sweep directory to write (new or empty, or an earlier merge of the same plan).
    pub output: PathBuf,
    /// The shard directories, one per shard `0/N … N-1/N` (written by `clarity run CONFIG
    /// --shard I/N`), in any order.
    #[arg(required = true, num_args = 1..)]
    pub shards: Vec<PathBuf>,
    /// The sweep's config: the report's worst-case thumbnails are regenerated from its cohort,
    /// as `clarity run` does (it must plan the shards' plan.json). Without it the report shows
    /// answers only.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Stop after the merged observations (no analysis, no report).
    #[arg(long)]
    pub no_analysis: bool,
    /// Analyse but do not render report.html / report.pdf.
    #[arg(long)]
    pub no_report: bool,
}

/// Raise (or lower) the config's `[limits]` for this invocation.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Most runs (cases x cells x seeds) the sweep may plan.
    #[arg(long)]
    pub max_runs: Option<u64>,
    /// Most pixels of one decoded image.
    #[arg(long)]
    pub max_pixels: Option<u64>,
    /// Largest image or manifest file read, in bytes.
    #[arg(long)]
    pub max_file_bytes: Option<u64>,
    /// Largest decoded image in bytes (width x height x channels x bytes per sample).
    #[arg(long)]
    pub max_decoded_bytes: Option<u64>,
    /// Largest width or height of one decoded image.
    #[arg(long)]
    pub max_side: Option<u32>,
}

impl LimitArgs {
    /// Applies the flags over the config's limits.
    pub fn apply(&self, limits: &mut clarity_engine::Limits) {
        if let Some(v) = self.max_runs {
            limits.max_runs = v;
        }
        if let Some(v) = self.max_pixels {
            limits.max_pixels = v;
        }
        if let Some(v) = self.max_file_bytes {
            limits.max_file_bytes = v;
        }
        if let Some(v) = self.max_decoded_bytes {
            limits.max_decoded_bytes = v;
        }
        if let Some(v) = self.max_side {
            limits.max_side = v;
        }
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The sweep config.
    pub config: PathBuf,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Also list every run with its content key.
    #[arg(long)]
    pub runs: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A sweep directory.
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Print the cache directory.
    Dir(CacheDirArgs),
    /// Remove temporary and damaged entries; with --max-bytes, evict the oldest entries.
    Gc(CacheGcArgs),
}

#[derive(Debug, Args)]
pub struct CacheDirArgs {
    #[arg(long, env = "CLARITY_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CacheGcArgs {
    #[arg(long, env = "CLARITY_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Evict least recently written entries until the cache is at most this many bytes.
    #[arg(long)]
    pub max_bytes: Option<u64>,
}
