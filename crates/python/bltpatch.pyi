"""bltpatch: an entropy-patching byte tokenizer.

A small causal next-byte model predicts how hard each byte is; patch (token) boundaries go where
that entropy is high or jumps, or where the entropy summed over a patch reaches a budget, as in
Meta's Byte Latent Transformer. Streaming byte by byte (``Model.decoder``) finds exactly the
boundaries of batch segmentation.

Every segmenting call takes the rule as keyword arguments:

- ``rule``: ``"global"``, ``"relative"``, ``"combined"``, ``"budget"`` (entropy rules) or
  ``"static"``, ``"space"``, ``"bpe"`` (baselines); without it, the rule follows from the
  parameters given, else it is the checkpoint's calibrated rule;
- ``threshold``, ``relative_threshold`` (nats), ``budget`` (nats per patch);
- ``target_patch_size``: calibrate the entropy rule's parameter on the input itself (the whole
  batch for ``segment_batch``); the patch size for ``static``;
- ``max_patch_len``: a patch also ends once it holds this many bytes.

A parameter that the rule does not read raises ``BltpatchError``.
"""

import os
from collections.abc import Iterable
from typing import Literal, TypedDict, Union, final

import numpy as np
import numpy.typing as npt

__all__ = ["__version__", "BltpatchError", "Model", "Decoder", "set_num_threads", "get_num_threads"]

__version__: str

_BytesLike = Union[bytes, bytearray, memoryview, str]
"""One document: bytes, a buffer of bytes (bytearray, memoryview, uint8 array) or str (UTF-8)."""

_RuleName = Literal["global", "relative", "combined", "budget", "static", "space", "bpe"]

class BltpatchError(ValueError):
    """A bad parameter or combination of rule parameters, an unusable checkpoint, or input the
    operation cannot take."""

class _BltBatch(TypedDict):
    """``segment_batch(..., layout="blt")``: BLT's layout, int64."""

    patch_lengths: npt.NDArray[np.int64]
    """``[batch, max_patches]``: each document's patch lengths, right-padded with 0."""
    patch_ids: npt.NDArray[np.int64]
    """``[batch, max_len]``: the patch index of every byte (positions past a document's end
    get ``max_patches - 1``, BLT's formula over the padded row)."""

class _HfBatch(TypedDict):
    """``segment_batch(..., layout="hf")``: what transformers' ``BltModel.forward`` takes, int64."""

    input_ids: npt.NDArray[np.int64]
    """``[batch, seq_len]``, ``seq_len = 1 + max_len``: BOS (1), byte + 4, then padding (3)."""
    attention_mask: npt.NDArray[np.int64]
    """``[batch, seq_len]``: 1 for BOS and bytes, 0 for padding."""
    patch_lengths: npt.NDArray[np.int64]
    """``[batch, max_patches]``: 1 (BOS), the document's patches with its padding added to the
    last one (a patch of its own for an empty document), then 0; every row sums to
    ``seq_len``. Padding joined to the last patch leaves every real position's output as the
    document gets it alone."""

class _CalibrationResult(TypedDict, total=False):
    """``Model.calibrate``: the calibrated rule and how it did."""

    rule: Literal["global", "relative", "combined", "budget"]
    threshold: float
    relative_threshold: float
    budget: float
    max_patch_len: int | None
    value: float
    """The calibrated number (the threshold, relative threshold or budget)."""
    target_patch_size: float
    mean_patch_len: float
    """The mean patch length achieved on the calibration text."""
    patches: int
    bytes: int

