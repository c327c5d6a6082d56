//! Configs posted to `POST /api/v1/jobs` (`{"toml": …, "save_as": …}`): saved under the root
//! as an ordinary config file, so the sweep runs, resumes and is reproduced exactly like one
//! started from a server-side file.
//!
//! A posted config is text from a client, so it is held to more than a file the operator put
//! under the root: every path it names (cohort, output, model, labels) resolves under the root,
//! and only adapters that run in-process on local files are accepted (`builtin`, `onnx`) —
//! `command` and `worker` would run a program, `openai` would make the server fetch a URL.

use std::path::Path;

use clarity_adapters::AdapterConfig;
use clarity_engine::SweepConfig;

use crate::ApiError;
use crate::paths::{is_under, join_checked};

/// Largest posted config (bytes); the request body limit caps it too.
pub const MAX_CONFIG_BYTES: usize = 32 * 1024;

/// Refuses a posted config whose adapter runs a program, fetches a URL or reads a model
/// outside the root.
pub fn check_adapter(root: &Path, config: &SweepConfig, rel: &str) -> Result<(), ApiError> {
    match &config.adapter {
        AdapterConfig::Builtin(_) => Ok(()),
        AdapterConfig::Onnx(c) => {
            for p in std::iter::once(&c.model).chain(c.labels_file.as_ref()) {
                let real = config.resolve_path(p);
                if !is_under(root, &real) {
                    return Err(ApiError::forbidden(format!(
                        "`{rel}`: adapter file {} is outside the served root",
                        p.display()
                    )));
                }
            }
            Ok(())
        }
        other => Err(ApiError::forbidden(format!(
            "`{rel}`: a posted config may use the `builtin` or `onnx` adapter only, not `{}` \
             (put the config file under the root to use it)",
            adapter_kind(other)
        ))),
    }
}

fn adapter_kind(a: &AdapterConfig) -> &'static str {
    match a {
        AdapterConfig::Builtin(_) => "builtin",
        AdapterConfig::Command(_) => "command",
        AdapterConfig::Onnx(_) => "onnx",
        AdapterConfig::Openai(_) => "openai",
        AdapterConfig::Worker(_) => "worker",
    }
}

/// Validates `text` as a config saved at `save_as` (relative to the root, `.toml`, in an
/// existing directory) and saves it there. Relative paths in it resolve against that
/// directory, as for any config file. An existing file is kept when it has the same text and
/// refused (409) otherwise: a posted config never overwrites another.
pub fn save(root: &Path, save_as: &str, text: &str) -> Result<(), ApiError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("`toml`: {} bytes, at most {MAX_CONFIG_BYTES}", text.len()),
        ));
    }
    if !save_as.ends_with(".toml") {
        return Err(ApiError::bad_request(format!(
            "`save_as`: expected a path ending in .toml, got `{save_as}`"
        )));
    }
    let target = join_checked(root, save_as)?;
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(ApiError::bad_request(format!("`save_as`: `{save_as}`")));
    };
    let name = name.to_string_lossy();
    if name.starts_with('.') {
        return Err(ApiError::bad_request(format!(
            "`save_as`: `{save_as}`: hidden files are not allowed"
        )));
    }
    let parent = std::fs::canonicalize(parent).map_err(|_| {
        ApiError::bad_request(format!(
            "`save_as`: `{save_as}`: its directory does not exist under the root"
        ))
    })?;
    if !parent.starts_with(root) {
        return Err(ApiError::forbidden(format!(
            "`save_as`: `{save_as}` resolves outside the served root"
        )));
    }
    let target = parent.join(name.as_ref());
    if target.is_symlink() {
        return Err(ApiError::forbidden(format!(
            "`save_as`: `{save_as}` is a symbolic link"
        )));
    }
    if let Ok(existing) = std::fs::read_to_string(&target) {
        if existing == text {
            return validate(root, &target, save_as);
        }
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!("`save_as`: `{save_as}` exists with other contents (choose another name)"),
        ));
    }
    // Validated under a hidden temporary name in the same directory (relative paths resolve as
    // they will), then renamed into place; a refused config leaves nothing behind.
    let tmp = parent.join(format!(".posted.{name}"));
    std::fs::write(&tmp, text)
        .map_err(|e| ApiError::internal(format!("`save_as`: `{save_as}`: {e}")))?;
    let checked = validate(root, &tmp, save_as).and_then(|()| {
        std::fs::rename(&tmp, &target)
            .map_err(|e| ApiError::internal(format!("`save_as`: `{save_as}`: {e}")))
    });
    if checked.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    checked
}

/// [`crate::jobs::check`] and [`check_adapter`]; messages name `rel`, not the temporary file.
fn validate(root: &Path, path: &Path, rel: &str) -> Result<(), ApiError> {
    crate::jobs::check(root, path, rel)
        .and_then(|(config, _)| check_adapter(root, &config, rel))
        .map_err(|mut e| {
            e.message = e.message.replace(&path.display().to_string(), rel);
            e
        })
}
