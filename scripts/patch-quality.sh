#!/usr/bin/env bash
# The README's patch-quality table: how evenly patches carry information on the held-out tail
# of each reference corpus, every scheme at the mean length of cl100k BPE tokens on that file,
# information measured by an independent reference model.
#
# Usage: scripts/patch-quality.sh [-m MODEL_DIR] REFERENCE_DIR TAIL_FILE...
#
#   REFERENCE_DIR  a checkpoint other than the patching model, e.g. an order-4 n-gram trained on
#                  the same corpora with the same held-out tails:
#                    bltpatch train --arch ngram --order 4 --val-fraction 0.05 \
#                        ../shared/corpora/{en_books,en_docs,de_docs,fr_docs,ru_docs,zh_docs,code_rust,structured}.txt \
#                        -o /tmp/ref-ngram4
#   TAIL_FILE      held-out text (scripts/heldout-tails.sh writes the trainer's tails).
#   -m MODEL_DIR   the patching model (default: the embedded one).
#   BLTPATCH       the binary to run (default: bltpatch on PATH, else target/release/bltpatch).
#
# Prints one markdown row per file and scheme: information-per-patch CV and the share of
# patches under 2 bits, for BPE, static, space and the global, relative and budget rules (each
# calibrated on the file to BPE's mean: `bltpatch eval --at-bpe-mean`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${BLTPATCH:-$(command -v bltpatch || echo "$here/target/release/bltpatch")}
model=()
if [[ ${1:-} == -m ]]; then
    model=(-m "$2")
    shift 2
fi
ref=${1:?usage: scripts/patch-quality.sh [-m MODEL_DIR] REFERENCE_DIR TAIL_FILE...}
shift
cell='"\(.patch_information_cv*1000|round/1000) / \(.share_under_2_bits*1000|round/10)%"'
echo "| file | mean (bytes) | cl100k BPE | static | space | global | relative | budget |"
echo "|---|---|---|---|---|---|---|---|"
for f in "$@"; do
    row=()
    for rule in global relative budget; do
        json=$("$bin" eval "${model[@]}" --json --at-bpe-mean --rule "$rule" --reference-model "$ref" "$f")
        if [[ $rule == global ]]; then
            mean=$(jq -r '.bpe.mean_patch_len*100|round/100' <<<"$json")
            for b in bpe static space; do
                row+=("$(jq -r ".$b | $cell" <<<"$json")")
            done
        fi
        row+=("$(jq -r ". | $cell" <<<"$json")")
    done
    name=$(basename "$f")
    printf '| %s | %s |' "${name%%.*}" "$mean"
    printf ' %s |' "${row[@]}"
    echo
done