@final
class Model:
    """A loaded entropy model: the one embedded in bltpatch (``Model.default()``) or a checkpoint
    directory (``Model.load(path)``). Thread-safe; the GIL is released while Rust works;
    picklable (as where it was loaded from)."""

    @staticmethod
    def default() -> Model:
        """The model embedded in bltpatch (no file access, no download)."""

    @staticmethod
    def load(path: Union[str, os.PathLike[str]]) -> Model:
        """Loads a checkpoint directory (``config.json`` + ``model.safetensors``).

        Raises ``FileNotFoundError`` for a missing directory or file, ``BltpatchError`` for a
        corrupt or foreign checkpoint."""

    @property
    def context(self) -> int:
        """The context length ``C`` in bytes."""

    @property
    def arch(self) -> str:
        """The architecture (``"conv"``, ``"ngram"``)."""

    @property
    def calibration(self) -> dict[str, object] | None:
        """The rule calibrated with the checkpoint (``rule``, its parameter, ``max_patch_len``,
        ``target_patch_size``, ``mean_patch_len``, ``calibration_bytes``), or ``None``."""

    @property
    def config(self) -> dict[str, object]:
        """The checkpoint's whole ``config.json``."""

    @property
    def path(self) -> str | None:
        """The checkpoint directory, or ``None`` for the embedded model."""

    def segment(
        self,
        data: _BytesLike,
        *,
        rule: _RuleName | None = None,
        threshold: float | None = None,
        relative_threshold: float | None = None,
        budget: float | None = None,
        target_patch_size: float | None = None,
        max_patch_len: int | None = None,
    ) -> npt.NDArray[np.int64]:
        """Patch lengths of one document (all >= 1, summing to its length in bytes)."""

    def entropies(self, data: _BytesLike) -> npt.NDArray[np.float32]:
        """``H[i]`` (nats) for every byte of one document."""

    def surprisals(self, data: _BytesLike) -> npt.NDArray[np.float32]:
        """``-ln p(x[i] | context)`` (nats) for every byte of one document, adapting if the
        checkpoint does; the sum over ``ln 2`` is the code length in bits."""

    def segment_batch(
        self,
        docs: Iterable[_BytesLike],
        *,
        layout: Literal["blt", "hf"] = "blt",
        rule: _RuleName | None = None,
        threshold: float | None = None,
        relative_threshold: float | None = None,
        budget: float | None = None,
        target_patch_size: float | None = None,
        max_patch_len: int | None = None,
    ) -> Union[_BltBatch, _HfBatch]:
        """Segments documents (each from an empty context, in parallel) into int64 arrays:
        ``_BltBatch`` for ``layout="blt"``, ``_HfBatch`` for ``layout="hf"``. With
        ``target_patch_size``, calibrates on the whole batch."""

    def decoder(
        self,
        *,
        rule: _RuleName | None = None,
        threshold: float | None = None,
        relative_threshold: float | None = None,
        budget: float | None = None,
        target_patch_size: float | None = None,
        max_patch_len: int | None = None,
    ) -> Decoder:
        """A byte-by-byte decoder with the boundaries of ``segment`` for the same rule (not for
        ``bpe``, nor a rule that calibrates on its input)."""

    def calibrate(
        self,
        texts: Union[_BytesLike, Iterable[_BytesLike]],
        target_patch_size: float,
        *,
        rule: Literal["global", "relative", "combined", "budget"] | None = None,
        relative_threshold: float | None = None,
        max_patch_len: int | None = None,
    ) -> _CalibrationResult:
        """Calibrates an entropy rule's parameter for a mean patch length on ``texts``."""

@final
class Decoder:
    """Pushes bytes one at a time and says whether each starts a patch, exactly as
    ``Model.segment`` with the same rule. Made by ``Model.decoder``."""

    def next_starts_patch(self) -> bool | None:
        """Whether the byte to come starts a patch whatever its value, or ``None`` when that
        depends on the byte (space patching)."""

    def next_entropy(self) -> float | None:
        """The entropy (nats) of the byte to come, for entropy rules."""

    def push(self, byte: int) -> bool:
        """Appends one byte (0..=255); returns whether it starts a patch."""

    def push_bytes(self, data: _BytesLike) -> npt.NDArray[np.bool_]:
        """Appends bytes; returns whether each starts a patch."""

    def finish(self) -> int | None:
        """Ends the document: the open patch's length (``None`` if empty); starts a new one."""

    def reset(self) -> None:
        """Starts a new document."""

    @property
    def patches(self) -> int:
        """Patches started in this document."""

    @property
    def current_patch_len(self) -> int:
        """Bytes in the open patch."""

    def __len__(self) -> int:
        """Bytes pushed in this document."""

def set_num_threads(n: int) -> None:
    """Threads for batches and long inputs in this process (0: one per CPU or
    ``RAYON_NUM_THREADS``). Results do not depend on it."""

def get_num_threads() -> int:
    """Threads bltpatch uses in this process."""
