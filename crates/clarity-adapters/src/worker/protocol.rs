//! The `clarity-worker/1` wire format: the handshake a worker writes first, the request line
//! Clarity writes per run, and the response line the worker answers with. Pure functions (no
//! I/O) so every rule is unit-tested; docs/adapters.md ("worker") is the user-facing text.

use std::collections::BTreeMap;

use base64::Engine as _;
use clarity_core::{Observation, Saliency};
use clarity_image::{Channels, Image, Samples};
use serde_json::{Map, Value, json};

/// The protocol this Clarity speaks; a worker announces the one it speaks in its handshake.
pub const PROTOCOL: &str = "clarity-worker/1";

/// Keys a handshake may have.
const HANDSHAKE_KEYS: [&str; 4] = ["protocol", "model", "version", "settings"];
/// Keys a response may have.
const RESPONSE_KEYS: [&str; 10] = [
    "id",
    "answer",
    "confidence",
    "entropy",
    "probabilities",
    "justification",
    "trace",
    "saliency",
    "metadata",
    "error",
];

/// What a worker announced about itself: the model part of the adapter identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Handshake {
    pub model: String,
    pub version: String,
    /// Settings that change answers (an object; `null` when not announced).
    pub settings: Value,
}

/// How the image travels in a request (`[adapter] image = …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageTransport {
    /// Inline base64 of the raw samples (row-major, channels interleaved, 16-bit
    /// little-endian): no decoder needed, the fastest for numpy.
    #[default]
    Raw,
    /// Inline base64 of a PNG (fast compression, lossless).
    Png,
    /// The path of a PNG file Clarity wrote for the run.
    Path,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The start of a line, for error messages.
pub fn snippet(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    let mut out: String = text.chars().take(120).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    format!("{out:?}")
}

fn unknown_keys(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "unknown key(s) {} (allowed: {})",
            unknown.join(", "),
            allowed.join(", ")
        ))
    }
}

/// Parses the first line a worker writes.
pub fn parse_handshake(line: &[u8]) -> Result<Handshake, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        format!(
            "the first line on stdout must be the handshake JSON object \
             {{\"protocol\": \"{PROTOCOL}\", \"model\": …, \"version\": …}}, got {} ({e}); \
             stdout is reserved for the protocol: log to stderr",
            snippet(line)
        )
    })?;
    let Value::Object(map) = value else {
        return Err(format!(
            "the handshake must be a JSON object, got {}",
            kind(&value)
        ));
    };
    unknown_keys(&map, &HANDSHAKE_KEYS).map_err(|e| format!("handshake: {e}"))?;
    match map.get("protocol") {
        Some(Value::String(p)) if p == PROTOCOL => {}
        Some(Value::String(p)) => {
            return Err(format!(
                "handshake: the worker speaks protocol {p:?}, this Clarity speaks {PROTOCOL:?}"
            ));
        }
        other => {
            return Err(format!(
                "handshake: `protocol` must be the string {PROTOCOL:?}, got {}",
                other.map_or("nothing", kind)
            ));
        }
    }
    let text = |key: &str| -> Result<String, String> {
        match map.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(format!("handshake: `{key}` must not be empty")),
            other => Err(format!(
                "handshake: `{key}` must be a string, got {}",
                other.map_or("nothing", kind)
            )),
        }
    };
    let settings = match map.get("settings") {
        None | Some(Value::Null) => Value::Null,
        Some(v @ Value::Object(_)) => v.clone(),
        Some(v) => {
            return Err(format!(
                "handshake: `settings` must be an object, got {}",
                kind(v)
            ));
        }
    };
    Ok(Handshake {
        model: text("model")?,
        version: text("version")?,
        settings,
    })
}

