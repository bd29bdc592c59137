#!/usr/bin/env bash
# Writes the held-out tail of each reference corpus: the part that `bltpatch train` (both
# architectures) holds out with `--val-fraction F` (default 0.05): the last floor(len * F) bytes
# of each file, cut at exactly the byte where the trainer cuts (it may fall inside a line or a
# UTF-8 character). The default model, the reference n-gram model and the latent-transformer
# experiment never train on these bytes.
#
# Usage: scripts/heldout-tails.sh OUT_DIR [CORPORA_DIR] [F]
#   CORPORA_DIR defaults to ../shared/corpora beside the repository; F to 0.05.
set -euo pipefail
out=${1:?usage: scripts/heldout-tails.sh OUT_DIR [CORPORA_DIR] [F]}
here=$(cd "$(dirname "$0")/.." && pwd)
corpora=${2:-$here/../shared/corpora}
frac=${3:-0.05}
mkdir -p "$out"
for name in en_books en_docs de_docs fr_docs ru_docs zh_docs code_rust structured; do
    f="$corpora/$name.txt"
    len=$(stat -c %s "$f")
    tail_len=$(python3 -c "import math,sys; print(math.floor($len * $frac))")
    tail -c "$tail_len" "$f" > "$out/$name.tail.txt"
    echo "$name: $tail_len of $len bytes -> $out/$name.tail.txt"
done
