use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A temp dir with a cohort (three 16x16..32x32 gray/RGB PNGs and a CSV manifest), a model
/// script and a config.
pub struct Sweep {
    pub tmp: tempfile::TempDir,
}

pub const CONFIG: &str = r#"
seeds = [0, 1]
output = "out"

[cohort]
kind = "manifest"
path = "cohort/cases.csv"

[adapter]
kind = "command"
program = "./model.sh"
max_in_flight = 2
timeout_secs = 60

[normalization]
mode = "exact"

[axes]
"brightness.factor" = [1.5, 0.5]
"contrast.factor" = [0.5]

[analysis]
bootstrap_iterations = 50
"#;

impl Sweep {
    pub fn new() -> Sweep {
        Self::with_model_delay("0")
    }

    /// `delay`: seconds each model call sleeps (as passed to `sleep`).
    pub fn with_model_delay(delay: &str) -> Sweep {
        let tmp = tempfile::tempdir().unwrap();
        let s = Sweep { tmp };
        let cohort = s.path("cohort");
        std::fs::create_dir_all(&cohort).unwrap();
        for (i, (w, h)) in [(16u32, 16u32), (32, 24), (24, 32)].into_iter().enumerate() {
            let img = image::GrayImage::from_fn(w, h, |x, y| {
                image::Luma([((x * 7 + y * 3 + i as u32 * 40) % 256) as u8])
            });
            img.save(cohort.join(format!("case{i}.png"))).unwrap();
        }
        s.write(
            "cohort/cases.csv",
            "id,path,prompt,label\ncase0,case0.png,Is it bright?,no\ncase1,case1.png,Is it bright?,yes\ncase2,case2.png,,no\n",
        );
        // A real external model: answers from the perturbations it is told about, counts
        // its calls, writes the R2L artifacts.
        let count = s.path("calls.txt");
        let script = format!(
            r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    --config) spec="$2"; shift 2;;
    --output) out="$2"; shift 2;;
    --seed) seed="$2"; shift 2;;
    *) shift;;
  esac
done
echo call >> "{count}"
sleep {delay}
if grep -q FAIL "$spec"; then echo "refusing this case" >&2; exit 1; fi
if grep -q '"contrast"' "$spec"; then answer=yes; conf=0.7; else answer=no; conf=0.9; fi
mkdir -p "$out"
printf '{{"run_id":"r","timestamp":"t","seed":%s,"artifacts":[]}}\n' "$seed" > "$out/manifest.json"
printf '{{"step":"answer","answer":"%s","justification":"it is %s","confidence_score":%s}}\n' "$answer" "$answer" "$conf" > "$out/trace_pack.jsonl"
"#,
            count = count.display()
        );
        s.write("model.sh", &script);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(s.path("model.sh"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        s.write("sweep.toml", CONFIG);
        s
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    pub fn write(&self, p: &str, text: &str) {
        let path = self.path(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Model calls so far.
    pub fn calls(&self) -> usize {
        std::fs::read_to_string(self.path("calls.txt"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    pub fn clarity(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_clarity"));
        c.current_dir(self.tmp.path())
            .env("CLARITY_CACHE_DIR", self.path("cache"))
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        c
    }

    /// Replaces the temp dir in `text` by `[TMP]`.
    pub fn filter(&self, text: &str) -> String {
        text.replace(&self.tmp.path().display().to_string(), "[TMP]")
    }
}

/// Every artifact except the journal (completion order), telemetry (timings) and hidden files
/// (the lock file holds a PID).
pub fn artifacts(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "journal.jsonl" && n != "telemetry.json" && !n.starts_with('.'))
        .map(|n| {
            let b = std::fs::read(dir.join(&n)).unwrap();
            (n, b)
        })
        .collect();
    out.sort();
    out
}

pub fn assert_same_artifacts(a: &Path, b: &Path) {
    let (x, y) = (artifacts(a), artifacts(b));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&x), names(&y));
    for ((n, p), (_, q)) in x.iter().zip(&y) {
        assert!(
            p == q,
            "{n} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// The records of the finished sweep in `dir` (through the one reader of every storage format),
/// as canonical JSON lines: the text a format-1 `observations.jsonl` held.
pub fn observation_lines(dir: &Path) -> String {
    let records = clarity_engine::artifacts::SweepRecords::finished(dir)
        .unwrap_or_else(|| panic!("{}: no finished sweep", dir.display()));
    let mut text = String::new();
    for r in records.read_all().unwrap() {
        text.push_str(&clarity_core::json::to_canonical_line(&r).unwrap());
        text.push('\n');
    }
    text
}
