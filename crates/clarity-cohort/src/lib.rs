//! Clarity cohorts: the set of input cases a sweep runs over.
//!
//! A [`CohortCase`] is one decoded image with an id, an optional prompt and ground-truth
//! label, free-form metadata, the path it came from and its [`DecodeRecord`]. Cohorts come
//! from:
//!
//! - a folder ([`load_folder`]): every PNG/JPEG/TIFF file below it (by extension,
//!   case-insensitive) and every DICOM file, recognised by its content (the `DICM` magic), so
//!   that UID-named files (`1.2.826…`), Siemens `.IMA` and extensionless PACS exports are
//!   found; sorted by relative path in byte order; id = relative path without a known image
//!   extension. DICOM objects without pixel data (DICOMDIR, SR, RT plans, presentation
//!   states …) are skipped and listed ([`FolderCohort::skipped`]); every real decoding error
//!   is reported, all at once;
//! - a manifest ([`load_manifest`]): CSV with a header row or JSONL, one case per row, in
//!   manifest order, paths relative to the manifest's directory.
//!
//! Decoding runs in parallel (rayon) but results and the error reported are those of the
//! first case in cohort order, so output never depends on thread scheduling. Every error
//! ([`CohortError`]) names the folder or manifest file, and for manifests the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clarity_image::{DecodeError, DecodeOptions, DecodeRecord, Image, decode_file};
use rayon::prelude::*;
use serde_json::Value;

/// One input case.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortCase {
    pub id: String,
    pub image: Arc<Image>,
    pub prompt: Option<String>,
    pub label: Option<String>,
    pub metadata: BTreeMap<String, Value>,
    /// Path relative to the cohort root (folder, or manifest directory), `/`-separated; for
    /// manifests, the path as written.
    pub source: String,
    pub decode: Option<DecodeRecord>,
}

/// Errors loading a cohort. Messages name the folder or manifest (and line).
#[derive(Debug, thiserror::Error)]
pub enum CohortError {
    #[error("cannot read cohort folder: {0}")]
    ReadDir(#[source] std::io::Error),
    #[error("{}: not valid UTF-8 in a file name; rename it", path.display())]
    NonUtf8Path { path: PathBuf },
    #[error(
        "{}: no image files found (looked for .png .jpg .jpeg .tif .tiff .dcm and extensionless DICOM)", dir.display()
    )]
    EmptyFolder { dir: PathBuf },
    #[error(
        "{}: duplicate case id '{id}' from '{first}' and '{second}'; ids are paths without extension, rename one", dir.display()
    )]
    DuplicateFileId {
        dir: PathBuf,
        id: String,
        first: String,
        second: String,
    },
    #[error("cannot read manifest: {0}")]
    ReadManifest(#[source] std::io::Error),
    #[error(
        "{}: unknown manifest type; expected a .csv, .jsonl or .ndjson file", path.display()
    )]
    ManifestKind { path: PathBuf },
    #[error("{}:{line}: {message}", path.display())]
    Manifest {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}: manifest lists no cases", path.display())]
    EmptyManifest { path: PathBuf },
    #[error("{}:{line}: {source}", path.display())]
    ManifestDecode {
        path: PathBuf,
        line: u64,
        #[source]
        source: DecodeError,
    },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("{}: {} of {} files could not be decoded:\n  {}", dir.display(), errors.len(), total, errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
    Cases {
        dir: PathBuf,
        total: usize,
        errors: Vec<DecodeError>,
    },
}

/// A file of a folder cohort that is not a case, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedFile {
    /// Path relative to the folder, `/`-separated.
    pub source: String,
    pub reason: String,
}

/// A folder cohort: its cases and the files that were skipped on purpose.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderCohort {
    pub cases: Vec<CohortCase>,
    /// DICOM objects without pixel data, in path order.
    pub skipped: Vec<SkippedFile>,
}

/// Extensions (lower case) loaded from folders by name; any other file is loaded when its
/// content is DICOM (the `DICM` magic).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "tif", "tiff", "dcm", "dicom"];

