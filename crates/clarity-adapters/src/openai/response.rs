//! From a chat-completion response to an observation: answer extraction, confidence,
//! entropy and per-choice probabilities from token logprobs.

use std::ops::Range;

use clarity_core::Observation;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::snippet;

/// `(?i)` whole-word alternation of the choices, longest first so `nodule_right` wins over
/// `nodule` at the same position.
pub(crate) fn choice_regex(choices: &[String]) -> Result<Option<Regex>, regex::Error> {
    if choices.is_empty() {
        return Ok(None);
    }
    let mut sorted: Vec<&String> = choices.iter().collect();
    sorted.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    let alternation: Vec<String> = sorted.iter().map(|c| regex::escape(c.trim())).collect();
    // The regex crate has no look-around: consume one boundary character instead.
    let boundary = r"[^\p{L}\p{N}_]";
    Regex::new(&format!(
        "(?i)(?:^|{boundary})({})(?:{boundary}|$)",
        alternation.join("|")
    ))
    .map(Some)
}

/// How the answer was found and where it sits in the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Extracted {
    pub answer: String,
    /// Byte range of the answer in the text (for selecting answer tokens).
    pub span: Range<usize>,
    pub justification: Option<String>,
    pub method: String,
}

pub(crate) fn extract(
    text: &str,
    choices: &[String],
    choice_regex: Option<&Regex>,
    answer_regex: Option<&Regex>,
) -> Extracted {
    let mut notes = Vec::new();
    if let Some(re) = choice_regex {
        if let Some(m) = re.captures(text).and_then(|c| c.get(1)) {
            let found = m.as_str();
            let answer = choices
                .iter()
                .find(|c| c.trim().to_lowercase() == found.to_lowercase())
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|| found.to_string());
            return Extracted {
                answer,
                span: m.range(),
                justification: remove_span(text, m.range()),
                method: "choices".into(),
            };
        }
        notes.push("no choice found");
    }
    if let Some(re) = answer_regex {
        if let Some(caps) = re.captures(text) {
            let whole = caps.get(0).expect("group 0 always matches");
            let m = caps.get(1).unwrap_or(whole);
            return Extracted {
                answer: m.as_str().trim().to_string(),
                span: m.range(),
                justification: remove_span(text, whole.range()),
                method: "answer_regex".into(),
            };
        }
        notes.push("answer_regex did not match");
    }
    let method = if notes.is_empty() {
        "first_line".to_string()
    } else {
        format!("first_line ({})", notes.join(", "))
    };
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line
            .trim()
            .trim_end_matches(['.', ',', ';', ':', '!'])
            .trim_end();
        if !trimmed.is_empty() {
            let start = offset + (line.len() - line.trim_start().len());
            let rest = text[offset + line.len()..].trim();
            return Extracted {
                answer: trimmed.to_string(),
                span: start..start + trimmed.len(),
                justification: (!rest.is_empty()).then(|| rest.to_string()),
                method,
            };
        }
        offset += line.len();
    }
    Extracted {
        answer: String::new(),
        span: 0..0,
        justification: None,
        method,
    }
}

/// The text with `range` cut out, the two sides joined by one space.
fn remove_span(text: &str, range: Range<usize>) -> Option<String> {
    let prefix = text[..range.start].trim();
    let suffix = text[range.end..].trim();
    let joined = if prefix.is_empty() {
        suffix
            .trim_start_matches(|c: char| c.is_whitespace() || ".,;:-)".contains(c))
            .to_string()
    } else if suffix.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix} {suffix}")
    };
    (!joined.is_empty()).then_some(joined)
}

#[derive(Debug, Deserialize)]
struct TokenLogprob {
    token: String,
    logprob: Option<f64>,
    #[serde(default)]
    top_logprobs: Option<Vec<TopLogprob>>,
}

#[derive(Debug, Deserialize)]
struct TopLogprob {
    token: String,
    logprob: Option<f64>,
}

