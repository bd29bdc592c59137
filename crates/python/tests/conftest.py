"""Shared fixtures: the repository, its held-out text, the default model and the CLI binary."""

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import bltpatch

REPO = pathlib.Path(__file__).resolve().parents[3]
DATASETS = sorted((REPO / "datasets").glob("*.txt"))


def locate_cli() -> pathlib.Path:
    """The `bltpatch` binary: $BLTPATCH_CLI, else a release build in the cargo target directory,
    built here if it is missing (`--no-default-features`: segmentation needs no trainer)."""
    if "BLTPATCH_CLI" in os.environ:
        return pathlib.Path(os.environ["BLTPATCH_CLI"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "release" / "bltpatch"
    if not binary.exists():
        if shutil.which("cargo") is None:
            pytest.skip("no bltpatch binary (set BLTPATCH_CLI) and no cargo to build one")
        subprocess.run(
            ["cargo", "build", "--locked", "--release", "-p", "bltpatch-cli", "--bin", "bltpatch",
             "--no-default-features"],
            cwd=REPO, check=True,
        )
    return binary


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    return locate_cli()


@pytest.fixture(scope="session")
def model() -> bltpatch.Model:
    return bltpatch.Model.default()


@pytest.fixture(scope="session", params=DATASETS, ids=lambda p: p.name)
def dataset(request) -> pathlib.Path:
    return request.param


def cli_lengths(cli: pathlib.Path, path: pathlib.Path, *flags: str) -> np.ndarray:
    """`bltpatch segment PATH --format lengths FLAGS...` as an int64 array."""
    out = subprocess.run(
        [str(cli), "segment", str(path), "--format", "lengths", *flags],
        check=True, capture_output=True, text=True,
    ).stdout
    return np.array([int(line) for line in out.split()], dtype=np.int64)


def starts_of(lengths) -> list:
    """The byte offsets where patches start."""
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist() if len(lengths) else []
