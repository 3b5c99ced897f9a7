"""Browser tests: headless Debian chromium through Playwright's Python client.

Run with ``make e2e`` (``python -m pytest tests/e2e``). The folder is collected only when it is
named on the command line, so ``make test`` (``pytest tests notebooks``) leaves it out.

No browser is downloaded: the tests drive the system's ``chromium`` (``apt-get install
chromium``; another binary with ``PIANOLIB_CHROMIUM=/path``). Without it, or without
Playwright's client, every test here is skipped with a message that says what to install.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCREENSHOTS = ROOT / "build" / "e2e-screenshots"
BOOK = ROOT / "build" / "book"
#: Chromium's flags for a closed network and a fresh profile (the profile: a new temp folder);
#: --disable-dev-shm-usage: containers often have a small /dev/shm.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def _asked_for(config) -> bool:
    """True when a command-line argument names this folder or a file inside it."""
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    """Leave the browser tests out unless the folder is named (``pytest tests/e2e``)."""
    if collection_path.resolve() != HERE / "conftest.py" and not _asked_for(config):
        return True
    return None


def chromium_path() -> str | None:
    """The Chromium binary: ``PIANOLIB_CHROMIUM``, else ``chromium`` on the PATH."""
    path = os.environ.get("PIANOLIB_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    return path if path and os.access(path, os.X_OK) else None


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (Playwright persistent context on a fresh profile folder)."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("Chromium not found: install it with `apt-get install chromium` "
                    "(Debian/Ubuntu), or set PIANOLIB_CHROMIUM=/path/to/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright's Python client is missing: pip install -e '.[e2e]' "
                    "(no browser download is needed: the tests use Debian's chromium)")
    import tempfile

    profile = tempfile.mkdtemp(prefix="pianolib-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=exe, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 900}, accept_downloads=False)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """``build/e2e-screenshots/``, emptied of earlier PNGs (CI keeps the folder)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


def _book_is_fresh(book: Path) -> bool:
    manifest = book / "manifest.json"
    if not manifest.is_file():
        return False
    sources = list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    sources.append(ROOT / "pianolib" / "book.py")
    return manifest.stat().st_mtime > max(p.stat().st_mtime for p in sources)


@pytest.fixture(scope="session")
def book() -> Path:
    """The built site: ``build/book`` (``make e2e`` builds it first with ``make book``);
    built here when missing or older than a notebook or the builder."""
    if os.environ.get("PIANOLIB_E2E_BOOK"):
        return Path(os.environ["PIANOLIB_E2E_BOOK"])
    if not _book_is_fresh(BOOK):
        from pianolib.book import build_book

        build_book(BOOK)
    return BOOK


@pytest.fixture(scope="session")
def book_server(book):
    """``python -m http.server``'s handler serving the book on 127.0.0.1 (a free port)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(book)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()



def pytest_terminal_summary(terminalreporter):
    """What the browser saw: pages, images and audio players checked, notebooks run."""
    from .e2e_support import CHECKED

    pages = CHECKED["book_pages"]
    lab = CHECKED["lab_notebooks"]
    if not pages and not lab:
        return
    write = terminalreporter.write_line
    terminalreporter.section("what the browser checked")
    if pages:
        write(f"book: {len(pages)} pages, {sum(p['images'] for p in pages.values())} images, "
              f"{sum(p['audio'] for p in pages.values())} audio players, "
              f"{sum(p['links'] for p in pages.values())} links")
    for name, run in lab.items():
        write(f"JupyterLab {name}: {run['run']} in {run['seconds']} s, {run['images']} images, "
              f"{run['audio']} audio players")
    if CHECKED["widget"]:
        w = CHECKED["widget"]
        write(f"listening widget: onset slider {w['slider']}, scores changed after "
              f"{w['seconds_to_change']} s")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "summary.json").write_text(json.dumps(CHECKED, indent=1) + "\n")
    write(f"screenshots: {SCREENSHOTS}")