/// Turns a chat-completion response body into an observation (answer, justification,
/// confidence, entropy, metadata). Errors name what is wrong with the response.
pub(crate) fn parse_completion(
    body: &str,
    choices: &[String],
    choice_regex: Option<&Regex>,
    answer_regex: Option<&Regex>,
) -> Result<Observation, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| {
        format!(
            "malformed JSON in the response: {e}; body starts with {}",
            snippet(body)
        )
    })?;
    let choice = value
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| format!("response has no choices[0]: {}", snippet(body)))?;
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let message = choice
        .get("message")
        .ok_or_else(|| format!("response choices[0] has no message: {}", snippet(body)))?;
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => p.get("text").and_then(Value::as_str),
            })
            .collect(),
        None | Some(Value::Null) => {
            let refusal = message
                .get("refusal")
                .and_then(Value::as_str)
                .map(|r| format!("; refusal: {r:?}"))
                .unwrap_or_default();
            return Err(format!(
                "response choices[0].message.content is null (finish_reason {finish_reason:?}{refusal})"
            ));
        }
        Some(other) => {
            return Err(format!(
                "response choices[0].message.content must be a string or a list of parts, got {}",
                snippet(&other.to_string())
            ));
        }
    };
    let extracted = extract(&text, choices, choice_regex, answer_regex);
    let mut obs = Observation {
        answer: Some(extracted.answer.clone()),
        justification: extracted.justification.clone(),
        ..Observation::default()
    };
    obs.metadata
        .insert("answer_extraction".into(), json!(extracted.method));
    obs.metadata
        .insert("finish_reason".into(), json!(finish_reason));
    if let Some(fp) = value.get("system_fingerprint").and_then(Value::as_str) {
        // Which weights/backend answered; the content key cannot know it.
        obs.metadata.insert("system_fingerprint".into(), json!(fp));
    }

    let tokens: Option<Vec<TokenLogprob>> = choice
        .get("logprobs")
        .and_then(|l| l.get("content"))
        .filter(|c| !c.is_null())
        .and_then(|c| serde_json::from_value(c.clone()).ok());
    let Some(tokens) = tokens.filter(|t| !t.is_empty()) else {
        return Ok(obs);
    };
    if tokens
        .iter()
        .any(|t| t.logprob.is_none_or(|lp| !lp.is_finite()))
    {
        obs.metadata.insert(
            "logprobs".into(),
            json!("malformed (a token has no finite logprob)"),
        );
        return Ok(obs);
    }
    let selected = answer_tokens(&tokens, &text, &extracted.span);
    let first_answer_token = selected.as_ref().map(|idx| idx[0]);
    let (indices, scope) = match selected {
        Some(idx) => (idx, "the answer tokens"),
        None => ((0..tokens.len()).collect(), "all tokens"),
    };
    let mean = indices
        .iter()
        .map(|&i| tokens[i].logprob.expect("checked above"))
        .sum::<f64>()
        / indices.len() as f64;
    obs.confidence = Some(mean.exp().clamp(0.0, 1.0));
    obs.metadata.insert(
        "confidence_formula".into(),
        json!(format!("exp(mean token logprob over {scope})")),
    );
    obs.metadata
        .insert("confidence_tokens".into(), json!(indices.len()));

    let first = &tokens[indices[0]];
    let top: Vec<(&str, f64)> = first
        .top_logprobs
        .iter()
        .flatten()
        .filter_map(|t| {
            t.logprob
                .filter(|lp| lp.is_finite())
                .map(|lp| (t.token.as_str(), lp))
        })
        .collect();
    if !top.is_empty() {
        let entropy: f64 = top
            .iter()
            .map(|(_, lp)| {
                let p = lp.exp();
                if p > 0.0 { -p * lp } else { 0.0 }
            })
            .sum();
        obs.entropy = Some(entropy.max(0.0));
        obs.metadata.insert(
            "entropy_formula".into(),
            json!(format!(
                "-sum p ln p over the top_logprobs of the first {}, p = exp(logprob), not renormalised",
                if scope == "the answer tokens" { "answer token" } else { "token" }
            )),
        );
        obs.metadata
            .insert("entropy_top_k".into(), json!(top.len()));
        for (token, lp) in top {
            *obs.probabilities
                .entry(token.trim().to_string())
                .or_insert(0.0) += lp.exp();
        }
    }
    if !choices.is_empty() {
        apply_choice_scores(
            &mut obs,
            &tokens,
            &text,
            &extracted,
            choices,
            first_answer_token,
        );
    }
    Ok(obs)
}

