"""Segmenting a corpus at scale with bltpatch: Ray Data and Hugging Face `datasets`.

Both recipes load the model once per worker and give exactly the patch lengths of
single-process segmentation (the model is deterministic and every document starts from an
empty context). Each worker uses one thread (`bltpatch.set_num_threads(1)`): parallelism comes
from the workers.

    python examples/scale.py            # measures both against the CLI (see --help)

Ray Data:

    ray.init(num_cpus=2)
    ds = ray.data.from_items([{"id": i, "text": doc} for i, doc in enumerate(docs)])
    # or ray.data.read_text("corpus.txt").materialize(): one document per line, column "text"
    # (materialized first: actors holding every CPU would starve a read task still waiting)
    out = ds.map_batches(RaySegmenter, fn_constructor_kwargs={"rule": {}},
                         batch_size=16, num_cpus=1, compute=ray.data.ActorPoolStrategy(size=2),
                         batch_format="numpy")

Hugging Face datasets:

    ds = datasets.Dataset.from_dict({"text": docs})
    out = ds.map(DatasetsSegmenter(), batched=True, batch_size=16, num_proc=2)
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import time
from typing import Optional

import numpy as np

import bltpatch


class RaySegmenter:
    """A Ray Data `map_batches` callable class: Ray builds one per actor (worker), so the model
    is loaded once per worker. Adds `patch_lengths` (int64, one array per row), and the
    seconds spent segmenting each row and the worker's pid (for throughput)."""

    def __init__(self, rule: dict, model_path: Optional[str] = None, threads: int = 1):
        bltpatch.set_num_threads(threads)
        self.model = bltpatch.Model.load(model_path) if model_path else bltpatch.Model.default()
        self.rule = rule

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        lengths, seconds = [], []
        for text in batch["text"]:
            start = time.perf_counter()
            lengths.append(self.model.segment(text, **self.rule))
            seconds.append(time.perf_counter() - start)
        out = dict(batch)
        out["patch_lengths"] = np.array(lengths + [None], dtype=object)[:-1]  # ragged column
        out["seconds"] = np.array(seconds)
        out["worker"] = np.full(len(lengths), os.getpid())
        return out


class DatasetsSegmenter:
    """A `datasets.Dataset.map(batched=True)` function. The model is loaded lazily, once per
    worker process (the object is pickled to each of `num_proc` processes before any model
    exists)."""

    def __init__(self, rule: Optional[dict] = None, model_path: Optional[str] = None, threads: int = 1):
        self.rule = rule or {}
        self.model_path = model_path
        self.threads = threads
        self.model: Optional[bltpatch.Model] = None

    def __getstate__(self):
        return {**self.__dict__, "model": None}

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        if self.model is None:
            bltpatch.set_num_threads(self.threads)
            self.model = (bltpatch.Model.load(self.model_path) if self.model_path
                          else bltpatch.Model.default())
        lengths, seconds = [], []
        for text in batch["text"]:
            start = time.perf_counter()
            lengths.append(self.model.segment(text, **self.rule))
            seconds.append(time.perf_counter() - start)
        return {"patch_lengths": lengths, "seconds": seconds,
                "worker": [os.getpid()] * len(lengths)}


def segment_with_ray(docs: list, rule: dict, workers: int = 2, batch_size: int = 16):
    """Segments `docs` with Ray Data on the running Ray cluster; returns each document's
    lengths in order, and the rows' seconds and workers."""
    import ray

    ds = ray.data.from_items([{"id": i, "text": d} for i, d in enumerate(docs)])
    out = ds.map_batches(
        RaySegmenter,
        fn_constructor_kwargs={"rule": rule},
        batch_size=batch_size,
        num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=workers),
        batch_format="numpy",
    )
    rows = sorted(out.take_all(), key=lambda r: r["id"])
    lengths = [np.asarray(r["patch_lengths"], dtype=np.int64) for r in rows]
    return lengths, [r["seconds"] for r in rows], [r["worker"] for r in rows]