/// Extensions dropped from case ids (the loaded ones plus Siemens `.ima`).
const ID_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "tif", "tiff", "dcm", "dicom", "ima"];

/// Loads a folder when `path` is a directory, else a manifest.
pub fn load(path: &Path, opts: &DecodeOptions) -> Result<Vec<CohortCase>, CohortError> {
    if path.is_dir() {
        load_folder(path, opts)
    } else {
        load_manifest(path, opts)
    }
}

/// Loads every supported image below `dir` (recursively; hidden entries starting with `.`
/// are skipped, symlinked folders are not followed). Non-image DICOM objects are dropped;
/// see [`load_folder_cohort`] for the list.
pub fn load_folder(dir: &Path, opts: &DecodeOptions) -> Result<Vec<CohortCase>, CohortError> {
    load_folder_cohort(dir, opts).map(|c| c.cases)
}

/// [`load_folder`] with the skipped files.
pub fn load_folder_cohort(dir: &Path, opts: &DecodeOptions) -> Result<FolderCohort, CohortError> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    if files.is_empty() {
        return Err(CohortError::EmptyFolder {
            dir: dir.to_path_buf(),
        });
    }
    // String order is byte order of the UTF-8 relative path.
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (rel, _) in &files {
        let id = id_of(rel);
        if let Some(first) = seen.insert(id.clone(), rel.clone()) {
            return Err(CohortError::DuplicateFileId {
                dir: dir.to_path_buf(),
                id,
                first,
                second: rel.clone(),
            });
        }
    }
    let decoded: Vec<Result<CohortCase, DecodeError>> = files
        .par_iter()
        .map(|(rel, path)| {
            let d = decode_file(path, opts)?;
            Ok(CohortCase {
                id: id_of(rel),
                image: Arc::new(d.image),
                prompt: None,
                label: None,
                metadata: BTreeMap::new(),
                source: rel.clone(),
                decode: Some(d.record),
            })
        })
        .collect();
    let total = files.len();
    let mut cases = Vec::new();
    let mut skipped = Vec::new();
    let mut errors = Vec::new();
    for ((rel, _), r) in files.into_iter().zip(decoded) {
        match r {
            Ok(c) => cases.push(c),
            Err(DecodeError::NotAnImage { what, .. }) => skipped.push(SkippedFile {
                source: rel,
                reason: format!("DICOM object without pixel data: {what}"),
            }),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => {}
        1 => return Err(CohortError::Decode(errors.remove(0))),
        _ => {
            return Err(CohortError::Cases {
                dir: dir.to_path_buf(),
                total,
                errors,
            });
        }
    }
    if cases.is_empty() {
        return Err(CohortError::EmptyFolder {
            dir: dir.to_path_buf(),
        });
    }
    Ok(FolderCohort { cases, skipped })
}

/// `a/b.c.png` → `a/b.c`; names without a known image extension (extensionless files,
/// UID-named DICOM files such as `1.2.826.0.1.3680043.2.1125.1`) stay as they are.
fn id_of(rel: &str) -> String {
    let name_start = rel.rfind('/').map_or(0, |i| i + 1);
    match rel[name_start..].rfind('.') {
        Some(dot)
            if dot > 0
                && ID_EXTENSIONS
                    .contains(&rel[name_start + dot + 1..].to_ascii_lowercase().as_str()) =>
        {
            rel[..name_start + dot].to_string()
        }
        _ => rel.to_string(),
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), CohortError> {
    for entry in fs_err::read_dir(dir).map_err(CohortError::ReadDir)? {
        let entry = entry.map_err(CohortError::ReadDir)?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(CohortError::NonUtf8Path { path });
        };
        if name.starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(CohortError::ReadDir)?;
        if file_type.is_dir() {
            walk(root, &path, out)?;
            continue;
        }
        // A symlink to a file is followed; one to a folder is not (no cycles).
        if !(file_type.is_file() || (file_type.is_symlink() && path.is_file())) {
            continue;
        }
        // Known image extensions by name; anything else by content (DICOM magic), since
        // PACS exports name files by UID or `.IMA`.
        let supported = match name.rsplit_once('.') {
            Some((stem, ext))
                if !stem.is_empty()
                    && IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) =>
            {
                true
            }
            _ => has_dicm_preamble(&path),
        };
        if supported {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let parts: Option<Vec<&str>> =
                rel.components().map(|c| c.as_os_str().to_str()).collect();
            let Some(parts) = parts else {
                return Err(CohortError::NonUtf8Path { path });
            };
            out.push((parts.join("/"), path));
        }
    }
    Ok(())
}

