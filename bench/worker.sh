#!/usr/bin/env bash
# Worker benchmark: the same Python model code (bench/worker_model.py) run once per run as a
# process (`[adapter] kind = "command"`) and as a long-lived worker (`kind = "worker"`), on
# the same grid, one after the other in one invocation. Prints the time per run of each and
# the ratio; the bar (issue 16): a worker costs at most 1/10 of a process per run.
#
#   bench/worker.sh           full run (8 phantoms × 6 cells = 48 runs per mode; ~20 s)
#   bench/worker.sh --quick   smoke (6 runs per mode; part of scripts/test.sh, bar not checked)
#
# Time per run = wall time of `clarity run --no-analysis --no-cache` / runs, so it includes
# everything the mode costs: Clarity's fixed work and, for the worker, starting Python and
# loading the model once. One run in flight in each mode (max_in_flight = 1, workers = 1).
# The worker is measured twice: `image = "raw"` (the default: pixels inline, no decoding)
# and `image = "path"` (it decodes the same PNG file with the same decoder as the per-run
# program: the same work). Binary: $CLARITY_BIN, else the release build (built if missing;
# --quick: the debug build). Python: the venv of scripts/python-test.sh (numpy + clarity_worker).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
TARGET="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET" == /* ]] || TARGET="$ROOT/$TARGET"

PROFILE=release
[[ $QUICK == 1 ]] && PROFILE=debug
BIN="${CLARITY_BIN:-$TARGET/$PROFILE/clarity}"
if [[ ! -x "$BIN" ]]; then
  echo "==> building clarity ($PROFILE)" >&2
  if [[ $PROFILE == release ]]; then cargo build --release --quiet --locked -p clarity-cli
  else cargo build --quiet --locked -p clarity-cli; fi
fi

./scripts/python-test.sh --setup >&2
PY="$TARGET/python-venv/bin/python"
if ! "$PY" -c 'import clarity_worker, numpy, pyarrow' 2>/dev/null; then
  echo "SKIPPED worker benchmark: no Python venv with clarity_worker (see the line above)"
  exit 0
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

if [[ $QUICK == 1 ]]; then N=2 SIZE=64 AXIS="[1, 3]"; else N=8 SIZE=64 AXIS="[1, 2, 3, 4, 6]"; fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

config() { # MODE ADAPTER-LINES
  cat >"$WORK/$1.toml" <<TOML
seeds = [0]
output = "out-$1"

[cohort]
kind = "builtin"
n = $N
size = $SIZE

[adapter]
$2

[axes]
"gaussian_blur.sigma" = $AXIS
TOML
}
MODEL="program = \"$PY\"
args = [\"$ROOT/bench/worker_model.py\"]
timeout_secs = 60"
config command "kind = \"command\"
$MODEL
version = \"1\"
max_in_flight = 1"
config worker-raw "kind = \"worker\"
$MODEL
workers = 1
image = \"raw\""
config worker-path "kind = \"worker\"
$MODEL
workers = 1
image = \"path\""

declare -A SECS RUNS
for mode in command worker-raw worker-path; do
  t0=$(date +%s%N)
  "$BIN" run "$WORK/$mode.toml" --quiet --no-analysis --no-cache --json >"$WORK/$mode.json" \
    || { echo "clarity run $mode failed" >&2; exit 1; }
  t1=$(date +%s%N)
  SECS[$mode]=$(( (t1 - t0) / 1000 ))
  RUNS[$mode]=$("$PY" -c 'import sys, clarity_worker as c; d = c.read_observations(sys.argv[1]); assert (d.status == "ok").all(), "failed runs"; print(len(d))' "$WORK/out-$mode")
done

"$PY" - "$QUICK" "${RUNS[command]}" "${SECS[command]}" "${RUNS[worker-raw]}" "${SECS[worker-raw]}" \
  "${RUNS[worker-path]}" "${SECS[worker-path]}" <<'PY'
import sys
quick = sys.argv[1] == "1"
vals = list(map(int, sys.argv[2:]))
rows = {m: (vals[2 * i], vals[2 * i + 1]) for i, m in enumerate(["command", "worker-raw", "worker-path"])}
per = {m: us / 1000 / n for m, (n, us) in rows.items()}
print("| mode | runs | wall (s) | per run (ms) | vs per-run process |")
print("|---|---|---|---|---|")
labels = {"command": 'per-run process (`kind = "command"`)',
          "worker-raw": 'worker (`kind = "worker"`, `image = "raw"`)',
          "worker-path": 'worker (`image = "path"`, same PNG decode)'}
for m, (n, us) in rows.items():
    print(f"| {labels[m]} | {n} | {us / 1e6:.2f} | {per[m]:.1f} | {per[m] / per['command']:.3f} |")
worst = max(per["worker-raw"], per["worker-path"]) / per["command"]
if quick:
    print(f"bar not checked in --quick (6 runs: fixed costs dominate); worst ratio {worst:.3f}")
    sys.exit(0)
verdict = "holds" if worst <= 0.1 else "FAILS"
print(f"bar (worker <= 1/10 of a per-run process per run): {verdict} (worst ratio {worst:.3f} = 1/{1 / worst:.0f})")
sys.exit(0 if worst <= 0.1 else 1)
PY
