#!/usr/bin/env bash
# Browser tests of the console: headless Chromium driven over WebDriver (Selenium).
#
#   tests/browser/run.sh [CLARITY_BINARY] [--screenshots DIR] [-k NAME]
#
# Installs what it needs when missing and it may: Debian's chromium and chromium-driver
# (apt-get, as root or with passwordless sudo) and Selenium from PyPI into a virtual
# environment under the cargo target directory. Never downloads a browser build: Selenium is
# handed the system chromium and chromedriver. When it cannot install them it prints SKIPPED
# and exits 0. CLARITY_SKIP_BROWSER=1 skips on purpose.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${CLARITY_SKIP_BROWSER:-}" == 1 ]]; then
  echo "SKIPPED browser tests: CLARITY_SKIP_BROWSER=1"
  exit 0
fi

BIN="${CARGO_TARGET_DIR:-target}/debug/clarity"
if [[ $# -gt 0 && "$1" != -* ]]; then
  BIN="$1"
  shift
fi
if [[ ! -x "$BIN" ]]; then
  echo "==> building the clarity binary"
  cargo build -p clarity-cli --locked
fi

skip() {
  echo "SKIPPED browser tests: $*"
  exit 0
}

SUDO=""
[[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && SUDO="sudo -n"
can_apt() { [[ "$(id -u)" == 0 || -n "$SUDO" ]] && command -v apt-get >/dev/null 2>&1; }

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [[ ${#need[@]} -gt 0 ]]; then
  can_apt || skip "missing ${need[*]} and no root to apt-get install them"
  echo "==> installing ${need[*]} (Debian packages)"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"; } \
    >/tmp/clarity-browser-apt.log 2>&1 \
    || { tail -20 /tmp/clarity-browser-apt.log; skip "apt-get install ${need[*]} failed"; }
fi

VENV="${CARGO_TARGET_DIR:-target}/browser-venv"
if ! "$VENV/bin/python" -c 'import selenium' >/dev/null 2>&1; then
  echo "==> installing selenium into $VENV (PyPI)"
  { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q 'selenium>=4.10,<5'; } \
    >/tmp/clarity-browser-pip.log 2>&1 \
    || { tail -20 /tmp/clarity-browser-pip.log; skip "could not install selenium from PyPI"; }
fi

# Selenium must never fetch a driver or browser of its own.
export SE_OFFLINE=true
# An empty run cache: the user's ~/.cache/clarity would answer the sweeps this test starts
# (and a cancel test needs runs that really take time).
CACHE="$(mktemp -d)"
trap 'rm -rf "$CACHE"' EXIT
export CLARITY_CACHE_DIR="$CACHE"
"$VENV/bin/python" tests/browser/test_console.py --clarity "$BIN" \
  --chromium "$(command -v chromium)" --chromedriver "$(command -v chromedriver)" "$@"
