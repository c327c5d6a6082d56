//! Cohort loading behind one small interface: each [`CohortConfig`] kind produces
//! [`CohortCase`]s. The builtin phantoms come from `clarity-phantom`; folders and manifests are
//! decoded here with the `image` crate (PNG/JPEG/TIFF, with the `[limits]` checks) until
//! `clarity-cohort` / `clarity_image::decode_file` take over: swap [`decode_file`] then.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clarity_image::{BitDepth, Channels, Image};
use serde::Deserialize;

use crate::EngineError;
use crate::config::{CohortConfig, Limits, SweepConfig};

/// One input case.
#[derive(Debug, Clone)]
pub struct CohortCase {
    pub id: String,
    pub image: Arc<Image>,
    pub prompt: Option<String>,
    pub label: Option<String>,
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// Loads the cohort of `config`. Case ids are unique; order is the source's order (builtin:
/// index; folder: file name; manifest: line).
pub fn load_cohort(config: &SweepConfig) -> Result<Vec<CohortCase>, EngineError> {
    let cases = match &config.cohort {
        CohortConfig::Builtin {
            n,
            size,
            depth,
            seed,
        } => {
            let depth = if *depth == 16 {
                BitDepth::Sixteen
            } else {
                BitDepth::Eight
            };
            let phantoms = clarity_phantom::cohort(*n, *size, depth, *seed).map_err(|e| {
                EngineError::Config {
                    path: config.source.clone(),
                    location: None,
                    key: "cohort".into(),
                    message: e.to_string(),
                }
            })?;
            phantoms
                .into_iter()
                .map(|p| CohortCase {
                    id: p.id,
                    image: Arc::new(p.image),
                    prompt: None,
                    label: Some(p.truth.label),
                    metadata: BTreeMap::new(),
                })
                .collect()
        }
        CohortConfig::Folder { path } => load_folder(&config.resolve_path(path), &config.limits)?,
        CohortConfig::Manifest { path } => {
            load_manifest(&config.resolve_path(path), &config.limits)?
        }
    };
    if cases.is_empty() {
        return Err(EngineError::Config {
            path: config.source.clone(),
            location: None,
            key: "cohort".into(),
            message: "the cohort has no cases".into(),
        });
    }
    Ok(cases)
}

const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "tif", "tiff"];

fn load_folder(dir: &Path, limits: &Limits) -> Result<Vec<CohortCase>, EngineError> {
    let input = |message: String| EngineError::Input {
        path: dir.to_path_buf(),
        message,
    };
    let entries = fs_err::read_dir(dir).map_err(|e| input(format!("cannot list: {}", e.kind())))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for e in entries {
        let p = e.map_err(|e| input(e.kind().to_string()))?.path();
        let ext_ok = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if ext_ok && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    let mut cases: Vec<CohortCase> = Vec::new();
    for f in files {
        let id = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(prev) = cases.iter().find(|c| c.id == id) {
            return Err(EngineError::Input {
                path: f.clone(),
                message: format!(
                    "duplicate case id {id:?} (also from another file of {:?})",
                    prev.id
                ),
            });
        }
        let image = decode_file(&f, limits)?;
        cases.push(CohortCase {
            id,
            image: Arc::new(image),
            prompt: None,
            label: None,
            metadata: BTreeMap::new(),
        });
    }
    Ok(cases)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestRow {
    id: String,
    image: PathBuf,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, serde_json::Value>,
}

fn load_manifest(path: &Path, limits: &Limits) -> Result<Vec<CohortCase>, EngineError> {
    let input = |message: String| EngineError::Input {
        path: path.to_path_buf(),
        message,
    };
    let meta = fs_err::metadata(path).map_err(|e| input(format!("cannot read: {}", e.kind())))?;
    if meta.len() > limits.max_file_bytes {
        return Err(EngineError::Limit {
            what: format!("manifest {} size", path.display()),
            key: "max_file_bytes",
            actual: meta.len(),
            limit: limits.max_file_bytes,
        });
    }
    let text =
        fs_err::read_to_string(path).map_err(|e| input(format!("cannot read: {}", e.kind())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut rows: Vec<(usize, ManifestRow)> = Vec::new();
    if is_csv {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| input(format!("line 1: {e}")))?
            .clone();
        for need in ["id", "image"] {
            if !headers.iter().any(|h| h == need) {
                return Err(input(format!("line 1: the header has no `{need}` column")));
            }
        }
        for (i, rec) in reader.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| input(format!("line {line}: {e}")))?;
            let mut row = ManifestRow {
                id: String::new(),
                image: PathBuf::new(),
                prompt: None,
                label: None,
                metadata: BTreeMap::new(),
            };
            for (h, v) in headers.iter().zip(rec.iter()) {
                match h {
                    "id" => row.id = v.to_string(),
                    "image" => row.image = PathBuf::from(v),
                    "prompt" if !v.is_empty() => row.prompt = Some(v.to_string()),
                    "label" if !v.is_empty() => row.label = Some(v.to_string()),
                    "prompt" | "label" => {}
                    other => {
                        row.metadata
                            .insert(other.to_string(), serde_json::Value::String(v.into()));
                    }
                }
            }
            rows.push((line, row));
        }
    } else {
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            let row: ManifestRow =
                serde_json::from_str(l).map_err(|e| input(format!("line {}: {e}", i + 1)))?;
            rows.push((i + 1, row));
        }
    }
    let mut cases: Vec<CohortCase> = Vec::new();
    for (line, row) in rows {
        if row.id.is_empty() {
            return Err(input(format!("line {line}: empty case id")));
        }
        if cases.iter().any(|c| c.id == row.id) {
            return Err(input(format!(
                "line {line}: duplicate case id {:?}",
                row.id
            )));
        }
        if row.image.as_os_str().is_empty() {
            return Err(input(format!("line {line}: empty image path")));
        }
        let file = if row.image.is_absolute() {
            row.image.clone()
        } else {
            base.join(&row.image)
        };
        if !file.is_file() {
            return Err(input(format!(
                "line {line}: case {:?}: image {} not found",
                row.id,
                row.image.display()
            )));
        }
        let image = decode_file(&file, limits)?;
        cases.push(CohortCase {
            id: row.id,
            image: Arc::new(image),
            prompt: row.prompt,
            label: row.label,
            metadata: row.metadata,
        });
    }
    Ok(cases)
}

