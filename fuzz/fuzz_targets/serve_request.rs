//! The serve-model request parser: a `POST /v1/chat/completions` body → a validated request
//! (JSON shape, `model`, the image data URL, the decoded-size limits), as the server does
//! before inference. Small limits: a body that claims a large image must be refused from its
//! header.
#![no_main]

use clarity_serve_model::{ServeOptions, validate_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = ServeOptions {
        max_body_bytes: 1 << 20,
        max_image_side: 1024,
        max_decoded_bytes: 4 << 20,
        max_concurrent_requests: 1,
        ..ServeOptions::default()
    };
    if let Err(e) = validate_request(data, &options) {
        let _ = e.to_string();
        let _ = e.status();
    }
});
