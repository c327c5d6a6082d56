#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (libFuzzer), each for a fixed time, growing the
# committed corpora in fuzz/corpus/TARGET. Not part of CI: a developer runs it.
#
#   scripts/fuzz.sh                      # smoke: every target 30 s
#   scripts/fuzz.sh --minutes 10         # the long run (docs/reliability.md)
#   scripts/fuzz.sh --seconds 60 config journal
#   scripts/fuzz.sh --cmin               # minimise the corpora in place (after a long run)
#
# Options: --seconds N | --minutes N, --jobs N (targets at once, default 2), --cmin.
# Builds with the nightly toolchain into $FUZZ_TARGET_DIR (default /work/target-fuzz if /work
# exists, else fuzz/target): instrumented builds differ from normal ones. Installs cargo-fuzz
# from crates.io when missing. Crashes land in fuzz/artifacts/TARGET/, logs in fuzz/logs/.
#
# Sanitizer: none. The workspace forbids `unsafe`, so AddressSanitizer would only watch the
# dependencies' unsafe code at 2-3x the cost; libFuzzer still catches panics, overflows
# (debug assertions on), timeouts and memory exhaustion (-rss_limit_mb, -malloc_limit_mb).
# Set FUZZ_SANITIZER=address for an ASan build.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=30
jobs=2
cmin=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --minutes) seconds=$(( $2 * 60 )); shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --cmin) cmin=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(config image_decode r2l_manifest r2l_trace journal serve_request)
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: SKIPPED: the nightly toolchain is not installed (rustup toolchain install nightly)" >&2
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked
fi
if [ -z "${FUZZ_TARGET_DIR:-}" ]; then
  if [ -d /work ] && [ -w /work ]; then FUZZ_TARGET_DIR=/work/target-fuzz; else FUZZ_TARGET_DIR=$PWD/target; fi
fi
export CARGO_TARGET_DIR="$FUZZ_TARGET_DIR"
flags=(-O -a -s "${FUZZ_SANITIZER:-none}")
nice -n 19 cargo +nightly fuzz build "${flags[@]}"

# Inputs up to 64 KiB (images and requests need room); 2 GiB of RSS is a finding.
libfuzzer_args=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=20 -max_len=65536 -print_final_stats=1)
mkdir -p logs
run_one() {
  local t="$1"
  mkdir -p "corpus/$t" "artifacts/$t"
  if [ "$cmin" = 1 ]; then
    nice -n 19 cargo +nightly fuzz cmin "${flags[@]}" "$t" "corpus/$t" -- -max_len=65536 >"logs/$t.cmin.log" 2>&1
    echo "$t: corpus minimised to $(ls "corpus/$t" | wc -l) files"
    return
  fi
  local start=$SECONDS
  if nice -n 19 cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" -- \
      "${libfuzzer_args[@]}" -max_total_time="$seconds" -artifact_prefix="artifacts/$t/" \
      >"logs/$t.log" 2>&1; then
    status=ok
  else
    status="FINDING (see fuzz/logs/$t.log and fuzz/artifacts/$t/)"
  fi
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  echo "$t: $status; $runs executions in $((SECONDS - start)) s; corpus $(ls "corpus/$t" | wc -l) files"
}

failed=0
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
if grep -l 'ERROR: libFuzzer\|panicked at\|deadly signal' logs/*.log >/dev/null 2>&1 && [ "$cmin" = 0 ]; then
  echo "fuzz.sh: findings in: $(grep -l 'ERROR: libFuzzer\|panicked at\|deadly signal' logs/*.log | tr '\n' ' ')" >&2
  exit 1
fi
exit "$failed"
