#!/usr/bin/env bash
# The whole test suite: format check, clippy with warnings as errors, every test.
# Installs what the tests need (Debian packages) when it is missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test --workspace"
cargo test --workspace --locked
