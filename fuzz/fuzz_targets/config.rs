//! The sweep config parser: TOML (or JSON) text → validated `SweepConfig`, or an error that
//! names the file, key and line. Nothing may panic, and every error must format.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The path only decides the format (`.json` → JSON) and the base of relative paths;
    // nothing is read from it.
    for path in ["/fuzz/sweep.toml", "/fuzz/sweep.json"] {
        match clarity_engine::parse_config(text, Path::new(path)) {
            Ok(config) => {
                let _ = format!("{config:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
