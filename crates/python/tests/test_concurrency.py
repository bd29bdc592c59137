"""The GIL is released while Rust works; threads, pickling and forked processes."""

import multiprocessing
import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import bltpatch
from conftest import DATASETS


def long_text(min_seconds, model):
    """Held-out text repeated until one `segment` call takes at least `min_seconds`."""
    text = b"".join(p.read_bytes() for p in DATASETS)
    while True:
        start = time.perf_counter()
        model.segment(text)
        if time.perf_counter() - start >= min_seconds:
            return text
        text = text * 2


def test_the_gil_is_released_during_segment(model):
    """A Python thread keeps running while another thread is inside a long `segment`: the
    longest pause between its steps is a small part of the call (it would be all of it if the
    GIL were held)."""
    text = long_text(0.5, model)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.05)
    start = time.perf_counter()
    model.segment(text)
    end = time.perf_counter()
    done.set()
    thread.join()
    inside = [t for t in ticks if start <= t <= end]
    gaps = np.diff([start, *inside, end])
    assert len(inside) > 10, f"{len(inside)} ticks during a {end - start:.2f} s call"
    assert gaps.max() < (end - start) / 4, f"longest pause {gaps.max():.3f} s of {end - start:.3f} s"


def test_threads_share_a_model(model):
    docs = [p.read_bytes()[i * 3000 : (i + 1) * 3000] for p in DATASETS for i in range(6)]
    expected = [model.segment(d) for d in docs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(model.segment, docs))
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_a_model_pickles_as_where_it_came_from(model):
    copy = pickle.loads(pickle.dumps(model))
    text = DATASETS[0].read_bytes()[:4000]
    np.testing.assert_array_equal(copy.segment(text), model.segment(text))
    assert copy.path is None


def _segment_in_child(args):
    model, text = args
    return model.segment(text).tolist()


def test_forked_workers_segment_after_the_parent_used_its_threads(model):
    """A process forked after the parent ran its thread pool builds its own (a forked copy of
    the parent's pool has no threads and would hang)."""
    docs = [p.read_bytes()[:20000] for p in DATASETS]
    model.segment_batch(docs)  # the parent's pool is running
    expected = [model.segment(d).tolist() for d in docs]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        result = pool.map_async(_segment_in_child, [(model, d) for d in docs])
        assert result.get(timeout=120) == expected