const CHOICE_FORMULA: &str = "per choice: exp(sum of the logprobs of the generated tokens the choice shares with the answer from its first token on, plus ln of the summed probability of the top_logprobs alternatives that continue the choice where it departs from the generated text); normalised to sum 1 over the choices";

/// Replaces the first-token probabilities by per-choice probabilities when the answer is
/// one of the choices and the tokens spell out the text; else says why in metadata.
fn apply_choice_scores(
    obs: &mut Observation,
    tokens: &[TokenLogprob],
    text: &str,
    extracted: &Extracted,
    choices: &[String],
    first_answer_token: Option<usize>,
) {
    let unavailable = |obs: &mut Observation, why: &str| {
        obs.metadata.insert(
            "choice_probabilities".into(),
            json!(format!("unavailable: {why}")),
        );
    };
    if extracted.method != "choices" {
        return unavailable(obs, "the answer is not one of the choices");
    }
    let Some(i0) = first_answer_token else {
        return unavailable(obs, "the logprob tokens do not spell out the text");
    };
    let starts = token_starts(tokens, text).expect("answer_tokens checked the spelling");
    let prefix = &text[starts[i0]..extracted.span.start];
    let scores: Vec<(String, ChoiceScore)> = choices
        .iter()
        .map(|c| {
            let c = c.trim().to_string();
            let s = score_choice(tokens, i0, prefix, &c);
            (c, s)
        })
        .collect();
    let total: f64 = scores
        .iter()
        .filter_map(|(_, s)| s.logprob.map(f64::exp))
        .sum();
    let answer_scored = scores
        .iter()
        .any(|(c, s)| *c == extracted.answer && s.logprob.is_some());
    if !(total > 0.0 && total.is_finite() && answer_scored) {
        return unavailable(obs, "the answer's tokens have no usable logprobs");
    }
    obs.metadata
        .insert("answer_token_confidence".into(), json!(obs.confidence));
    obs.probabilities.clear();
    let mut detail = serde_json::Map::new();
    for (c, s) in &scores {
        let p = s.logprob.map_or(0.0, |lp| lp.exp() / total);
        obs.probabilities.insert(c.clone(), p);
        detail.insert(c.clone(), json!({"logprob": s.logprob, "how": s.how}));
    }
    obs.confidence = Some(obs.probabilities[&extracted.answer].clamp(0.0, 1.0));
    let entropy: f64 = obs
        .probabilities
        .values()
        .filter(|p| **p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    obs.entropy = Some(entropy.max(0.0));
    obs.metadata.remove("entropy_top_k");
    obs.metadata
        .insert("probabilities_formula".into(), json!(CHOICE_FORMULA));
    obs.metadata
        .insert("choice_probability_mass".into(), json!(total));
    obs.metadata
        .insert("choice_scores".into(), Value::Object(detail));
    obs.metadata.insert(
        "confidence_formula".into(),
        json!("the answer's normalised choice probability (probabilities_formula)"),
    );
    obs.metadata.insert(
        "entropy_formula".into(),
        json!("-sum p ln p over the normalised choice probabilities"),
    );
}

/// A choice's unnormalised log probability and how it was obtained.
#[derive(Debug, Clone, PartialEq)]
struct ChoiceScore {
    logprob: Option<f64>,
    how: String,
}

enum Step {
    /// The piece is a prefix of what remains of the choice: consumed this many bytes.
    Continue(usize),
    /// The piece holds the rest of the choice followed by a word boundary (or is a word
    /// boundary when nothing remains).
    Complete,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn step(rest: &str, piece: &str) -> Option<Step> {
    if rest.is_empty() && piece.is_empty() {
        return None;
    }
    if !rest.is_empty() && rest.starts_with(piece) {
        return Some(Step::Continue(piece.len()));
    }
    let after = piece.strip_prefix(rest)?;
    after
        .chars()
        .next()
        .is_none_or(|c| !is_word(c))
        .then_some(Step::Complete)
}

/// Byte offset where each token starts, when the tokens spell out `text` exactly.
fn token_starts(tokens: &[TokenLogprob], text: &str) -> Option<Vec<usize>> {
    let mut offset = 0;
    let mut starts = Vec::with_capacity(tokens.len());
    for t in tokens {
        let end = offset + t.token.len();
        if text.get(offset..end) != Some(t.token.as_str()) {
            return None;
        }
        starts.push(offset);
        offset = end;
    }
    (offset == text.len()).then_some(starts)
}

/// The part of a token that belongs to the answer: at the first answer token, the text
/// before the answer (`prefix`, e.g. a leading space) is removed; an alternative token that
/// does not start with the same prefix (whitespace-insensitively) cannot continue the
/// choice.
fn piece<'a>(token: &'a str, first: bool, prefix: &str) -> Option<&'a str> {
    if !first || prefix.is_empty() {
        return Some(token);
    }
    if let Some(rest) = token.strip_prefix(prefix) {
        return Some(rest);
    }
    (prefix.trim().is_empty()).then(|| token.trim_start())
}

