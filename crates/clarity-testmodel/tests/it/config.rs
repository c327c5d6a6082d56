//! Building the adapter: program resolution, spec files, identity.

use std::path::Path;

use clarity_adapters::command::{CommandAdapter, CommandConfig};
use clarity_adapters::{Adapter, AdapterConfig, Workload};
use serde_json::json;

use crate::common::{Fixture, checkerboard, program};

fn build_err(config: &CommandConfig, base: &Path) -> String {
    CommandAdapter::new(config, base).unwrap_err().to_string()
}

#[test]
fn missing_program_is_a_build_error() {
    let fx = Fixture::new();
    let err = build_err(&CommandConfig::new("clarity-no-such-program"), fx.path());
    assert_eq!(
        err,
        "adapter command: `program` \"clarity-no-such-program\" was not found on PATH (write a \
         path such as ./clarity-no-such-program to use a file next to the config)"
    );
    let err = build_err(&CommandConfig::new("./bin/missing"), fx.path());
    assert_eq!(
        err,
        format!(
            "adapter command: `program` {}/bin/missing does not exist or is not a file",
            fx.path().display()
        )
    );
    std::fs::write(fx.path().join("plain.txt"), "not a program").unwrap();
    let err = build_err(&CommandConfig::new("./plain.txt"), fx.path());
    assert!(err.ends_with("plain.txt is not executable"), "{err}");
}

#[test]
fn bare_names_are_found_on_path() {
    // `sh` is on PATH everywhere the tests run; its bytes give the version.
    let a = CommandAdapter::new(&CommandConfig::new("sh"), Path::new("/")).unwrap();
    assert!(a.program().is_absolute());
    assert_eq!(a.identity().model, "sh");
}

/// Copies the test program into `dir/bin/` so two "machines" hold it at different paths.
fn install(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(program(), dir.join("bin/clarity-testmodel")).unwrap();
}

#[test]
fn identity_is_machine_independent_and_tracks_what_changes_answers() {
    let (m1, m2) = (Fixture::new(), Fixture::new());
    install(m1.path());
    install(m2.path());
    let toml_config = r#"
        kind = "command"
        program = "./bin/clarity-testmodel"
        args = ["--adapter-opt"]
        adapter_name = "stub"
        spec = { sharpness_threshold = 0.4, nested = { a = [1, 2] } }
        env = { MODEL_TOKEN = "s3cret-value" }
    "#;
    let config: AdapterConfig = toml::from_str(toml_config).unwrap();
    let a1 = config.build(m1.path()).unwrap();
    let a2 = config.build(m2.path()).unwrap();
    let id = a1.identity();
    assert_eq!(
        id,
        a2.identity(),
        "same program bytes and settings, other paths"
    );
    assert_eq!(id.adapter, "command");
    assert_eq!(id.model, "clarity-testmodel");
    let bytes = std::fs::read(program()).unwrap();
    assert_eq!(id.version, format!("blake3:{}", blake3_hex(&bytes)));
    let text = serde_json::to_string(&id).unwrap();
    for forbidden in ["/", "s3cret", "timeout"] {
        assert!(!text.contains(forbidden), "{forbidden:?} in {text}");
    }
    assert_eq!(id.settings["args"], json!(["--adapter-opt"]));
    assert_eq!(id.settings["adapter_name"], json!("stub"));
    assert!(id.settings["spec"].as_str().unwrap().starts_with("blake3:"));
    assert!(a1.needs_image_file());
    assert_eq!(a1.workload(), Workload::Io { max_in_flight: 4 });

    // Timeout and concurrency do not change answers, so not the key either.
    let AdapterConfig::Command(base) = config else {
        panic!()
    };
    let mut c = base.clone();
    c.timeout_secs = 5.0;
    c.max_in_flight = 9;
    let other = CommandAdapter::new(&c, m1.path()).unwrap();
    assert_eq!(other.identity(), id);
    assert_eq!(other.workload(), Workload::Io { max_in_flight: 9 });
    // The spec, the env values and an explicit version do.
    let mut c = base.clone();
    c.spec.as_mut().unwrap()["sharpness_threshold"] = json!(0.5);
    assert_ne!(CommandAdapter::new(&c, m1.path()).unwrap().identity(), id);
    let mut c = base.clone();
    c.env.insert("MODEL_TOKEN".into(), "other".into());
    assert_ne!(CommandAdapter::new(&c, m1.path()).unwrap().identity(), id);
    let mut c = base.clone();
    c.version = Some("medgemma-4b-it@2025-06".into());
    assert_eq!(
        CommandAdapter::new(&c, m1.path())
            .unwrap()
            .identity()
            .version,
        "medgemma-4b-it@2025-06"
    );
    // A rebuilt program (other bytes) changes the version.
    let mut rebuilt = bytes.clone();
    rebuilt.extend_from_slice(b"\0rebuilt");
    std::fs::write(m2.path().join("bin/clarity-testmodel"), rebuilt).unwrap();
    assert_ne!(config_build_version(&base, m2.path()), id.version);
}

fn config_build_version(c: &CommandConfig, base: &Path) -> String {
    CommandAdapter::new(c, base).unwrap().identity().version
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[test]
fn spec_file_is_read_at_build_time_and_hashed() {
    let fx = Fixture::new();
    std::fs::write(fx.path().join("spec.toml"), "sharpness_threshold = 0.4\n").unwrap();
    let mut c = CommandConfig::new(program());
    c.spec_file = Some("spec.toml".into());
    let a = CommandAdapter::new(&c, fx.path()).unwrap();
    let png = fx.png("s.png", 8, 8, &checkerboard(8, 8, 102, 153));
    let obs = fx.run(&a, fx.input(&png, 1)).unwrap();
    assert_eq!(
        obs.metadata["adapter_metadata"]["sharpness_threshold"],
        json!(0.4)
    );
    let id1 = a.identity();
    std::fs::write(fx.path().join("spec.toml"), "sharpness_threshold = 0.5\n").unwrap();
    let id2 = CommandAdapter::new(&c, fx.path()).unwrap().identity();
    assert_ne!(id1.settings["spec"], id2.settings["spec"]);

    std::fs::write(fx.path().join("bad.json"), "[1, 2]").unwrap();
    c.spec_file = Some("bad.json".into());
    assert_eq!(
        build_err(&c, fx.path()),
        format!(
            "adapter command: {}/bad.json: the spec must be an object, got an array",
            fx.path().display()
        )
    );
    c.spec_file = Some("absent.json".into());
    let err = build_err(&c, fx.path());
    assert!(err.starts_with("adapter command: `spec_file`: "), "{err}");
    assert!(err.contains("absent.json"), "{err}");
    c.spec = Some(json!({}));
    c.spec_file = Some("spec.toml".into());
    assert_eq!(
        build_err(&c, fx.path()),
        "adapter command: set `spec` or `spec_file`, not both"
    );
}
