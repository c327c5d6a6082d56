//! Golden hashes of the fixture's report files, kept in `tests/it/golden.txt` (`name sha256`).
//! Run with `UPDATE_GOLDEN=1` to rewrite the file after a deliberate change of the report.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::Digest as _;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden.txt")
}

pub fn check(name: &str, bytes: &[u8]) {
    let hash = hex::encode(sha2::Sha256::digest(bytes));
    let text = std::fs::read_to_string(path()).unwrap_or_default();
    let mut map: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        map.insert(name.to_string(), hash);
        let out: String = map.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        std::fs::write(path(), out).unwrap();
        return;
    }
    assert_eq!(
        map.get(name).map(String::as_str),
        Some(hash.as_str()),
        "{name} changed (new SHA-256 {hash}); if deliberate, rerun with UPDATE_GOLDEN=1"
    );
}
