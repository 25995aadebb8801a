"""A student's first hour in JupyterLab, in a real browser: notebook 02 runs in quick mode with no error, traceback,
TensorFlow log text or "Error displaying widget" in any output, and its listening panel works (the method dropdown
and the slider change both players' sources; a player plays: its ``currentTime`` advances). Saved, its kernel restarted and the page reloaded, the notebook shows
the panel and the progress bars as saved, with no "Error displaying widget: model not found" (JupyterLab runs with
the settings ``make lab`` gives it, which save the widget state in the notebook).

JupyterLab (the dev extra) is started on 127.0.0.1 on a free port with a token, in a temporary folder holding a copy
of the notebooks (made from the ``.py`` sources, no outputs), so that the checkout stays clean; its settings,
workspaces and runtime files live there too. The kernel sees ``GENRELIB_QUICK=1``, this checkout on ``PYTHONPATH``,
outputs in the temporary folder and no ``TF_CPP_MIN_LOG_LEVEL`` (as a student's shell has none). Chromium is the
system one (``GENRELIB_CHROMIUM`` names another), launched with ``--autoplay-policy=no-user-gesture-required``.
Screenshots (``lab-*.png``) are kept in the test's temporary folder, which the test prints. Skipped, saying why,
where playwright, JupyterLab or Chromium is missing: ``make lab-test`` installs what pip can.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser_helpers import chromium_binary, no_chromium_reason

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
#: The application settings make lab starts JupyterLab with (tools/lab-settings/overrides.json).
LAB_SETTINGS = ROOT / "tools" / "lab-settings"
NOTEBOOK = "02_augmentation"
#: What no output of a notebook run by hand may show.
PROBLEMS = re.compile(
    r"Traceback \(most recent call last\)|Error displaying widget"
    r"|absl::InitializeLog|^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]|cuInit|oneDNN|rebuild TensorFlow",
    re.MULTILINE)


def skip_reason() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (the [browser] extra): make lab-test installs it"
    if importlib.util.find_spec("jupyterlab") is None:
        return "jupyterlab is not installed (the dev extra): make venv installs it"
    return no_chromium_reason()


if reason := skip_reason():
    pytest.skip(reason, allow_module_level=True)

#: True once the panel shows two players and the augmented one plays another source than ``old``.
NEW_AUGMENTED_SOURCE = ("(old) => { const a = Array.from(document.querySelectorAll('.jp-Notebook .widget-output audio'));"
                        " return a.length === 2 && (a[1].currentSrc || a[1].querySelector('source').src) !== old; }")


def wait_for_new_augmented_player(page, old: str) -> None:
    """Until the augmented player's source differs from ``old`` and the panel is idle again."""
    page.wait_for_function(NEW_AUGMENTED_SOURCE, arg=old, timeout=30_000)
    page.wait_for_function(IDLE_PANEL, timeout=30_000)


