"""The book (`make book`) in a real browser: every chapter renders with its title and its figures, the table of
contents links all chapters (07 as the optional appendix) and the glossary, and no page logs an error.

The book is built into a temporary folder (tools/build_book.py, about 10 s on 2 cores), served from 127.0.0.1 on a
free port and opened in the system Chromium through Playwright (Playwright's own browser download needs the
internet; `GENRELIB_CHROMIUM` names another binary). Screenshots of a chapter and of the glossary are left in the
test's temporary folder. Skipped, saying why, where the [book] or [browser] extra or Chromium is missing:
`make book-test` installs the extras; Chromium comes from the system (`apt-get install -y chromium`).
"""

from __future__ import annotations

import functools
import html
import importlib.util
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import nbformat
import pytest

from tests.browser_helpers import chromium_binary, no_chromium_reason
from tests.test_build_book import GLOSSARY_TERMS, build_book

pytestmark = pytest.mark.browser

#: Browser messages that say nothing about the book: the favicon the browser asks for on its own.
IGNORED_MESSAGES = ("favicon.ico",)


def skip_reason() -> str | None:
    if missing := build_book.missing_requirements(build_book.extra_requirements("book")):
        return f"the [book] extra is not installed ({' '.join(missing)}): make book-test installs it"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (the [browser] extra): make book-test installs it"
    return no_chromium_reason()


if reason := skip_reason():
    pytest.skip(reason, allow_module_level=True)

PARTS = build_book.read_toc()
CHAPTERS = build_book.toc_chapters(PARTS)


def plain(text: str) -> str:
    return " ".join(build_book.plain(html.unescape(text)).split())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The book built from this checkout into a temporary folder: (html folder, that temporary folder)."""
    folder = tmp_path_factory.mktemp("book")
    return build_book.build(folder), folder


@pytest.fixture(scope="module")
def base_url(site):
    handler = functools.partial(QuietHandler, directory=str(site[0]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_binary(), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page that records console errors, uncaught exceptions and failed or refused requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.problems = []
    tab.on("console", lambda message: message.type == "error"
           and tab.problems.append(f"console: {message.text} ({message.location.get('url')})"))
    tab.on("pageerror", lambda error: tab.problems.append(f"exception: {error}"))
    tab.on("requestfailed", lambda request: tab.problems.append(f"request failed: {request.url}"))
    tab.on("response", lambda response: response.status >= 400
           and tab.problems.append(f"HTTP {response.status}: {response.url}"))
    yield tab
    context.close()


def open_page(page, url: str) -> None:
    page.goto(url, wait_until="load")
    # Bring every image into view once, so that none is left unloaded below the fold, then wait for all of them.
    page.evaluate("() => { for (const img of document.images) { img.loading = 'eager'; } }")
    page.wait_for_function("() => Array.from(document.images).every(img => img.complete)", timeout=15_000)


def loaded_images(page, selector: str = "article") -> tuple[int, int]:
    """(images in the article, of which loaded with a real size)."""
    return page.evaluate(
        """selector => { const images = Array.from(document.querySelectorAll(selector + ' img'));
                         return [images.length, images.filter(img => img.complete && img.naturalWidth > 0).length]; }""",
        selector)


def problems_of_note(page) -> list[str]:
    return [problem for problem in page.problems if not any(ignored in problem for ignored in IGNORED_MESSAGES)]


def test_table_of_contents_links_every_chapter_and_the_glossary(page, base_url):
    open_page(page, base_url)
    links = page.eval_on_selector_all(
        "nav.bd-docs-nav a.reference.internal", "links => links.map(a => a.getAttribute('href'))")
    chapter_links = [link for link in links if link.startswith("chapters/")]
    assert chapter_links == [f"chapters/{stem}.html" for stem in CHAPTERS]
    assert [stem[:2] for stem in CHAPTERS] == [f"{n:02d}" for n in range(1, 8)]
    assert "glossary.html" in links
    captions = page.eval_on_selector_all("nav.bd-docs-nav p.caption", "ps => ps.map(p => p.textContent.trim())")
    assert captions == [part["caption"] for part in PARTS]
    appendix = page.locator("nav.bd-docs-nav ul", has=page.locator('a[href="chapters/07_scaling_out.html"]'))
    caption = appendix.first.evaluate("ul => ul.previousElementSibling.textContent.trim()")
    assert caption == "Appendix (optional)"
    assert problems_of_note(page) == []


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_renders_with_its_title_and_figures(page, base_url, site, stem):
    notebook = nbformat.read(build_book.NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    open_page(page, f"{base_url}chapters/{stem}.html")
    title = build_book.chapter_title(notebook, stem)
    assert plain(page.locator("article h1").first.inner_text()).removesuffix("#").strip() == plain(title)
    assert plain(title) in plain(page.title())
    total, loaded = loaded_images(page)
    assert (total, loaded) == (build_book.image_outputs(notebook),) * 2, f"{stem}: {loaded} of {total} images loaded"
    assert page.locator("article h2", has_text="Further reading").count() == 1
    if stem == "07_scaling_out":
        assert "Optional appendix" in page.locator("article .admonition").first.inner_text()
    if stem == "05_evaluation":  # a chapter with tables and figures: its first figure in view
        page.locator("article img").first.scroll_into_view_if_needed()
        page.screenshot(path=str(site[1] / f"{stem}.png"))
    assert problems_of_note(page) == []


def test_glossary_defines_every_term(page, base_url, site):
    open_page(page, f"{base_url}glossary.html")
    terms = page.eval_on_selector_all("dl.glossary dt", "dts => dts.map(dt => dt.textContent.trim())")
    terms = [term.removesuffix("¶").removesuffix("#").strip() for term in terms]
    assert sorted(set(GLOSSARY_TERMS) - set(terms)) == []
    definitions = page.eval_on_selector_all("dl.glossary dd", "dds => dds.map(dd => dd.textContent.trim())")
    assert len(definitions) == len(terms) and all(len(text) > 40 for text in definitions)
    page.screenshot(path=str(site[1] / "glossary.png"))
    assert problems_of_note(page) == []


def test_figures_page_shows_every_committed_figure(page, base_url):
    open_page(page, f"{base_url}figures.html")
    total, loaded = loaded_images(page)
    assert total == loaded == len(list(build_book.FIGURES.glob("*.png")))
    assert problems_of_note(page) == []
