//! Paths under the root: every user-supplied path is a relative, `/`-separated path that is
//! resolved (symlinks included) and must stay under the canonical root.

use std::path::{Component, Path, PathBuf};

use crate::ApiError;

/// Directories visited at most while discovering sweeps or configs (a guard against huge trees).
const MAX_WALK: usize = 200_000;
/// Deepest directory level searched below the root.
const MAX_DEPTH: usize = 12;

/// Resolves `rel` (relative, `/`-separated; `""` or `"."` is the root itself) under `root`
/// (already canonical). Absolute paths, `..`, empty segments and backslashes are refused; the
/// resolved path (symlinks followed) must exist and lie under `root`.
pub fn resolve_under(root: &Path, rel: &str) -> Result<PathBuf, ApiError> {
    let joined = join_checked(root, rel)?;
    let real = std::fs::canonicalize(&joined).map_err(|_| {
        ApiError::not_found(format!("`{rel}`: no such file or directory under the root"))
    })?;
    if !real.starts_with(root) {
        return Err(ApiError::forbidden(format!(
            "`{rel}`: resolves outside the served root"
        )));
    }
    Ok(real)
}

/// `root/rel` after the lexical checks of [`resolve_under`] (the path need not exist).
pub fn join_checked(root: &Path, rel: &str) -> Result<PathBuf, ApiError> {
    if rel.is_empty() || rel == "." {
        return Ok(root.to_path_buf());
    }
    let bad = |why: &str| ApiError::forbidden(format!("`{rel}`: {why}"));
    if rel.contains('\\') || rel.contains('\0') {
        return Err(bad("backslashes and NUL are not allowed"));
    }
    if rel.starts_with('/') {
        return Err(bad("expected a path relative to the root"));
    }
    let mut out = root.to_path_buf();
    for seg in rel.split('/') {
        match seg {
            "" | "." => return Err(bad("empty or `.` path segment")),
            ".." => return Err(bad("`..` is not allowed")),
            s => out.push(s),
        }
    }
    Ok(out)
}

/// Lexically normalises `p` (no file-system access): `.` dropped, `..` pops.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// Is `p` (which may not exist yet) under `root`? Lexically after normalisation, and its
/// nearest existing ancestor, with symlinks resolved, too.
pub fn is_under(root: &Path, p: &Path) -> bool {
    let n = normalize(p);
    if !n.starts_with(root) {
        return false;
    }
    let mut probe = n.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(probe) {
            return real.starts_with(root);
        }
        match probe.parent() {
            Some(parent) => probe = parent,
            None => return false,
        }
    }
}

/// The id of a directory under the root: its relative path with `/` separators (`.` for the
/// root itself).
pub fn id_of(root: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Percent-encodes an id for one URL path segment or query value.
pub fn encode_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hidden(e: &walkdir::DirEntry) -> bool {
    e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.')
}

/// Every sweep directory under `root` (Clarity `plan.json` or R2L `sweep_manifest.json`),
/// sorted by id. The walk does not follow symlinks, skips hidden entries and does not descend
/// into a sweep directory.
pub fn discover_sweeps(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
        .into_iter();
    let mut seen = 0usize;
    while let Some(entry) = walk.next() {
        let Ok(entry) = entry else { continue };
        seen += 1;
        if seen > MAX_WALK {
            tracing::warn!("stopped discovering sweeps after {MAX_WALK} entries");
            break;
        }
        if !entry.file_type().is_dir() {
            continue;
        }
        if hidden(&entry) {
            walk.skip_current_dir();
            continue;
        }
        if clarity_analysis::io::detect(entry.path()).is_ok() {
            out.push(entry.path().to_path_buf());
            walk.skip_current_dir();
        }
    }
    out
}

/// Every `*.toml` file under `root` outside sweep directories (candidate sweep configs), as ids.
pub fn discover_configs(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
        .into_iter();
    let mut seen = 0usize;
    while let Some(entry) = walk.next() {
        let Ok(entry) = entry else { continue };
        seen += 1;
        if seen > MAX_WALK {
            break;
        }
        if hidden(&entry) {
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            continue;
        }
        if entry.file_type().is_dir() {
            if entry.depth() > 0 && clarity_analysis::io::detect(entry.path()).is_ok() {
                walk.skip_current_dir();
            }
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file() && name.ends_with(".toml") && name != "Cargo.toml" {
            out.push(id_of(root, entry.path()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_checks() {
        let root = Path::new("/srv/root");
        assert_eq!(join_checked(root, "a/b").unwrap(), root.join("a/b"));
        assert_eq!(join_checked(root, ".").unwrap(), root);
        for bad in [
            "../x",
            "a/../../x",
            "/etc",
            "a//b",
            "a/./b",
            "a\\..\\b",
            "a/..",
        ] {
            assert!(join_checked(root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_round_trip_through_encoding() {
        assert_eq!(encode_id("out/quick start"), "out%2Fquick%20start");
        assert_eq!(encode_id("."), ".");
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }
}