/// Reads the first 132 bytes only; unreadable or short files are simply not DICOM here.
/// `DICM` at 128 (Part 10) or at 0 (preamble stripped).
fn has_dicm_preamble(path: &Path) -> bool {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = Vec::with_capacity(132);
    if f.take(132).read_to_end(&mut head).is_err() {
        return false;
    }
    head.get(128..132) == Some(b"DICM") || head.starts_with(b"DICM")
}

/// One manifest row before decoding.
struct Row {
    line: u64,
    id: String,
    path_as_written: String,
    resolved: PathBuf,
    prompt: Option<String>,
    label: Option<String>,
    metadata: BTreeMap<String, Value>,
}

/// Loads a CSV (`.csv`) or JSONL (`.jsonl` / `.ndjson`) manifest. Columns / keys: `id` and
/// `path` required, `prompt` and `label` optional, everything else goes to metadata (CSV:
/// strings; JSONL: JSON values). Empty `prompt`/`label` cells mean none.
pub fn load_manifest(path: &Path, opts: &DecodeOptions) -> Result<Vec<CohortCase>, CohortError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let text = match ext.as_deref() {
        Some("csv" | "jsonl" | "ndjson") => {
            fs_err::read_to_string(path).map_err(CohortError::ReadManifest)?
        }
        _ => {
            return Err(CohortError::ManifestKind {
                path: path.to_path_buf(),
            });
        }
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let rows = if ext.as_deref() == Some("csv") {
        parse_csv(path, base, &text)?
    } else {
        parse_jsonl(path, base, &text)?
    };
    if rows.is_empty() {
        return Err(CohortError::EmptyManifest {
            path: path.to_path_buf(),
        });
    }
    check_rows(path, &rows)?;
    let decoded: Vec<Result<CohortCase, CohortError>> = rows
        .into_par_iter()
        .map(|row| {
            let d =
                decode_file(&row.resolved, opts).map_err(|source| CohortError::ManifestDecode {
                    path: path.to_path_buf(),
                    line: row.line,
                    source,
                })?;
            Ok(CohortCase {
                id: row.id,
                image: Arc::new(d.image),
                prompt: row.prompt,
                label: row.label,
                metadata: row.metadata,
                source: row.path_as_written,
                decode: Some(d.record),
            })
        })
        .collect();
    decoded.into_iter().collect()
}

