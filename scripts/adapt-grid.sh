#!/usr/bin/env bash
# Scores one `adapt` setting on the validation set of scripts/adapt-validation.sh
# (docs/measured/adapt.md): MODEL's config.json with RECORD merged into its `adapt` record,
# `bltpatch eval --json` per file, then one line: NAME, the mean bits/byte of the text files,
# of the moved scripts (shift_*), random.bin's, and RECORD.
#
# Usage: scripts/adapt-grid.sh VAL_DIR NAME RECORD [MODEL_DIR]
#   RECORD is JSON, e.g. '{"memory": 96}' ('{}' scores MODEL_DIR as it is);
#   MODEL_DIR defaults to checkpoints/default; BLTPATCH names the binary (default: bltpatch).
set -euo pipefail
val=${1:?usage: scripts/adapt-grid.sh VAL_DIR NAME RECORD [MODEL_DIR]}
name=${2:?name}
record=${3:?record}
model=${4:-$(dirname "$0")/../checkpoints/default}
bin=${BLTPATCH:-bltpatch}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ln -s "$(realpath "$model/model.safetensors")" "$dir/model.safetensors"
python3 - "$model/config.json" "$record" "$dir/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["adapt"] = {**(c.get("adapt") or {}), **json.loads(sys.argv[2])}
json.dump(c, open(sys.argv[3], "w"), indent=2)
PY
for f in "$val"/*; do
    printf '%s\t' "${f##*/}"
    "$bin" eval --json -m "$dir" "$f" | python3 -c 'import json, sys; print(json.load(sys.stdin)["bits_per_byte"])'
done | python3 -c '
import sys
name, record = sys.argv[1:]
b = {k: float(v) for k, v in (line.split("\t") for line in sys.stdin)}
moved = [k for k in b if k.startswith("shift_")]
text = [k for k in b if k not in moved and k != "random.bin"]
mean = lambda ks: sum(b[k] for k in ks) / len(ks)
r = b["random.bin"]
print(f"{name}\t{mean(text):.5f}\t{mean(moved):.4f}\t{r:.5f}\t{record}")
' "$name" "$record"
