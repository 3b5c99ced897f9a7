"""Every notebook of the series keeps the shape a student relies on (issue 12).

Opening with what you will learn and what you need already, key code written out (cells
tagged ``key-code``, checked against the library by ``tests/test_key_code_NN.py``), 3-5
graded exercises each with a hint and a hidden worked solution that ends in an ``assert``
(nbval runs it), a summary and where to go next.
"""

import ast
import glob
import json
import os
import re

import pytest
from conftest import ROOT

NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "[0-9][0-9]_*.ipynb")))


def cells(path):
    return json.load(open(path))["cells"]


def markdown(path) -> str:
    return "\n".join("".join(c["source"]) for c in cells(path) if c["cell_type"] == "markdown")


def test_the_series_is_there():
    assert len(NOTEBOOKS) >= 7


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_opening_and_closing(path):
    text = markdown(path)
    for heading in ("What you will learn", "What you need to know already", "Summary",
                    "Where to go next"):
        assert heading.lower() in text.lower(), f"{os.path.basename(path)} lacks '{heading}'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_key_code_cells_are_tested(path):
    name = os.path.basename(path)
    tagged = [c for c in cells(path) if "key-code" in c.get("metadata", {}).get("tags", [])]
    assert tagged, f"{name}: no cell tagged key-code"
    for c in tagged:
        tree = ast.parse("\n".join(ln for ln in "".join(c["source"]).splitlines()
                                   if not ln.lstrip().startswith(("%", "!"))))
        kinds = {type(node).__name__ for node in tree.body}
        assert kinds <= {"Import", "ImportFrom", "FunctionDef", "Assign", "AnnAssign", "Expr"}, (
            f"{name}: a key-code cell must only import and define ({kinds})")
    test = os.path.join(ROOT, "tests", f"test_key_code_{name[:2]}.py")
    assert os.path.isfile(test), f"{name}: {test} is missing"
    assert name in open(test).read()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_exercises_have_hints_and_solutions_that_check_themselves(path):
    name = os.path.basename(path)
    text = markdown(path)
    solutions = [c for c in cells(path) if "solution" in c.get("metadata", {}).get("tags", [])]
    assert 3 <= len(solutions) <= 6, f"{name}: {len(solutions)} solutions"
    assert text.count("<summary>Hint") >= len(solutions), f"{name}: a solution without a hint"
    for c in solutions:
        src = "".join(c["source"])
        assert c["metadata"].get("jupyter", {}).get("source_hidden"), f"{name}: solution shown"
        assert src.lstrip().startswith("# Solution to exercise"), src[:60]
        last = [ln for ln in src.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert any(ln.lstrip().startswith("assert") for ln in last[-6:]), (
            f"{name}: a solution must end with an assert:\n{src[-300:]}")
    assert re.search(r"listen", text[text.lower().rfind("exercises"):], flags=re.I), (
        f"{name}: no exercise asks the student to listen")


def test_notebook_stats_counts_what_a_student_gets(tmp_path):
    import nbformat

    from pianolib.tutorial import notebook_stats

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\nFive words of prose here."),
                nbformat.v4.new_code_cell("def f(x):\n    return x",
                                          metadata={"tags": ["key-code"]}),
                nbformat.v4.new_code_cell("# Solution to exercise 1\nassert f(1) == 1",
                                          metadata={"tags": ["solution"]}),
                nbformat.v4.new_code_cell("display(Audio(y, rate=sr)); Audio(z, rate=sr)")]
    path = tmp_path / "99_toy.ipynb"
    nbformat.write(nb, path)
    assert notebook_stats(path) == {"notebook": "99_toy.ipynb", "words": 6, "code_cells": 3,
                                    "key_code_cells": 1, "exercises": 1, "audio_players": 2}


def test_readme_quotes_the_measured_notebook_table_and_it_is_current():
    """README's notebook table is what `python -m pianolib.tutorial` wrote, with today's counts."""
    from conftest import assert_readme_has_table

    from pianolib.tutorial import notebook_stats

    assert_readme_has_table("data/bench/notebooks.md", 9)
    rows = json.load(open(os.path.join(ROOT, "data", "bench", "notebooks.json")))
    assert [r["notebook"] for r in rows] == [os.path.basename(p) for p in NOTEBOOKS]
    for row, path in zip(rows, NOTEBOOKS):
        now = notebook_stats(path)
        assert {k: row[k] for k in now} == now, f"re-run python -m pianolib.tutorial: {now}"
