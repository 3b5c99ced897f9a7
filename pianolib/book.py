"""The series as a static website: every notebook executed and converted to one HTML page.

Notebook: all of them (``make book`` = ``python -m pianolib.book --out build/book``).

The site is built with nbconvert, not Jupyter Book 2: MyST's HTML build fetches its theme
from the internet at build time, nbconvert works offline. Every page is self-contained and
opens from the file system as well as from a web server:

- figures are PNG data URLs and audio players carry their WAV data (``IPython.display.Audio``
  embeds it), so nothing is fetched when a page opens;
- math is converted from TeX to MathML when the page is built (``latex2mathml``), which
  browsers draw themselves: no MathJax, whose copy from a CDN fails offline and whose web
  fonts a browser refuses to load from ``file://``;
- widgets are drawn from their state at the end of the run (nbclient's
  ``store_widget_state``) as static HTML: text, the audio player with its data, the
  pictures of an ``Output`` widget, sliders and buttons as disabled controls at their values.
  The ipywidgets HTML manager that would make them live loads from a CDN and is left out;
- no script, style sheet or picture is loaded from another host (checked after the build).

Each page has previous / contents / next links at its top and bottom; ``index.html`` lists
the notebooks with their "What you will learn" bullets, then the benchmark table of the README
(``data/bench/results.md``) and its chart.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PianolibError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BENCH_TABLE = ROOT / "data" / "bench" / "results.md"
BENCH_CHART = ROOT / "data" / "bench" / "results.png"
#: Seconds one cell may run before the build stops: quick mode (cells take at most minutes)
#: and full mode (hours of training).
CELL_TIMEOUT = 900
CELL_TIMEOUT_FULL = 6 * 3600
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


class BookError(PianolibError):
    """A notebook failed while the book was built; the message names the notebook and cell."""


@dataclass
class Chapter:
    """One notebook of the series and the page built from it."""

    path: Path
    title: str
    learn: list[str] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0
    audio: int = 0

    @property
    def page(self) -> str:
        """The page's file name, e.g. ``01_data_and_preprocessing.html``."""
        return self.path.stem + ".html"


def notebook_paths(folder: str | Path = NOTEBOOKS) -> list[Path]:
    """The series' notebooks (``NN_*.ipynb``) of a folder, in order."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


def notebook_summary(nb) -> tuple[str, list[str]]:
    """A notebook's title and its "What you will learn" bullets (Markdown, one per bullet).

    Args:
        nb: The notebook (``nbformat`` node or the JSON dict).

    Returns:
        ``(title, bullets)``: the first ``# `` heading of the first Markdown cell without its
        ``#``, and the bullets that follow the line "What you will learn" in that cell,
        continuation lines joined. Empty when the notebook has no such line.
    """
    title, bullets = "", []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        lines = source.splitlines()
        if not title:
            title = next((ln[2:].strip() for ln in lines if ln.startswith("# ")), "")
        start = next((i for i, ln in enumerate(lines) if "what you will learn" in ln.lower()),
                     None)
        if start is None:
            continue
        for ln in lines[start + 1:]:
            if ln.startswith(("- ", "* ")):
                bullets.append(ln[2:].strip())
            elif bullets and ln.startswith(" ") and ln.strip():
                bullets[-1] += " " + ln.strip()
            elif bullets or ln.strip():
                break
        break
    return title, bullets


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """A TeX formula as MathML (``<math>``); the TeX in a ``<code>`` if it cannot be read.

    ``aligned`` (which latex2mathml reads as plain ``&`` signs) is converted as ``align*``,
    the same table of aligned rows without equation numbers.
    """
    from latex2mathml.converter import convert

    tex = re.sub(r"\\(begin|end)\{aligned\}", r"\\\1{align*}", tex)
    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - an unreadable formula is shown as it was written
        return f'<code class="pl-tex">{html.escape(tex)}</code>'


def _mathml_renderer(**kwargs):
    """nbconvert's Markdown renderer, with ``$...$``, ``$$...$$`` and environments as MathML."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class MathMLRenderer(IPythonRenderer):
        def block_math(self, body: str) -> str:
            return tex_to_mathml(body, display=True)

        def multiline_math(self, text: str) -> str:
            return tex_to_mathml(text.strip().strip("$"), display=True)

        def latex_environment(self, name: str, body: str) -> str:
            return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

        def inline_math(self, body: str) -> str:
            return tex_to_mathml(body)

    return MathMLRenderer(escape=False, **kwargs)