/// The `image` object of a request. `path` is where the engine wrote the PNG (only for
/// [`ImageTransport::Path`]).
pub fn image_json(
    image: &Image,
    transport: ImageTransport,
    path: Option<&std::path::Path>,
) -> Result<Value, String> {
    let (channels, dtype) = (
        match image.channels() {
            Channels::Gray => 1,
            Channels::Rgb => 3,
        },
        match image.samples() {
            Samples::U8(_) => "uint8",
            Samples::U16(_) => "uint16",
        },
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut obj = json!({
        "width": image.width(),
        "height": image.height(),
        "channels": channels,
        "dtype": dtype,
    });
    let (encoding, field, value) = match transport {
        ImageTransport::Raw => {
            let data = match image.samples() {
                Samples::U8(v) => b64.encode(v),
                Samples::U16(v) => {
                    let mut bytes = Vec::with_capacity(v.len() * 2);
                    for s in v {
                        bytes.extend_from_slice(&s.to_le_bytes());
                    }
                    b64.encode(bytes)
                }
            };
            ("raw", "data", data)
        }
        ImageTransport::Png => ("png", "data", b64.encode(clarity_image::encode_png(image))),
        ImageTransport::Path => {
            let path = path.ok_or("the engine wrote no image file for this run")?;
            ("path", "path", path.to_string_lossy().into_owned())
        }
    };
    obj["encoding"] = json!(encoding);
    obj[field] = json!(value);
    Ok(obj)
}

/// One request line (without the newline).
pub fn request_line(id: &str, image: Value, spec: Value) -> Vec<u8> {
    let line = json!({"id": id, "image": image, "spec": spec});
    // A Value with string keys always serialises.
    serde_json::to_vec(&line).unwrap_or_default()
}

/// What a response line says.
#[derive(Debug, PartialEq)]
pub enum Response {
    /// The run's observation.
    Ok(Observation),
    /// The worker reported an error for this run (`{"id", "error"}`); it stays up.
    Error(String),
}

/// Why a line is not a valid response. `Desync` means the stream can no longer be trusted
/// (not JSON, or another run's id): the worker is restarted.
#[derive(Debug, PartialEq)]
pub enum BadResponse {
    Desync(String),
    Invalid(String),
}

fn unit(v: &Value, what: &str) -> Result<f64, String> {
    match v.as_f64() {
        Some(x) if x.is_finite() && (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{what} must be a number in [0, 1], got {v}")),
    }
}

/// Parses the response to request `id`.
pub fn parse_response(line: &[u8], id: &str) -> Result<Response, BadResponse> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        BadResponse::Desync(format!(
            "not a JSON response line: {} ({e}); stdout is reserved for the protocol: log to \
             stderr",
            snippet(line)
        ))
    })?;
    let Value::Object(mut map) = value else {
        return Err(BadResponse::Desync(format!(
            "a response must be a JSON object, got {}",
            snippet(line)
        )));
    };
    match map.get("id") {
        Some(Value::String(got)) if got == id => {}
        other => {
            return Err(BadResponse::Desync(format!(
                "response `id` is {} but the request's id is {id:?}",
                other.map_or_else(|| "missing".to_string(), |v| v.to_string())
            )));
        }
    }
    let invalid = BadResponse::Invalid;
    unknown_keys(&map, &RESPONSE_KEYS).map_err(invalid)?;
    if let Some(err) = map.get("error") {
        return match err {
            Value::String(s) => Ok(Response::Error(s.clone())),
            other => Ok(Response::Error(other.to_string())),
        };
    }
    let answer = match map.remove("answer") {
        Some(Value::String(s)) => s,
        other => {
            return Err(invalid(format!(
                "`answer` must be a string, got {}",
                other.as_ref().map_or("nothing", kind)
            )));
        }
    };
    let mut obs = Observation {
        answer: Some(answer),
        ..Observation::default()
    };
    if let Some(v) = map.get("confidence").filter(|v| !v.is_null()) {
        obs.confidence = Some(unit(v, "`confidence`").map_err(invalid)?);
    }
    if let Some(v) = map.get("entropy").filter(|v| !v.is_null()) {
        match v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => obs.entropy = Some(x),
            _ => {
                return Err(invalid(format!(
                    "`entropy` must be a finite number >= 0 (nats), got {v}"
                )));
            }
        }
    }
    match map.get("probabilities") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            for (label, v) in p {
                let x = unit(v, &format!("`probabilities.{label}`")).map_err(invalid)?;
                obs.probabilities.insert(label.clone(), x);
            }
        }
        Some(v) => {
            return Err(invalid(format!(
                "`probabilities` must be an object (label → probability), got {}",
                kind(v)
            )));
        }
    }
    match map.get("justification") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => obs.justification = Some(s.clone()),
        Some(v) => {
            return Err(invalid(format!(
                "`justification` must be a string, got {}",
                kind(v)
            )));
        }
    }
    let mut metadata: BTreeMap<String, Value> = BTreeMap::new();
    match map.remove("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => metadata.extend(m),
        Some(v) => {
            return Err(invalid(format!(
                "`metadata` must be an object, got {}",
                kind(&v)
            )));
        }
    }
    match map.remove("trace") {
        None | Some(Value::Null) => {}
        Some(Value::Array(records)) => {
            if let Some((i, r)) = records.iter().enumerate().find(|(_, r)| !r.is_object()) {
                return Err(invalid(format!(
                    "`trace` must be an array of objects; record {i} is {}",
                    kind(r)
                )));
            }
            metadata.insert("trace".into(), Value::Array(records));
        }
        Some(v) => {
            return Err(invalid(format!(
                "`trace` must be an array of objects, got {}",
                kind(&v)
            )));
        }
    }
    if let Some(v) = map.get("saliency").filter(|v| !v.is_null()) {
        obs.saliency = Some(parse_saliency(v).map_err(invalid)?);
    }
    derive_missing(&mut obs, &mut metadata);
    obs.metadata = metadata;
    Ok(Response::Ok(obs))
}

