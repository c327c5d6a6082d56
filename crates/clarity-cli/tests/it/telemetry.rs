//! telemetry.json and the progress line: busy time and time waiting for a slot reported apart
//! (busy never exceeds wall time × slots), model latency percentiles, per-phase wall time; a
//! plain progress line on a stderr that is not a terminal.

use serde_json::Value;

use crate::util::Sweep;

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

#[test]
fn telemetry_reports_busy_waiting_latency_and_phases() {
    // Each model call sleeps 0.1 s; 2 calls in flight, 1 CPU job: runs wait for a call slot.
    let s = Sweep::with_model_delay("0.1");
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "--no-cache", "-j", "1", "-q"])
        .env("CLARITY_PROGRESS_SECS", "0.05")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --quiet: no progress lines.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("runs/s"));
    let t: Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("out/telemetry.json")).unwrap())
            .unwrap();
    let t = &t["telemetry"];
    let wall = num(t, "elapsed_secs");
    assert_eq!(t["in_flight"], 2, "{t}");
    assert_eq!(t["jobs"], 1, "{t}");
    assert_eq!(t["executed"], 36, "{t}");
    // Busy time fits in the slots: at most wall time × slots.
    assert!(num(t, "adapter_secs") <= wall * 2.0 + 1e-3, "{t}");
    assert!(num(t, "perturb_secs") <= wall * 1.0 + 1e-3, "{t}");
    // 36 calls of ≥ 0.1 s on 2 slots: at least 3.6 s busy in all, and runs queued for a slot.
    assert!(num(t, "adapter_secs") >= 3.6, "{t}");
    assert!(num(t, "adapter_wait_secs") > 0.0, "{t}");
    let u = num(t, "in_flight_utilisation");
    assert!(u > 0.3 && u <= 1.0, "{t}");
    assert!((num(t, "runs_per_sec") - 36.0 / wall).abs() < 1e-6, "{t}");
    let lat = &t["model_latency"];
    assert_eq!(lat["calls"], 36, "{lat}");
    let (p50, p95, p99, max) = (
        num(lat, "p50_secs"),
        num(lat, "p95_secs"),
        num(lat, "p99_secs"),
        num(lat, "max_secs"),
    );
    assert!(
        p50 >= 0.1 && p50 <= p95 && p95 <= p99 && p99 <= max,
        "{lat}"
    );
    let ph = &t["phases"];
    for k in ["plan_secs", "run_secs", "analyse_secs", "report_secs"] {
        assert!(num(ph, k) > 0.0, "{k}: {ph}");
    }
    assert!(num(ph, "run_secs") >= wall, "{ph}");
    let sum: f64 = [
        "plan_secs",
        "run_secs",
        "probe_secs",
        "refine_secs",
        "analyse_secs",
        "report_secs",
    ]
    .iter()
    .map(|k| num(ph, k))
    .sum();
    assert!(num(ph, "total_secs") >= sum - 1e-6, "{ph}");
}

#[test]
fn plain_progress_lines_when_stderr_is_not_a_terminal() {
    let s = Sweep::with_model_delay("0.05");
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "--no-cache", "--no-analysis"])
        .env("CLARITY_PROGRESS_SECS", "0.1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("clarity: ")).collect();
    // At least one line while running (36 calls of 0.05 s on 2 slots take ~1 s) and the last.
    assert!(lines.len() >= 2, "{err}");
    let last = lines.last().unwrap();
    assert!(last.starts_with("clarity: 36/36 runs (100%), "), "{last}");
    assert!(last.contains(" runs/s, "), "{last}");
    assert!(last.contains("model p50 "), "{last}");
    assert!(last.ends_with("(done)"), "{last}");
    assert!(
        !err.contains('\r'),
        "no terminal control characters: {err:?}"
    );
    // 0: no lines.
    let s = Sweep::new();
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "--no-analysis"])
        .env("CLARITY_PROGRESS_SECS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("runs/s"));
}