/// Walks the generated tokens from the answer's first token while they agree with `choice`
/// (case-insensitively), summing their logprobs; where they depart, the alternatives in
/// that token's `top_logprobs` that continue the choice (or, when the choice is complete,
/// end the word) contribute their summed probability.
fn score_choice(tokens: &[TokenLogprob], i0: usize, prefix: &str, choice: &str) -> ChoiceScore {
    let target = choice.to_lowercase();
    let mut pos = 0;
    let mut lp = 0.0;
    for (j, t) in tokens.iter().enumerate().skip(i0) {
        let first = j == i0;
        let generated = piece(&t.token, first, prefix)
            .unwrap_or(&t.token)
            .to_lowercase();
        let rest = &target[pos..];
        let token_lp = t.logprob.expect("checked finite");
        match step(rest, &generated) {
            Some(Step::Continue(n)) => {
                lp += token_lp;
                pos += n;
            }
            Some(Step::Complete) => {
                // Nothing left of the choice: the boundary after it is not counted.
                if !rest.is_empty() {
                    lp += token_lp;
                }
                return ChoiceScore {
                    logprob: Some(lp),
                    how: "generated".into(),
                };
            }
            None => {
                let top: Vec<(String, f64)> = t
                    .top_logprobs
                    .iter()
                    .flatten()
                    .filter(|a| a.token != t.token)
                    .filter_map(|a| {
                        let lp = a.logprob.filter(|l| l.is_finite())?;
                        Some((piece(&a.token, first, prefix)?.to_lowercase(), lp))
                    })
                    .collect();
                let mut p = 0.0;
                let mut complete = true;
                let mut found = 0;
                for (alt, alt_lp) in &top {
                    match step(rest, alt) {
                        Some(Step::Complete) => {}
                        // The whole rest of the choice: only the boundary after it is unknown.
                        Some(Step::Continue(n)) if n == rest.len() => {}
                        Some(Step::Continue(n)) if n > 0 => complete = false,
                        _ => continue,
                    }
                    found += 1;
                    p += alt_lp.exp();
                }
                if found == 0 || p <= 0.0 {
                    let listed = t
                        .top_logprobs
                        .iter()
                        .flatten()
                        .filter_map(|a| a.logprob.filter(|l| l.is_finite()))
                        .fold(f64::INFINITY, f64::min);
                    let how = if listed.is_finite() {
                        format!(
                            "not in the top_logprobs where it departs from the text (token {}; p < {:.3e})",
                            j - i0,
                            listed.exp()
                        )
                    } else {
                        format!(
                            "no top_logprobs where it departs from the text (token {})",
                            j - i0
                        )
                    };
                    return ChoiceScore { logprob: None, how };
                }
                let how = if complete {
                    format!("alternative at answer token {}", j - i0)
                } else {
                    format!(
                        "alternative at answer token {}, upper bound (its later tokens are not known, counted as probability 1)",
                        j - i0
                    )
                };
                return ChoiceScore {
                    logprob: Some(lp + p.ln()),
                    how,
                };
            }
        }
    }
    if pos == target.len() {
        ChoiceScore {
            logprob: Some(lp),
            how: "generated".into(),
        }
    } else {
        ChoiceScore {
            logprob: None,
            how: "the text ends before the choice departs from it".into(),
        }
    }
}