/// Confidence and entropy from the probabilities when the worker did not send them.
fn derive_missing(obs: &mut Observation, metadata: &mut BTreeMap<String, Value>) {
    if obs.confidence.is_none()
        && let Some(p) = obs.answer.as_ref().and_then(|a| obs.probabilities.get(a))
    {
        obs.confidence = Some(*p);
        metadata.insert("confidence_source".into(), json!("probabilities[answer]"));
    }
    let sum: f64 = obs.probabilities.values().sum();
    if obs.entropy.is_none() && !obs.probabilities.is_empty() && (sum - 1.0).abs() <= 1e-3 {
        let h: f64 = obs
            .probabilities
            .values()
            .filter(|p| **p > 0.0)
            .map(|p| -p * p.ln())
            .sum();
        obs.entropy = Some(h.max(0.0));
        metadata.insert("entropy_source".into(), json!("probabilities"));
    }
}

fn parse_saliency(v: &Value) -> Result<Saliency, String> {
    let dim = |key: &str| -> Result<u32, String> {
        v.get(key)
            .and_then(Value::as_u64)
            .and_then(|x| u32::try_from(x).ok())
            .filter(|x| *x > 0)
            .ok_or_else(|| format!("`saliency.{key}` must be an integer > 0"))
    };
    let (width, height) = (dim("width")?, dim("height")?);
    let values = v
        .get("values")
        .and_then(Value::as_array)
        .ok_or("`saliency.values` must be an array of numbers in [0, 1] (row-major)")?;
    let expected = width as usize * height as usize;
    if values.len() != expected {
        return Err(format!(
            "`saliency.values` has {} values but width × height is {expected}",
            values.len()
        ));
    }
    let values = values
        .iter()
        .enumerate()
        .map(|(i, x)| unit(x, &format!("`saliency.values[{i}]`")).map(|x| x as f32))
        .collect::<Result<Vec<f32>, String>>()?;
    Ok(Saliency {
        width,
        height,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Observation {
        match parse_response(line.as_bytes(), "k") {
            Ok(Response::Ok(o)) => o,
            other => panic!("{other:?}"),
        }
    }

    fn invalid(line: &str) -> String {
        match parse_response(line.as_bytes(), "k") {
            Err(BadResponse::Invalid(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn handshake_rules() {
        let h = parse_handshake(
            br#"{"protocol":"clarity-worker/1","model":"m","version":"1","settings":{"t":0.5}}"#,
        )
        .unwrap();
        assert_eq!(h.model, "m");
        assert_eq!(h.settings, json!({"t": 0.5}));
        let e = parse_handshake(br#"{"protocol":"clarity-worker/2","model":"m","version":"1"}"#)
            .unwrap_err();
        assert!(e.contains("\"clarity-worker/2\""), "{e}");
        let e = parse_handshake(b"loading weights...").unwrap_err();
        assert!(
            e.contains("log to stderr") && e.contains("loading weights"),
            "{e}"
        );
        let e = parse_handshake(br#"{"protocol":"clarity-worker/1","model":"m"}"#).unwrap_err();
        assert!(e.contains("`version` must be a string"), "{e}");
        let e =
            parse_handshake(br#"{"protocol":"clarity-worker/1","model":"m","version":"1","x":1}"#)
                .unwrap_err();
        assert!(e.contains("unknown key(s) x"), "{e}");
    }

    #[test]
    fn response_fields_and_derived_values() {
        let o = ok(
            r#"{"id":"k","answer":"b","probabilities":{"a":0.25,"b":0.75},"justification":"j",
               "trace":[{"step":"s"}],"saliency":{"width":2,"height":1,"values":[0,1]},
               "metadata":{"x":1}}"#,
        );
        assert_eq!(o.answer.as_deref(), Some("b"));
        assert_eq!(o.confidence, Some(0.75));
        let h = -(0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln());
        assert!((o.entropy.unwrap() - h).abs() < 1e-12);
        assert_eq!(o.metadata["trace"], json!([{"step": "s"}]));
        assert_eq!(o.metadata["x"], json!(1));
        assert_eq!(o.saliency.unwrap().values, vec![0.0, 1.0]);
        // Multi-label probabilities (not summing to 1): no entropy is made up.
        let o = ok(r#"{"id":"k","answer":"a","probabilities":{"a":0.9,"b":0.8}}"#);
        assert_eq!(o.entropy, None);
        assert_eq!(o.confidence, Some(0.9));
        // Sent values win.
        let o = ok(r#"{"id":"k","answer":"a","confidence":0.5,"probabilities":{"a":0.9}}"#);
        assert_eq!(o.confidence, Some(0.5));
    }

    #[test]
    fn response_errors() {
        assert!(invalid(r#"{"id":"k","answer":"a","confidence":1.5}"#).contains("[0, 1]"));
        assert!(invalid(r#"{"id":"k"}"#).contains("`answer` must be a string, got nothing"));
        assert!(invalid(r#"{"id":"k","answer":"a","confidance":1}"#).contains("confidance"));
        assert!(
            invalid(r#"{"id":"k","answer":"a","saliency":{"width":2,"height":2,"values":[0]}}"#)
                .contains("has 1 values but width × height is 4")
        );
        assert!(invalid(r#"{"id":"k","answer":"a","trace":[1]}"#).contains("record 0"));
        assert_eq!(
            parse_response(br#"{"id":"k","error":"CUDA OOM"}"#, "k"),
            Ok(Response::Error("CUDA OOM".into()))
        );
        let Err(BadResponse::Desync(m)) = parse_response(br#"{"id":"other","answer":"a"}"#, "k")
        else {
            panic!()
        };
        assert!(m.contains("\"other\""), "{m}");
        let Err(BadResponse::Desync(m)) = parse_response(b"hello", "k") else {
            panic!()
        };
        assert!(m.contains("not a JSON response line"), "{m}");
    }

    #[test]
    fn raw_image_is_little_endian_row_major() {
        let img = Image::new(2, 1, Channels::Gray, Samples::U16(vec![1, 0x0203])).unwrap();
        let v = image_json(&img, ImageTransport::Raw, None).unwrap();
        let data = base64::engine::general_purpose::STANDARD
            .decode(v["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(data, vec![1, 0, 3, 2]);
        assert_eq!(v["dtype"], "uint16");
        assert_eq!(v["encoding"], "raw");
        assert!(image_json(&img, ImageTransport::Path, None).is_err());
    }
}
