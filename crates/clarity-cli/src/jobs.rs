//! `clarity jobs slurm|k8s CONFIG --shards N`: cluster job files for a sharded sweep (SPEC §11).
//!
//! Both print one file on stdout (nothing is submitted, nothing is written):
//!
//! - **slurm**: a bash script to run on a login node. It submits a job array of N tasks (task
//!   `I` runs `clarity run CONFIG --shard I/N -o SHARDS/shard-I`), then a merge job with
//!   `--dependency=afterok:<array job>` (and `--kill-on-invalid-dep=yes`, so a failed shard
//!   cancels it) that runs `clarity merge OUT SHARDS/shard-0 … --config CONFIG`.
//! - **k8s**: a multi-document YAML manifest: a ConfigMap holding the config, a
//!   PersistentVolumeClaim (ReadWriteMany) shared by every pod, an Indexed Job (completionMode
//!   `Indexed`, completions N; the pod's completion index, `JOB_COMPLETION_INDEX`, is its
//!   shard) and a merge Job that waits until every shard's `shard.json` says `complete`, then
//!   runs `clarity merge`.
//!
//! Everything in the output is a function of the arguments and the config file (no clock, no
//! host name), so the same command writes the same bytes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use clarity_engine::{load_config, output_dir};
use serde_json::json;

use crate::commands::UsageError;
use crate::{EXIT_OK, Out};

/// `clarity jobs …`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// A Slurm submit script (bash, on stdout): a job array of N shard tasks, then a merge job
    /// that runs once every task has succeeded. Run it on a login node: `bash FILE [SBATCH
    /// OPTIONS…]` (the options go to both sbatch calls).
    Slurm(SlurmArgs),
    /// Kubernetes manifests (YAML, on stdout): ConfigMap with the config, shared
    /// PersistentVolumeClaim, Indexed Job of N shards, merge Job. `kubectl apply -f FILE`.
    K8s(K8sArgs),
}

/// What both kinds take.
#[derive(Debug, Args)]
pub struct CommonJobArgs {
    /// The sweep config (TOML, or JSON by extension).
    pub config: PathBuf,
    /// Number of shards (array tasks / Job completions), at least 1.
    #[arg(long)]
    pub shards: u32,
    /// The `clarity` program the jobs run (a path, or a name looked up on the nodes' PATH).
    #[arg(long, default_value = "clarity")]
    pub clarity: String,
    /// Job name stem (letters, digits, `-`; default: the config file's name).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    pub common: CommonJobArgs,
    /// The merged sweep directory (default: the config's `output`). The shards are written
    /// beside it, to `OUTDIR.shards/shard-I`, with the Slurm logs. On a filesystem every node
    /// sees.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct K8sArgs {
    #[command(flatten)]
    pub common: CommonJobArgs,
    /// The merged sweep directory inside the pods (default: /data/NAME, on the shared volume,
    /// which is mounted at /data); the shards go to `OUTDIR.shards/shard-I`.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Container image with `clarity` (and /bin/sh, for the merge job's wait loop).
    #[arg(long, default_value = "clarity:latest")]
    pub image: String,
    /// Size requested for the shared volume.
    #[arg(long, default_value = "10Gi")]
    pub storage: String,
    /// Storage class of the shared volume (it must offer ReadWriteMany; default: the
    /// cluster's default class).
    #[arg(long)]
    pub storage_class: Option<String>,
}

pub(crate) fn cmd_jobs(cmd: JobsCommand, out: &Out) -> anyhow::Result<u8> {
    let (kind, common, text) = match cmd {
        JobsCommand::Slurm(a) => {
            let text = slurm_script(&a)?;
            ("slurm", a.common, text)
        }
        JobsCommand::K8s(a) => {
            let text = k8s_manifests(&a)?;
            ("k8s", a.common, text)
        }
    };
    // The file is data: printed even with --quiet; --json wraps it.
    if out.json {
        out.emit(
            "",
            &json!({ "kind": kind, "shards": common.shards, "content": text }),
        )?;
    } else {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
    }
    Ok(EXIT_OK)
}

