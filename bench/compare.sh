#!/usr/bin/env bash
# Side-by-side kernel timings: Clarity vs the Python peers (OpenCV, Albumentations, Pillow,
# scikit-image, imagecorruptions) on the same images, single-threaded, in one run.
#
#   bench/compare.sh           full run (several minutes)
#   bench/compare.sh --quick   smoke mode (seconds; part of CI so the harness cannot rot)
#
# Creates its own virtual environment in ${CARGO_TARGET_DIR:-target}/bench-venv (kept with the
# target directory, so CI reuses it) and installs the peers from PyPI. Method and the latest
# table: docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=""
[[ "${1:-}" == "--quick" ]] && QUICK="--quick"

VENV="${CARGO_TARGET_DIR:-target}/bench-venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import cv2, albumentations, PIL, skimage, imagecorruptions, rapidfuzz" 2>/dev/null; then
  echo "==> installing peers into $VENV" >&2
  "$VENV/bin/pip" install --quiet --no-cache-dir numpy opencv-python-headless "albumentations==2.0.8" pillow scikit-image scipy rapidfuzz >&2
  "$VENV/bin/pip" install --quiet --no-cache-dir --no-deps imagecorruptions >&2
fi

# Pin every library to one thread, as the peer table does.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [[ -n "$QUICK" ]]; then
  # Smoke mode checks the harness, not the numbers: the debug build (kernels at opt-level 2),
  # with the test build's features (scripts/test.sh), so CI compiles nothing for it.
  echo "==> building clarity-kernel-timer (debug, smoke: the ratios below say nothing about speed)" >&2
  cargo build --quiet --locked --workspace --bins --examples --tests
  TIMER="${CARGO_TARGET_DIR:-target}/debug/clarity-kernel-timer"
else
  echo "==> building clarity-kernel-timer (release)" >&2
  cargo build --release --quiet --locked -p clarity-bench
  TIMER="${CARGO_TARGET_DIR:-target}/release/clarity-kernel-timer"
fi
"$TIMER" images "$WORK/img"
echo "==> timing Clarity and the peers, round-robin" >&2
"$VENV/bin/python" bench/compare.py "$WORK/img" "$TIMER" $QUICK
