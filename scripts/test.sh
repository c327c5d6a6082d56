#!/usr/bin/env bash
# The whole test suite: format check, clippy with warnings as errors, every test, and the
# smoke mode of the peer-comparison benchmark (so the harness cannot rot).
# Installs what the tests need (Debian packages) when it is missing and we may.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The venvs below are kept under the target directory; pip's own download cache would only be
# a second copy of the same wheels (CI machines can be short of disk).
export PIP_NO_CACHE_DIR=1

# poppler-utils (pdftotext, pdfinfo, pdftoppm): the PDF report tests read the PDF back.
if ! command -v pdftotext >/dev/null 2>&1; then
  SUDO=""
  [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
  if [[ "$(id -u)" == 0 || -n "$SUDO" ]]; then
    echo "==> installing poppler-utils"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq poppler-utils >/dev/null
  else
    echo "==> poppler-utils missing and no root: the PDF text tests will say SKIPPED"
  fi
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test --workspace"
cargo test --workspace --locked

# Browser tests of the console (tests/browser): installs chromium, chromium-driver and
# Selenium itself; prints SKIPPED when it cannot.
echo "==> console browser tests (tests/browser/run.sh)"
# The binaries the scripts below use (clarity, clarity-kernel-timer, examples), built with the
# test build's features so nothing is compiled twice (clarity-cli's Cargo.toml unifies the few
# features that dev-dependencies turn on; `cargo build -p clarity-cli` and maturin then reuse
# it too).
cargo build --workspace --bins --examples --tests --locked
./tests/browser/run.sh "${CARGO_TARGET_DIR:-target}/debug/clarity"

# The Python package (python/) and the `clarity` CLI wheel: a venv under the target dir
# (pinned, cached), both wheels built and installed, pytest on real sweeps; SKIPPED when it
# cannot install.
echo "==> Python package and CLI wheel (scripts/python-test.sh)"
./scripts/python-test.sh "${CARGO_TARGET_DIR:-target}/debug/clarity"

# Cluster jobs (docs/scale-out.md): the Kubernetes manifests against the schemas (pinned
# kubernetes-validate, cached venv), and the Slurm script on a real single-node cluster
# (installs slurm-wlm); each prints SKIPPED when it cannot install.
echo "==> clarity jobs k8s: schema validation (scripts/k8s-validate.sh)"
./scripts/k8s-validate.sh "${CARGO_TARGET_DIR:-target}/debug/clarity"
echo "==> clarity jobs slurm: single-node Slurm cluster (scripts/slurm-test.sh)"
./scripts/slurm-test.sh "${CARGO_TARGET_DIR:-target}/debug/clarity"

echo "==> DICOM conformance against pydicom (scripts/dicom-conformance.sh)"
./scripts/dicom-conformance.sh >/tmp/clarity-dicom-conformance.log 2>&1 \
  || { tail -40 /tmp/clarity-dicom-conformance.log; exit 1; }
tail -1 /tmp/clarity-dicom-conformance.log

if [[ "${CLARITY_SKIP_BENCH_SMOKE:-}" != 1 ]]; then
  echo "==> bench/compare.sh --quick (smoke)"
  ./bench/compare.sh --quick
  echo "==> bench/worker.sh --quick (smoke)"
  ./bench/worker.sh --quick
fi