def segment_with_datasets(docs: list, rule: dict, num_proc: int = 2, batch_size: int = 16):
    """Segments `docs` with `datasets.Dataset.map(batched=True, num_proc=...)`; returns each
    document's lengths in order, and the rows' seconds and workers."""
    import datasets

    ds = datasets.Dataset.from_dict({"text": docs})
    out = ds.map(DatasetsSegmenter(rule), batched=True, batch_size=batch_size,
                 num_proc=num_proc, load_from_cache_file=False)
    out = out.with_format("numpy", columns=["patch_lengths"], output_all_columns=True)
    lengths = [np.asarray(x, dtype=np.int64) for x in out["patch_lengths"]]
    return lengths, list(out["seconds"]), list(out["worker"])


def per_worker(docs: list, seconds: list, workers: list) -> list:
    """Bytes per second of segmenting, for each worker: its bytes over its seconds."""
    sizes = [len(d.encode() if isinstance(d, str) else d) for d in docs]
    totals: dict = {}
    for size, s, w in zip(sizes, seconds, workers):
        b, t = totals.get(w, (0, 0.0))
        totals[w] = (b + size, t + s)
    return [b / t for b, t in totals.values()]


def documents(paths: list, repeat: int) -> list:
    """The texts as documents: paragraphs (split at blank lines), the whole list `repeat`
    times."""
    docs = []
    for p in paths:
        docs += [d for d in pathlib.Path(p).read_text().split("\n\n") if d]
    return docs * repeat


def cli_throughput(cli: str, text: bytes, runs: int) -> tuple:
    """Best and median bytes/s of `bltpatch segment FILE --format lengths --threads 1`."""
    path = pathlib.Path("/tmp/bltpatch-scale-input.txt")
    path.write_bytes(text)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([cli, "segment", str(path), "--format", "lengths", "--threads", "1"],
                       check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return len(text) / min(times), len(text) / statistics.median(times)


def main():
    here = pathlib.Path(__file__).resolve().parents[3]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cli", default=os.environ.get("BLTPATCH_CLI"),
                        help="the bltpatch binary (release build); default $BLTPATCH_CLI")
    parser.add_argument("--repeat", type=int, default=4, help="copies of the text (default 4)")
    parser.add_argument("--runs", type=int, default=3, help="CLI runs (default 3)")
    args = parser.parse_args()
    paths = sorted((here / "datasets").glob("*.txt"))
    docs = documents(paths, args.repeat)
    # The CLI reads the same bytes as one file: the documents joined by blank lines.
    text = "\n\n".join(docs).encode()
    total = sum(len(d.encode()) for d in docs)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    print(f"text: {len(docs)} documents, {total} bytes (datasets/*.txt x{args.repeat})")

    bltpatch.set_num_threads(1)
    model = bltpatch.Model.default()
    start = time.perf_counter()
    reference = [model.segment(d) for d in docs]
    single = total / (time.perf_counter() - start)
    print(f"python, one process, one thread: {single / 1e6:.3f} MB/s")

    if args.cli:
        best, median = cli_throughput(args.cli, text, args.runs)
        print(f"cli --threads 1: best {best / 1e6:.3f} MB/s, median {median / 1e6:.3f} MB/s")

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    lengths, seconds, workers = segment_with_ray(docs, {})
    wall = time.perf_counter() - start
    assert all((a == b).all() for a, b in zip(lengths, reference))
    rates = ", ".join(f"{r / 1e6:.3f}" for r in per_worker(docs, seconds, workers))
    print(f"ray data, 2 workers: per worker {rates} MB/s; end to end {total / wall / 1e6:.3f} MB/s ({wall:.1f} s)")
    ray.shutdown()

    start = time.perf_counter()
    lengths, seconds, workers = segment_with_datasets(docs, {})
    wall = time.perf_counter() - start
    assert all((a == b).all() for a, b in zip(lengths, reference))
    rates = ", ".join(f"{r / 1e6:.3f}" for r in per_worker(docs, seconds, workers))
    print(f"datasets.map num_proc=2: per worker {rates} MB/s; end to end {total / wall / 1e6:.3f} MB/s ({wall:.1f} s)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
