#!/bin/sh
# A stand-in model for `examples/command.toml`: a POSIX shell program that speaks Clarity's
# R2L artifact contract (docs/adapters.md, "command"), so the example runs with nothing but
# the `clarity` binary. Replace it with your own program.
#
#   command-model.sh --config spec.json --output DIR --seed N [--adapter NAME]
#
# The "model" reads the perturbed PNG's size: the bits per pixel of its PNG compression
# measure how much detail it holds. It answers `nodule` when there is much detail
# (bits per pixel above THRESHOLD) and `normal` otherwise, so strong blur flips the answer;
# p(nodule) = 1 / (1 + exp(-(bpp - THRESHOLD) / SCALE)). Deterministic: the same image
# gives the same answer, and the manifest has a fixed timestamp.
set -eu

THRESHOLD=${THRESHOLD:-4.5}
SCALE=${SCALE:-0.3}

config='' output='' seed=''
while [ $# -gt 0 ]; do
    case "$1" in
        --config) config=$2; shift 2 ;;
        --output) output=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --adapter) shift 2 ;;
        *) echo "command-model.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$config" ] || [ -z "$output" ] || [ -z "$seed" ]; then
    echo "usage: command-model.sh --config spec.json --output DIR --seed N" >&2
    exit 2
fi

# spec.json is written by Clarity (one key per line); image_path is a plain path.
image=$(sed -n 's/.*"image_path": *"\([^"]*\)".*/\1/p' "$config" | head -n 1)
if [ ! -f "$image" ]; then
    echo "command-model.sh: no readable image_path in $config" >&2
    exit 3
fi
bytes=$(wc -c < "$image")
# PNG: width and height are the big-endian 32-bit integers at byte 16 and 20.
# shellcheck disable=SC2046
set -- $(od -An -tu1 -j16 -N8 "$image")
width=$(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 ))
height=$(( ($5 << 24) | ($6 << 16) | ($7 << 8) | $8 ))

mkdir -p "$output"
awk -v bytes="$bytes" -v w="$width" -v h="$height" -v t="$THRESHOLD" -v s="$SCALE" \
    -v seed="$seed" -v out="$output" 'BEGIN {
    bpp = bytes * 8 / (w * h)
    p = 1 / (1 + exp(-(bpp - t) / s))
    answer = (p >= 0.5) ? "nodule" : "normal"
    conf = (p >= 0.5) ? p : 1 - p
    q = 1 - p
    entropy = 0
    if (p > 0) entropy -= p * log(p)
    if (q > 0) entropy -= q * log(q)
    trace = out "/trace_pack.jsonl"
    printf "{\"step\": 1, \"event\": \"inference_start\", \"model_id\": \"command-model.sh\"}\n" > trace
    printf "{\"step\": 2, \"event\": \"inference_complete\", \"output\": \"%s\", \"justification\": \"%.3f bits per pixel (%d bytes, %dx%d)\", \"confidence_score\": %.6f, \"rich_summary\": {\"output_entropy\": %.6f}}\n", answer, bpp, bytes, w, h, conf, entropy > trace
    manifest = out "/manifest.json"
    printf "{\"run_id\": \"command-model-seed-%d\", \"timestamp\": \"1970-01-01T00:00:00Z\", \"seed\": %d, \"artifacts\": [\"manifest.json\", \"trace_pack.jsonl\"]}\n", seed, seed > manifest
    print answer
}'
