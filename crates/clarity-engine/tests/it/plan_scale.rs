//! Planning does not allocate in proportion to the run count: sizes are refused before
//! anything is made (issue 14 item 2), and the streamed plan.json is the canonical JSON.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clarity_adapters::Adapter;
use clarity_engine::testing::MeanAdapter;
use clarity_engine::{EngineError, parse_config, prepare_with_adapter};

fn text(seeds: &str, n: u64, values: usize) -> String {
    let vals: Vec<String> = (0..values)
        .map(|i| format!("{}", 0.5 + i as f64 / (values as f64)))
        .collect();
    format!(
        "seeds = {seeds}\n[cohort]\nkind = \"builtin\"\nn = {n}\nsize = 64\n[adapter]\nkind = \"builtin\"\n[axes]\n\"brightness.factor\" = [{}]\n",
        vals.join(", ")
    )
}

fn prepare(t: &str) -> Result<clarity_engine::Prepared, EngineError> {
    let config = parse_config(t, Path::new("/cfg/s.toml"))?;
    prepare_with_adapter(config, Arc::new(MeanAdapter::new(0.5)) as Arc<dyn Adapter>)
}

#[test]
fn u64_max_seeds_is_a_config_error_not_a_panic() {
    let e = prepare(&text("18446744073709551615", 1, 2)).err().unwrap();
    let s = e.to_string();
    assert!(matches!(e, EngineError::Config { .. }), "{s}");
    assert!(
        s.contains("key `seeds`") && s.contains("limits.max_runs"),
        "{s}"
    );
}

#[test]
fn too_many_seeds_refused_at_once() {
    let t0 = Instant::now();
    let e = prepare(&text("200000000", 1, 2)).err().unwrap().to_string();
    assert!(e.contains("200000000 seeds is above"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[test]
fn huge_builtin_cohort_refused_before_generating_phantoms() {
    let t0 = Instant::now();
    let e = prepare(&text("1", 2_000_000, 2)).err().unwrap();
    assert!(matches!(e, EngineError::Limit { .. }), "{e}");
    let s = e.to_string();
    assert!(s.contains("2000000 cases x 2 cells x 1 seeds"), "{s}");
    assert!(s.contains("max_runs"), "{s}");
    // Generating 2M phantoms takes minutes; the refusal is immediate.
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[test]
fn overflowing_grid_refused_with_checked_arithmetic() {
    // 5 axes of 1000 values: 10^15 cells, refused before any cell is made.
    let mut t = "seeds = 1\n[cohort]\nkind = \"builtin\"\nn = 1\nsize = 64\n[adapter]\nkind = \"builtin\"\n[axes]\n".to_string();
    for axis in ["brightness.factor", "contrast.factor", "gamma.gamma"] {
        let v: Vec<String> = (1..=1000)
            .map(|i| format!("{}", 0.5 + i as f64 / 500.0))
            .collect();
        t.push_str(&format!("\"{axis}\" = [{}]\n", v.join(", ")));
    }
    let t0 = Instant::now();
    let e = prepare(&t).err().unwrap().to_string();
    assert!(e.contains("max_runs"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

#[test]
fn streamed_plan_json_is_the_canonical_serialisation() {
    let p = prepare(&text("[3, 1]", 2, 4)).unwrap();
    let mut streamed = Vec::new();
    p.plan.write_json(&mut streamed).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&streamed).unwrap();
    let canonical = clarity_core::json::to_canonical_string(&v).unwrap();
    assert_eq!(String::from_utf8(streamed).unwrap(), canonical);
    // The hash covers the one-line form without the tool version and the hash itself.
    let mut hashed = v.clone();
    let o = hashed.as_object_mut().unwrap();
    o.remove("tool_version");
    o.remove("plan_hash");
    let line = clarity_core::json::to_canonical_line(&hashed).unwrap();
    assert_eq!(
        blake3::hash(line.as_bytes()).to_hex().to_string(),
        p.plan.plan_hash
    );
    assert_eq!(v["cells"].as_array().unwrap().len(), 4);
    assert_eq!(v["recipes"].as_array().unwrap().len(), 4);
    assert_eq!(v["runs"], 2 * 4 * 2);
}
