//! Per-run failures: each gives a clear error naming the file, line or exit code.

use std::time::{Duration, Instant};

use clarity_adapters::{Adapter, AdapterError};
use serde_json::json;

use crate::common::{Fixture, checkerboard, process_gone};

fn run_with(behaviour: &str) -> AdapterError {
    let fx = Fixture::new();
    let png = fx.png("s.png", 8, 8, &checkerboard(8, 8, 102, 153));
    let adapter = fx.adapter(&fx.config(json!({"behaviour": behaviour})));
    fx.run(&adapter, fx.input(&png, 5)).unwrap_err()
}

#[test]
fn non_zero_exit_reports_code_and_stderr_tail() {
    let err = run_with("fail");
    assert!(matches!(err, AdapterError::Permanent(_)));
    assert_eq!(
        err.to_string(),
        "command clarity-testmodel: exited with code 3; stderr tail:\n\
         clarity-testmodel: failing as asked (behaviour = \"fail\")"
    );
    assert!(!err.is_transient());
}

#[test]
fn flooding_output_does_not_block_and_the_tail_is_bounded() {
    let msg = run_with("chatty_fail").to_string();
    let (head, tail) = msg.split_once("; stderr tail:\n").expect(&msg);
    assert_eq!(head, "command clarity-testmodel: exited with code 4");
    assert!(
        tail.ends_with("warning line 4999: something noisy\nfinal words"),
        "{tail}"
    );
    assert!(
        tail.len() <= clarity_adapters::command::TAIL_BYTES,
        "{}",
        tail.len()
    );
}

#[test]
fn missing_manifest_is_a_permanent_error_naming_the_file() {
    let err = run_with("no_manifest");
    assert_eq!(
        err,
        AdapterError::Permanent(
            "command clarity-testmodel: manifest.json: missing; the program exited 0 but wrote \
             no manifest.json into its --output directory"
                .into()
        )
    );
}

#[test]
fn malformed_trace_line_names_file_and_line_2() {
    let err = run_with("garbage");
    let msg = err.to_string();
    assert!(
        msg.starts_with("command clarity-testmodel: trace_pack.jsonl line 2: malformed JSON: "),
        "{msg}"
    );
    assert!(matches!(err, AdapterError::Permanent(_)));
}

#[test]
fn missing_image_file_is_reported() {
    let fx = Fixture::new();
    let adapter = fx.adapter(&fx.config(json!({})));
    let mut input = fx.input(&fx.path().join("unused.png"), 1);
    input.image_path = None;
    let err = fx.run(&adapter, input).unwrap_err();
    assert_eq!(
        err.to_string(),
        "command clarity-testmodel: the engine wrote no image file for this run (image_path is missing)"
    );
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let fx = Fixture::new();
    let pid_file = fx.path().join("pids.txt");
    let png = fx.png("s.png", 8, 8, &checkerboard(8, 8, 102, 153));
    let mut config =
        fx.config(json!({"behaviour": "sleep", "pid_file": pid_file.to_str().unwrap()}));
    config.timeout_secs = 3.0;
    let adapter = fx.adapter(&config);
    let err = fx.run(&adapter, fx.input(&png, 5)).unwrap_err();
    assert!(
        matches!(err, AdapterError::Timeout { secs: 3.0, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "command clarity-testmodel (its process group was killed): timed out after 3 s"
    );

    let pids = std::fs::read_to_string(&pid_file)
        .expect("the program wrote its pids before the timeout (machine very slow?)");
    let pids: Vec<u32> = pids.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "program and its sleeping child");
    // SIGKILL is asynchronous for the grandchild: give the kernel a moment (bounded poll,
    // not a timing assertion).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pids.iter().all(|&p| process_gone(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in pids {
        assert!(process_gone(pid), "process {pid} survived the timeout");
    }
}

#[test]
fn cancelling_a_run_kills_the_process_group() {
    let fx = Fixture::new();
    let pid_file = fx.path().join("pids.txt");
    let png = fx.png("s.png", 8, 8, &checkerboard(8, 8, 102, 153));
    let config = fx.config(json!({"behaviour": "sleep", "pid_file": pid_file.to_str().unwrap()}));
    let adapter = fx.adapter(&config);
    let input = fx.input(&png, 5);
    let rt = crate::common::runtime();
    rt.block_on(async {
        let run = adapter.run(input);
        tokio::pin!(run);
        // Drive the run until the program and its child are up, then drop the future (what
        // the engine does on --fail-fast or Ctrl-C).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pid_file.exists() && Instant::now() < deadline {
            tokio::select! {
                r = &mut run => panic!("the sleeping program finished: {r:?}"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    });
    let pids: Vec<u32> = std::fs::read_to_string(&pid_file)
        .expect("the program wrote its pids")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pids.iter().all(|&p| process_gone(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in pids {
        assert!(
            process_gone(pid),
            "process {pid} survived the cancelled run"
        );
    }
}
