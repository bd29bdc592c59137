"""`Model.surprisals`: the adapting next-byte surprisals, the bits/byte of `bltpatch eval`."""

import json
import math
import subprocess

import numpy as np
import pytest

import bltpatch
from conftest import DATASETS, REPO

HELDOUT = REPO / "datasets" / "heldout"
FILES = DATASETS + [HELDOUT / n for n in ("ja_docs.txt", "ka_ui.txt", "random.bin")]


def cli_bits_per_byte(cli, path, *flags) -> float:
    out = subprocess.run(
        [str(cli), "eval", "--json", *flags, str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.splitlines()[0])["bits_per_byte"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_bits_per_byte_equal_cli_eval(model, cli, path):
    data = path.read_bytes()
    s = model.surprisals(data)
    assert s.dtype == np.float32 and s.shape == (len(data),)
    assert np.all(np.isfinite(s)) and np.all(s >= 0)
    # The same sum, in the same order, as `bltpatch eval`: the same double.
    nats = 0.0
    for v in s.tolist():
        nats += v
    assert nats / math.log(2) / len(data) == cli_bits_per_byte(cli, path)


def test_a_checkpoint_without_adaptation_scores_its_model_alone(cli, tmp_path):
    # The default's config with its `adapt` record removed: the next-byte head alone.
    src = REPO / "checkpoints" / "default"
    config = json.loads((src / "config.json").read_text())
    del config["adapt"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").symlink_to(src / "model.safetensors")
    alone = bltpatch.Model.load(str(tmp_path))
    data = (HELDOUT / "ka_ui.txt").read_bytes()
    s = alone.surprisals(data)
    bits = float(s.astype(np.float64).sum()) / math.log(2) / len(data)
    assert bits == pytest.approx(cli_bits_per_byte(cli, HELDOUT / "ka_ui.txt", "-m", str(tmp_path)), rel=1e-12)
    # Georgian is absent from training: the adaptation learns it within the document.
    adapted = bltpatch.Model.default().surprisals(data)
    assert adapted.sum() < 0.5 * s.sum()
    # Entropies, and so boundaries, are the same with and without it.
    np.testing.assert_array_equal(alone.entropies(data), bltpatch.Model.default().entropies(data))


def test_thread_count_and_input_type_do_not_change_surprisals(model):
    # Several 64 KiB chunks, each scored with its own warm-up of the adaptation's context.
    data = b"".join(p.read_bytes() for p in DATASETS)
    try:
        bltpatch.set_num_threads(1)
        one = model.surprisals(data)
        bltpatch.set_num_threads(3)
        three = model.surprisals(bytearray(data))
    finally:
        bltpatch.set_num_threads(0)
    np.testing.assert_array_equal(one, three)
    np.testing.assert_array_equal(model.surprisals(data.decode("utf-8")), one)
    assert model.surprisals(b"").shape == (0,)
