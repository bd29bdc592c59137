#!/usr/bin/env bash
# Scores one `adapt` setting on the validation set of scripts/adapt-validation.sh
# (docs/measured/adapt.md): MODEL's config.json with RECORD merged into its `adapt` record,
# `bltpatch eval --json` per file, then one line: NAME, the mean bits/byte of the text files,
# of the moved scripts (shift_*), random.bin's, and RECORD.
#
# Usage: scripts/adapt-grid.sh VAL_DIR NAME RECORD [MODEL_DIR]
#   RECORD is JSON, e.g. '{"memory": 96}' ('{}' scores MODEL_DIR as it is); its keys must be
#   fields of the embedded default's record (checkpoints/default/config.json), so that a typo
#   cannot silently score the base setting. MODEL_DIR defaults to checkpoints/default;
#   BLTPATCH names the binary (default: bltpatch on PATH; it must know every field).
set -euo pipefail
val=${1:?usage: scripts/adapt-grid.sh VAL_DIR NAME RECORD [MODEL_DIR]}
name=${2:?name}
record=${3:?record}
repo=$(cd "$(dirname "$0")/.." && pwd)
model=${4:-$repo/checkpoints/default}
bin=${BLTPATCH:-bltpatch}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ln -s "$(realpath "$model/model.safetensors")" "$dir/model.safetensors"
python3 - "$model/config.json" "$record" "$dir/config.json" "$repo/checkpoints/default/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
change = json.loads(sys.argv[2])
known = set(json.load(open(sys.argv[4]))["adapt"])
unknown = sorted(set(change) - known)
if unknown:
    sys.exit(f"adapt-grid: unknown adapt fields {unknown} (known: {sorted(known)})")
merged = {**(c.get("adapt") or {}), **change}
if merged:
    c["adapt"] = merged
json.dump(c, open(sys.argv[3], "w"), indent=2)
PY
: > "$dir/bits.tsv"
for f in "$val"/*; do
    bits=$("$bin" eval --json -m "$dir" "$f" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["bits_per_byte"])')
    printf '%s\t%s\n' "${f##*/}" "$bits" >> "$dir/bits.tsv"
done
python3 - "$name" "$record" "$dir/bits.tsv" <<'PY'
import sys
name, record, path = sys.argv[1:]
b = {k: float(v) for k, v in (line.rstrip("\n").split("\t") for line in open(path))}
moved = [k for k in b if k.startswith("shift_")]
text = [k for k in b if k not in moved and k != "random.bin"]
mean = lambda ks: f"{sum(b[k] for k in ks) / len(ks):.5f}" if ks else "-"
r = f"{b['random.bin']:.5f}" if "random.bin" in b else "-"
print(f"{name}\t{mean(text)}\t{mean(moved)}\t{r}\t{record}")
PY