/// Indices of the tokens overlapping `span`, or `None` when the tokens do not spell out the
/// text exactly (then the caller uses all tokens).
fn answer_tokens(tokens: &[TokenLogprob], text: &str, span: &Range<usize>) -> Option<Vec<usize>> {
    let mut offset = 0;
    let mut selected = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let end = offset + t.token.len();
        if text.get(offset..end) != Some(t.token.as_str()) {
            return None;
        }
        if offset < span.end && end > span.start {
            selected.push(i);
        }
        offset = end;
    }
    (offset == text.len() && !selected.is_empty()).then_some(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(token: &str, p: f64, top: &[(&str, f64)]) -> Value {
        let top: Vec<Value> = top
            .iter()
            .map(|(t, p)| json!({"token": t, "logprob": p.ln()}))
            .collect();
        json!({"token": token, "logprob": p.ln(), "top_logprobs": top})
    }

    fn parse(text: &str, tokens: Vec<Value>, choices: &[&str]) -> Observation {
        let body = json!({"choices": [{"message": {"content": text}, "finish_reason": "stop",
            "logprobs": {"content": tokens}}]});
        let choices: Vec<String> = choices.iter().map(|s| s.to_string()).collect();
        let cre = choice_regex(&choices).unwrap();
        parse_completion(&body.to_string(), &choices, cre.as_ref(), None).unwrap()
    }

    const CHOICES: [&str; 3] = ["normal", "nodule_left", "nodule_right"];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn choices_sharing_first_tokens_are_told_apart() {
        // P(normal) 0.2, P(nodule_left) 0.35, P(nodule_right) 0.45, tokenised like a BPE
        // tokenizer: "nod" "ule" "_left"/"_right".
        let tokens = vec![
            tok("nod", 0.8, &[("nod", 0.8), ("normal", 0.2)]),
            tok("ule", 1.0, &[("ule", 1.0)]),
            tok(
                "_right",
                0.45 / 0.8,
                &[("_right", 0.45 / 0.8), ("_left", 0.35 / 0.8)],
            ),
            tok("\n", 0.9, &[("\n", 0.9)]),
            tok("Round", 0.5, &[]),
        ];
        let obs = parse("nodule_right\nRound", tokens, &CHOICES);
        assert_eq!(obs.answer.as_deref(), Some("nodule_right"));
        let p = &obs.probabilities;
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(close(p["normal"], 0.2), "{p:?}");
        assert!(close(p["nodule_left"], 0.35), "{p:?}");
        assert!(close(p["nodule_right"], 0.45), "{p:?}");
        assert!(close(obs.confidence.unwrap(), 0.45));
        let h = -(0.2f64 * 0.2f64.ln() + 0.35 * 0.35f64.ln() + 0.45 * 0.45f64.ln());
        assert!(close(obs.entropy.unwrap(), h));
        assert!(close(
            obs.metadata["choice_probability_mass"].as_f64().unwrap(),
            1.0
        ));
        let scores = &obs.metadata["choice_scores"];
        assert_eq!(scores["nodule_right"]["how"], json!("generated"));
        assert_eq!(
            scores["nodule_left"]["how"],
            json!("alternative at answer token 2")
        );
        assert_eq!(
            scores["normal"]["how"],
            json!("alternative at answer token 0")
        );
        // The first-token view would have said nod 0.8 / normal 0.2.
        assert!(obs.metadata.contains_key("answer_token_confidence"));
    }

    #[test]
    fn leading_space_case_and_unseen_choices() {
        // " Nodule_left" with a leading space in the token; " Normal" is an alternative;
        // "nodule_right" never shows up.
        let tokens = vec![
            tok(
                " Nod",
                0.6,
                &[(" Nod", 0.6), (" Normal", 0.3), ("Hmm", 0.05)],
            ),
            tok("ule", 1.0, &[]),
            tok("_left", 0.9, &[("_left", 0.9), ("_lower", 0.05)]),
        ];
        let obs = parse(" Nodule_left", tokens, &CHOICES);
        assert_eq!(obs.answer.as_deref(), Some("nodule_left"));
        let raw_left = 0.6 * 0.9;
        let total = raw_left + 0.3;
        assert!(close(obs.probabilities["nodule_left"], raw_left / total));
        assert!(close(obs.probabilities["normal"], 0.3 / total));
        assert_eq!(obs.probabilities["nodule_right"], 0.0);
        let how = obs.metadata["choice_scores"]["nodule_right"]["how"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            how.starts_with(
                "not in the top_logprobs where it departs from the text (token 2; p < 5.000e-2"
            ),
            "{how}"
        );
        assert!(close(
            obs.metadata["choice_probability_mass"].as_f64().unwrap(),
            total
        ));
    }

    #[test]
    fn a_choice_that_is_a_prefix_needs_a_word_end() {
        // "nodule" vs the generated "nodule_right": "nodule" as a whole word is "nod" "ule"
        // followed by a token that ends the word ("\n" or "." here).
        let tokens = vec![
            tok("nod", 0.9, &[("nod", 0.9), ("normal", 0.1)]),
            tok("ule", 1.0, &[]),
            tok(
                "_right",
                0.5,
                &[("_right", 0.5), ("\n", 0.2), (".", 0.1), ("s", 0.2)],
            ),
        ];
        let obs = parse(
            "nodule_right",
            tokens,
            &["normal", "nodule", "nodule_right"],
        );
        assert_eq!(obs.answer.as_deref(), Some("nodule_right"));
        let raw = [0.1, 0.9 * 0.3, 0.9 * 0.5];
        let total: f64 = raw.iter().sum();
        assert!(close(obs.probabilities["normal"], raw[0] / total));
        assert!(close(obs.probabilities["nodule"], raw[1] / total));
        assert!(close(obs.probabilities["nodule_right"], raw[2] / total));
    }

    #[test]
    fn partial_alternatives_are_upper_bounds() {
        // "nodule_left" departs at token 0, where only its first piece "nod" is listed.
        let tokens = vec![
            tok("normal", 0.7, &[("normal", 0.7), ("nod", 0.3)]),
            tok("\n", 1.0, &[]),
        ];
        let obs = parse("normal\n", tokens, &["normal", "nodule_left"]);
        assert!(close(obs.probabilities["normal"], 0.7));
        assert!(close(obs.probabilities["nodule_left"], 0.3));
        let how = obs.metadata["choice_scores"]["nodule_left"]["how"]
            .as_str()
            .unwrap();
        assert!(how.contains("upper bound"), "{how}");
    }

    #[test]
    fn no_choice_found_keeps_first_token_probabilities() {
        let tokens = vec![tok("maybe", 0.5, &[("maybe", 0.5), ("no", 0.25)])];
        let obs = parse("maybe", tokens, &CHOICES);
        assert_eq!(
            obs.metadata["choice_probabilities"],
            json!("unavailable: the answer is not one of the choices")
        );
        assert!(close(obs.probabilities["maybe"], 0.5));
        assert!(close(obs.confidence.unwrap(), 0.5));
    }
}
