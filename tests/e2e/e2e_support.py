"""What the browser tests look for on a page, and a JupyterLab 4 server to drive.

Shared by ``test_e2e_book.py`` and ``test_e2e_lab.py``: the error detector
(:func:`output_errors`), the console watcher (:class:`PageWatch`), the media checks
(:func:`media_report`), and the JupyterLab helpers (:class:`Lab`, :func:`run_all_cells`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

#: What the run checked (printed at its end and written to build/e2e-screenshots/summary.json).
CHECKED: dict = {"book_pages": {}, "lab_notebooks": {}, "widget": {}}

#: What counts as an error in an output: a Python traceback or exception line, or a widget
#: that the page could not draw (JupyterLab's messages; the book's missing-state note).
ERROR_JS = r"""() => {
  const bad = new RegExp([
    String.raw`Traceback \(most recent call last\)`,
    'Error displaying widget', 'Error rendering widget', 'Failed to load model class',
    'Could not create a view', 'Click to show javascript error',
    String.raw`widget \S+: no saved state`].join('|'));
  const raised = /^\w*(Error|Exception): /m;  // an exception line, in an error/stderr output
  const found = [];
  const outputs = document.querySelectorAll(
    '.jp-OutputArea-output, .pl-w-missing, .pl-w-error, .widget-output .jp-RenderedText');
  for (const el of outputs) {
    const text = el.innerText || el.textContent || '';
    const mime = el.getAttribute('data-mime-type') || '';
    if (bad.test(text) || (/stderr|error/.test(mime) && raised.test(text))) {
      found.push(text.trim().slice(0, 400));
    }
  }
  return [...new Set(found)];
}"""

#: Images (with their natural width) and audio players (with their ready state) of a page.
MEDIA_JS = r"""() => ({
  images: [...document.images].map((i) => ({
    src: (i.currentSrc || i.src).slice(0, 60), width: i.naturalWidth, complete: i.complete})),
  audio: [...document.querySelectorAll('audio')].map((a) => ({
    src: (a.currentSrc || (a.querySelector('source') || {}).src || a.src || '').slice(0, 60),
    readyState: a.readyState, error: a.error ? a.error.code : null})),
})"""

MEDIA_READY_JS = r"""() => [...document.images].every((i) => i.complete)
  && [...document.querySelectorAll('audio')].every((a) => a.readyState >= 1 || a.error)"""


def output_errors(page) -> list[str]:
    """The error texts shown in a page's outputs (empty: none). The suite's error detector."""
    return page.evaluate(ERROR_JS)


class PageWatch:
    """Collects what a page reports as going wrong: console errors, uncaught exceptions,
    requests that failed, responses with an HTTP error status."""

    def __init__(self, page):
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(
            f"request failed: {r.url[:120]} ({r.failure})"))
        page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.url[:120]}")
                if r.status >= 400 else None)


def media_report(page, timeout_ms: int = 20000) -> dict:
    """Wait until every image and audio player has loaded (or failed), then report them."""
    try:
        page.wait_for_function(MEDIA_READY_JS, timeout=timeout_ms)
    except Exception:  # noqa: BLE001 - the report below shows which one did not load
        pass
    return page.evaluate(MEDIA_JS)


def full_page_screenshot(page, path: Path, max_height: int = 15000) -> list[Path]:
    """PNGs of the whole page: ``path``, then ``-2.png``, ``-3.png``, ... for each further
    ``max_height`` pixels of a long page."""
    height = page.evaluate("() => document.documentElement.scrollHeight")
    if height <= max_height:
        page.screenshot(path=str(path), full_page=True)
        return [path]
    width = page.viewport_size["width"]
    paths = []
    for k, top in enumerate(range(0, height, max_height)):
        shot = path if k == 0 else path.with_name(f"{path.stem}-{k + 1}.png")
        page.screenshot(path=str(shot), full_page=True, clip={
            "x": 0, "y": top, "width": width, "height": min(max_height, height - top)})
        paths.append(shot)
    return paths


# --- JupyterLab ------------------------------------------------------------------------------

#: JupyterLab settings for the run: no autosave (the copies stay as they are), every cell in
#: the page (no windowing, so every prompt and output can be read), no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A real ``jupyter lab`` on 127.0.0.1 with a random token, serving a temp folder.

    The folder holds a copy of ``notebooks/`` (so nothing the page does can change the
    repository's notebooks) and a link to ``data/``; the kernel is this environment's
    ``python3``, in quick mode (``PIANOLIB_FULL=0``).
    """

    def __init__(self, root: Path, repo: Path, log: Path):
        self.root, self.token, self.port = root, secrets.token_hex(16), free_port()
        self.keep: str | None = None  # a notebook whose kernel shutdown_kernels() spares
        (root / "notebooks").mkdir(parents=True, exist_ok=True)
        for nb in sorted((repo / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            shutil.copy2(nb, root / "notebooks" / nb.name)
        if (repo / "data").exists() and not (root / "data").exists():
            (root / "data").symlink_to(repo / "data")
        settings = root / ".lab-settings"
        for name, value in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(value))
        env = {**os.environ, "PIANOLIB_FULL": "0", "JUPYTERLAB_SETTINGS_DIR": str(settings),
               "JUPYTERLAB_WORKSPACES_DIR": str(root / ".lab-workspaces"),
               "JUPYTER_RUNTIME_DIR": str(root / ".lab-runtime")}
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
             f"--port={self.port}", "--port-retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}", "--allow-root", "--ServerApp.terminals_enabled=False",
             "--LabApp.news_url=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until the server answers its status API."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}; see "
                                   f"{self.log.name}")
            try:
                self.api("status")
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer in {timeout:.0f} s; see {self.log.name}")

    def api(self, path: str, method: str = "GET"):
        """A call to the server's REST API, as JSON.

        A GET that answers 5xx is asked again (5 tries, 0.5 s apart): jupyter_server's
        ``GET /api/kernels`` fails with 500 while a kernel is still starting ("The
        'last_activity' trait ... expected a datetime, not the NoneType None", seen in CI
        right after notebook 08's run), a server race, not a failure of the page under test.
        """
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        for attempt in range(5 if method == "GET" else 1):
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    body = resp.read()
                return json.loads(body) if body else None
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or method != "GET" or attempt == 4:
                    raise
                time.sleep(0.5)

    def page_url(self, notebook: str) -> str:
        """The page that opens ``notebooks/<notebook>`` in JupyterLab (a fresh workspace)."""
        return f"{self.url}/lab/tree/notebooks/{notebook}?reset&token={self.token}"

    def kernels_idle(self) -> bool:
        """True when every running kernel is idle."""
        return all(k.get("execution_state") == "idle" for k in self.api("kernels"))

    def shutdown_kernels(self) -> None:
        """Stop every kernel but the one of the notebook ``self.keep`` (a path under the root,
        or None): one notebook running at a time keeps the two cores for one kernel."""
        kept = {s["kernel"]["id"] for s in self.api("sessions")
                if self.keep and s.get("path") == self.keep and s.get("kernel")}
        for k in self.api("kernels"):
            if k["id"] in kept:
                continue
            try:
                self.api(f"kernels/{k['id']}", method="DELETE")
            except OSError:
                pass

    def stop(self) -> None:
        """Stop the server (and its kernels)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


#: Per code cell: its prompt ("[3]:", "[*]:", "[ ]:") and whether its source is empty.
CELLS_JS = r"""() => [...document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell')].map((c) => {
  const prompt = c.querySelector('.jp-InputPrompt');
  const editor = c.querySelector('.cm-content');
  return {prompt: prompt ? prompt.textContent.trim() : '',
          empty: !(editor && editor.textContent.trim())};
})"""


def open_notebook(page, lab: Lab, notebook: str, timeout_s: float = 120) -> None:
    """Open a notebook in JupyterLab and wait until its cells are on the page and its kernel
    is idle."""
    page.goto(lab.page_url(notebook), wait_until="domcontentloaded")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if lab.api("kernels") and lab.kernels_idle() and page.evaluate(
                "() => !!document.querySelector('.jp-Notebook-ExecutionIndicator')"):
            break
        page.wait_for_timeout(500)
    else:
        raise TimeoutError(f"{notebook}: no idle kernel after {timeout_s:.0f} s")
    if page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").count():
        page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
        page.keyboard.press("Escape")
        page.keyboard.press("Control+b")  # hide the file browser: the notebook gets the width


def click_menu(page, menu: str, item: str) -> None:
    """Choose ``item`` in the menu bar's ``menu`` (as a person does with the mouse)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def wait_until_run(page, lab: Lab, timeout_s: float) -> list[dict]:
    """Wait until no cell waits or runs and the kernel is idle (twice in a row, 1 s apart).

    Returns:
        The code cells' states (:data:`CELLS_JS`).
    """
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        cells = page.evaluate(CELLS_JS)
        busy = any("*" in c["prompt"] for c in cells)
        quiet = quiet + 1 if not busy and lab.kernels_idle() else 0
        if quiet >= 2:
            return cells
    raise TimeoutError(f"cells still running after {timeout_s:.0f} s")