/// Checks the shard count and the config (it must load: a job that fails on every node an
/// hour later helps nobody); returns the config and the job name stem.
fn check(common: &CommonJobArgs) -> anyhow::Result<(clarity_engine::SweepConfig, String)> {
    if common.shards == 0 {
        return Err(UsageError("--shards must be at least 1".into()).into());
    }
    clarity_engine::Shard::new(0, common.shards)
        .map_err(|e| UsageError(format!("--shards: {e}")))?;
    if common.clarity.trim().is_empty() {
        return Err(
            UsageError("--clarity is empty; expected a program path or name".into()).into(),
        );
    }
    let config = load_config(&common.config)?;
    let raw_name = match &common.name {
        Some(n) => n.clone(),
        None => common
            .config
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let name = dns_label(&raw_name).ok_or_else(|| {
        UsageError(format!(
            "job name `{raw_name}` has no letter or digit; pass --name NAME"
        ))
    })?;
    Ok((config, name))
}

/// `s` as a DNS-1123 label stem: lowercase ASCII letters, digits and single `-`, at most 40
/// characters (so `clarity-NAME-shards` stays a valid Kubernetes object name).
fn dns_label(s: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    (!out.is_empty()).then_some(out)
}

/// A path as UTF-8 text (job files are text; a path that is not UTF-8 is refused).
fn utf8(p: &Path, what: &str) -> anyhow::Result<String> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| UsageError(format!("{what} {}: not valid UTF-8", p.display())).into())
}

/// `p` made absolute against the current directory (not resolved: symlinks are kept), with
/// trailing separators dropped.
fn absolute(p: &Path, what: &str) -> anyhow::Result<String> {
    let a =
        std::path::absolute(p).map_err(|e| UsageError(format!("{what} {}: {e}", p.display())))?;
    let s = utf8(&a, what)?;
    let t = s.trim_end_matches('/');
    Ok(if t.is_empty() { "/".into() } else { t.into() })
}

/// `s` quoted for a POSIX shell (single quotes; a `'` becomes `'\''`).
fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `--clarity` program: a relative path (with a `/`) is made absolute, a bare name is
/// kept (looked up on PATH where the job runs).
fn program(p: &str) -> anyhow::Result<String> {
    if p.contains('/') {
        absolute(Path::new(p), "--clarity")
    } else {
        Ok(p.to_string())
    }
}

