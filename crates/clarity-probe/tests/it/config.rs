//! `[probe]` is parsed with the sweep config: bad keys and values name the file and key.

use clarity_engine::parse_config;

fn err(probe: &str) -> String {
    let text = format!(
        "cohort = {{ kind = \"builtin\", n = 2 }}\nadapter = {{ kind = \"builtin\" }}\n[probe]\n{probe}\n"
    );
    parse_config(&text, std::path::Path::new("dir/sweep.toml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_probe_settings_name_file_and_key() {
    let e = err("threshold = 1.5");
    assert!(
        e.contains("dir/sweep.toml") && e.contains("probe.threshold"),
        "{e}"
    );
    assert!(e.contains("(0, 1]"), "{e}");
    let e = err("fills = [\"smudge\"]");
    assert!(e.contains("dir/sweep.toml") && e.contains("probe"), "{e}");
    let e = err("colour = 3");
    assert!(e.contains("unknown field") && e.contains("colour"), "{e}");
    let e = err("top_k = 0");
    assert!(e.contains("probe.top_k"), "{e}");
    let e = err("occlusion_bbox = [0.5, 0, 0.2, 1]");
    assert!(e.contains("probe.occlusion_bbox"), "{e}");
}

#[test]
fn defaults_apply_and_probe_is_not_in_the_plan() {
    let text =
        "cohort = { kind = \"builtin\", n = 2 }\nadapter = { kind = \"builtin\" }\n[probe]\n";
    let c = parse_config(text, std::path::Path::new("a.toml")).unwrap();
    let p = c.probe.clone().unwrap();
    assert_eq!(p.top_k, 3);
    assert_eq!(p.fills.len(), 5);
    let without = parse_config(
        "cohort = { kind = \"builtin\", n = 2 }\nadapter = { kind = \"builtin\" }\n",
        std::path::Path::new("a.toml"),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&c).unwrap(),
        serde_json::to_value(&without).unwrap()
    );
}
