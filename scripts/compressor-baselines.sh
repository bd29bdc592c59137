#!/usr/bin/env bash
# Prints one markdown table row per FILE: name, bytes, and bits per byte of `gzip -9` and `xz -9`
# (each file compressed alone; bpb = 8 * compressed bytes / bytes).
#
# Usage: scripts/compressor-baselines.sh FILE...     (prints the header row first)
set -euo pipefail
export LC_ALL=C
(($#)) || { echo "usage: $0 FILE..." >&2; exit 2; }
echo '| file | bytes | gzip -9 bpb | xz -9 bpb |'
echo '|---|---:|---:|---:|'
for f in "$@"; do
    n=$(wc -c < "$f")
    ((n > 0)) || { echo "compressor-baselines: $f is empty" >&2; exit 1; }
    g=$(gzip -9 -c -- "$f" | wc -c)
    x=$(xz -9 -c -- "$f" | wc -c)
    awk -v f="${f##*/}" -v n="$n" -v g="$g" -v x="$x" \
        'BEGIN { printf "| %s | %d | %.2f | %.2f |\n", f, n, 8 * g / n, 8 * x / n }'
done
