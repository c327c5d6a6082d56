#!/usr/bin/env bash
# DICOM conformance against pydicom: installs pydicom and its pylibjpeg codec plugins into the
# project's Python venv (${CARGO_TARGET_DIR:-target}/bench-venv, shared with the peer
# benchmark and kept with the target directory, so CI reuses it), decodes every
# pixel-bearing file of pydicom's shipped test data with both, and compares (see
# scripts/dicom_conformance.py). `--table FILE` writes the markdown table for docs/dicom.md.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CARGO_TARGET_DIR:-target}/bench-venv"
if ! command -v python3 >/dev/null 2>&1; then
  echo "SKIPPED: DICOM conformance (python3 not found)"; exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV" || { echo "SKIPPED: DICOM conformance (cannot create a venv)"; exit 0; }
fi
if ! "$VENV/bin/python" -c "import pydicom, pylibjpeg, libjpeg, openjpeg, rle, numpy" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet "pydicom==3.0.2" "pylibjpeg==2.1.0" "pylibjpeg-libjpeg==2.5.0" \
      "pylibjpeg-openjpeg==2.6.0" "pylibjpeg-rle==2.2.0" numpy >&2 \
    || { echo "SKIPPED: DICOM conformance (cannot install pydicom from PyPI)"; exit 0; }
fi
TARGET="${CARGO_TARGET_DIR:-target}"
# --workspace --examples: the features of the test build (scripts/test.sh), so no rebuild.
cargo build --quiet --locked --workspace --examples
"$VENV/bin/python" -W ignore scripts/dicom_conformance.py "$TARGET/debug/examples/dicom_dump" \
  crates/clarity-image/tests/dicom_conformance_refusals.tsv "$@"
