"""The book (``make book``, ``build/book/``) in headless Chromium.

Every page from a web server (``http.server`` on 127.0.0.1): no console error, no failed
request, every image drawn (natural width > 0), every audio player with a playable source
(ready state >= 1), no error in an output, every link to another page of the book answered
with HTTP 200. Two pages also from the file system (``file://``). A full-page screenshot of each
page goes to ``build/e2e-screenshots/book-*.png``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pianolib.book import notebook_paths, widget_html

from .e2e_support import CHECKED, PageWatch, full_page_screenshot, media_report, output_errors

PAGES = ["index.html"] + [p.stem + ".html" for p in notebook_paths()]

LINKS_JS = "() => [...document.querySelectorAll('a[href]')].map((a) => a.getAttribute('href'))"


def _local(links: list[str]) -> list[str]:
    """Links to another file of the site (not another host, not an anchor on this page)."""
    return sorted({h.split("#")[0] for h in links
                   if h and not re.match(r"^([a-z][a-z0-9+.-]*:|//|#)", h, re.I)} - {""})


def _check(page, watch: PageWatch, manifest: dict, name: str) -> dict:
    """The checks every page passes, wherever it was opened from."""
    media = media_report(page)
    images, audio = media["images"], media["audio"]
    assert not watch.problems, f"{name}: {watch.problems[:5]}"
    assert not output_errors(page), f"{name}: {output_errors(page)[:3]}"
    blank = [i for i in images if i["width"] == 0]
    assert not blank, f"{name}: {len(blank)} of {len(images)} images not drawn: {blank[:3]}"
    silent = [a for a in audio if a["readyState"] < 1 or a["error"]]
    assert not silent, f"{name}: {len(silent)} of {len(audio)} audio players without a " \
                       f"playable source: {silent[:3]}"
    expected = manifest["index"] if name == "index.html" else next(
        p for p in manifest["pages"] if p["file"] == name)
    assert (len(images), len(audio)) == (expected["images"], expected["audio"]), name
    return {"images": len(images), "audio": len(audio)}


@pytest.fixture(scope="module")
def manifest(book: Path) -> dict:
    return json.loads((book / "manifest.json").read_text())


@pytest.mark.parametrize("name", PAGES)
def test_page_from_a_web_server(browser, book_server, manifest, screenshots, name):
    built = ["index.html"] + [p["file"] for p in manifest["pages"]]
    assert name in built, f"{name} is not in the book: rebuild it (make book)"
    page = browser.new_page()
    try:
        watch = PageWatch(page)
        response = page.goto(f"{book_server}/{name}", wait_until="load")
        assert response is not None and response.status == 200
        counts = _check(page, watch, manifest, name)
        links = _local(page.evaluate(LINKS_JS))
        for href in links:
            status = page.request.get(f"{book_server}/{href}").status
            assert status == 200, f"{name}: link {href} answered {status}"
        if name != "index.html":
            nav = page.evaluate("() => [...document.querySelectorAll('nav.pl-nav a')]"
                                ".map((a) => a.getAttribute('href'))")
            i = built.index(name)
            want = {"index.html"} | {built[j] for j in (i - 1, i + 1) if 1 <= j < len(built)}
            assert want <= set(nav), f"{name}: navigation {nav}, expected {sorted(want)}"
        else:
            assert set(built[1:]) <= set(links), f"index.html links {links}"
            assert page.locator("table").count() >= 1, "the benchmark table is missing"
        full_page_screenshot(page, screenshots / f"book-{name[:-5]}.png")
        CHECKED["book_pages"][name] = {**counts, "links": len(links)}
    finally:
        page.close()


@pytest.mark.parametrize("name", ["index.html", "05_midi_merge.html"])
def test_page_from_the_file_system(browser, book, manifest, name):
    if name not in ["index.html"] + [p["file"] for p in manifest["pages"]]:
        pytest.skip(f"{name} is not in this book")
    page = browser.new_page()
    try:
        watch = PageWatch(page)
        page.goto((book / name).as_uri(), wait_until="load")
        _check(page, watch, manifest, name)
        for href in _local(page.evaluate(LINKS_JS)):
            assert (book / href).is_file(), f"{name}: link {href} has no file"
    finally:
        page.close()


def test_the_listening_widget_is_drawn_in_the_book(browser, book_server, manifest,
                                                    screenshots):
    """Notebook 05's widget as the run left it: scores, audio player, piano roll, sliders."""
    if "05_midi_merge.html" not in [p["file"] for p in manifest["pages"]]:
        pytest.skip("notebook 05 is not in this book")
    page = browser.new_page()
    try:
        page.goto(f"{book_server}/05_midi_merge.html", wait_until="load")
        widget = page.locator(".pl-widget", has=page.locator("input[type=range]")).first
        assert widget.locator("audio").count() >= 1
        assert widget.locator("img").count() >= 1  # the piano roll
        assert widget.locator("input[type=range]").count() >= 3  # onset, length, min frames
        assert re.search(r"\d+ notes", widget.inner_text())
        widget.screenshot(path=str(screenshots / "book-05-listening-widget.png"))
    finally:
        page.close()


def test_the_detector_reports_a_widget_without_state(browser):
    """A widget output whose state was not saved is drawn as a note the detector reports."""
    page = browser.new_page()
    try:
        page.set_content(f'<div class="pl-widget">{widget_html("no-such-model", {})}</div>')
        assert output_errors(page), "the book's missing-widget note went unnoticed"
    finally:
        page.close()
