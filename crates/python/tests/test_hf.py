"""transformers' BltModel runs on `segment_batch(..., layout="hf")` (examples/hf_blt_forward.py);
skipped where torch or transformers is not installed."""

import pathlib
import sys

import pytest

from conftest import DATASETS

pytest.importorskip("torch")
pytest.importorskip("transformers")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
import hf_blt_forward  # noqa: E402


def test_a_tiny_blt_model_runs_on_the_hf_layout():
    docs = [DATASETS[0].read_bytes()[:600], DATASETS[1].read_bytes()[:250], b"", "é".encode()]
    result = hf_blt_forward.run(docs)
    batch, seq_len = len(docs), 601
    assert result["input_ids"] == (batch, seq_len)
    assert result["last_hidden_state"][:2] == (batch, seq_len)
    assert result["finite"]
    # Padding changes no real position: each document's outputs equal its outputs alone.
    assert result["max_abs_diff_alone_vs_batched"] < 1e-4
