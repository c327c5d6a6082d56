//! Issue 14 through the binary: the output-directory lock between two real processes, and
//! SIGTERM handled like SIGINT (message, exit 143, command-adapter process groups killed,
//! resumable).

#![cfg(unix)]

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Sweep, assert_same_artifacts};

/// A model whose calls sleep `delay.txt` seconds in a child process, recording the shell's and
/// the child's PIDs in `pids.txt`, then delegate to the normal test model.
fn slow_sweep() -> Sweep {
    let s = Sweep::new();
    std::fs::rename(s.path("model.sh"), s.path("fast.sh")).unwrap();
    let script = format!(
        "#!/bin/sh\nsleep \"$(cat '{delay}')\" &\necho $! >> '{pids}'\necho $$ >> '{pids}'\nwait\nexec '{fast}' \"$@\"\n",
        delay = s.path("delay.txt").display(),
        pids = s.path("pids.txt").display(),
        fast = s.path("fast.sh").display(),
    );
    s.write("model.sh", &script);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.path("model.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    s.write("delay.txt", "30");
    s
}

fn spawn_run(s: &Sweep) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_clarity"))
        .current_dir(s.tmp.path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .args(["run", "sweep.toml", "--no-cache", "--no-report", "-j", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the model has been called (its PIDs recorded).
fn wait_for_model_call(s: &Sweep) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(s.path("pids.txt"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 2
    {
        assert!(Instant::now() < deadline, "the model was never called");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: &str) -> bool {
    // A zombie (exited, not yet reaped by init) counts as dead.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| {
            st.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn kill(sig: &str, pid: u32) {
    let st = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_second_run_on_a_locked_output_dir_fails_at_once_naming_the_holder() {
    let s = slow_sweep();
    let first = spawn_run(&s);
    wait_for_model_call(&s);
    let started = Instant::now();
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "--no-cache", "--no-report"])
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "did not fail at once"
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "in use by another clarity process (PID {})",
            first.id()
        )),
        "{stderr}"
    );
    // The holder is untouched: its model call is still sleeping, nothing else ran.
    assert_eq!(s.calls(), 0);
    kill("-KILL", first.id());
    let _ = first.wait_with_output();
    // kill -9 released the lock: the same command now runs (and resumes) to the end.
    s.write("delay.txt", "0");
    s.clarity()
        .args(["run", "sweep.toml", "--no-cache", "--no-report", "-q"])
        .assert()
        .code(0);
    assert_eq!(
        crate::util::observation_lines(&s.path("out"))
            .lines()
            .count(),
        36
    );
}

#[test]
fn sigterm_stops_like_sigint_kills_the_model_group_and_resumes() {
    let s = slow_sweep();
    let child = spawn_run(&s);
    wait_for_model_call(&s);
    kill("-TERM", child.id());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("SIGTERM received: interrupted;"),
        "{stderr}"
    );
    // The model's shell and its sleeping child (same process group) are gone.
    let pids = std::fs::read_to_string(s.path("pids.txt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    for pid in pids.lines() {
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "model process {pid} still running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert!(!s.path("out/observations.parquet").exists());
    // Resumable: the same command finishes, with the bytes of an uninterrupted run.
    s.write("delay.txt", "0");
    s.clarity()
        .args(["run", "sweep.toml", "--no-cache", "--no-report", "-q"])
        .assert()
        .code(0);
    s.clarity()
        .args([
            "run",
            "sweep.toml",
            "-o",
            "reference",
            "--no-cache",
            "--no-report",
            "-q",
        ])
        .assert()
        .code(0);
    assert_same_artifacts(&s.path("reference"), &s.path("out"));
}
