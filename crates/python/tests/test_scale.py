"""The Ray Data and Hugging Face datasets recipes (examples/scale.py) give exactly the lengths of
single-process segmentation."""

import pathlib
import sys

import numpy as np
import pytest

from conftest import DATASETS

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
import scale  # noqa: E402

RULES = [{}, {"rule": "budget", "budget": 9.0, "max_patch_len": 16}]


@pytest.fixture(scope="module")
def docs():
    return scale.documents(DATASETS, 1)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    # The workers import the recipe's module (a script's own classes travel by value instead).
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(EXAMPLES)}})
    yield ray
    ray.shutdown()


def assert_same(lengths, docs, model, rule):
    assert len(lengths) == len(docs)
    for got, doc in zip(lengths, docs):
        np.testing.assert_array_equal(got, model.segment(doc, **rule))


@pytest.mark.parametrize("rule", RULES, ids=["calibrated", "budget"])
def test_ray_data_equals_single_process(ray_cluster, docs, model, rule):
    lengths, seconds, workers = scale.segment_with_ray(docs, rule, workers=2, batch_size=16)
    assert_same(lengths, docs, model, rule)
    assert len(set(workers)) == 2, "both workers took part"
    assert all(s >= 0 for s in seconds)


def test_ray_read_text_one_document_per_line(ray_cluster, model, tmp_path):
    text = DATASETS[0].read_text()
    path = tmp_path / "corpus.txt"
    path.write_text(text)
    # Read first: the actors below hold every CPU, and a read task still waiting for one would
    # never start.
    ds = ray_cluster.data.read_text(str(path)).materialize()
    out = ds.map_batches(scale.RaySegmenter, fn_constructor_kwargs={"rule": {}}, batch_size=64,
                         num_cpus=1, compute=ray_cluster.data.ActorPoolStrategy(size=2),
                         batch_format="numpy")
    got = sorted((r["text"], np.asarray(r["patch_lengths"]).tolist()) for r in out.take_all())
    lines = [line for line in text.split("\n") if line]
    want = sorted((line, model.segment(line).tolist()) for line in lines)
    assert got == want


@pytest.mark.parametrize("rule", RULES, ids=["calibrated", "budget"])
def test_datasets_map_num_proc_2_equals_single_process(docs, model, rule):
    pytest.importorskip("datasets")
    model.segment_batch(docs[:4])  # the parent's thread pool runs before the workers fork
    lengths, seconds, workers = scale.segment_with_datasets(docs, rule, num_proc=2, batch_size=16)
    assert_same(lengths, docs, model, rule)
    assert len(set(workers)) == 2, "both processes took part"
