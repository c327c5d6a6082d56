//! The console's shared pieces: the page layout, the embedded assets (no CDN: everything the
//! browser loads comes from this binary), HTML escaping, and the word diff that highlights
//! what changed between two justifications.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

pub use clarity_report::html::esc;

use crate::ApiError;

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

/// `GET /assets/{name}`: the embedded stylesheet and script.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (mime, body) = match name.as_str() {
        "console.css" => ("text/css; charset=utf-8", CSS),
        "console.js" => ("text/javascript; charset=utf-8", JS),
        _ => return ApiError::not_found(format!("no asset `{name}`")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A console page: the layout around `body`, with a strict content-security policy (scripts
/// and images from this server only).
pub fn page(title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t} · Clarity</title><link rel="stylesheet" href="/assets/console.css"></head>
<body><header><a class="brand" href="/">Clarity</a><nav><a href="/">Sweeps</a><a href="/launch">Launch</a><a href="/compare">Compare</a></nav></header>
<main>{body}</main><script src="/assets/console.js"></script></body></html>"#,
        t = esc(title)
    );
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        )],
        Html(html),
    )
        .into_response()
}

/// An error shown as a console page (same status as the API would answer).
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status;
        let mut r = page(
            "Error",
            &format!(
                r#"<h1>{}</h1><p class="error" id="error">{}</p><p><a href="/">Back to the sweeps</a></p>"#,
                status.as_u16(),
                esc(&self.0.message)
            ),
        );
        *r.status_mut() = status;
        r
    }
}

/// Result of a console handler.
pub type PageResult = Result<Response, PageError>;

/// A number with 3 decimals, `–` for none.
pub fn num(x: Option<f64>) -> String {
    x.map(clarity_report::plots::f3)
        .unwrap_or_else(|| "–".into())
}

/// Percent-encodes a query value.
pub fn q(s: &str) -> String {
    crate::paths::encode_id(s)
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// Longest common subsequence of two word lists: which words of each side are kept.
/// Written by hand (a dozen lines): the texts are short justifications, and no diff crate is a
/// workspace dependency.
fn lcs_keep(a: &[&str], b: &[&str]) -> (Vec<bool>, Vec<bool>) {
    let (n, m) = (a.len(), b.len());
    let mut t = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i][j] = if a[i] == b[j] {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    let (mut ka, mut kb) = (vec![false; n], vec![false; m]);
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            ka[i] = true;
            kb[j] = true;
            i += 1;
            j += 1;
        } else if t[i + 1][j] >= t[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    (ka, kb)
}

/// Longest texts (in words) the diff compares; longer ones are shown without highlights.
const MAX_DIFF_WORDS: usize = 600;

/// Both texts as HTML, with the words not common to both marked (`<mark>`).
pub fn diff_html(before: &str, after: &str) -> (String, String) {
    let (a, b) = (words(before), words(after));
    if a.len() > MAX_DIFF_WORDS || b.len() > MAX_DIFF_WORDS {
        return (esc(before), esc(after));
    }
    let (ka, kb) = lcs_keep(&a, &b);
    let render = |ws: &[&str], keep: &[bool]| {
        ws.iter()
            .zip(keep)
            .map(|(w, k)| {
                if *k {
                    esc(w)
                } else {
                    format!("<mark>{}</mark>", esc(w))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (render(&a, &ka), render(&b, &kb))
}

/// 404 page for unknown console paths is the API's JSON 404; this is for handlers.
pub fn not_found(message: impl Into<String>) -> PageError {
    PageError(ApiError::new(StatusCode::NOT_FOUND, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_marks_changed_words_only() {
        let (a, b) = diff_html(
            "No nodule; lung fields clear (peak at x=0.7).",
            "Nodule in the right lung (peak at x=0.2).",
        );
        assert_eq!(
            a,
            "<mark>No</mark> <mark>nodule;</mark> lung <mark>fields</mark> <mark>clear</mark> (peak at <mark>x=0.7).</mark>"
        );
        assert_eq!(
            b,
            "<mark>Nodule</mark> <mark>in</mark> <mark>the</mark> <mark>right</mark> lung (peak at <mark>x=0.2).</mark>"
        );
        let (a, b) = diff_html("same <b>", "same <b>");
        assert_eq!(
            (a.as_str(), b.as_str()),
            ("same &lt;b&gt;", "same &lt;b&gt;")
        );
    }
}
