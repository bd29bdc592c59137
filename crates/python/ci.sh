#!/usr/bin/env bash
# The Python package's CI: a fresh virtual environment, the test dependencies from PyPI, the
# crate's formatting and lints, `pip install ./crates/python` (maturin, as a user installs it),
# a release `bltpatch` binary to compare with, and pytest.
#
# torch and transformers are not installed (the PyPI torch wheel brings about 3 GB of CUDA
# libraries): tests/test_hf.py skips without them; run it by hand after `pip install torch
# transformers` (README.md, "transformers' BltModel").
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/bltpatch-target), BLTPATCH_CI_VENV (the
# virtual environment, recreated on every run; default ~/.cache/bltpatch-py/ci-venv), PYTHON
# (default python3). PIP_NO_CACHE_DIR=1 makes a cold run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bltpatch-target}"
export CARGO_TERM_COLOR=never
venv="${BLTPATCH_CI_VENV:-$HOME/.cache/bltpatch-py/ci-venv}"
start=$(date +%s)
step() { echo "== [$(($(date +%s) - start)) s] $*"; }

step "virtual environment $venv"
"${PYTHON:-python3}" -m venv --clear "$venv"
py="$venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.9.4,<2" "numpy>=1.21" "pytest>=7" "ray[data]>=2.40" "datasets>=3"

step "rustfmt and clippy (crates/python)"
export PYO3_PYTHON="$py"
cargo fmt --manifest-path "$here/Cargo.toml" --check
cargo clippy --locked --manifest-path "$here/Cargo.toml" --all-targets -- -D warnings

step "pip install ./crates/python"
"$py" -m pip install --quiet --disable-pip-version-check "$here"

step "bltpatch binary (release, no trainer) for the comparisons"
(cd "$repo" && cargo build --locked --release -p bltpatch-cli --bin bltpatch --no-default-features)
export BLTPATCH_CLI="$CARGO_TARGET_DIR/release/bltpatch"

step "pytest"
cd "$here"
"$py" -m pytest tests -p no:cacheprovider -q -rs

step "type stubs match the module (mypy.stubtest)"
"$py" -m pip install --quiet --disable-pip-version-check "mypy>=1.18"
(cd /tmp && "$py" -m mypy.stubtest bltpatch --ignore-missing-stub)
step "done"
