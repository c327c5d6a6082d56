//! Parsing chat-completion requests and building responses (the wire format).

use std::io::Cursor;

use base64::Engine as _;
use clarity_image::{Channels, Image};
use serde_json::{Value, json};

use crate::{ChatAnswer, ServeError, ServeOptions};

/// Logprob sent for a probability of 0 (JSON cannot carry `-inf`); OpenAI uses the same value.
pub(crate) const MIN_LOGPROB: f64 = -9999.0;
/// OpenAI's upper bound for `top_logprobs`.
const MAX_TOP_LOGPROBS: u64 = 20;

/// A validated request.
#[derive(Debug, Clone)]
pub(crate) struct ChatRequest {
    pub model: Option<String>,
    /// The text parts of the user messages, joined by newlines.
    pub prompt: String,
    pub image: Image,
    pub temperature: f64,
    pub seed: u64,
    pub max_tokens: Option<u64>,
    pub logprobs: bool,
    pub top_logprobs: u64,
}

fn bad(msg: impl Into<String>) -> ServeError {
    ServeError::BadRequest(msg.into())
}

pub(crate) fn parse_request(
    body: &[u8],
    options: &ServeOptions,
) -> Result<ChatRequest, ServeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("request body must be a JSON object"))?;

    // Required, as the protocol documents (a client that omits it is told, not guessed for).
    let model = match obj.get("model") {
        None | Some(Value::Null) => {
            return Err(bad(
                "`model` is required (GET /v1/models lists the served model)",
            ));
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("`model` must be a string")),
    };
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(bad("`stream: true` is not supported by this server"));
    }
    if let Some(n) = obj.get("n").filter(|v| !v.is_null())
        && n.as_u64() != Some(1)
    {
        return Err(bad(format!(
            "`n` must be 1 (one choice per request), got {n}"
        )));
    }
    let temperature = match obj.get("temperature") {
        None | Some(Value::Null) => 1.0, // OpenAI's default
        Some(v) => {
            let t = v
                .as_f64()
                .ok_or_else(|| bad(format!("`temperature` must be a number, got {v}")))?;
            if !(0.0..=2.0).contains(&t) {
                return Err(bad(format!("`temperature` must be in [0, 2], got {t}")));
            }
            t
        }
    };
    let seed = match obj.get("seed") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| bad(format!("`seed` must be a non-negative integer, got {v}")))?,
    };
    let max_tokens = match obj
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| obj.get("max_tokens").filter(|v| !v.is_null()))
    {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ => {
                return Err(bad(format!(
                    "`max_tokens` must be a positive integer, got {v}"
                )));
            }
        },
    };
    let logprobs = match obj.get("logprobs") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(bad(format!("`logprobs` must be a boolean, got {v}"))),
    };
    let top_logprobs = match obj.get("top_logprobs") {
        None | Some(Value::Null) => 0,
        Some(v) => {
            let k = v
                .as_u64()
                .filter(|k| *k <= MAX_TOP_LOGPROBS)
                .ok_or_else(|| {
                    bad(format!(
                        "`top_logprobs` must be an integer in [0, {MAX_TOP_LOGPROBS}], got {v}"
                    ))
                })?;
            if k > 0 && !logprobs {
                return Err(bad("`top_logprobs` requires `logprobs: true`"));
            }
            k
        }
    };

    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`messages` must be a non-empty array"))?;
    if messages.is_empty() {
        return Err(bad("`messages` must be a non-empty array"));
    }
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("messages[{i}].role must be a string")))?;
        let user = role == "user";
        match message.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                if user {
                    texts.push(s.clone());
                }
            }
            Some(Value::Array(parts)) => {
                for (j, part) in parts.iter().enumerate() {
                    let at = format!("messages[{i}].content[{j}]");
                    match part.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            let text = part
                                .get("text")
                                .and_then(Value::as_str)
                                .ok_or_else(|| bad(format!("{at}.text must be a string")))?;
                            if user {
                                texts.push(text.to_string());
                            }
                        }
                        Some("image_url") => {
                            // Both `{"url": "..."}` and a bare string are seen in the wild.
                            let url = match part.get("image_url") {
                                Some(Value::String(s)) => Some(s.as_str()),
                                Some(v) => v.get("url").and_then(Value::as_str),
                                None => None,
                            }
                            .ok_or_else(|| bad(format!("{at}.image_url.url must be a string")))?;
                            if !user {
                                return Err(bad(format!(
                                    "{at}: images are only accepted in user messages, not {role:?}"
                                )));
                            }
                            images.push((at, url.to_string()));
                        }
                        Some(other) => {
                            return Err(bad(format!(
                                "{at}.type {other:?} is not supported (expected \"text\" or \"image_url\")"
                            )));
                        }
                        None => return Err(bad(format!("{at}.type must be a string"))),
                    }
                }
            }
            Some(_) => {
                return Err(bad(format!(
                    "messages[{i}].content must be a string or an array of parts"
                )));
            }
        }
    }
    let (at, url) = match images.len() {
        0 => {
            return Err(bad(
                "no image in the request: add a user message part {\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/png;base64,...\"}}",
            ));
        }
        1 => images.pop().expect("one image"),
        n => return Err(bad(format!("expected exactly one image, got {n}"))),
    };
    let image = decode_data_url(&url, options).map_err(|e| bad(format!("{at}.image_url: {e}")))?;
    Ok(ChatRequest {
        model,
        prompt: texts.join("\n"),
        image,
        temperature,
        seed,
        max_tokens,
        logprobs,
        top_logprobs,
    })
}

