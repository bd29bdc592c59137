#!/usr/bin/env bash
# Builds the training mix of the default model from the reference corpora: the first
# BYTES_PER_FILE bytes (cut back to a line end) of each corpus file, one output file each, so
# that `bltpatch train` holds out the end of every one of them for validation.
# Usage: scripts/default-mix.sh CORPORA_DIR BYTES_PER_FILE OUT_DIR
set -euo pipefail
dir=$1 per=$2 out=$3
mkdir -p "$out"
for f in en_books en_docs de_docs fr_docs ru_docs zh_docs code_rust structured; do
    head -c "$per" "$dir/$f.txt" | sed '$d' > "$out/$f.txt"
done
