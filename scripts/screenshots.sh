#!/usr/bin/env bash
# Renders the quickstart sweep's report for real and keeps the pictures in docs/img/:
# report.html in headless Chromium (screenshot) and report.pdf with pdftoppm. Installs Debian's
# chromium and poppler-utils when missing (needs root or passwordless sudo).
#
#   scripts/screenshots.sh     # ~1 minute after the release build
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
if ((${#need[@]})); then
  SUDO=""
  [[ "$(id -u)" != 0 ]] && SUDO="sudo -n"
  echo "==> installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cargo run --release --quiet -- run examples/quickstart.toml --output "$OUT/sweep" --no-cache -q
# Chromium flags for a closed network (no background fetches), fresh profile.
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$OUT/profile" --window-size=1280,2600 \
  --screenshot="$OUT/html.png" "file://$OUT/sweep/report.html" 2>/dev/null
pdftoppm -png -r 70 -f 1 -l 2 "$OUT/sweep/report.pdf" "$OUT/pdf"
mkdir -p docs/img
cp "$OUT/html.png" docs/img/report-html.png
# pdftoppm pads the page number to the page count's width (pdf-1.png, pdf-01.png, …).
cp "$(ls "$OUT"/pdf-*.png | sort | head -1)" docs/img/report-pdf.png
[[ -f "$OUT/pdf-2.png" ]] && cp "$OUT/pdf-2.png" docs/img/report-pdf-2.png
echo "wrote docs/img/report-html.png, docs/img/report-pdf.png (quickstart sweep)"

# The console pages (docs/img/console-*.png, including the README's three clicks): the browser
# tests with the same release binary.
tests/browser/run.sh "${CARGO_TARGET_DIR:-target}/release/clarity" --screenshots docs/img
