//! Issue 14's smaller defects through the binary: CSV formula injection, exit codes and error
//! texts of bad input, image limits that are real config keys.

use crate::util::Sweep;

/// A sweep whose cohort is the folder `imgs` holding `names` (copies of the test PNGs).
fn folder_sweep(names: &[&str]) -> Sweep {
    let s = Sweep::new();
    std::fs::create_dir_all(s.path("imgs")).unwrap();
    for (i, name) in names.iter().enumerate() {
        std::fs::copy(
            s.path(&format!("cohort/case{}.png", i % 3)),
            s.path(&format!("imgs/{name}")),
        )
        .unwrap();
    }
    let config = crate::util::CONFIG.replace(
        "kind = \"manifest\"\npath = \"cohort/cases.csv\"",
        "kind = \"folder\"\npath = \"imgs\"",
    );
    s.write("sweep.toml", &config);
    s
}

#[test]
fn csv_cells_from_file_names_cannot_inject_formulas() {
    let s = folder_sweep(&["=HYPERLINK(\"http:evil\",\"x\").png", "+1+2.png", "-3.png"]);
    s.clarity()
        .args(["run", "sweep.toml", "-q", "--no-report"])
        .assert()
        .code(0);
    let cases = std::fs::read_to_string(s.path("out/cases.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(cases.as_bytes());
    let ids: std::collections::BTreeSet<String> = reader
        .records()
        .map(|r| r.unwrap()[0].to_string())
        .collect();
    // Formulas are shown as text; a plain number stays a number.
    assert_eq!(
        ids.into_iter().collect::<Vec<_>>(),
        ["'+1+2", "'=HYPERLINK(\"http:evil\",\"x\")", "-3"],
        "{cases}"
    );
    for line in cases.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(!cell.starts_with(['=', '+', '@']), "{line}");
        }
    }
}

#[test]
fn an_empty_output_is_a_usage_error() {
    let s = Sweep::new();
    s.write(
        "sweep.toml",
        &crate::util::CONFIG.replace("output = \"out\"", "output = \"\""),
    );
    let out = s
        .clarity()
        .args(["run", "sweep.toml", "-q"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("key `output`: expected an output directory path"),
        "{err}"
    );
    let out = s
        .clarity()
        .args(["run", "-q", "-o", "", "sweep.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--output"), "{err}");
}

#[test]
fn a_missing_cohort_folder_is_reported_once() {
    let s = folder_sweep(&[]);
    std::fs::remove_dir(s.path("imgs")).unwrap();
    let out = s.clarity().args(["plan", "sweep.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("imgs"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn the_image_limits_named_in_errors_are_config_keys() {
    // case1.png is 32x24: over max_side = 30; the error names the key, and the key works.
    let s = Sweep::new();
    s.write(
        "sweep.toml",
        &format!("{}\n[limits]\nmax_side = 30\n", crate::util::CONFIG),
    );
    let out = s.clarity().args(["plan", "sweep.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a side over the max_side limit of 30; raise max_side"),
        "{err}"
    );
    // 32 × 24 gray 8-bit = 768 bytes decoded.
    s.write(
        "sweep.toml",
        &format!(
            "{}\n[limits]\nmax_decoded_bytes = 700\n",
            crate::util::CONFIG
        ),
    );
    let out = s.clarity().args(["plan", "sweep.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("over the max_decoded_bytes limit of 700"),
        "{err}"
    );
    s.clarity()
        .args([
            "plan",
            "sweep.toml",
            "--max-decoded-bytes",
            "800",
            "--max-side",
            "40",
        ])
        .assert()
        .code(0);
}
