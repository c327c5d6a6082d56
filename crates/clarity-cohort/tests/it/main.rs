//! Integration tests: folders and manifests built in temp dirs.

mod folder;
mod manifest;
mod util;
