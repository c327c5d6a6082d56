#!/usr/bin/env bash
# Scale benchmark (issue 15): a builtin sweep of PHANTOMS × (LEVELS + 1) × SEEDS runs (the
# +1 is the unperturbed baseline cell; default 400 × 50 × 50 = 1,000,000) at 64 px without saliency, then `clarity analyze` of it.
# Prints wall time and peak RSS of both, the output size and bytes per run, and checks the
# bars: output ≤ 250 B/run, analyze ≤ 30 s and ≤ 1 GB peak memory.
#
#   bench/million.sh                  1,000,000 runs (tens of minutes on 2 cores)
#   bench/million.sh 40 49 5          10,000 runs (a smoke check of the script itself)
#
# Binary: $CLARITY_BIN, else the release build (built if missing). Work dir: $WORK (default a
# temp dir, removed at exit). Needs GNU time (/usr/bin/time) for peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."
PHANTOMS="${1:-400}" CELLS="${2:-49}" SEEDS="${3:-50}"
RUNS=$((PHANTOMS * (CELLS + 1) * SEEDS))
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="${CLARITY_BIN:-$TARGET/release/clarity}"
if [[ ! -x "$BIN" ]]; then
  echo "==> building clarity (release)" >&2
  cargo build --release --quiet --locked -p clarity-cli
fi
if [[ ! -x /usr/bin/time ]]; then
  echo "bench/million.sh: needs GNU time at /usr/bin/time (Debian package 'time')" >&2
  exit 2
fi
KEEP=1
if [[ -z "${WORK:-}" ]]; then WORK=$(mktemp -d); KEEP=0; fi
[[ $KEEP == 0 ]] && trap 'rm -rf "$WORK"' EXIT

# LEVELS noise levels evenly spaced in (0, 0.25]; every seed draws its own noise, so every run
# is a distinct content key and a real model call.
LEVELS=$(awk -v n="$CELLS" 'BEGIN { for (i = 1; i <= n; i++) printf "%s%.4f", (i > 1 ? ", " : ""), 0.25 * i / n }')
cat >"$WORK/million.toml" <<TOML
seeds = $SEEDS
output = "out"

[cohort]
kind = "builtin"
n = $PHANTOMS
size = 64

[adapter]
kind = "builtin"
saliency = false

[axes]
"gaussian_noise.sigma" = [$LEVELS]

[analysis]
bootstrap_iterations = 200
TOML

measure() { # LABEL CMD... ; prints "LABEL wall_s peak_mb"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >"$WORK/$label.log" 2>&1 \
    || { tail -20 "$WORK/$label.log"; echo "bench/million.sh: $label failed" >&2; exit 1; }
  read -r wall kb <"$WORK/time.txt"
  echo "$label $wall $((kb / 1024))"
}

echo "==> $RUNS runs ($PHANTOMS phantoms × ($CELLS noise levels + baseline) × $SEEDS seeds, 64 px, no saliency), $(nproc) cores"
read -r _ run_s run_mb < <(measure run "$BIN" run "$WORK/million.toml" --no-cache -o "$WORK/sweep")
bytes=$(du -sb "$WORK/sweep" | cut -f1)
read -r _ an_s an_mb < <(measure analyze "$BIN" analyze "$WORK/sweep")
per_run=$(awk -v b="$bytes" -v r="$RUNS" 'BEGIN { printf "%.1f", b / r }')
echo
echo "| step | wall | peak RSS |"
echo "|---|---|---|"
echo "| clarity run (${RUNS} runs) | ${run_s} s | ${run_mb} MB |"
echo "| clarity analyze | ${an_s} s | ${an_mb} MB |"
echo
echo "output: $bytes bytes = $per_run B/run"
(cd "$WORK/sweep" && find . -type f -printf '%s %p\n' | sort -rn | head -8)
ok=1
awk -v p="$per_run" 'BEGIN { exit !(p <= 250) }' || { echo "BAR MISSED: $per_run B/run > 250"; ok=0; }
awk -v s="$an_s" 'BEGIN { exit !(s <= 30) }' || { echo "BAR MISSED: analyze $an_s s > 30 s"; ok=0; }
[[ $an_mb -le 1024 ]] || { echo "BAR MISSED: analyze $an_mb MB > 1 GB"; ok=0; }
[[ $ok == 1 ]] && echo "bars met: ≤ 250 B/run, analyze ≤ 30 s and ≤ 1 GB"
