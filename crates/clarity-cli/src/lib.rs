//! The `clarity` command line: argument types ([`Cli`]) and the commands behind them.
//!
//! `src/main.rs` only parses and calls [`run`], which returns the process exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | runtime error (another `clarity` holds the output directory's lock: the error names its PID; I/O, adapter could not run at all, `--fail-fast` stop, bundle or R2L manifest hash mismatch) |
//! | 2 | usage, config or input error (nothing was run or written, existing output untouched) |
//! | 3 | the sweep finished and every artifact was written, but some runs failed (they are recorded in `observations.parquet` with their error and left out of the metrics) |
//! | 4 | a `--fail-if` gate failed: its verdict is `breaks` (or inconclusive / not measured, see `--fail-if-inconclusive`); every artifact was written. Takes precedence over 3 |
//! | 130 | interrupted by SIGINT (Ctrl-C); run the same command again to resume |
//! | 143 | interrupted by SIGTERM (`docker stop`, systemd, Slurm's `scancel`): handled like SIGINT (in-flight runs cancelled, command-adapter process groups killed, journal synced); run the same command again to resume |
//!
//! Summaries go to stdout (text, or JSON with `--json`); logs, progress and errors to stderr
//! (`RUST_LOG` sets the log filter). A closed stdout (broken pipe) ends the program quietly.

mod args;
mod commands;
pub mod console;
pub mod finish;
mod jobs;
mod merge;
mod probe;
mod serve;
mod signals;
mod sweepdir;
mod yaml;

use std::io::Write;

pub use args::{CacheCommand, Cli, Command, GlobalArgs, InspectArgs, PlanArgs, RunArgs};
use clarity_engine::EngineError;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: runtime error.
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code: usage, config or input error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the sweep completed with failed runs.
pub const EXIT_FAILED_RUNS: u8 = 3;
/// Exit code: a `--fail-if` gate failed.
pub const EXIT_GATE: u8 = 4;
/// Exit code: interrupted by SIGINT (or the `--abort-after` test hook).
pub const EXIT_INTERRUPTED: u8 = 130;
/// Exit code: interrupted by SIGTERM.
pub const EXIT_TERMINATED: u8 = 143;

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> u8 {
    init_logging(cli.global.quiet);
    let result = commands::dispatch(cli);
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return EXIT_OK;
            }
            let code = exit_code(&err);
            let text = render_error(&err);
            if code == EXIT_INTERRUPTED || code == EXIT_TERMINATED {
                match signals::received_name() {
                    Some(sig) => eprintln!("clarity: {sig} received: {text}"),
                    None => eprintln!("clarity: {text}"),
                }
            } else {
                eprintln!("error: {text}");
            }
            code
        }
    }
}

/// The error and its causes joined by `: `, like `{:#}`, except that a cause whose text the
/// message already contains is left out (many errors print their source in their own text;
/// `{:#}` would repeat it: "failed to read directory X: …: failed to read directory X: …").
pub(crate) fn render_error(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

fn init_logging(quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "error" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false)
        .without_time()
        .try_init();
}

/// Maps an error to its exit code.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<EngineError>() {
            return match e {
                EngineError::Interrupted { .. } => signals::interrupted_exit_code(),
                e if e.is_usage() => EXIT_USAGE,
                _ => EXIT_RUNTIME,
            };
        }
        // The probe wraps engine errors transparently (not a separate cause in the chain).
        if let Some(clarity_probe::ProbeError::Engine(e)) =
            cause.downcast_ref::<clarity_probe::ProbeError>()
        {
            return match e {
                EngineError::Interrupted { .. } => signals::interrupted_exit_code(),
                e if e.is_usage() => EXIT_USAGE,
                _ => EXIT_RUNTIME,
            };
        }
        // Bad sweep data or options (not I/O): nothing was written.
        if let Some(e) = cause.downcast_ref::<clarity_analysis::AnalysisError>() {
            use clarity_analysis::AnalysisError::{Csv, Io, Serialize};
            return match e {
                Io(_) | Serialize { .. } | Csv { .. } => EXIT_RUNTIME,
                _ => EXIT_USAGE,
            };
        }
        if cause.downcast_ref::<commands::UsageError>().is_some() {
            return EXIT_USAGE;
        }
    }
    EXIT_RUNTIME
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes summaries to stdout: text unless `--json`, nothing with `--quiet` (JSON is still
/// printed with `--json --quiet`: it is data, not chatter).
pub(crate) struct Out {
    pub quiet: bool,
    pub json: bool,
}

impl Out {
    pub fn emit(&self, text: &str, json: &serde_json::Value) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            let s = clarity_core::json::to_canonical_string(json)
                .unwrap_or_else(|_| format!("{json}\n"));
            stdout.write_all(s.as_bytes())?;
        } else if !self.quiet {
            stdout.write_all(text.as_bytes())?;
        }
        stdout.flush()
    }
}
