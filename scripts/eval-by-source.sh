#!/usr/bin/env bash
# The README's per-source table: bits per byte of entropy models on held-out sources, next to
# `gzip -9` and `xz -9` of the same bytes (each file compressed alone).
#
# Usage: scripts/eval-by-source.sh [-m MODEL_DIR]... NGRAM_DIR FILE...
#   -m MODEL_DIR  a model to score (repeatable; without any, the embedded default model)
#   NGRAM_DIR     the n-gram baseline, trained on the same data as the model
#   FILE          held-out text (scripts/rebuild-heldout.sh writes one file per source)
#   BLTPATCH      the binary (default: bltpatch on PATH, else target/release/bltpatch)
#
# One markdown row per file: name, bytes, each model's bits/byte, the n-gram's, gzip's, xz's.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${BLTPATCH:-$(command -v bltpatch || echo "$here/target/release/bltpatch")}
models=()
while [[ ${1:-} == -m ]]; do
    models+=("$2")
    shift 2
done
ngram=${1:?usage: scripts/eval-by-source.sh [-m MODEL_DIR]... NGRAM_DIR FILE...}
shift
header="| source | bytes |"
if ((${#models[@]} == 0)); then
    header+=" default model |"
else
    for m in "${models[@]}"; do header+=" ${m##*/} |"; done
fi
echo "$header n-gram baseline | gzip -9 | xz -9 |"
echo "|---|---:|$(printf '%.0s---:|' $(seq 1 $((${#models[@]} > 0 ? ${#models[@]} : 1))))---:|---:|---:|"
bpb() { "$bin" eval --json "$@" | jq -r '.bits_per_byte*1000|round/1000'; }
for f in "$@"; do
    n=$(wc -c < "$f")
    row="| ${f##*/} | $n |"
    if ((${#models[@]} == 0)); then
        row+=" $(bpb "$f") |"
    else
        for m in "${models[@]}"; do row+=" $(bpb -m "$m" "$f") |"; done
    fi
    row+=" $(bpb -m "$ngram" --rule static --target-patch-size 4 "$f") |"
    g=$(gzip -9 -c -- "$f" | wc -c)
    x=$(xz -9 -c -- "$f" | wc -c)
    row+=$(awk -v n="$n" -v g="$g" -v x="$x" 'BEGIN { printf " %.3f | %.3f |", 8 * g / n, 8 * x / n }')
    echo "$row"
done
