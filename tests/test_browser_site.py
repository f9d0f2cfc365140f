"""The built course site, served on loopback as a teacher's web server would serve it, read page
by page in headless Chromium (a file of its own, so that pytest-xdist runs it beside the long
notebook runs of ``test_browser.py``). Screenshots go to ``build/screenshots/``."""

from __future__ import annotations

import functools
import http.server
import threading
import urllib.parse
from pathlib import Path

import pytest
from site_helpers import built_site
from test_browser import SCREENSHOTS, browser, pytestmark  # noqa: F401 (the fixture, the skip)


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def course_site(tmp_path_factory):
    """The built course site served on loopback, as a teacher's web server would serve it."""
    folder = built_site(tmp_path_factory.mktemp("book"))
    files = functools.partial(QuietFiles, directory=folder)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), files) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_port}", folder
        server.shutdown()


# each formula's element (Sphinx's "math notranslate") holds MathJax's rendering once typeset
MATHS_TYPESET_JS = """() => window.MathJax && MathJax.isReady && Array.from(
  document.querySelectorAll('.math.notranslate')).every(
    m => m.querySelector('.MathJax, .MathJax_Display'))"""
# the page's prose, formulas and code left out: any TeX delimiter still there was not typeset
RAW_TEX_JS = r"""() => {
  const prose = document.querySelector('article').cloneNode(true);
  prose.querySelectorAll('pre, code, script, .MathJax, .MathJax_Display').forEach(e => e.remove());
  return (prose.textContent.match(/\$|\\\(|\\\[/g) || []).length;
}"""


def broken_links(folder: Path, base: str, hrefs: list[str]) -> list[str]:
    """The site's own links among ``hrefs`` whose page, or anchor on it, does not exist."""
    broken = []
    for href in hrefs:
        if not href.startswith(f"{base}/"):
            continue
        address, _, anchor = href.removeprefix(f"{base}/").partition("#")
        target = folder / urllib.parse.unquote(address.split("?")[0] or "index.html")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file() or (
                anchor and f'id="{urllib.parse.unquote(anchor)}"' not in target.read_text()):
            broken.append(href)
    return broken


def test_course_site_reads_offline_in_the_browser(browser, course_site):
    """Every page: figures load, formulas are typeset, the site's links resolve, nothing is
    requested from elsewhere; search finds a word of the course."""
    base, folder = course_site
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    elsewhere = []
    page.on("request", lambda request: None if request.url.startswith((base, "data:", "about:"))
            else elsewhere.append(request.url))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with_formulas = 0
    for html in sorted(folder.rglob("*.html")):
        page.goto(f"{base}/{html.relative_to(folder).as_posix()}")
        images = page.locator("article img")
        for index in range(images.count()):
            assert images.nth(index).evaluate("img => img.complete && img.naturalWidth > 0"), html
        if page.locator("article .math.notranslate").count():
            page.wait_for_function(MATHS_TYPESET_JS, timeout=60_000)
            assert page.evaluate(RAW_TEX_JS) == 0, f"{html.name}: TeX left untypeset"
            if not with_formulas:
                page.locator("article div.math.notranslate").first.scroll_into_view_if_needed()
                page.screenshot(path=SCREENSHOTS / "site_formulas.png")
            with_formulas += 1
        hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]'), a => a.href)")
        assert broken_links(folder, base, hrefs) == [], html
    assert with_formulas, "no page of the site has a formula"
    page.goto(f"{base}/search.html?q=kurtosis")
    found = page.locator("#search-results li a")
    found.first.wait_for(timeout=30_000)
    assert any("03_kurtosis_when_pruning_wins.html" in href
               for href in found.evaluate_all("links => links.map(a => a.href)"))
    page.screenshot(path=SCREENSHOTS / "site_search.png")
    page.goto(f"{base}/index.html")
    page.screenshot(path=SCREENSHOTS / "site_index.png")
    page.close()
    assert elsewhere == [], "the site requested addresses outside it"
