//! `clarity serve` (the web console, `clarity-server`) and `clarity compare A B`.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use clarity_server::{LaunchKind, LaunchRequest, Launcher, ServerConfig};
use serde_json::json;

use crate::args::{CompareArgs, ServeArgs};
use crate::commands::UsageError;
use crate::{Cli, Command, EXIT_INTERRUPTED, EXIT_OK, Out};

/// Sweeps, probes and reports started from the console run through `clarity run CONFIG`,
/// `clarity probe CONFIG [--case ID --cell N ...]` and `clarity report DIR` themselves: the arguments are parsed by the same parser and handed to the same
/// functions, on this thread's own runtime.
pub fn launcher() -> Launcher {
    Arc::new(|req: LaunchRequest| {
        let config = req
            .config
            .as_ref()
            .map(|c| c.to_string_lossy().into_owned());
        let mut argv: Vec<String> = vec!["clarity".into(), "--quiet".into()];
        let sub = match req.kind {
            LaunchKind::Run => "run",
            LaunchKind::Probe => "probe",
            LaunchKind::Report => "report",
        };
        argv.push(sub.into());
        match (req.kind, config) {
            (LaunchKind::Report, config) => {
                argv.push(req.dir.to_string_lossy().into_owned());
                if let Some(c) = config {
                    argv.push(format!("--config={c}"));
                }
            }
            (_, Some(c)) => argv.push(c),
            (_, None) => return Err(format!("internal: `{sub}` without a config")),
        }
        argv.extend(req.args.iter().cloned());
        let cli = Cli::try_parse_from(&argv).map_err(|e| e.to_string())?;
        let out = Out {
            quiet: true,
            json: false,
        };
        let interrupt = Some(req.interrupt);
        let r = match cli.command {
            Command::Run(args) => {
                crate::commands::block_on(crate::commands::cmd_run(args, &out, interrupt))
            }
            Command::Probe(args) => {
                crate::commands::block_on(crate::probe::cmd_probe(args, &out, interrupt))
            }
            Command::Report(args) => crate::sweepdir::cmd_report(args, &out),
            _ => return Err(format!("internal: `{sub}` did not parse as itself")),
        };
        match r {
            Ok(code) => Ok(code),
            Err(e) if crate::exit_code(&e) == EXIT_INTERRUPTED => Ok(EXIT_INTERRUPTED),
            Err(e) => Err(format!("{e:#}")),
        }
    })
}

/// Binds, prints the console's URL (stdout) and serves until interrupted.
pub(crate) async fn cmd_serve(args: ServeArgs, out: &Out) -> anyhow::Result<u8> {
    if !args.root.is_dir() {
        return Err(UsageError(format!("--root {}: not a directory", args.root.display())).into());
    }
    let resolved = crate::serve::resolve_addr(&args.addr).await?;
    let loopback = resolved.iter().all(|a| a.ip().is_loopback());
    let token = match args.token.filter(|t| !t.is_empty()) {
        Some(t) => Some(t),
        None if loopback => None,
        None => Some(clarity_server::generate_token().map_err(|e| anyhow::anyhow!("{e}"))?),
    };
    let app = clarity_server::router(ServerConfig {
        root: args.root.clone(),
        token: token.clone(),
        launcher: Some(launcher()),
    })
    .map_err(|e| UsageError(e.message))?;
    let listener = tokio::net::TcpListener::bind(&resolved[..])
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let host = if loopback && addr.is_ipv4() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    let url = match &token {
        Some(t) => format!("http://{host}/?token={t}"),
        None => format!("http://{host}/"),
    };
    let mut text = format!(
        "serving the sweeps under {} on {url}\n",
        args.root.display()
    );
    if let Some(t) = &token {
        let _ = writeln!(
            text,
            "token: {t} (API clients send `Authorization: Bearer {t}`)"
        );
    }
    text.push_str("Ctrl-C stops\n");
    out.emit(
        &text,
        &json!({
            "url": url,
            "addr": addr.to_string(),
            "root": args.root.display().to_string(),
            "token_required": token.is_some(),
            "token": token,
        }),
    )?;
    if args.open {
        open_browser(&url);
    }
    clarity_server::serve(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("serving")?;
    Ok(EXIT_OK)
}

/// Opens `url` with the desktop's opener, where there is one (a failure is only a warning).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        tracing::warn!("--open: cannot run {opener} ({e}); open {url} yourself");
    }
}

/// `clarity compare A B`: writes compare.json, compare_cells.csv and compare_cases.csv.
pub(crate) fn cmd_compare(args: CompareArgs, out: &Out) -> anyhow::Result<u8> {
    for d in [&args.a, &args.b] {
        if clarity_analysis::io::detect(d).is_err() {
            return Err(UsageError(format!(
                "{}: not a sweep directory (no plan.json and no sweep_manifest.json)",
                d.display()
            ))
            .into());
        }
    }
    let (na, nb) = (args.a.display().to_string(), args.b.display().to_string());
    let c = clarity_server::compare::compare(&args.a, &args.b, (&na, &nb)).map_err(|e| {
        if e.status.is_client_error() {
            anyhow::Error::new(UsageError(e.message))
        } else {
            anyhow::anyhow!("{}", e.message)
        }
    })?;
    let files = clarity_server::compare::write(&c, &args.output)?;
    let s = &c.summary;
    let mut text = String::new();
    let _ = writeln!(text, "compare {na} (A) with {nb} (B)");
    let _ = writeln!(
        text,
        "{} cells compared ({} only in A, {} only in B); ESI intervals disjoint in {} cells",
        s.cells_compared, s.cells_only_a, s.cells_only_b, s.esi_separated
    );
    let _ = writeln!(
        text,
        "{} of {} runs changed answer",
        s.answers_changed, s.runs_compared
    );
    let mut worst: Vec<&clarity_server::compare::CellDiff> =
        c.cells.iter().filter(|c| c.esi.delta.is_some()).collect();
    worst.sort_by(|x, y| {
        let (dx, dy) = (x.esi.delta.unwrap_or(0.0), y.esi.delta.unwrap_or(0.0));
        dx.abs()
            .total_cmp(&dy.abs())
            .reverse()
            .then(x.cell.cmp(&y.cell))
    });
    for w in worst.iter().take(5) {
        let _ = writeln!(
            text,
            "  {}: ESI {} → {} ({:+.3}){}",
            w.cell,
            w.esi
                .a
                .map(|e| clarity_core::json::format_num(e.value))
                .unwrap_or_default(),
            w.esi
                .b
                .map(|e| clarity_core::json::format_num(e.value))
                .unwrap_or_default(),
            w.esi.delta.unwrap_or(0.0),
            if w.esi.separated {
                " (intervals disjoint)"
            } else {
                ""
            }
        );
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let _ = writeln!(text, "wrote: {}", names.join(", "));
    out.emit(&text, &json!({ "summary": s, "files": names }))?;
    Ok(EXIT_OK)
}
