#!/usr/bin/env bash
# Crash-and-resume soak: N interruptions of a small sweep with the `command` adapter
# (clarity-testmodel, a real external program), each followed by a resume, and the final
# artifacts compared byte for byte with an uninterrupted run.
#
#   scripts/soak.sh                 # 200 interruptions, seed 1
#   scripts/soak.sh -n 5 --seed 7   # a smoke
#
# Interruptions, drawn from the seed (bash's $RANDOM seeded with it): the kind (kill -9,
# SIGTERM, or "disk full": RLIMIT_FSIZE via `ulimit -f` with SIGXFSZ ignored, so a write past
# the limit fails with EFBIG like ENOSPC) and the delay (0 .. 1.5 × the uninterrupted run's
# wall time) or file-size limit (1 .. 64 KiB). Where a delay lands in the sweep depends on
# timing; the sequence of delays does not.
#
# Compared with the uninterrupted run, byte for byte: every file of the output directory
# (report.html, report.pdf, metrics.json, metrics.csv, cases.csv, observations.parquet,
# plan.json, surface.json, gradients.json, cliffs.json, montecarlo.json, bundle.json), the
# journal when one is left (as a sorted list of lines: its order is completion order; a sealed
# sweep has none), and every file of the
# cache (names and bytes). Not compared: telemetry.json (timings), .clarity.lock (a PID) and
# hidden temporaries `.NAME.tmp-PID-N` that a kill -9 leaves between write and rename (never
# read; `clarity cache gc` removes them); they are counted and reported.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

n=200
seed=1
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build -q -p clarity-cli -p clarity-testmodel)
work="$(mktemp -d "${TMPDIR:-/tmp}/clarity-soak.XXXXXX")"
[ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT
# Private copies: a concurrent build into the same target dir must not swap them mid-soak.
mkdir -p "$work/bin"
cp "$CARGO_TARGET_DIR/debug/clarity" "$CARGO_TARGET_DIR/debug/clarity-testmodel" "$work/bin/"

cat >"$work/sweep.toml" <<TOML
seeds = [0, 1]
output = "out"

[cohort]
kind = "builtin"
n = 2
size = 64

[adapter]
kind = "command"
program = "$work/bin/clarity-testmodel"
max_in_flight = 2
timeout_secs = 60
version = "testmodel"

[normalization]
mode = "choices"
choices = ["normal", "nodule"]

[axes]
"gaussian_blur.sigma" = [0, 1, 2]
"brightness.factor" = [0.5, 1.5]
TOML

# run DIR [limit-kb]: the sweep in DIR (its own output and cache), in the background; PID in $!.
start_run() {
  local dir="$1" fsize="${2:-}"
  mkdir -p "$dir"
  (
    cd "$dir"
    export CLARITY_CACHE_DIR="$dir/cache" NO_COLOR=1
    unset RUST_LOG
    if [ -n "$fsize" ]; then
      trap '' XFSZ
      ulimit -f "$fsize"
    fi
    exec "$work/bin/clarity" run "$work/sweep.toml" -o "$dir/out" -q -j 2
  ) >"$dir/last.log" 2>&1 &
}

# A canonical listing of what must be identical: path, then bytes (sha256).
digest() {
  local dir="$1"
  (
    cd "$dir"
    find out cache -type f ! -name telemetry.json ! -name .clarity.lock ! -name journal.jsonl \
      ! -name '.*.tmp-*' -print0 | sort -z | xargs -0 sha256sum
    # A sealed sweep has no journal (observations.parquet holds the records); an unsealed
    # one's is compared as a sorted list of lines (its order is completion order).
    if [ -e out/journal.jsonl ]; then
      echo "journal (sorted): $(sort out/journal.jsonl | sha256sum)"
    else
      echo "journal: removed once sealed"
    fi
  )
}

ms_now() { date +%s%3N; }

base="$work/base"
t0=$(ms_now)
start_run "$base"
wait $! || { echo "soak.sh: the uninterrupted run failed:" >&2; cat "$base/last.log" >&2; exit 1; }
base_ms=$(( $(ms_now) - t0 ))
digest "$base" >"$work/base.digest"
echo "soak: uninterrupted run ${base_ms} ms, $(grep -c . "$work/base.digest") files compared; $n interruptions, seed $seed"

RANDOM=$seed
identical=0
declare -A kinds=([kill9]=0 [sigterm]=0 [diskfull]=0)
declare -A interrupted=([kill9]=0 [sigterm]=0 [diskfull]=0)
fail=0
leftover=0
leftover_out=0
for ((i = 1; i <= n; i++)); do
  dir="$work/it"
  rm -rf "$dir"
  r=$((RANDOM % 3))
  delay=$(( (RANDOM * 32768 + RANDOM) % (base_ms * 3 / 2 + 1) ))
  fsize=$(( RANDOM % 64 + 1 ))
  case $r in
    0) kind=kill9 ;;
    1) kind=sigterm ;;
    2) kind=diskfull ;;
  esac
  kinds[$kind]=$(( kinds[$kind] + 1 ))
  if [ "$kind" = diskfull ]; then
    start_run "$dir" "$fsize"
    pid=$!
    rc=0; wait "$pid" 2>/dev/null || rc=$?
    what="ulimit -f ${fsize}"
  else
    start_run "$dir"
    pid=$!
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    if [ "$kind" = kill9 ]; then kill -KILL "$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
    rc=0; wait "$pid" 2>/dev/null || rc=$?
    what="$kind after ${delay} ms"
  fi
  [ "$rc" != 0 ] && interrupted[$kind]=$(( interrupted[$kind] + 1 ))
  # Resume: the same command, no limits, must finish.
  start_run "$dir"
  rrc=0; wait $! || rrc=$?
  if [ "$rrc" != 0 ]; then
    echo "soak: iteration $i ($what, first exit $rc): the resume exited $rrc:" >&2
    tail -5 "$dir/last.log" >&2
    fail=$((fail + 1))
    continue
  fi
  left=$(find "$dir/out" "$dir/cache" -name '.*.tmp-*' | wc -l)
  leftover_out=$(( leftover_out + $(find "$dir/out" -name '.*.tmp-*' | wc -l) ))
  leftover=$(( leftover + left ))
  if digest "$dir" | cmp -s - "$work/base.digest"; then
    identical=$((identical + 1))
  else
    echo "soak: iteration $i ($what, first exit $rc): artifacts differ:" >&2
    digest "$dir" | diff - "$work/base.digest" >&2 || true
    fail=$((fail + 1))
    if [ "$keep" = 1 ]; then mv "$dir" "$work/diverged-$i"; fi
  fi
done
echo "soak: $n tried, $identical identical after resume, $fail not" \
  "(kill -9: ${kinds[kill9]}, of which ${interrupted[kill9]} interrupted the run;" \
  "SIGTERM: ${kinds[sigterm]}/${interrupted[sigterm]}; disk full: ${kinds[diskfull]}/${interrupted[diskfull]})"
echo "soak: leftover hidden temporaries after resume: $leftover ($leftover_out of them in output dirs)"
[ "$fail" = 0 ]