/// Decodes `data:image/png;base64,...` (or JPEG) into an [`Image`], keeping gray as gray and
/// 16-bit as 16-bit; alpha is dropped.
fn decode_data_url(url: &str, options: &ServeOptions) -> Result<Image, String> {
    let rest = url.strip_prefix("data:").ok_or_else(|| {
        let shown: String = url.chars().take(40).collect();
        format!("expected a data: URL (data:image/png;base64,...), got {shown:?}; remote URLs are not fetched")
    })?;
    let (header, payload) = rest
        .split_once(',')
        .ok_or("data: URL has no ',' separating header and payload")?;
    let mut parts = header.split(';');
    let media = parts.next().unwrap_or_default().to_ascii_lowercase();
    if !parts.any(|p| p.eq_ignore_ascii_case("base64")) {
        return Err("data: URL must be base64-encoded (data:image/png;base64,...)".into());
    }
    let format = match media.as_str() {
        "image/png" => image::ImageFormat::Png,
        "image/jpeg" | "image/jpg" => image::ImageFormat::Jpeg,
        other => {
            return Err(format!(
                "unsupported media type {other:?} (expected image/png or image/jpeg)"
            ));
        }
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| format!("invalid base64 payload: {e}"))?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(options.max_image_side);
    limits.max_image_height = Some(options.max_image_side);
    // Checked by the decoder from the header (width × height × channels × bytes per sample)
    // before any pixel buffer is allocated.
    limits.max_alloc = Some(options.max_decoded_bytes);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|e| match e {
            image::ImageError::Limits(_) => format!(
                "cannot decode {media} image: {e} (limits: max_image_side {} pixels, max_decoded_bytes {} bytes)",
                options.max_image_side, options.max_decoded_bytes
            ),
            e => format!("cannot decode {media} image: {e}"),
        })?;
    to_clarity_image(decoded).map_err(|e| format!("cannot convert decoded image: {e}"))
}

fn to_clarity_image(img: image::DynamicImage) -> Result<Image, clarity_image::ImageError> {
    use image::DynamicImage as D;
    let (w, h) = (img.width(), img.height());
    match img {
        D::ImageLuma8(b) => Image::from_u8(w, h, Channels::Gray, b.into_raw()),
        D::ImageLuma16(b) => Image::from_u16(w, h, Channels::Gray, b.into_raw()),
        D::ImageLumaA8(_) => Image::from_u8(w, h, Channels::Gray, img.to_luma8().into_raw()),
        D::ImageLumaA16(_) => Image::from_u16(w, h, Channels::Gray, img.to_luma16().into_raw()),
        D::ImageRgb8(b) => Image::from_u8(w, h, Channels::Rgb, b.into_raw()),
        D::ImageRgb16(b) => Image::from_u16(w, h, Channels::Rgb, b.into_raw()),
        D::ImageRgba16(_) => Image::from_u16(w, h, Channels::Rgb, img.to_rgb16().into_raw()),
        other => Image::from_u8(w, h, Channels::Rgb, other.to_rgb8().into_raw()),
    }
}

