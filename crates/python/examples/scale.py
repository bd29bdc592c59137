"""Segmenting a corpus at scale with bltpatch: Ray Data and Hugging Face `datasets`.

Both recipes load the model once per worker and give exactly the patch lengths of
single-process segmentation (the model is deterministic and every document starts from an
empty context). Each worker uses one thread (`bltpatch.set_num_threads(1)`): parallelism comes
from the workers.

    BLTPATCH_CLI=target/release/bltpatch python examples/scale.py   # measures both, and the CLI

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


def best_of(runs: int, work) -> tuple:
    """The fastest and the median wall time of `runs` calls of `work`."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main():
    import json

    here = pathlib.Path(__file__).resolve().parents[3]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cli", default=os.environ.get("BLTPATCH_CLI"),
                        help="the bltpatch binary (release build); default $BLTPATCH_CLI")
    parser.add_argument("--repeat", type=int, default=4, help="copies of the text (default 4)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each single-process measure")
    args = parser.parse_args()
    paths = sorted((here / "datasets").glob("*.txt"))
    docs = documents(paths, args.repeat)
    total = sum(len(d.encode()) for d in docs)
    # The same documents for the CLI: as one file (one document), and as JSON Lines.
    text_path = pathlib.Path("/tmp/bltpatch-scale.txt")
    text_path.write_text("\n\n".join(docs))
    jsonl_path = pathlib.Path("/tmp/bltpatch-scale.jsonl")
    jsonl_path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    print(f"text: {len(docs)} documents, {total} bytes (paragraphs of datasets/*.txt, x{args.repeat})")
    print("| how | MB/s (best, median) |\n|---|---|")

    def row(name, size, times):
        print(f"| {name} | {size / times[0] / 1e6:.3f}, {size / times[1] / 1e6:.3f} |")

    if args.cli:
        for name, path, extra in [("one file", text_path, []),
                                  ("JSON Lines, one document per paragraph", jsonl_path,
                                   ["--jsonl-field", "text"])]:
            command = [args.cli, "segment", str(path), "--format", "lengths", "--threads", "1",
                       *extra]
            times = best_of(args.runs, lambda: subprocess.run(
                command, check=True, stdout=subprocess.DEVNULL))
            row(f"`bltpatch segment` {name}, `--threads 1` (wall, with start-up)",
                path.stat().st_size if not extra else total, times)

    bltpatch.set_num_threads(1)
    model = bltpatch.Model.default()
    joined = text_path.read_bytes()
    row("python `Model.segment`, one thread, the one file", len(joined),
        best_of(args.runs, lambda: model.segment(joined)))
    reference = []
    row("python `Model.segment`, one thread, document by document", total,
        best_of(args.runs, lambda: reference.__setitem__(slice(None), [model.segment(d) for d in docs])))

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    lengths, seconds, workers = segment_with_ray(docs, {})
    wall = time.perf_counter() - start
    ray.shutdown()
    assert all((a == b).all() for a, b in zip(lengths, reference))
    rates = ", ".join(f"{r / 1e6:.3f}" for r in per_worker(docs, seconds, workers))
    print(f"| Ray Data, 2 actors: per worker, inside `segment` | {rates} |")
    print(f"| Ray Data, 2 actors: end to end ({wall:.1f} s, with actor start) | {total / wall / 1e6:.3f} |")

    start = time.perf_counter()
    lengths, seconds, workers = segment_with_datasets(docs, {})
    wall = time.perf_counter() - start
    assert all((a == b).all() for a, b in zip(lengths, reference))
    rates = ", ".join(f"{r / 1e6:.3f}" for r in per_worker(docs, seconds, workers))
    print(f"| datasets.map, num_proc=2: per worker, inside `segment` | {rates} |")
    print(f"| datasets.map, num_proc=2: end to end ({wall:.1f} s, with process start) | {total / wall / 1e6:.3f} |")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