fn slurm_script(a: &SlurmArgs) -> anyhow::Result<String> {
    let (config, name) = check(&a.common)?;
    let n = a.common.shards;
    let out = absolute(&output_dir(&config, a.output.as_deref())?, "output")?;
    let shards = format!("{out}.shards");
    let cfg = absolute(&a.common.config, "config")?;
    let clarity = program(&a.common.clarity)?;
    let (q_out, q_shards, q_cfg, q_clarity) = (sh(&out), sh(&shards), sh(&cfg), sh(&clarity));
    let mut s = String::new();
    let _ = writeln!(s, "#!/usr/bin/env bash");
    let _ = writeln!(
        s,
        "# The Clarity sweep {cfg} in {n} shards on Slurm (written by `clarity jobs slurm`)."
    );
    let _ = writeln!(
        s,
        "# Run it on a login node: `bash THIS_FILE [SBATCH OPTION...]`; the options (e.g."
    );
    let _ = writeln!(
        s,
        "# --partition=cpu --time=2:00:00 --cpus-per-task=8) go to both sbatch calls, and so do"
    );
    let _ = writeln!(s, "# SBATCH_* environment variables. It submits:");
    let _ = writeln!(
        s,
        "#   1. a job array of {n} tasks: task I runs `clarity run CONFIG --shard I/{n}` into"
    );
    let _ = writeln!(
        s,
        "#      {shards}/shard-I (a task that is interrupted or requeued resumes from its journal);"
    );
    let _ = writeln!(
        s,
        "#   2. a merge job, started once every task has succeeded (afterok; cancelled if one"
    );
    let _ = writeln!(
        s,
        "#      fails), that runs `clarity merge` into {out} (analysis and report included)."
    );
    let _ = writeln!(
        s,
        "# Logs: {shards}/slurm-*.log. Paths are absolute: every node must see them."
    );
    let _ = writeln!(s, "set -euo pipefail");
    let _ = writeln!(s, "mkdir -p {q_shards}");
    let _ = writeln!(
        s,
        "array_job=$(sbatch --parsable --job-name=clarity-{name} --array=0-{} \\",
        n - 1
    );
    let _ = writeln!(
        s,
        "  --output={q_shards}/slurm-%A_%a.log \"$@\" <<'CLARITY_SHARDS'"
    );
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(s, "set -euo pipefail");
    let _ = writeln!(
        s,
        "exec {q_clarity} run {q_cfg} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\" \\"
    );
    let _ = writeln!(s, "  -o {q_shards}/shard-\"${{SLURM_ARRAY_TASK_ID}}\"");
    let _ = writeln!(s, "CLARITY_SHARDS");
    let _ = writeln!(s, ")");
    let _ = writeln!(s, "array_job=${{array_job%%;*}}");
    let _ = writeln!(
        s,
        "merge_job=$(sbatch --parsable --job-name=clarity-{name}-merge \\"
    );
    let _ = writeln!(
        s,
        "  --dependency=afterok:\"$array_job\" --kill-on-invalid-dep=yes \\"
    );
    let _ = writeln!(
        s,
        "  --output={q_shards}/slurm-merge-%j.log \"$@\" <<'CLARITY_MERGE'"
    );
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(s, "set -euo pipefail");
    let _ = writeln!(s, "dirs=()");
    let _ = writeln!(
        s,
        "for ((i = 0; i < {n}; i++)); do dirs+=({q_shards}/shard-\"$i\"); done"
    );
    let _ = writeln!(
        s,
        "exec {q_clarity} merge {q_out} \"${{dirs[@]}}\" --config {q_cfg}"
    );
    let _ = writeln!(s, "CLARITY_MERGE");
    let _ = writeln!(s, ")");
    let _ = writeln!(s, "merge_job=${{merge_job%%;*}}");
    let _ = writeln!(
        s,
        "echo \"shards: job array $array_job (tasks 0-{}); merge: job $merge_job (after every task succeeded)\"",
        n - 1
    );
    let _ = writeln!(s, "echo \"merged sweep: \"{q_out}");
    Ok(s)
}

/// Where the pods mount the config and the shared volume.
const CONFIG_MOUNT: &str = "/config";
const DATA_MOUNT: &str = "/data";

