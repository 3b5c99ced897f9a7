import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", category=DeprecationWarning)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(ROOT, "data", "sample")


def sine(freq: float, seconds: float, sr: int = 16000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def tiny_dataset(tmp_path):
    """A copy of the sample clips split 2 train / 1 valid: real training on a tiny dataset."""
    import csv
    import shutil

    data = tmp_path / "tiny"
    shutil.copytree(SAMPLE_DIR, data)
    rows = list(csv.DictReader(open(data / "manifest.csv")))
    for r, split in zip(rows, ["train", "train", "valid"]):
        r["split"] = split
    with open(data / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return data


def sample_rows() -> list[dict]:
    """The rows of the sample clips' manifest (``data/sample/manifest.csv``)."""
    import csv

    with open(os.path.join(SAMPLE_DIR, "manifest.csv")) as fh:
        return list(csv.DictReader(fh))


def assert_readme_has_table(measured_md: str, min_lines: int) -> None:
    """Every table line of a measured Markdown file appears in the README as it is."""
    measured = open(os.path.join(ROOT, measured_md)).read()
    readme = open(os.path.join(ROOT, "README.md")).read()
    table = [ln for ln in measured.splitlines() if ln.startswith("| ")]
    assert len(table) >= min_lines
    for ln in table:
        assert ln in readme, ln


def notebook_key_code(name: str) -> dict:
    """The functions a notebook writes out for reading (cells tagged ``key-code``), executed.

    Each such cell is self-contained (it imports what it uses), so the test runs exactly the
    code a student reads, and can compare it with the library's version on the sample clips.

    Args:
        name: the notebook's file name, e.g. ``"01_data_and_preprocessing.ipynb"``.

    Returns:
        The namespace after executing the tagged cells in order.
    """
    import json

    nb = json.load(open(os.path.join(ROOT, "notebooks", name)))
    cells = [c for c in nb["cells"]
             if c["cell_type"] == "code" and "key-code" in c.get("metadata", {}).get("tags", [])]
    assert cells, f"{name} has no cell tagged key-code"
    namespace: dict = {}
    for cell in cells:
        source = "".join(cell["source"])
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        exec(compile("\n".join(lines), f"{name}:key-code", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def key_code(request) -> dict:
    """The key-code namespace of the notebook named by the test module's ``NOTEBOOK``."""
    return notebook_key_code(request.module.NOTEBOOK)


def notebook_cells(name: str, tag: str) -> list:
    """The sources of a notebook's code cells that carry ``tag`` (e.g. ``solution``)."""
    import json

    nb = json.load(open(os.path.join(ROOT, "notebooks", name)))
    return ["".join(c["source"]) for c in nb["cells"]
            if c["cell_type"] == "code" and tag in c.get("metadata", {}).get("tags", [])]