def run_all_cells(page, lab: Lab, notebook: str, timeout_s: float = 600) -> list[dict]:
    """Open a notebook, Run → Run All Cells, and wait until the kernel is done."""
    open_notebook(page, lab, notebook)
    click_menu(page, "Run", "Run All Cells")
    page.wait_for_timeout(1500)  # the first cell takes its "[*]"
    return wait_until_run(page, lab, timeout_s)


def run_first_cells(page, lab: Lab, notebook: str, n: int, timeout_s: float = 300) -> list[dict]:
    """Open a notebook and run it with Shift+Enter, as a learner does, until its first ``n``
    code cells (and the Markdown cells between them) have run."""
    open_notebook(page, lab, notebook)
    kinds = page.evaluate("""() => [...document.querySelectorAll(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')].map(
        (c) => c.classList.contains('jp-CodeCell'))""")
    code_seen, presses = 0, 0
    for is_code in kinds:
        presses += 1
        code_seen += is_code
        if code_seen == n:
            break
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.click(
        position={"x": 2, "y": 2})  # select the first cell (command mode)
    page.keyboard.press("Escape")
    for _ in range(presses):
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(200)
    page.wait_for_timeout(1500)
    return wait_until_run(page, lab, timeout_s)


SCROLLER = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"


def notebook_screenshot(page, path: Path, max_height: int = 15000) -> list[Path]:
    """PNGs of the whole notebook: the window is made as tall as the notebook (at most
    ``max_height`` pixels; a longer notebook is shot in parts ``-2.png``, ``-3.png``, ...)."""
    def scroller():
        return page.evaluate(f"""() => {{ const o = document.querySelector('{SCROLLER}');
            if (!o) return null;
            const cells = o.querySelectorAll('.jp-Cell');
            const last = cells.length ? cells[cells.length - 1].getBoundingClientRect().bottom
              - o.getBoundingClientRect().top + o.scrollTop : o.scrollHeight;
            return [Math.ceil(Math.min(last, o.scrollHeight)), o.clientHeight]; }}""")

    size = page.viewport_size
    info = scroller()
    if info is None:
        page.screenshot(path=str(path))
        return [path]
    total, visible = info
    chrome = size["height"] - visible
    page.set_viewport_size({"width": size["width"],
                            "height": int(min(max(total + chrome, size["height"]), max_height))})
    page.wait_for_timeout(1500)
    total, visible = scroller()
    paths = []
    for k in range(max(1, -(-(total - 30) // visible))):  # 30 px: the last cell's margin
        page.evaluate(f"(top) => {{ document.querySelector('{SCROLLER}').scrollTop = top; }}",
                      k * visible)
        page.wait_for_timeout(700)
        shot = path if k == 0 else path.with_name(f"{path.stem}-{k + 1}.png")
        page.screenshot(path=str(shot))
        paths.append(shot)
    page.set_viewport_size(size)
    return paths
