"""The README's ```python blocks run, in order, in one namespace (```py blocks are excerpts of
the tested examples/ scripts and are not run). A block that imports torch runs where torch is
installed."""

import importlib.util
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    assert len(blocks) == 3
    have_torch = importlib.util.find_spec("torch") is not None
    namespace: dict = {}
    ran = 0
    for block in blocks:
        if "import torch" in block and not have_torch:
            continue
        exec(compile(block, str(README), "exec"), namespace)
        ran += 1
    assert ran == (3 if have_torch else 2)