def settle(page, *, quiet_s: float = 1.5, timeout_s: float = 30.0) -> None:
    """Until the players' sources have not changed for ``quiet_s`` seconds (the panel answered every change)."""
    deadline, last, since = time.monotonic() + timeout_s, sources(page), time.monotonic()
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.25)
        now = sources(page)
        if now != last:
            last, since = now, time.monotonic()
    page.wait_for_function(IDLE_PANEL, timeout=30_000)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, token, temporary folder) of a JupyterLab serving a fresh copy of the notebooks."""
    import jupytext
    import nbformat

    folder = tmp_path_factory.mktemp("lab")
    print(f"\ntest_lab: JupyterLab folder and screenshots in {folder}")
    (folder / "notebooks").mkdir()
    shutil.copy(ROOT / "jupytext.toml", folder / "jupytext.toml")
    notebook = jupytext.read(ROOT / "notebooks" / f"{NOTEBOOK}.py")
    nbformat.write(notebook, folder / "notebooks" / f"{NOTEBOOK}.ipynb")
    news = folder / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')  # no "official Jupyter news?" toast over the notebook
    port, token = free_port(), secrets.token_hex(16)
    # No TF_CPP_MIN_LOG_LEVEL (a student's shell has none), no PYTEST_CURRENT_TEST (with it ipykernel stops forwarding
    # file descriptor 2 to the notebook, which would hide TensorFlow's native log from this test).
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "PYTEST_CURRENT_TEST")}
    env.update(GENRELIB_QUICK="1", GENRELIB_OUTPUT=str(folder / "output"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
               JUPYTER_CONFIG_DIR=str(folder / "config"), JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(folder / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(folder / "workspaces"))
    env.setdefault("GENRELIB_CACHE", str(ROOT / ".cache" / "genrelib"))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
               f"--LabApp.app_settings_dir={LAB_SETTINGS}"]  # as make lab: widget state saved with the notebook
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root; Jupyter refuses that unless told
        command.append("--allow-root")
    log = open(folder / "jupyterlab.log", "wb")
    server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {(folder / 'jupyterlab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base, token, folder
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    base, token, folder = lab
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_binary(), headless=True,
                                             args=["--autoplay-policy=no-user-gesture-required"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.problems = []
        tab.on("pageerror", lambda error: tab.problems.append(f"exception: {error}"))
        tab.goto(f"{base}/lab/tree/notebooks/{NOTEBOOK}.ipynb?token={token}")
        yield tab
        browser.close()


#: How far "run all" got: [non-empty code cells (Lab does not run an empty one), cells with an execution count, cells with an error output, kernel status].
PROGRESS = """() => { const w = window.jupyterapp.shell.currentWidget;
  const code = Array.from(w.content.model.cells).filter(c => c.type === 'code' && c.sharedModel.getSource().trim());
  return [code.length, code.filter(c => c.executionCount !== null).length,
          code.filter(c => Array.from({length: c.outputs.length}, (_, i) => c.outputs.get(i))
                                .some(o => o.type === 'error')).length,
          w.sessionContext.session.kernel.status]; }"""
RAN = f"() => {{ const [n, ran, failed, status] = ({PROGRESS})(); return status === 'idle' && (ran === n || failed > 0); }}"


#: The panel is not busy ("computing ..." gone, controls enabled again).
IDLE_PANEL = ("() => !Array.from(document.querySelectorAll('.jp-Notebook .widget-html'))"
              ".some(e => e.innerText.includes('computing'))"
              " && !document.querySelector('.jp-Notebook .widget-dropdown select:disabled')")


def shoot(page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"lab-{name}.png"))


def outputs_text(page) -> list[str]:
    return page.eval_on_selector_all(".jp-Notebook .jp-OutputArea-output", "nodes => nodes.map(n => n.innerText)")


def sources(page) -> list[str]:
    """The ``src`` of each player of the panel (original, augmented)."""
    return page.eval_on_selector_all(
        ".jp-Notebook .widget-output audio",
        "nodes => nodes.map(a => a.currentSrc || a.src || (a.querySelector('source') || {}).src || '')")


def test_notebook_02_runs_cleanly_and_its_panel_plays(lab, page):
    _, _, folder = lab
    page.wait_for_function(  # the notebook is open and its kernel is ready
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
        " return k && k.status === 'idle'; }", timeout=60_000)
    started = time.monotonic()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    try:  # every code cell has run (or one failed, which stops "run all"), and the kernel is idle again
        page.wait_for_function(RAN, timeout=240_000, polling=1000)
    except Exception:
        shoot(page, folder, "timeout")
        raise AssertionError(f"notebook {NOTEBOOK} did not finish in 240 s: {page.evaluate(PROGRESS)}") from None
    ran = time.monotonic() - started
    shoot(page, folder, "1-ran")
    code_cells, executed, failed, _ = page.evaluate(PROGRESS)
    assert failed == 0 and executed == code_cells, f"{failed} cell(s) failed, {executed} of {code_cells} ran"
    texts = outputs_text(page)
    found = [match.group(0) for text in texts for match in [PROBLEMS.search(text)] if match]
    assert not found, f"outputs show {found}"
    assert not page.problems, page.problems

    panel = page.locator(".jp-Notebook .widget-vbox", has=page.locator("select")).first
    panel.scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('.jp-Notebook .widget-output audio').length >= 2")
    shoot(page, folder, "2-panel")
    first = sources(page)
    assert len(first) == 2 and all(src.startswith("data:audio/wav") for src in first), first[:1]

    method = page.locator(".jp-Notebook .widget-dropdown", has_text="method").locator("select")
    changed = time.monotonic()
    method.select_option("pitch_shift")
    wait_for_new_augmented_player(page, first[1])
    method_s = time.monotonic() - changed
    after_method = sources(page)
    assert after_method[1] != first[1]
    slider_label = page.locator(".jp-Notebook .widget-slider .widget-label").first.inner_text()
    assert "semitones" in slider_label

    handle = page.locator(".jp-Notebook .widget-slider .noUi-handle").first
    handle.focus()
    changed = time.monotonic()
    for _ in range(5):
        handle.press("ArrowLeft")
    wait_for_new_augmented_player(page, after_method[1])
    slider_s = time.monotonic() - changed
    settle(page)  # each key press is a change of its own: play only once the last one has been answered
    after_slider = sources(page)
    assert after_slider[1] != after_method[1]
    readout = page.locator(".jp-Notebook .widget-slider .widget-readout").first.inner_text()
    assert float(readout) < 2.0, readout

    played = page.evaluate(
        "async () => { const a = document.querySelectorAll('.jp-Notebook .widget-output audio')[1];"
        " await a.play(); await new Promise(r => setTimeout(r, 1500));"
        " const t = a.currentTime; a.pause(); return t; }")
    shoot(page, folder, "3-played")
    assert played > 0.5, f"the augmented player did not play (currentTime {played})"
    texts = outputs_text(page)
    assert not any("Error displaying widget" in text for text in texts)
    assert not page.problems, page.problems
    print(f"test_lab: notebook {NOTEBOOK} ran in {ran:.0f} s; method change {method_s:.1f} s, slider change "
          f"{slider_s:.1f} s (until the panel is idle); augmented player reached {played:.2f} s")


def test_saved_notebook_reopened_after_a_kernel_restart_shows_its_widgets(lab, page):
    """Continues from the test above (same page): the notebook has run and its panel has been used."""
    _, _, folder = lab
    if len(sources(page)) < 2:
        pytest.skip("the notebook did not run (see the test above)")
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = folder / "notebooks" / f"{NOTEBOOK}.ipynb"
    deadline = time.monotonic() + 30
    while '"application/vnd.jupyter.widget-state+json"' not in saved.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert '"application/vnd.jupyter.widget-state+json"' in saved.read_text(), "no widget state saved"
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    page.reload()
    page.wait_for_function(  # reopened, on the restarted kernel, which holds no widget
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
        " return k && k.status === 'idle'; }", timeout=60_000)
    page.wait_for_function("() => !Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'))"
                           ".some(n => n.innerText.includes('Loading widget'))", timeout=30_000)
    panel = page.locator(".jp-Notebook .widget-vbox", has=page.locator("select")).first
    panel.scroll_into_view_if_needed()
    shoot(page, folder, "4-reopened")
    texts = outputs_text(page)
    assert not any("Error displaying widget" in text for text in texts), [t for t in texts if "Error" in t]
    assert len(sources(page)) == 2, "the saved panel shows no players"
    assert page.locator(".jp-Notebook .widget-image").count() >= 1
    assert any("run its cell again" in text for text in texts)
