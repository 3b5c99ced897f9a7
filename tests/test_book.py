"""The book builder (pianolib.book): summaries, formulas, frozen widgets, pages, failures.

The browser checks of the real book are in tests/e2e (``make e2e``); these run in seconds.
"""

import base64
import json

import nbformat
import pytest

from pianolib.book import (
    BookError,
    build_book,
    count_media,
    external_resources,
    freeze_widgets,
    main,
    markdown_html,
    notebook_paths,
    notebook_summary,
    tex_to_mathml,
    widget_html,
)

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def test_every_notebook_has_a_title_and_what_you_will_learn():
    paths = notebook_paths()
    assert len(paths) >= 7
    for path in paths:
        title, learn = notebook_summary(nbformat.read(path, as_version=4))
        assert title.startswith(path.name[:2]), (path.name, title)
        assert len(learn) >= 3, path.name
        assert all(b and not b.startswith("- ") for b in learn), learn


def test_summary_joins_continuation_lines_and_stops_at_the_next_paragraph():
    nb = {"cells": [{"cell_type": "markdown", "source":
                     "# 09 · Title\n\ntext\n\n**What you will learn**\n- one\n  more\n- two\n\n"
                     "**What you need**\n- not this"}]}
    assert notebook_summary(nb) == ("09 · Title", ["one more", "two"])


def test_formulas_become_mathml_and_code_stays_code():
    out = markdown_html("gate $f_t = \\sigma(W x_t)$ and `$HOME` and\n\n$$\\frac{1}{88}$$")
    assert out.count("<math") == 2 and 'display="block"' in out
    assert "<code>$HOME</code>" in out
    assert tex_to_mathml("\\frac{1}{").startswith(("<math", "<code"))
    aligned = tex_to_mathml("\\begin{aligned} a &= b && \\text{x}\\\\ c &= d \\end{aligned}")
    assert "<mtable" in aligned and "&amp;" not in aligned and "<mi>&</mi>" not in aligned


def _state(name, module="@jupyter-widgets/controls", **state):
    return {"model_name": name, "model_module": module, "model_module_version": "2.0.0",
            "state": state}


def test_widget_state_is_drawn_as_static_html():
    png = base64.b64encode(b"\x89PNG fake").decode()
    wav = base64.b64encode(b"RIFF fake").decode()
    states = {
        "box": _state("VBoxModel", children=["IPY_MODEL_html", "IPY_MODEL_slider",
                                             "IPY_MODEL_audio", "IPY_MODEL_out",
                                             "IPY_MODEL_toggle"]),
        "html": _state("HTMLModel", value="<b>12 notes</b> F1 0.800"),
        "slider": _state("FloatSliderModel", value=0.4, min=0.05, max=0.95, step=0.05,
                         description="onset ≥", readout_format=".2f"),
        "audio": {**_state("AudioModel", format="wav"),
                  "buffers": [{"path": ["value"], "data": wav, "encoding": "base64"}]},
        "out": _state("OutputModel", "@jupyter-widgets/output", outputs=[
            {"output_type": "display_data", "data": {"image/png": png}, "metadata": {}}]),
        "toggle": _state("ToggleButtonsModel", _options_labels=["ours", "series'"], index=1),
    }
    html = widget_html("IPY_MODEL_box", states)
    assert "<b>12 notes</b>" in html
    assert 'type="range"' in html and 'value="0.4"' in html and "onset ≥" in html
    assert f'<audio controls src="data:audio/wav;base64,{wav}">' in html
    assert f'src="data:image/png;base64,{png}"' in html
    assert '<button disabled class="pl-w-toggle pl-w-on">series&#x27;</button>' in html
    assert "pl-w-missing" in widget_html("nothing", states)


def test_freeze_widgets_replaces_views_and_drops_the_state():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"h": _state("HTMLModel", value="hello")}, "version_major": 2,
        "version_minor": 0}}
    cell = nbformat.v4.new_code_cell("w")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "h", "version_major": 2,
                                                     "version_minor": 0},
        "text/plain": "HTML(value='hello')"})]
    nb.cells = [cell]
    assert freeze_widgets(nb) == 1
    data = nb.cells[0].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data
    assert "hello" in data["text/html"] and "text/plain" in data
    assert "widgets" not in nb.metadata


def test_external_resources_are_found_and_links_are_not():
    page = ('<script src="https://cdn.example/x.js"></script><img src="data:image/png;base64,A">'
            '<link rel="stylesheet" href="//cdn.example/y.css"><a href="https://ismir.net">'
            "</a><audio controls src='http://a.example/s.wav'></audio>")
    assert external_resources(page) == ["//cdn.example/y.css", "http://a.example/s.wav",
                                        "https://cdn.example/x.js"]
    assert count_media(page) == (1, 1)


def _notebook(path, title, cells, learn=("one", "two")):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNEL
    bullets = "\n".join(f"- {b}" for b in learn)
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nMath $x^2$.\n\n"
                                              f"**What you will learn**\n{bullets}")]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


def test_a_tiny_book_is_built_with_pages_navigation_audio_and_frozen_widgets(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "01_first.ipynb", "01 · First", [
        "import numpy as np\nfrom IPython.display import Audio, display\n"
        "display(Audio(np.sin(np.arange(4000) / 3), rate=8000))",
        "import ipywidgets as w\nw.VBox([w.HTML('<b>7 notes</b>'), w.FloatSlider(0.3)])"])
    _notebook(folder / "02_second.ipynb", "02 · Second", ["print('hi')"])
    table = tmp_path / "results.md"
    table.write_text("| set | note_f1 |\n|---|---|\n| sample | 0.84 |\n")
    out = tmp_path / "site"
    manifest = build_book(out, folder, bench_table=table, bench_chart=tmp_path / "none.png",
                          log=lambda line: None)
    assert sorted(p.name for p in out.iterdir()) == ["01_first.html", "02_second.html",
                                                    "index.html", "manifest.json"]
    first = (out / "01_first.html").read_text()
    assert external_resources(first) == []
    assert count_media(first) == (0, 1)
    assert "data:audio/wav;base64," in first
    assert "<b>7 notes</b>" in first and 'type="range"' in first  # the frozen widget
    assert "widget-view+json" not in first and "<math" in first
    assert 'href="02_second.html"' in first and 'href="index.html"' in first
    second = (out / "02_second.html").read_text()
    assert 'href="01_first.html"' in second and 'href="02_second.html"' not in second
    index = (out / "index.html").read_text()
    assert 'href="01_first.html"' in index and 'href="02_second.html"' in index
    assert "<li>one</li>" in index and "<td>0.84</td>" in index
    assert manifest["total"] == {"pages": 3, "images": 0, "audio": 1,
                                 "seconds": manifest["total"]["seconds"]}
    assert json.loads((out / "manifest.json").read_text())["mode"] == "quick"


def test_a_failing_cell_stops_the_build_with_one_line_and_keeps_the_old_site(tmp_path,
                                                                             capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "01_bad.ipynb", "01 · Bad", ["x = 1", "1 / 0"])
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("old")
    with pytest.raises(BookError, match=r"01_bad.ipynb: cell 2 \(code cell 2: '1 / 0'\) "
                                        r"failed: ZeroDivisionError: division by zero"):
        build_book(out, folder, log=lambda line: None)
    assert (out / "index.html").read_text() == "old"
    assert not list(tmp_path.glob(".site.building"))
    assert main(["--notebooks", str(folder), "--out", str(out)]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("book: 01_bad.ipynb: cell 2") and "ZeroDivisionError" in last