fn manifest_err(path: &Path, line: u64, message: impl Into<String>) -> CohortError {
    CohortError::Manifest {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Duplicate ids and missing files, reported in manifest order before any decoding.
fn check_rows(path: &Path, rows: &[Row]) -> Result<(), CohortError> {
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for row in rows {
        if let Some(first) = seen.insert(&row.id, row.line) {
            return Err(manifest_err(
                path,
                row.line,
                format!("duplicate id '{}' (first on line {first})", row.id),
            ));
        }
        if !row.resolved.is_file() {
            return Err(manifest_err(
                path,
                row.line,
                format!(
                    "image file '{}' not found (resolved to {})",
                    row.path_as_written,
                    row.resolved.display()
                ),
            ));
        }
    }
    Ok(())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn parse_csv(path: &Path, base: &Path, text: &str) -> Result<Vec<Row>, CohortError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::Headers)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| manifest_err(path, 1, format!("cannot read the header row: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let columns = || headers.iter().collect::<Vec<_>>().join(", ");
    let id_col = col("id").ok_or_else(|| {
        manifest_err(
            path,
            1,
            format!("missing required column 'id' (header has: {})", columns()),
        )
    })?;
    let path_col = col("path").ok_or_else(|| {
        manifest_err(
            path,
            1,
            format!("missing required column 'path' (header has: {})", columns()),
        )
    })?;
    let (prompt_col, label_col) = (col("prompt"), col("label"));
    let mut names = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some(prev) = names.insert(h, i) {
            return Err(manifest_err(
                path,
                1,
                format!(
                    "column '{h}' appears twice (columns {} and {})",
                    prev + 1,
                    i + 1
                ),
            ));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            let msg = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("row has {len} fields but the header has {expected_len}"),
                _ => format!("malformed CSV: {e}"),
            };
            manifest_err(path, line, msg)
        })?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let id = record.get(id_col).unwrap_or("").trim().to_string();
        if id.is_empty() {
            return Err(manifest_err(path, line, "empty id"));
        }
        let written = record.get(path_col).unwrap_or("").trim().to_string();
        if written.is_empty() {
            return Err(manifest_err(
                path,
                line,
                format!("empty path for id '{id}'"),
            ));
        }
        let metadata = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                ![Some(id_col), Some(path_col), prompt_col, label_col].contains(&Some(*i))
            })
            .map(|(i, h)| {
                (
                    h.to_string(),
                    Value::String(record.get(i).unwrap_or("").to_string()),
                )
            })
            .collect();
        rows.push(Row {
            line,
            resolved: base.join(&written),
            path_as_written: written,
            id,
            prompt: prompt_col.and_then(|c| non_empty(record.get(c).unwrap_or(""))),
            label: label_col.and_then(|c| non_empty(record.get(c).unwrap_or("").trim())),
            metadata,
        });
    }
    Ok(rows)
}

fn parse_jsonl(path: &Path, base: &Path, text: &str) -> Result<Vec<Row>, CohortError> {
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let err = |msg: String| manifest_err(path, line, msg);
        let value: Value = serde_json::from_str(trimmed.trim_start_matches('\u{feff}'))
            .map_err(|e| err(format!("malformed JSON: {e}")))?;
        let Value::Object(mut obj) = value else {
            return Err(err("expected a JSON object with 'id' and 'path'".into()));
        };
        let id = match obj.remove("id") {
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            None => return Err(err("missing required key 'id'".into())),
            Some(other) => return Err(err(format!("'id' must be a string, got {other}"))),
        };
        if id.is_empty() {
            return Err(err("empty id".into()));
        }
        let written = match obj.remove("path") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(Value::String(_)) => return Err(err(format!("empty path for id '{id}'"))),
            None => return Err(err(format!("missing required key 'path' for id '{id}'"))),
            Some(other) => return Err(err(format!("'path' must be a string, got {other}"))),
        };
        let prompt = match obj.remove("prompt") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => non_empty(&s),
            Some(other) => return Err(err(format!("'prompt' must be a string, got {other}"))),
        };
        let label = match obj.remove("label") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => non_empty(s.trim()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
            Some(other) => {
                return Err(err(format!(
                    "'label' must be a string, number or boolean, got {other}"
                )));
            }
        };
        rows.push(Row {
            line,
            resolved: base.join(&written),
            path_as_written: written,
            id,
            prompt,
            label,
            metadata: obj.into_iter().collect(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::id_of;

    #[test]
    fn ids_drop_only_the_last_extension() {
        assert_eq!(id_of("a.png"), "a");
        assert_eq!(id_of("sub/dir/b.v2.tiff"), "sub/dir/b.v2");
        assert_eq!(id_of("sub.d/IM0001"), "sub.d/IM0001");
        assert_eq!(id_of(".hidden"), ".hidden");
    }
}