/// Decodes a PNG/JPEG/TIFF into an [`Image`], keeping gray/RGB and 8/16-bit; alpha is dropped.
/// Stand-in until `clarity_image::decode_file` lands.
pub fn decode_file(path: &Path, limits: &Limits) -> Result<Image, EngineError> {
    let input = |message: String| EngineError::Input {
        path: path.to_path_buf(),
        message,
    };
    let len = fs_err::metadata(path)
        .map_err(|e| input(format!("cannot read: {}", e.kind())))?
        .len();
    if len > limits.max_file_bytes {
        return Err(EngineError::Limit {
            what: format!("image {} size", path.display()),
            key: "max_file_bytes",
            actual: len,
            limit: limits.max_file_bytes,
        });
    }
    let bytes = fs_err::read(path).map_err(|e| input(format!("cannot read: {}", e.kind())))?;
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(|e| input(format!("cannot read: {e}")))
    };
    // Dimensions first (header only), so a decompression bomb is refused before decoding.
    let (w, h) = reader()?
        .into_dimensions()
        .map_err(|e| input(format!("cannot decode: {e}")))?;
    let mut reader = reader()?;
    let pixels = w as u64 * h as u64;
    if pixels > limits.max_pixels {
        return Err(EngineError::Limit {
            what: format!("image {} pixel count ({w}x{h})", path.display()),
            key: "max_pixels",
            actual: pixels,
            limit: limits.max_pixels,
        });
    }
    let mut il = image::Limits::default();
    il.max_alloc = Some(limits.max_pixels.saturating_mul(8).max(1 << 20));
    reader.limits(il);
    let img = reader
        .decode()
        .map_err(|e| input(format!("cannot decode: {e}")))?;
    use image::DynamicImage as D;
    let out = match img {
        D::ImageLuma8(b) => Image::from_u8(w, h, Channels::Gray, b.into_raw()),
        D::ImageLumaA8(_) => Image::from_u8(w, h, Channels::Gray, img.to_luma8().into_raw()),
        D::ImageLuma16(b) => Image::from_u16(w, h, Channels::Gray, b.into_raw()),
        D::ImageLumaA16(_) => Image::from_u16(w, h, Channels::Gray, img.to_luma16().into_raw()),
        D::ImageRgb16(b) => Image::from_u16(w, h, Channels::Rgb, b.into_raw()),
        D::ImageRgba16(_) => Image::from_u16(w, h, Channels::Rgb, img.to_rgb16().into_raw()),
        other => Image::from_u8(w, h, Channels::Rgb, other.to_rgb8().into_raw()),
    };
    out.map_err(|e| input(format!("cannot decode: {e}")))
}

/// Encodes an image as PNG (8/16-bit, gray/RGB). Stand-in until `clarity_image::encode_png`.
pub fn encode_png(img: &Image) -> Result<Vec<u8>, EngineError> {
    use clarity_image::Samples;
    use image::ExtendedColorType as C;
    let (w, h) = (img.width(), img.height());
    let mut out = Vec::new();
    let enc = image::codecs::png::PngEncoder::new(&mut out);
    let res = match (img.samples(), img.channels()) {
        (Samples::U8(v), Channels::Gray) => image::ImageEncoder::write_image(enc, v, w, h, C::L8),
        (Samples::U8(v), Channels::Rgb) => image::ImageEncoder::write_image(enc, v, w, h, C::Rgb8),
        (Samples::U16(v), ch) => {
            // PNG stores 16-bit samples big-endian; the encoder takes native-endian bytes.
            let bytes: Vec<u8> = v.iter().flat_map(|s| s.to_ne_bytes()).collect();
            let t = if ch == Channels::Gray {
                C::L16
            } else {
                C::Rgb16
            };
            image::ImageEncoder::write_image(enc, &bytes, w, h, t)
        }
    };
    res.map_err(|e| EngineError::Internal(format!("cannot encode PNG: {e}")))?;
    Ok(out)
}