fn k8s_manifests(a: &K8sArgs) -> anyhow::Result<String> {
    use crate::yaml::Yaml;
    let (config, name) = check(&a.common)?;
    let n = a.common.shards;
    // The config is stored under its own extension (TOML or JSON decides the parser).
    let ext = if a
        .common
        .config
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        "json"
    } else {
        "toml"
    };
    let key = format!("sweep.{ext}");
    let text = std::fs::read_to_string(&a.common.config).map_err(|e| {
        UsageError(format!(
            "{}: cannot read the config: {e}",
            a.common.config.display()
        ))
    })?;
    let out = match &a.output {
        Some(p) => {
            let s = utf8(p, "--output")?;
            if !s.starts_with('/') {
                return Err(UsageError(format!(
                    "--output {s}: expected an absolute path inside the pods (the shared volume is mounted at {DATA_MOUNT})"
                ))
                .into());
            }
            s.trim_end_matches('/').to_string()
        }
        None => format!("{DATA_MOUNT}/{name}"),
    };
    let shards = format!("{out}.shards");
    let cfg_path = format!("{CONFIG_MOUNT}/{key}");
    let clarity = a.common.clarity.clone();
    let object = |kind: &str| format!("clarity-{name}-{kind}");
    let labels = || {
        Yaml::map([
            ("app.kubernetes.io/name", "clarity".into()),
            ("clarity/sweep", name.as_str().into()),
        ])
    };
    let metadata = |kind: &str| Yaml::map([("name", object(kind).into()), ("labels", labels())]);
    let volumes = || {
        Yaml::List(vec![
            Yaml::map([
                ("name", "config".into()),
                ("configMap", Yaml::map([("name", object("config").into())])),
            ]),
            Yaml::map([
                ("name", "data".into()),
                (
                    "persistentVolumeClaim",
                    Yaml::map([("claimName", object("data").into())]),
                ),
            ]),
        ])
    };
    let mounts = || {
        Yaml::List(vec![
            Yaml::map([
                ("name", "config".into()),
                ("mountPath", CONFIG_MOUNT.into()),
                ("readOnly", Yaml::Bool(true)),
            ]),
            Yaml::map([("name", "data".into()), ("mountPath", DATA_MOUNT.into())]),
        ])
    };
    let env_cache = || {
        // A cache shared by every pod (safe with concurrent writers), on the volume.
        Yaml::map([
            ("name", "CLARITY_CACHE_DIR".into()),
            ("value", format!("{DATA_MOUNT}/.clarity-cache").into()),
        ])
    };
    let job = |kind: &str, spec: Vec<(&str, Yaml)>, container: Yaml| {
        let mut job_spec = spec;
        job_spec.push((
            "template",
            Yaml::map([
                ("metadata", Yaml::map([("labels", labels())])),
                (
                    "spec",
                    Yaml::map([
                        ("restartPolicy", "Never".into()),
                        ("containers", Yaml::List(vec![container])),
                        ("volumes", volumes()),
                    ]),
                ),
            ]),
        ));
        Yaml::map([
            ("apiVersion", "batch/v1".into()),
            ("kind", "Job".into()),
            ("metadata", metadata(kind)),
            (
                "spec",
                Yaml::Map(
                    job_spec
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                ),
            ),
        ])
    };

    let config_map = Yaml::map([
        ("apiVersion", "v1".into()),
        ("kind", "ConfigMap".into()),
        ("metadata", metadata("config")),
        ("data", Yaml::map([(key.as_str(), Yaml::Block(text))])),
    ]);
    let mut pvc_spec = vec![
        ("accessModes", Yaml::List(vec!["ReadWriteMany".into()])),
        (
            "resources",
            Yaml::map([(
                "requests",
                Yaml::map([("storage", a.storage.as_str().into())]),
            )]),
        ),
    ];
    if let Some(c) = &a.storage_class {
        pvc_spec.push(("storageClassName", c.as_str().into()));
    }
    let pvc = Yaml::map([
        ("apiVersion", "v1".into()),
        ("kind", "PersistentVolumeClaim".into()),
        ("metadata", metadata("data")),
        ("spec", Yaml::map(pvc_spec)),
    ]);
    let shard_container = Yaml::map([
        ("name", "shard".into()),
        ("image", a.image.as_str().into()),
        ("command", Yaml::List(vec![clarity.as_str().into()])),
        (
            "args",
            Yaml::List(vec![
                "run".into(),
                cfg_path.as_str().into(),
                "--shard".into(),
                format!("$(CLARITY_SHARD_INDEX)/{n}").into(),
                "-o".into(),
                format!("{shards}/shard-$(CLARITY_SHARD_INDEX)").into(),
            ]),
        ),
        (
            "env",
            Yaml::List(vec![
                // The Indexed Job's completion index (what JOB_COMPLETION_INDEX holds) is
                // the shard; named explicitly so that `$(…)` in args expands it.
                Yaml::map([
                    ("name", "CLARITY_SHARD_INDEX".into()),
                    (
                        "valueFrom",
                        Yaml::map([(
                            "fieldRef",
                            Yaml::map([(
                                "fieldPath",
                                "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                                    .into(),
                            )]),
                        )]),
                    ),
                ]),
                env_cache(),
            ]),
        ),
        ("volumeMounts", mounts()),
    ]);
    let shards_job = job(
        "shards",
        vec![
            ("completionMode", "Indexed".into()),
            ("completions", Yaml::Int(n.into())),
            ("parallelism", Yaml::Int(n.into())),
            // A failed shard is retried (it resumes from its journal) without failing the rest.
            ("backoffLimitPerIndex", Yaml::Int(3)),
        ],
        shard_container,
    );
    // The merge pod waits for every shard's marker to say `complete`, then merges. POSIX sh
    // only (no seq, no arrays): the image needs nothing but /bin/sh besides clarity.
    let q_shards = sh(&shards);
    let wait_and_merge = format!(
        "set -eu\n\
         i=0\n\
         while [ \"$i\" -lt {n} ]; do\n  \
         until grep -qs '\"complete\": true' {q_shards}/shard-\"$i\"/shard.json; do sleep 15; done\n  \
         i=$((i + 1))\n\
         done\n\
         set --\n\
         i=0\n\
         while [ \"$i\" -lt {n} ]; do set -- \"$@\" {q_shards}/shard-\"$i\"; i=$((i + 1)); done\n\
         exec {} merge {} \"$@\" --config {}\n",
        sh(&clarity),
        sh(&out),
        sh(&cfg_path)
    );
    let merge_container = Yaml::map([
        ("name", "merge".into()),
        ("image", a.image.as_str().into()),
        (
            "command",
            Yaml::List(vec![
                "/bin/sh".into(),
                "-c".into(),
                Yaml::Block(wait_and_merge),
            ]),
        ),
        ("env", Yaml::List(vec![env_cache()])),
        ("volumeMounts", mounts()),
    ]);
    let merge_job = job(
        "merge",
        vec![("backoffLimit", Yaml::Int(2))],
        merge_container,
    );

    let mut s = String::new();
    let _ = writeln!(
        s,
        "# The Clarity sweep {} in {n} shards on Kubernetes (written by `clarity jobs k8s`).",
        a.common.config.display()
    );
    let _ = writeln!(
        s,
        "# `kubectl apply -f THIS_FILE` creates: the config as a ConfigMap (mounted at {CONFIG_MOUNT}),"
    );
    let _ = writeln!(
        s,
        "# a ReadWriteMany volume (mounted at {DATA_MOUNT}), an Indexed Job of {n} pods (pod I runs"
    );
    let _ = writeln!(
        s,
        "# `clarity run --shard I/{n}` into {shards}/shard-I), and a merge Job that waits"
    );
    let _ = writeln!(
        s,
        "# until every shard is complete, then writes the merged sweep to {out}."
    );
    if !matches!(
        config.cohort,
        clarity_engine::config::CohortConfig::Builtin { .. }
    ) {
        let _ = writeln!(
            s,
            "# NOTE: this cohort is read from files: relative paths in the config resolve against"
        );
        let _ = writeln!(
            s,
            "# {CONFIG_MOUNT}; put the cohort on the volume and give its absolute path ({DATA_MOUNT}/...)."
        );
        tracing::warn!(
            "the cohort is read from files: in the pods, relative paths in the config resolve against {CONFIG_MOUNT}; put the cohort on the shared volume and use an absolute path under {DATA_MOUNT}"
        );
    }
    for doc in [config_map, pvc, shards_job, merge_job] {
        s.push_str("---\n");
        doc.emit(&mut s, 0);
    }
    Ok(s)
}