def markdown_html(text: str, inline: bool = False, **renderer_options) -> str:
    """Markdown as HTML with nbconvert's parser, formulas as MathML.

    Args:
        text: The Markdown.
        inline: Drop the ``<p>`` around a single paragraph (for a list item).
        **renderer_options: For nbconvert's ``IPythonRenderer`` (``embed_images``, ``path``,
            ``attachments``, ...).
    """
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    out = MarkdownWithMath(renderer=_mathml_renderer(**renderer_options)).render(text).strip()
    if inline and out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return out


# --- widgets: a static picture of their last state -------------------------------------------


def _model_id(ref) -> str:
    return ref[len("IPY_MODEL_"):] if isinstance(ref, str) and ref.startswith("IPY_MODEL_") \
        else str(ref)


def _buffer(entry: dict, name: str) -> bytes | None:
    for buf in entry.get("buffers", []):
        if buf.get("path") == [name]:
            return base64.b64decode(buf["data"]) if buf.get("encoding") == "base64" \
                else buf["data"].encode()
    value = entry.get("state", {}).get(name)
    return value.encode() if isinstance(value, str) and value else None


def _output_html(output: dict, states: dict) -> str:
    """One output of an ``Output`` widget (stream, display data, error) as static HTML."""
    kind = output.get("output_type")
    if kind == "stream":
        text = output.get("text", "")
        text = text if isinstance(text, str) else "".join(text)
        return f'<pre class="pl-w-stream">{html.escape(text)}</pre>'
    if kind == "error":
        text = "\n".join(output.get("traceback", [])) or output.get("evalue", "")
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        return f'<pre class="pl-w-error">{html.escape(text)}</pre>'
    data = output.get("data", {})
    if WIDGET_VIEW in data:
        return widget_html(data[WIDGET_VIEW].get("model_id", ""), states)
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            payload = data[mime] if isinstance(data[mime], str) else "".join(data[mime])
            return f'<img src="data:{mime};base64,{payload.strip()}" alt="figure">'
    if "image/svg+xml" in data:
        return "".join(data["image/svg+xml"])
    if "text/html" in data:
        return "".join(data["text/html"])
    if "text/plain" in data:
        return f'<pre>{html.escape("".join(data["text/plain"]))}</pre>'
    return ""


