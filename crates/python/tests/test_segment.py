"""Segmentation equals the command line's, for every rule; the decoder equals segmentation."""

import mmap

import numpy as np
import pytest

from conftest import DATASETS, cli_lengths, starts_of

# (Python keyword arguments, the same rule as `bltpatch segment` flags)
RULES = [
    ({}, []),
    ({"rule": "global", "threshold": 3.0}, ["--rule", "global", "--threshold", "3.0"]),
    ({"relative_threshold": 1.0}, ["--relative-threshold", "1.0"]),
    ({"threshold": 2.0, "relative_threshold": 0.5}, ["--threshold", "2.0", "--relative-threshold", "0.5"]),
    ({"rule": "budget", "budget": 8.0}, ["--rule", "budget", "--budget", "8.0"]),
    ({"budget": 8.0, "max_patch_len": 6}, ["--budget", "8.0", "--max-patch-len", "6"]),
    ({"max_patch_len": 8}, ["--max-patch-len", "8"]),
    ({"rule": "budget", "target_patch_size": 5.0}, ["--rule", "budget", "--target-patch-size", "5.0"]),
    ({"target_patch_size": 6.0}, ["--target-patch-size", "6.0"]),
    ({"rule": "static", "target_patch_size": 4.5}, ["--rule", "static", "--target-patch-size", "4.5"]),
    ({"rule": "space"}, ["--rule", "space"]),
    ({"rule": "space", "max_patch_len": 12}, ["--rule", "space", "--max-patch-len", "12"]),
    ({"rule": "bpe"}, ["--rule", "bpe"]),
]
RULE_IDS = ["-".join(f"{k}={v}" for k, v in kw.items()) or "calibrated" for kw, _ in RULES]

# Rules a byte-by-byte decoder can follow (not BPE, nor calibration on the input).
STREAMABLE = [kw for kw, _ in RULES if kw.get("rule") != "bpe" and not
              ("target_patch_size" in kw and kw.get("rule") != "static")]


def test_default_rule_equals_cli_on_held_out_text(model, cli, dataset):
    text = dataset.read_bytes()
    lengths = model.segment(text)
    assert lengths.dtype == np.int64
    assert lengths.sum() == len(text) and (lengths >= 1).all()
    np.testing.assert_array_equal(lengths, cli_lengths(cli, dataset))


@pytest.mark.parametrize("kwargs,flags", RULES, ids=RULE_IDS)
def test_every_rule_equals_cli(model, cli, kwargs, flags):
    path = DATASETS[-1]  # tiny.txt: a mix of languages, code and JSON
    lengths = model.segment(path.read_bytes(), **kwargs)
    assert lengths.sum() == path.stat().st_size
    np.testing.assert_array_equal(lengths, cli_lengths(cli, path, *flags))


def test_decoder_one_byte_at_a_time_equals_segment(model, dataset):
    text = dataset.read_bytes()
    decoder = model.decoder()
    starts = []
    for i, byte in enumerate(text):
        known = decoder.next_starts_patch()
        starts_patch = decoder.push(byte)
        assert known == starts_patch
        if starts_patch:
            starts.append(i)
    assert len(decoder) == len(text) and decoder.patches == len(starts)
    lengths = model.segment(text)
    assert starts == starts_of(lengths)
    assert decoder.finish() == lengths[-1]
    assert len(decoder) == 0 and decoder.finish() is None


@pytest.mark.parametrize("kwargs", STREAMABLE, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "calibrated")
def test_decoder_equals_segment_for_every_streamable_rule(model, kwargs):
    text = DATASETS[-1].read_bytes()[:12000]
    decoder = model.decoder(**kwargs)
    starts = [i for i, b in enumerate(text) if decoder.push(b)]
    assert starts == starts_of(model.segment(text, **kwargs))
    decoder.reset()
    pushed = decoder.push_bytes(text)
    assert pushed.dtype == np.bool_ and np.flatnonzero(pushed).tolist() == starts


def test_decoder_entropies_equal_batch_entropies(model):
    text = DATASETS[0].read_bytes()[:3000]
    h = model.entropies(text)
    assert h.dtype == np.float32 and h.shape == (len(text),)
    decoder = model.decoder()
    streamed = []
    for b in text:
        streamed.append(decoder.next_entropy())
        decoder.push(b)
    np.testing.assert_array_equal(np.array(streamed, dtype=np.float32), h)


def test_every_input_type_gives_the_same_lengths(model):
    text = "Entropy patching: «long patches where bytes are easy», short ones elsewhere. " * 20
    data = text.encode()
    expected = model.segment(data)
    as_array = np.frombuffer(data, dtype=np.uint8)
    mapped = mmap.mmap(-1, len(data))
    mapped.write(data)
    for value in [text, bytearray(data), memoryview(data), as_array, memoryview(data)[0:], mapped]:
        np.testing.assert_array_equal(model.segment(value), expected)
    # A non-contiguous buffer is read in order.
    doubled = np.repeat(as_array, 2)[::2]
    np.testing.assert_array_equal(model.segment(doubled), expected)
    np.testing.assert_array_equal(model.entropies(text), model.entropies(data))


def test_empty_input(model):
    assert model.segment(b"").shape == (0,)
    assert model.entropies(b"").shape == (0,)
    batch = model.segment_batch([])
    assert batch["patch_lengths"].shape == (0, 0) and batch["patch_ids"].shape == (0, 0)
    hf = model.segment_batch([b"", ""], layout="hf")
    assert hf["input_ids"].tolist() == [[1], [1]] and hf["patch_lengths"].tolist() == [[1], [1]]


def test_thread_count_does_not_change_the_result(model):
    import bltpatch

    text = b"".join(p.read_bytes() for p in DATASETS)
    before = bltpatch.get_num_threads()
    try:
        bltpatch.set_num_threads(1)
        assert bltpatch.get_num_threads() == 1
        one = model.segment(text)
        bltpatch.set_num_threads(3)
        assert bltpatch.get_num_threads() == 3
        np.testing.assert_array_equal(model.segment(text), one)
    finally:
        bltpatch.set_num_threads(0)
    assert bltpatch.get_num_threads() == before
