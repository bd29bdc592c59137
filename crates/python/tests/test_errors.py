"""Bad input raises a Python exception and never takes the interpreter down."""

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

import bltpatch
from conftest import REPO

DEFAULT_CHECKPOINT = REPO / "checkpoints" / "default"


def test_missing_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bltpatch.Model.load(tmp_path / "no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        bltpatch.Model.load(tmp_path / "empty")


def test_corrupt_checkpoint_is_a_bltpatch_error(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(DEFAULT_CHECKPOINT, broken)
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(bltpatch.BltpatchError, match="config"):
        bltpatch.Model.load(broken)
    truncated = tmp_path / "truncated"
    shutil.copytree(DEFAULT_CHECKPOINT, truncated)
    weights = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(bltpatch.BltpatchError):
        bltpatch.Model.load(truncated)
    config = json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())
    config["format_version"] = 999
    future = tmp_path / "future"
    shutil.copytree(DEFAULT_CHECKPOINT, future)
    (future / "config.json").write_text(json.dumps(config))
    with pytest.raises(bltpatch.BltpatchError, match="version"):
        bltpatch.Model.load(future)


def test_a_loaded_checkpoint_segments_like_the_embedded_one(model, tmp_path):
    loaded = bltpatch.Model.load(str(DEFAULT_CHECKPOINT))
    assert loaded.path == str(DEFAULT_CHECKPOINT)
    text = (REPO / "datasets" / "tiny.txt").read_bytes()[:20000]
    assert (loaded.segment(text) == model.segment(text)).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"threshold": -1.0}, "invalid threshold"),
        ({"relative_threshold": float("nan")}, "invalid relative threshold"),
        ({"rule": "budget", "budget": -2.0}, "invalid budget"),
        ({"rule": "global", "budget": 3.0}, "budget applies to the budget rule only"),
        ({"rule": "budget", "threshold": 2.0}, "threshold does not apply"),
        ({"rule": "bpe", "max_patch_len": 4}, "max_patch_len does not apply"),
        ({"budget": 6.0, "target_patch_size": 4.0}, "give one or the other"),
        ({"target_patch_size": 0.5}, "invalid target patch size"),
        ({"max_patch_len": 0}, "max patch length 0"),
        ({"max_patch_len": -3}, "invalid max_patch_len -3"),
        ({"threshold": 1e300}, "invalid threshold"),
        ({"rule": "nonsense"}, "unknown rule"),
    ],
)
def test_bad_rule_parameters_raise_bltpatch_error(model, kwargs, match):
    for call in (
        lambda: model.segment(b"some bytes", **kwargs),
        lambda: model.segment_batch([b"some bytes"], **kwargs),
        lambda: model.decoder(**kwargs),
    ):
        with pytest.raises(bltpatch.BltpatchError, match=match):
            call()
    assert issubclass(bltpatch.BltpatchError, ValueError)


@pytest.mark.parametrize("bad", [1, 2.5, None, ["a list"], {"a": 1}, object(), [b"ok", 3]])
def test_non_bytes_arguments_raise_type_error(model, bad):
    with pytest.raises(TypeError):
        model.segment(bad)
    with pytest.raises(TypeError):
        model.entropies(bad)
    with pytest.raises(TypeError):
        model.segment_batch([b"fine", bad])
    with pytest.raises(TypeError):
        model.decoder().push_bytes(bad)


def test_a_single_document_is_not_a_batch(model):
    for single in (b"bytes", "str", bytearray(b"bytearray")):
        with pytest.raises(TypeError, match="wrap it in a list"):
            model.segment_batch(single)
    with pytest.raises(TypeError):
        model.segment_batch(42)


def test_bad_text_and_values(model):
    with pytest.raises(UnicodeEncodeError):
        model.segment("lone surrogate \ud800")
    with pytest.raises(OverflowError):
        model.decoder().push(256)
    with pytest.raises(bltpatch.BltpatchError, match="unknown layout"):
        model.segment_batch([b"x"], layout="torch")
    with pytest.raises(bltpatch.BltpatchError, match="no byte-by-byte decoder"):
        model.decoder(rule="bpe")
    with pytest.raises(bltpatch.BltpatchError, match="calibrate first"):
        model.decoder(target_patch_size=4.0)
    with pytest.raises(bltpatch.BltpatchError, match="empty text"):
        model.calibrate([b"", b""], 4.0)
    with pytest.raises(bltpatch.BltpatchError, match="no parameter to calibrate"):
        model.calibrate(b"some text", 4.0, rule="static")


def test_a_document_of_4_gib_raises_instead_of_panicking(model):
    # bytes(n) is zero pages from calloc: nothing is touched, and the check comes before work.
    huge = bytes(1 << 32)
    with pytest.raises(bltpatch.BltpatchError, match="batch layout holds documents of at most"):
        model.segment_batch([b"small", huge])
    with pytest.raises(bltpatch.BltpatchError):
        model.segment_batch([huge], layout="hf")


def test_bad_input_never_aborts_the_interpreter():
    """Every bad call in a fresh interpreter, which must reach its last line and exit 0."""
    script = """
import bltpatch
m = bltpatch.Model.default()
calls = [
    lambda: bltpatch.Model.load("/no/such/dir"),
    lambda: m.segment(b"x", threshold=-1.0),
    lambda: m.segment(b"x", rule="global", budget=2.0),
    lambda: m.segment(12),
    lambda: m.segment_batch([b"x", None]),
    lambda: m.decoder(rule="bpe"),
    lambda: m.decoder().push(-1),
    lambda: m.calibrate([], 4.0),
]
for call in calls:
    try:
        call()
    except Exception as e:
        print(type(e).__name__)
    else:
        raise SystemExit("no exception")
print("survived")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[-1] == "survived" and len(lines) == 9
    assert "panicked" not in out.stderr