def widget_html(model_id: str, states: dict) -> str:
    """A widget and its children as static HTML, from the saved widget state.

    Boxes keep their layout (``HBox`` a row, ``VBox`` a column); ``HTML`` and ``Label`` show
    their text; ``Audio`` becomes an ``<audio>`` player with its bytes as a data URL; an
    ``Output`` widget shows its outputs (the piano roll of
    :class:`~pianolib.widgets.ListeningWidget` is a PNG there); sliders, drop-downs, toggle
    buttons and check boxes become disabled controls showing their values.

    Args:
        model_id: The widget's model id (with or without ``IPY_MODEL_``).
        states: ``{model_id: {"model_name", "model_module", "state", "buffers"?}}``, the
            ``state`` of the notebook's widget metadata.

    Returns:
        HTML; a note in a ``pl-w-missing`` span when the model is not in ``states``.
    """
    model_id = _model_id(model_id)
    entry = states.get(model_id)
    if entry is None:
        return f'<span class="pl-w-missing">(widget {html.escape(model_id)}: no saved state)</span>'
    name, state = entry.get("model_name", ""), entry.get("state", {})
    desc = html.escape(str(state.get("description", "")))
    label = f'<span class="pl-w-label">{desc}</span> ' if desc else ""
    if name.endswith("BoxModel") or name in ("AccordionModel", "TabModel", "StackModel"):
        direction = "row" if name in ("HBoxModel", "GridBoxModel") else "column"
        children = "".join(widget_html(c, states) for c in state.get("children", []))
        return f'<div class="pl-w-box pl-w-{direction}">{children}</div>'
    if name in ("HTMLModel", "HTMLMathModel"):
        return f'<div class="pl-w-html">{label}{state.get("value", "")}</div>'
    if name == "LabelModel":
        return f'<span class="pl-w-html">{html.escape(str(state.get("value", "")))}</span>'
    if name in ("AudioModel", "ImageModel", "VideoModel"):
        data = _buffer(entry, "value")
        fmt = state.get("format", "wav" if name == "AudioModel" else "png")
        if not data:
            return '<span class="pl-w-empty">(empty media widget)</span>'
        kind = {"AudioModel": "audio", "ImageModel": "image", "VideoModel": "video"}[name]
        url = f"data:{kind}/{fmt};base64,{base64.b64encode(data).decode()}"
        if kind == "image":
            return f'<img src="{url}" alt="widget image">'
        return f'<{kind} controls src="{url}"></{kind}>'
    if name == "OutputModel":
        inner = "".join(_output_html(o, states) for o in state.get("outputs", []))
        return f'<div class="pl-w-output">{inner}</div>'
    if name.endswith("SliderModel") and "value" in state:
        value = state["value"]
        if isinstance(value, list):  # a range slider
            shown = " – ".join(str(v) for v in value)
            value = value[0]
        else:
            shown = (f"{value:.{state.get('readout_format', '.2f').lstrip('.').rstrip('f')}f}"
                     if name == "FloatSliderModel" and state.get("readout_format", "").endswith(
                         "f") else str(value))
        return (f'<label class="pl-w-control">{label}<input type="range" disabled '
                f'min="{state.get("min", 0)}" max="{state.get("max", 100)}" '
                f'step="{state.get("step", 1)}" value="{value}"> '
                f'<span class="pl-w-value">{html.escape(shown)}</span></label>')
    if name in ("DropdownModel", "SelectModel", "RadioButtonsModel"):
        options = state.get("_options_labels", [])
        index = state.get("index")
        opts = "".join(f'<option{" selected" if i == index else ""}>{html.escape(str(o))}'
                       "</option>" for i, o in enumerate(options))
        return f'<label class="pl-w-control">{label}<select disabled>{opts}</select></label>'
    if name == "ToggleButtonsModel":
        options = state.get("_options_labels", [])
        index = state.get("index")
        buttons = "".join(
            f'<button disabled class="pl-w-toggle{" pl-w-on" if i == index else ""}">'
            f"{html.escape(str(o))}</button>" for i, o in enumerate(options))
        return f'<span class="pl-w-control">{label}{buttons}</span>'
    if name in ("CheckboxModel", "ToggleButtonModel"):
        checked = " checked" if state.get("value") else ""
        return (f'<label class="pl-w-control"><input type="checkbox" disabled{checked}> '
                f"{desc}</label>")
    if name in ("ButtonModel",):
        return f'<button disabled>{html.escape(str(state.get("description", "")))}</button>'
    if "value" in state and not isinstance(state["value"], (dict, list)):
        return (f'<span class="pl-w-control">{label}'
                f'<span class="pl-w-value">{html.escape(str(state["value"]))}</span></span>')
    return ""


def freeze_widgets(nb) -> int:
    """Replace every widget output of an executed notebook by its static HTML picture.

    The widget state saved by the execution (``nb.metadata.widgets``) is read, each output
    with a widget view gets a ``text/html`` rendering from :func:`widget_html` (its
    ``text/plain`` is kept), and the state is removed from the metadata, so that nbconvert does
    not add the widget manager script (which would load from a CDN).

    Args:
        nb: An executed notebook (``nbformat`` node), changed in place.

    Returns:
        The number of widget outputs replaced.
    """
    states = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    replaced = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            view = data.pop(WIDGET_VIEW)
            picture = widget_html(view.get("model_id", ""), states)
            data["text/html"] = f'<div class="pl-widget">{picture}</div>'
            replaced += 1
    nb.metadata.pop("widgets", None)
    return replaced


