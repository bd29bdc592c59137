#!/usr/bin/env bash
# The validation set on which the embedded default's `adapt` parameters were chosen
# (docs/measured/adapt.md). It never touches the held-out evaluation sources
# (scripts/rebuild-heldout.sh, SPEC §7 packages): it is cut from the last 5% of training files
# of the broad corpus, which the model did not train on (`--val-fraction 0.05`):
#   - the first 100,000 bytes of 12 of those tails (code, data, markup, scripts, prose);
#   - three "unseen scripts": Russian, Thai and Hindi tails with their letters moved to Unicode
#     blocks no training file uses (Cyrillic -> Yi, Thai -> Canadian syllabics, Devanagari ->
#     Mongolian), so the bytes are new to the model while the text keeps natural statistics;
#   - 200,000 pseudo-random bytes (Python's random, seed 7).
#
# Usage: scripts/adapt-validation.sh OUT_DIR [BROAD_DIR]
#   BROAD_DIR defaults to ~/.cache/bltpatch-corpora/broad (scripts/rebuild-broad-corpus.sh).
set -euo pipefail
out=${1:?usage: scripts/adapt-validation.sh OUT_DIR [BROAD_DIR]}
broad=${2:-$HOME/.cache/bltpatch-corpora/broad}
mkdir -p "$out"
tail5() { tail -c $(($(stat -c %s "$1") / 20)) "$1"; }
for n in code_go code_haskell data_logs data_json markup_html markup_roff lang_th lang_ko lang_he \
    lang_ta en_books zh_docs; do
    f=$broad/$n.txt
    [[ -f $f ]] || f=$(dirname "$0")/../../shared/corpora/$n.txt
    tail5 "$f" > "$out/$n.txt.tmp"
    head -c 100000 "$out/$n.txt.tmp" > "$out/$n.txt"
    rm "$out/$n.txt.tmp"
done
shift_script() { # SRC DST LO HI TO: code points [LO, HI) moved to TO.., first 60,000 characters
    tail5 "$1" | python3 -c '
import sys
lo, hi, to = (int(a, 16) for a in sys.argv[1:4])
t = sys.stdin.buffer.read().decode("utf-8", "replace")[:60000]
sys.stdout.write("".join(chr(ord(c) - lo + to) if lo <= ord(c) < hi else c for c in t))
' "$3" "$4" "$5" > "$2"
}
shift_script "$broad/lang_ru.txt" "$out/shift_cyr_yi.txt" 400 500 A400
shift_script "$broad/lang_th.txt" "$out/shift_thai_cans.txt" E00 E80 1400
shift_script "$broad/lang_hi.txt" "$out/shift_deva_mong.txt" 900 980 1800
python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(7).randbytes(200000))' \
    > "$out/random.bin"
ls -l "$out"
