"""bltpatch patches into Hugging Face transformers' Byte Latent Transformer.

`Model.segment_batch(docs, layout="hf")` gives `input_ids`, `attention_mask` and
`patch_lengths` as `BltModel.forward(input_ids=..., patch_lengths=...)` takes them (BOS, bytes
offset by 4, one patch of 1 for BOS, each row's padding in its last patch). This script feeds them
to a randomly initialised tiny `BltModel` on the CPU, checks the output's shape, and checks that
a short document's outputs in the padded batch equal its outputs alone (padding changes no real
position). Needs torch and transformers:

    pip install torch transformers
    python examples/hf_blt_forward.py
"""

from __future__ import annotations

import pathlib
import time

import numpy as np

import bltpatch


def tiny_blt_config():
    """A `BltConfig` small enough for a CPU test: one layer each, 32-64 wide. The model is
    given its patches (`patch_in_forward=False`): its own entropy patcher is not used."""
    from transformers import BltConfig

    local = {"hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1,
             "hidden_size_global": 64, "cross_attn_k": 2, "vocab_size": 260}
    return BltConfig(
        vocab_size=260,
        patch_in_forward=False,
        cross_attn_k=2,
        encoder_hash_byte_group_size=[3, 4],
        encoder_hash_byte_group_vocab=1024,
        encoder_config=local,
        decoder_config=local,
        global_config={"hidden_size": 64, "num_attention_heads": 2, "num_hidden_layers": 1},
        patcher_config={"hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1},
    )


def forward(blt, batch: dict):
    """`BltModel.forward` on a `segment_batch(..., layout="hf")` result; the last hidden
    state as a numpy array `[batch, seq_len, hidden]`."""
    import torch

    with torch.no_grad():
        out = blt(
            input_ids=torch.from_numpy(batch["input_ids"]),
            attention_mask=torch.from_numpy(batch["attention_mask"]),
            patch_lengths=torch.from_numpy(batch["patch_lengths"]),
            use_cache=False,
        )
    return out.last_hidden_state.numpy()


def run(docs: list) -> dict:
    """Segments `docs`, runs the tiny model on the batch and on each document alone, and
    returns the shapes, the largest difference between a document's real positions in the
    batch and alone, and the timings."""
    import torch
    from transformers import BltModel

    torch.manual_seed(0)
    blt = BltModel(tiny_blt_config()).eval()
    model = bltpatch.Model.default()
    start = time.perf_counter()
    batch = model.segment_batch(docs, layout="hf")
    segment_s = time.perf_counter() - start
    start = time.perf_counter()
    hidden = forward(blt, batch)
    forward_s = time.perf_counter() - start
    worst = 0.0
    for b, doc in enumerate(docs):
        alone = forward(blt, model.segment_batch([doc], layout="hf"))
        n = alone.shape[1]
        worst = max(worst, float(np.abs(hidden[b, :n] - alone[0]).max()))
    return {
        "input_ids": batch["input_ids"].shape,
        "patch_lengths": batch["patch_lengths"].shape,
        "last_hidden_state": hidden.shape,
        "finite": bool(np.isfinite(hidden).all()),
        "max_abs_diff_alone_vs_batched": worst,
        "segment_s": segment_s,
        "forward_s": forward_s,
        "parameters": sum(p.numel() for p in blt.parameters()),
    }


def main():
    here = pathlib.Path(__file__).resolve().parents[3]
    texts = [p.read_bytes() for p in sorted((here / "datasets").glob("*.txt"))]
    docs = [texts[0][:2048], texts[1][:1500], texts[2][:700], "Byte Latent Transformer".encode()]
    for key, value in run(docs).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