# --- executing ------------------------------------------------------------------------------


def _cell_line(nb, index: int) -> str:
    """``cell 12 (code cell 7: 'its first line')``, for an error message."""
    code_no = sum(c.cell_type == "code" for c in nb.cells[: index + 1])
    first = next((ln for ln in nb.cells[index].source.splitlines() if ln.strip()), "")
    return f"cell {index} (code cell {code_no}: {first[:60]!r})"


def _notebook_client(nb, **kwargs):
    """nbclient's ``NotebookClient``, with the kernel's replies read in half-second polls.

    With ipywidgets' ``Output`` widget in a cell (notebook 05's ListeningWidget), a wait for
    the kernel's reply sometimes misses the message's arrival and sleeps until the cell's
    timeout runs out (measured here: 7 stalls in 13 runs of a small notebook with Output
    widgets, each as long as the timeout; none in 8 runs with this change; see
    jupyter/nbclient#312). Polling in short slices ends such a stall within half a second.
    """
    from nbclient import NotebookClient

    class Client(NotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            for channel in (kc.shell_channel, kc.iopub_channel):
                channel.get_msg = _sliced(channel.get_msg)
            return kc

    return Client(nb, **kwargs)


def _sliced(get_msg, step: float = 0.5):
    """``get_msg(timeout)`` of a kernel channel, as polls of at most ``step`` seconds."""
    from queue import Empty

    async def get(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            try:
                return await get_msg(timeout=step if left is None else max(0.0, min(step, left)))
            except Empty:
                if left is not None and left <= step:
                    raise

    return get


def execute_notebook(path: str | Path, timeout: int = CELL_TIMEOUT, full: bool = False,
                     kernel_name: str = "python3", kernel_log: Path | None = None):
    """Run every cell of a notebook in a fresh kernel, in the notebook's folder.

    Args:
        path: The ``.ipynb`` file.
        timeout: Seconds one cell may run.
        full: Run in full mode (``PIANOLIB_FULL=1`` for the kernel); quick mode otherwise.
        kernel_name: The Jupyter kernel (``python3``: the Python of this environment).
        kernel_log: A file that gets the kernel's own output (TensorFlow's start-up lines);
            it goes to this process's terminal when None.

    Returns:
        The executed notebook, with the widget state saved in its metadata.

    Raises:
        BookError: One line naming the notebook, the cell and the error, when a cell fails or
            runs out of time.
    """
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = _notebook_client(nb, timeout=timeout, kernel_name=kernel_name,
                              store_widget_state=True, allow_errors=False,
                              resources={"metadata": {"path": str(path.parent)}})
    env = {**os.environ, "PIANOLIB_FULL": "1" if full else "0"}
    log = open(kernel_log, "a") if kernel_log else None
    index = -1
    try:
        with client.setup_kernel(env=env, **({"stdout": log, "stderr": log} if log else {})):
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            client.set_widgets_metadata()
    except CellExecutionError as err:
        raise BookError(f"{path.name}: {_cell_line(nb, index)} failed: {err.ename}: "
                        f"{str(err.evalue).splitlines()[0] if err.evalue else ''}") from None
    except CellTimeoutError:
        raise BookError(f"{path.name}: {_cell_line(nb, index)} ran longer than {timeout} s "
                        "(raise it with --timeout)") from None
    except DeadKernelError as err:
        where = _cell_line(nb, index) if index >= 0 else "start-up"
        raise BookError(f"{path.name}: the kernel died in {where}: {err}") from None
    finally:
        if log:
            log.close()
    return nb


# --- pages ----------------------------------------------------------------------------------

BOOK_CSS = """
.pl-nav { display: flex; justify-content: space-between; align-items: center; gap: 1em;
  max-width: 1100px; margin: 0.6em auto; padding: 0.5em 1em; border: 1px solid #ddd;
  border-radius: 6px; background: #f7f7f9; font-family: system-ui, sans-serif;
  font-size: 14px; }
.pl-nav a { text-decoration: none; color: #1a5fb4; }
.pl-nav a:hover { text-decoration: underline; }
.pl-nav .pl-none { color: #aaa; }
.pl-banner { max-width: 1100px; margin: 0 auto 0.6em; padding: 0 1em; color: #555;
  font-family: system-ui, sans-serif; font-size: 13px; }
math { font-size: 1.1em; }
.pl-widget { border-left: 3px solid #8ab; padding: 0.3em 0.6em; }
.pl-w-box { display: flex; gap: 0.5em; flex-wrap: wrap; }
.pl-w-column { flex-direction: column; }
.pl-w-row { flex-direction: row; align-items: center; }
.pl-w-control { display: inline-flex; align-items: center; gap: 0.4em; margin-right: 1em; }
.pl-w-toggle { margin: 0 1px; }
.pl-w-on { font-weight: bold; background: #cde; }
.pl-w-missing { color: #a00; }
"""

TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{% block extra_css %}<link rel="icon" href="data:,">
<style type="text/css">{{ resources.book.css }}</style>{% endblock %}
{%- block body_header -%}
{{ super() }}
{{ resources.book.nav }}
<div class="pl-banner">{{ resources.book.banner }}</div>
{%- endblock body_header -%}
{% block body_footer %}
{{ resources.book.nav }}
{{ super() }}
{% endblock body_footer %}
"""


def nav_html(chapters: list[Chapter], i: int | None) -> str:
    """Previous / contents / next links (``i`` None: the landing page)."""
    def link(j: int, arrow: str) -> str:
        if i is None or not 0 <= j < len(chapters):
            return '<span class="pl-none"></span>'
        ch = chapters[j]
        text = f"← {ch.title}" if arrow == "prev" else f"{ch.title} →"
        return f'<a class="pl-{arrow}" href="{ch.page}">{html.escape(text)}</a>'

    middle = '<a class="pl-index" href="index.html">Contents</a>' if i is not None else ""
    prev = link(i - 1, "prev") if i is not None else '<span class="pl-none"></span>'
    nxt = link(i + 1, "next") if i is not None else '<span class="pl-none"></span>'
    return f'<nav class="pl-nav">{prev}{middle}{nxt}</nav>'


def _exporter():
    """nbconvert's HTML exporter (lab template) with the book's template and MathML formulas."""
    from jinja2 import DictLoader, pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    class BookExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            renderer = _mathml_renderer(
                attachments=cell.get("attachments", {}), embed_images=self.embed_images,
                path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links)
            return MarkdownWithMath(renderer=renderer).render(source)

    return BookExporter(template_name="lab", template_file="book.html.j2", embed_images=True,
                        extra_loaders=[DictLoader({"book.html.j2": TEMPLATE})])


def page_html(nb, chapters: list[Chapter], i: int, banner: str) -> str:
    """One executed notebook as an HTML page with navigation (nbconvert, lab template)."""
    nb.metadata["title"] = chapters[i].title
    resources = {"book": {"nav": nav_html(chapters, i), "banner": banner, "css": BOOK_CSS}}
    body, _ = _exporter().from_notebook_node(nb, resources=resources)
    return body


def bench_html(table: Path = BENCH_TABLE, chart: Path = BENCH_CHART) -> str:
    """The README's benchmark table (its Markdown file) and chart, for the landing page."""
    parts = []
    if table.is_file():
        parts.append(markdown_html(table.read_text()))
    if chart.is_file():
        data = base64.b64encode(chart.read_bytes()).decode()
        parts.append(f'<img class="pl-chart" src="data:image/png;base64,{data}" '
                     'alt="benchmark chart: note F1 of pianolib and Basic Pitch">')
    return "\n".join(parts) or "<p>(no benchmark measured yet: <code>make bench</code>)</p>"


INDEX_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 1em auto; padding: 0 1em;
  line-height: 1.45; color: #222; }
h1 { margin-bottom: 0.2em; }
.pl-chapter { border: 1px solid #ddd; border-radius: 6px; padding: 0.4em 1em; margin: 0.8em 0; }
.pl-chapter h2 { font-size: 1.15em; margin: 0.4em 0; }
.pl-chapter a { color: #1a5fb4; text-decoration: none; }
.pl-chapter ul { margin: 0.3em 0 0.5em; }
.pl-meta { color: #666; font-size: 0.85em; }
table { border-collapse: collapse; font-size: 12px; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
.pl-chart { max-width: 100%; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
"""


def index_html(chapters: list[Chapter], banner: str, bench: str) -> str:
    """The landing page: the series' map (titles, what each teaches, links) and the benchmark."""
    items = []
    for ch in chapters:
        bullets = "".join(f"<li>{markdown_html(b, inline=True)}</li>" for b in ch.learn)
        items.append(
            f'<section class="pl-chapter"><h2><a href="{ch.page}">{html.escape(ch.title)}</a>'
            f"</h2>{'<ul>' + bullets + '</ul>' if bullets else ''}"
            f'<div class="pl-meta">{ch.images} figures · {ch.audio} audio players · '
            f"ran in {ch.seconds:.0f} s</div></section>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>pianolib: piano transcription, step by step</title>
<link rel="icon" href="data:,">
<style>{BOOK_CSS}{INDEX_CSS}</style>
</head>
<body>
<h1>pianolib: piano transcription, step by step</h1>
<p>From a piano recording to a MIDI file with small neural networks, taught in seven Jupyter
notebooks. Each page below is a notebook as it ran, with its figures, tables, audio players
and widgets (drawn as they were at the end of the run; run the notebook in JupyterLab to move
their sliders).</p>
<p class="pl-meta">{banner}</p>
<h2>The notebooks</h2>
{"".join(items)}
<h2>Benchmark against Basic Pitch</h2>
{bench}
</body>
</html>
"""


_EXTERNAL = re.compile(
    r"<(?:script|img|audio|source|video|iframe|embed)\b[^>]*?\bsrc\s*=\s*[\"']?((?:https?:)?//[^\"'\s>]+)"
    r"|<link\b[^>]*?\bhref\s*=\s*[\"']?((?:https?:)?//[^\"'\s>]+)"
    r"|@import\s+(?:url\()?[\"']?((?:https?:)?//[^\"')\s]+)", re.IGNORECASE)


def external_resources(page: str) -> list[str]:
    """The URLs of another host a page would load (scripts, style sheets, media), if any."""
    return sorted({next(g for g in m.groups() if g) for m in _EXTERNAL.finditer(page)})


def count_media(page: str) -> tuple[int, int]:
    """``(images, audio players)`` of a page: ``<img`` and ``<audio`` tags."""
    return len(re.findall(r"<img\b", page)), len(re.findall(r"<audio\b", page))


def build_book(out: str | Path = ROOT / "build" / "book", folder: str | Path = NOTEBOOKS,
               full: bool = False, timeout: int | None = None, only: list[str] | None = None,
               bench_table: Path = BENCH_TABLE, bench_chart: Path = BENCH_CHART,
               log=None) -> dict:
    """Execute the notebooks of a folder and write the site: one page each and ``index.html``.

    The site is built in a sibling folder and moved into place at the end, so a failed build
    leaves the previous site as it was. The kernels' own output (not the cells') goes to
    ``<out>-kernels.log`` beside the site.

    Args:
        out: The site's folder (replaced).
        folder: Where the notebooks are (``NN_*.ipynb``); they run with it as working folder.
        full: Full mode (``PIANOLIB_FULL=1``); quick mode otherwise.
        timeout: Seconds one cell may run (default: 15 minutes, 6 hours in full mode).
        only: Build only the notebooks whose names start with one of these (``["05"]``).
        bench_table: The benchmark's Markdown table for the landing page.
        bench_chart: Its chart (PNG), if any.
        log: Where progress lines go (a function of one string; default: print).

    Returns:
        The site's manifest (also written to ``manifest.json``): mode, per page its title,
        file, figures, audio players and run time, and the totals.

    Raises:
        BookError: When a notebook fails (the message names it and the cell), or a page would
            load something from another host.
    """
    import nbformat

    log = log or (lambda line: print(line, flush=True))
    timeout = timeout or (CELL_TIMEOUT_FULL if full else CELL_TIMEOUT)
    out = Path(out)
    paths = [p for p in notebook_paths(folder)
             if not only or any(p.name.startswith(o) for o in only)]
    if not paths:
        raise BookError(f"no notebooks NN_*.ipynb in {folder}" + (f" matching {only}"
                                                                  if only else ""))
    chapters = []
    for p in paths:
        title, learn = notebook_summary(nbformat.read(p, as_version=4))
        chapters.append(Chapter(p, title or p.stem, learn))
    mode = "full" if full else "quick"
    stamp = time.strftime("%Y-%m-%d %H:%M")
    banner = (f"Executed in {mode} mode on {stamp}"
              + (" (small corpus, short training: <code>PIANOLIB_FULL=1 make book</code> runs "
                 "the full one)" if not full else "") + ".")
    tmp = out.parent / f".{out.name}.building"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    kernel_log = out.parent / f"{out.name}-kernels.log"
    kernel_log.write_text("")
    try:
        for i, ch in enumerate(chapters):
            log(f"[{i + 1}/{len(chapters)}] {ch.path.name} ({mode} mode) ...")
            start = time.perf_counter()
            nb = execute_notebook(ch.path, timeout=timeout, full=full, kernel_log=kernel_log)
            ch.seconds = time.perf_counter() - start
            widgets = freeze_widgets(nb)
            page = page_html(nb, chapters, i, banner)
            external = external_resources(page)
            if external:
                raise BookError(f"{ch.page} would load from another host: {external[:3]}")
            ch.images, ch.audio = count_media(page)
            (tmp / ch.page).write_text(page)
            log(f"    {ch.page}: {ch.seconds:.0f} s, {ch.images} figures, {ch.audio} audio "
                f"players, {widgets} widgets frozen")
        index = index_html(chapters, banner, bench_html(bench_table, bench_chart))
        (tmp / "index.html").write_text(index)
        images, audio = count_media(index)
        manifest = {
            "mode": mode, "built": stamp,
            "pages": [{"file": ch.page, "notebook": ch.path.name, "title": ch.title,
                       "images": ch.images, "audio": ch.audio, "seconds": round(ch.seconds, 1)}
                      for ch in chapters],
            "index": {"file": "index.html", "images": images, "audio": audio},
            "total": {"pages": len(chapters) + 1,
                      "images": images + sum(ch.images for ch in chapters),
                      "audio": audio + sum(ch.audio for ch in chapters),
                      "seconds": round(sum(ch.seconds for ch in chapters), 1)},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m pianolib.book [--full] [--out build/book] [--only 05 ...]``."""
    import argparse

    from .tutorial import full_mode

    parser = argparse.ArgumentParser(
        prog="python -m pianolib.book",
        description="Execute the notebooks (quick mode) and build the static site: one HTML "
                    "page per notebook, index.html with the series' map and the benchmark.")
    parser.add_argument("--out", default=str(ROOT / "build" / "book"), help="the site's folder")
    parser.add_argument("--full", action="store_true",
                        help="full mode (also PIANOLIB_FULL=1): long, hours of training")
    parser.add_argument("--timeout", type=int, default=None,
                        help=f"seconds one cell may run (default {CELL_TIMEOUT}, "
                             f"{CELL_TIMEOUT_FULL} in full mode)")
    parser.add_argument("--only", nargs="+", metavar="NN",
                        help="only the notebooks whose names start with these")
    parser.add_argument("--notebooks", default=str(NOTEBOOKS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        manifest = build_book(args.out, args.notebooks, full=args.full or full_mode(),
                              timeout=args.timeout, only=args.only)
    except BookError as err:
        print(f"book: {err}", flush=True)
        return 1
    t = manifest["total"]
    print(f"book: {t['pages']} pages, {t['images']} figures, {t['audio']} audio players in "
          f"{args.out} ({time.perf_counter() - start:.0f} s); open {args.out}/index.html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