/// Splits text into word tokens, each carrying its leading whitespace, so that the tokens
/// concatenate back to the text exactly.
pub(crate) fn word_tokens(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                tokens.push(&text[start..i]);
                start = i;
                in_word = false;
            }
        } else {
            in_word = true;
        }
    }
    if start < text.len() {
        tokens.push(&text[start..]);
    }
    tokens
}

fn logprob_of(p: f64) -> f64 {
    if p > 0.0 {
        p.ln().max(MIN_LOGPROB)
    } else {
        MIN_LOGPROB
    }
}

fn token_entry(token: &str, logprob: f64) -> Value {
    json!({"token": token, "logprob": logprob, "bytes": token.as_bytes()})
}

/// Builds the `chat.completion` response body.
pub(crate) fn completion_body(
    request_bytes: &[u8],
    model_name: &str,
    request: &ChatRequest,
    answer: &ChatAnswer,
) -> Result<Value, ServeError> {
    if answer.label.is_empty() || answer.label.contains(char::is_whitespace) {
        return Err(ServeError::Model(format!(
            "label must be one non-empty word, got {:?}",
            answer.label
        )));
    }
    for (class, p) in &answer.probabilities {
        if !p.is_finite() || !(0.0..=1.0).contains(p) {
            return Err(ServeError::Model(format!(
                "probability of {class:?} must be in [0, 1], got {p}"
            )));
        }
    }
    let mut tokens: Vec<&str> = vec![answer.label.as_str()];
    if !answer.justification.is_empty() {
        tokens.push("\n");
        tokens.extend(word_tokens(&answer.justification));
    }
    let truncated = request
        .max_tokens
        .is_some_and(|m| (tokens.len() as u64) > m);
    if let Some(m) = request.max_tokens {
        tokens.truncate(m as usize);
    }
    let content: String = tokens.concat();

    let logprobs = if request.logprobs && !answer.probabilities.is_empty() {
        let p_label = answer
            .probabilities
            .iter()
            .find(|(c, _)| *c == answer.label)
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                ServeError::Model(format!(
                    "label {:?} is not in the model's class distribution",
                    answer.label
                ))
            })?;
        let mut classes: Vec<(&str, f64)> = answer
            .probabilities
            .iter()
            .map(|(c, p)| (c.as_str(), *p))
            .collect();
        classes.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        classes.truncate(request.top_logprobs as usize);
        let k = request.top_logprobs as usize;
        let entries: Vec<Value> = tokens
            .iter()
            .enumerate()
            .map(|(i, tok)| {
                let (lp, top): (f64, Vec<Value>) = if i == 0 {
                    (
                        logprob_of(p_label),
                        classes
                            .iter()
                            .map(|(c, p)| token_entry(c, logprob_of(*p)))
                            .collect(),
                    )
                } else {
                    // The justification is determined by the label and the evidence.
                    (
                        0.0,
                        std::iter::repeat_n(token_entry(tok, 0.0), k.min(1)).collect(),
                    )
                };
                let mut e = token_entry(tok, lp);
                e["top_logprobs"] = Value::Array(top);
                e
            })
            .collect();
        json!({"content": entries, "refusal": null})
    } else {
        Value::Null
    };

    let id = blake3::hash(request_bytes).to_hex();
    let prompt_tokens = word_tokens(&request.prompt).len();
    Ok(json!({
        "id": format!("chatcmpl-{}", &id[..24]),
        "object": "chat.completion",
        "created": 0,
        "model": model_name,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": logprobs,
            "finish_reason": if truncated { "length" } else { "stop" },
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": tokens.len(),
            "total_tokens": prompt_tokens + tokens.len(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_tokens_concatenate_back() {
        for text in ["Round opacity in  the zone.", " lead", "a\nb ", "", "one"] {
            assert_eq!(word_tokens(text).concat(), text);
        }
        assert_eq!(word_tokens("Round opacity."), vec!["Round", " opacity."]);
        assert_eq!(word_tokens("a  b "), vec!["a", "  b", " "]);
    }

    #[test]
    fn logprob_of_zero_is_finite() {
        assert_eq!(logprob_of(0.0), MIN_LOGPROB);
        assert_eq!(logprob_of(1.0), 0.0);
        assert!((logprob_of(0.5) - 0.5f64.ln()).abs() < 1e-15);
    }
}
