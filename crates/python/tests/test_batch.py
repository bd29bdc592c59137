"""segment_batch: BLT's layout and transformers' layout, shapes and sums; calibration on a batch."""

import numpy as np
import pytest

from conftest import DATASETS


def documents():
    """Held-out documents of different lengths, one of them empty."""
    texts = [p.read_bytes() for p in DATASETS]
    return [texts[0][:5000], texts[1][:777], b"", texts[2][:3001], "short é", texts[2]]


def as_bytes(doc):
    return doc.encode() if isinstance(doc, str) else doc


@pytest.mark.parametrize("kwargs", [{}, {"rule": "budget", "budget": 9.0}, {"rule": "static", "target_patch_size": 3.5}, {"rule": "bpe"}])
def test_blt_layout_shapes_and_sums(model, kwargs):
    docs = documents()
    batch = model.segment_batch(docs, **kwargs)
    lengths, ids = batch["patch_lengths"], batch["patch_ids"]
    assert lengths.dtype == np.int64 and ids.dtype == np.int64
    rows = [model.segment(d, **kwargs) for d in docs]
    max_len = max(len(as_bytes(d)) for d in docs)
    assert lengths.shape == (len(docs), max(len(r) for r in rows))
    assert ids.shape == (len(docs), max_len)
    for b, (doc, row) in enumerate(zip(docs, rows)):
        n = len(as_bytes(doc))
        assert lengths[b].sum() == n
        np.testing.assert_array_equal(lengths[b, : len(row)], row)
        assert (lengths[b, len(row):] == 0).all()
        # Every byte's patch index, and BLT's formula past the end.
        np.testing.assert_array_equal(ids[b, :n], np.repeat(np.arange(len(row)), row))
        assert (ids[b, n:] == lengths.shape[1] - 1).all()


@pytest.mark.parametrize("kwargs", [{}, {"rule": "budget", "budget": 9.0}])
def test_hf_layout_shapes_and_sums(model, kwargs):
    docs = documents()
    hf = model.segment_batch(docs, layout="hf", **kwargs)
    blt = model.segment_batch(docs, **kwargs)
    seq_len = 1 + max(len(as_bytes(d)) for d in docs)
    assert set(hf) == {"input_ids", "attention_mask", "patch_lengths"}
    assert hf["input_ids"].shape == (len(docs), seq_len)
    assert hf["attention_mask"].shape == (len(docs), seq_len)
    assert all(a.dtype == np.int64 for a in hf.values())
    np.testing.assert_array_equal(hf["patch_lengths"].sum(axis=1), np.full(len(docs), seq_len))
    for b, doc in enumerate(docs):
        data = np.frombuffer(as_bytes(doc), dtype=np.uint8).astype(np.int64)
        n = len(data)
        ids = hf["input_ids"][b]
        assert ids[0] == 1  # BOS
        np.testing.assert_array_equal(ids[1 : n + 1], data + 4)
        assert (ids[n + 1 :] == 3).all()  # padding
        np.testing.assert_array_equal(hf["attention_mask"][b], (np.arange(seq_len) <= n).astype(np.int64))
        row = hf["patch_lengths"][b]
        own = blt["patch_lengths"][b][blt["patch_lengths"][b] > 0]
        padding = seq_len - 1 - n
        assert row[0] == 1  # the BOS patch
        if n == 0:
            expected = [padding] if padding else []  # the padding's own patch
        else:
            expected = [*own[:-1], own[-1] + padding]  # the padding joins the last patch
        np.testing.assert_array_equal(row[1 : 1 + len(expected)], expected)
        assert (row[1 + len(expected) :] == 0).all()


def test_a_calibrating_batch_calibrates_on_the_whole_batch(model):
    docs = [p.read_bytes() for p in DATASETS]
    batch = model.segment_batch(docs, rule="budget", target_patch_size=5.0)
    c = model.calibrate(docs, 5.0, rule="budget")
    assert c["rule"] == "budget" and c["budget"] == c["value"]
    total = sum(len(d) for d in docs)
    patches = int((batch["patch_lengths"] > 0).sum())
    assert patches == c["patches"] and c["bytes"] == total
    assert abs(total / patches - 5.0) < 0.05
    for b, doc in enumerate(docs):
        row = batch["patch_lengths"][b]
        np.testing.assert_array_equal(row[row > 0], model.segment(doc, budget=c["budget"]))


@pytest.mark.parametrize("rule", ["global", "relative", "budget"])
def test_calibrate_returns_a_parameter_to_pass_back(model, rule):
    text = DATASETS[-1].read_bytes()
    c = model.calibrate(text, 6.0, rule=rule)
    assert c["rule"] == rule and c["target_patch_size"] == 6.0
    param = {"global": "threshold", "relative": "relative_threshold", "budget": "budget"}[rule]
    lengths = model.segment(text, rule=rule, **{param: c[param]})
    assert len(lengths) == c["patches"]
    assert c["mean_patch_len"] == pytest.approx(len(text) / len(lengths))
    np.testing.assert_array_equal(lengths, model.segment(text, rule=rule, target_patch_size=6.0))


def test_model_properties(model):
    assert model.arch == model.config["arch"] == "hashmlp"
    assert model.context == model.config["context"]
    assert model.calibration == model.config["calibration"]
    assert model.calibration["rule"] in {"global", "relative", "combined", "budget"}
    assert model.path is None and "hashmlp" in repr(model)
