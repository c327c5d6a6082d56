#!/usr/bin/env bash
# The Python side: the clarity_worker package (python/) and the `clarity` CLI wheel.
#
#   scripts/python-test.sh [CLARITY_BINARY] [pytest args…]
#   scripts/python-test.sh --setup     only steps 1 and 2 (the venv for bench/worker.sh)
#
# 1. A virtual environment at ${CARGO_TARGET_DIR:-target}/python-venv with the pinned
#    python/requirements-ci.txt (numpy, pandas, pyarrow, pytest, maturin… from PyPI). It is
#    kept between runs (CI reuses the target directory) and made anew when the pins, python/
#    pyproject.toml or the Python version change (a stamp file holds their hash).
# 2. Builds python/ as a wheel and installs it (never an editable install: the tests see what
#    `pip install ./python` gives a user).
# 3. Builds the `clarity` binary as a wheel with maturin (crates/clarity-cli/pyproject.toml,
#    `bindings = "bin"`; dev profile and the shared target directory, so it reuses the debug
#    build) and installs it: `clarity` is then on the venv's PATH.
# 4. pytest python/tests against CLARITY_BINARY (default: the debug build), real sweeps.
#
# Installs python3-venv (apt-get) when it is missing and we are root or have passwordless
# sudo; prints SKIPPED and exits 0 when it cannot install what it needs.
# CLARITY_SKIP_PYTHON=1 skips on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

skip() {
  echo "SKIPPED Python tests: $*"
  exit 0
}
[[ "${CLARITY_SKIP_PYTHON:-}" == 1 ]] && skip "CLARITY_SKIP_PYTHON=1"

TARGET="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET" == /* ]] || TARGET="$ROOT/$TARGET"
SETUP_ONLY=0
BIN="$TARGET/debug/clarity"
if [[ "${1:-}" == --setup ]]; then
  SETUP_ONLY=1
  shift
elif [[ $# -gt 0 && "$1" != -* ]]; then
  BIN="$(realpath "$1")"
  shift
fi
if [[ $SETUP_ONLY == 0 && ! -x "$BIN" ]]; then
  echo "==> building the clarity binary"
  cargo build -p clarity-cli --locked
fi

command -v python3 >/dev/null 2>&1 || skip "python3 not found"
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  SUDO=""
  [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && SUDO="sudo -n"
  [[ "$(id -u)" == 0 || -n "$SUDO" ]] && command -v apt-get >/dev/null 2>&1 \
    || skip "python3-venv missing and no root to apt-get install it"
  echo "==> installing python3-venv (Debian package)"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv; } \
    >/tmp/clarity-python-apt.log 2>&1 \
    || { tail -20 /tmp/clarity-python-apt.log; skip "apt-get install python3-venv failed"; }
fi

VENV="$TARGET/python-venv"
STAMP="$(cat python/requirements-ci.txt python/pyproject.toml | sha256sum | cut -c1-16)-$(python3 -c 'import sys; print(sys.version.split()[0])')"
if [[ "$(cat "$VENV/.clarity-stamp" 2>/dev/null)" != "$STAMP" ]]; then
  echo "==> making $VENV (pip install -r python/requirements-ci.txt from PyPI)"
  rm -rf "$VENV"
  { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check -r python/requirements-ci.txt; } \
    >/tmp/clarity-python-pip.log 2>&1 \
    || { tail -20 /tmp/clarity-python-pip.log; rm -rf "$VENV"; skip "could not install python/requirements-ci.txt from PyPI"; }
  echo "$STAMP" >"$VENV/.clarity-stamp"
fi
PY="$VENV/bin/python"
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall)

WHEELS="$TARGET/python-wheels"
rm -rf "$WHEELS"
mkdir -p "$WHEELS"

# The pure-Python package, built from a copy so the source tree gets no build/ or egg-info.
echo "==> building and installing the clarity_worker wheel (python/)"
SRC="$(mktemp -d)"
trap 'rm -rf "$SRC"' EXIT
cp -r python/pyproject.toml python/README.md python/src "$SRC/"
"$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation "$SRC" -w "$WHEELS" >/dev/null
rm -rf "$SRC"
"${PIP[@]}" "$WHEELS"/clarity_worker-*.whl
[[ $SETUP_ONLY == 1 ]] && exit 0

# The CLI wheel. Stored, not deflated: the debug binary is large and the wheel only goes into
# this venv (a release wheel for users: see crates/clarity-cli/pyproject.toml).
echo "==> building and installing the clarity CLI wheel (maturin, bindings = \"bin\")"
CARGO_TARGET_DIR="$TARGET" "$VENV/bin/maturin" build --quiet --locked --profile dev \
  -m crates/clarity-cli/Cargo.toml --compatibility linux --compression-method stored \
  -i "$PY" -o "$WHEELS" >/tmp/clarity-maturin.log 2>&1 \
  || { tail -30 /tmp/clarity-maturin.log; echo "maturin build of the clarity CLI wheel failed"; exit 1; }
"${PIP[@]}" "$WHEELS"/clarity_cli-*.whl
# Installed: the wheels (one holds a stored debug binary) would only take disk.
rm -rf "$WHEELS"

echo "==> pytest python/tests (clarity: $BIN)"
cd python
CLARITY_BIN="$BIN" CLARITY_EXPECT_CLI_WHEEL=1 PYTHONDONTWRITEBYTECODE=1 \
  "$PY" -m pytest -q -p no:cacheprovider "$@"
