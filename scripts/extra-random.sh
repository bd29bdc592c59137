#!/usr/bin/env bash
# Writes the two files of pseudo-random bytes that the default model trains on beside the broad
# set (docs/measured/remedy-random.md, remedy-classes.md): extra_random.bin and
# extra_random2.bin in DIR, 8,000,000 bytes each, the SHA-256 digests of
# `bltpatch-extra-random-<i>` (resp. `bltpatch-extra-random2-<i>`) for i = 0..249999 in order.
# Usage: scripts/extra-random.sh DIR
set -euo pipefail
dir=${1:?usage: scripts/extra-random.sh DIR}
mkdir -p "$dir"
python3 - "$dir" <<'PY'
import hashlib, sys
for name, label in (("extra_random.bin", b"bltpatch-extra-random-"),
                    ("extra_random2.bin", b"bltpatch-extra-random2-")):
    with open(f"{sys.argv[1]}/{name}", "wb") as f:
        for i in range(250000):
            f.write(hashlib.sha256(label + str(i).encode()).digest())
PY
sha256sum "$dir"/extra_random.bin "$dir"/extra_random2.bin
