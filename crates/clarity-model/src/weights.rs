//! Reading and writing the weights in the safetensors format: an 8-byte little-endian header
//! length, a JSON header (`{name: {dtype, shape, data_offsets}}`, plus `__metadata__`), then
//! the raw little-endian data. Written by hand (about 80 lines) because the `safetensors` crate
//! is not available offline here and the format is this simple; the files open in Python's
//! `safetensors` and PyTorch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::net::{Params, TENSORS};

/// Architecture tag stored in the file's metadata and checked on load.
pub(crate) const ARCHITECTURE: &str = "clarity-builtin-cnn-v1";

#[derive(Serialize, Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// Serialises parameters with the given metadata (keys sorted, so the bytes are stable).
pub(crate) fn to_bytes(p: &Params, metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (i, (name, shape)) in TENSORS.iter().enumerate() {
        let len = p.t[i].len() * 4;
        let info = TensorInfo {
            dtype: "F32".into(),
            shape: shape.to_vec(),
            data_offsets: [offset, offset + len],
        };
        header.insert(
            (*name).to_string(),
            serde_json::to_value(info).expect("plain struct"),
        );
        offset += len;
    }
    header.insert(
        "__metadata__".into(),
        serde_json::to_value(metadata).expect("string map"),
    );
    // serde_json::Map is a BTreeMap without the preserve_order feature: sorted keys.
    let mut json = serde_json::to_string(&header).expect("serialisable header");
    while !json.len().is_multiple_of(8) {
        json.push(' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    for t in &p.t {
        for v in t {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Parses and checks a weights file: every expected tensor present as F32 with the expected
/// shape and in-bounds offsets, and the architecture tag matching.
pub(crate) fn from_bytes(bytes: &[u8]) -> Result<(Params, BTreeMap<String, String>), ModelError> {
    let bad = |why: String| ModelError::Weights(why);
    if bytes.len() < 8 {
        return Err(bad(format!(
            "file is {} bytes, shorter than the 8-byte header length",
            bytes.len()
        )));
    }
    let hlen = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let data_start = 8usize
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            bad(format!(
                "header length {hlen} runs past the end of the file"
            ))
        })?;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..data_start])
        .map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
    let data = &bytes[data_start..];
    let metadata: BTreeMap<String, String> = match header.get("__metadata__") {
        Some(m) => serde_json::from_value(m.clone())
            .map_err(|e| bad(format!("__metadata__ is not a string map: {e}")))?,
        None => BTreeMap::new(),
    };
    match metadata.get("architecture") {
        Some(a) if a == ARCHITECTURE => {}
        other => {
            return Err(bad(format!(
                "architecture is {other:?}, expected \"{ARCHITECTURE}\""
            )));
        }
    }
    let mut p = Params::zeros();
    for (i, (name, shape)) in TENSORS.iter().enumerate() {
        let info: TensorInfo = header
            .get(*name)
            .ok_or_else(|| bad(format!("tensor {name} is missing")))
            .and_then(|v| {
                serde_json::from_value(v.clone())
                    .map_err(|e| bad(format!("tensor {name}: bad entry: {e}")))
            })?;
        if info.dtype != "F32" {
            return Err(bad(format!(
                "tensor {name}: dtype {}, expected F32",
                info.dtype
            )));
        }
        if info.shape != *shape {
            return Err(bad(format!(
                "tensor {name}: shape {:?}, expected {shape:?}",
                info.shape
            )));
        }
        let [a, b] = info.data_offsets;
        if a > b || b > data.len() || b - a != p.t[i].len() * 4 {
            return Err(bad(format!(
                "tensor {name}: data offsets [{a}, {b}] do not fit {} bytes of data for {} values",
                data.len(),
                p.t[i].len()
            )));
        }
        for (v, chunk) in p.t[i].iter_mut().zip(data[a..b].chunks_exact(4)) {
            *v = f32::from_le_bytes(chunk.try_into().expect("4 bytes"));
            if !v.is_finite() {
                return Err(bad(format!("tensor {name}: non-finite value")));
            }
        }
    }
    Ok((p, metadata))
}
