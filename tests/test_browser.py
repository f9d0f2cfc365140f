"""The course in a real browser: JupyterLab on loopback, each notebook's student edition (what
Binder opens) run top to bottom in headless Chromium, each unanswered exercise reporting itself;
the masters' pairing and listing (the built site: ``test_browser_site.py``). nbval runs the
masters in the same session: the results of their heavy steps are kept (``pvq.job_store``), so
the second run of a notebook does not compute them again.

Needs Debian's ``chromium`` (``apt-get install chromium``; `.ci/run` installs it) and the pinned
``playwright`` package, which drives that executable (no browser download). Screenshots go to
``build/screenshots/``.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from lab_helpers import running_lab
from student_helpers import assert_each_open_exercise_says_so, edition

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's package (apt-get install chromium) to run browser tests",
)

NOTEBOOK_STATE_JS = """() => {
  if (!window.jupyterapp) return null;
  const widget = window.jupyterapp.shell.currentWidget;
  if (!widget || !widget.content || !widget.content.model) return null;
  let pending = 0, errors = 0, widgets = 0;
  for (const cell of widget.content.model.cells) {
    if (cell.type !== 'code' || cell.sharedModel.getSource().trim() === '') continue;
    if (cell.executionCount === null) pending++;
    for (let i = 0; i < cell.outputs.length; i++) {
      const output = cell.outputs.get(i);
      if (output.type === 'error') errors++;
      if ('application/vnd.jupyter.widget-view+json' in output.data) widgets++;
    }
  }
  const kernel = widget.sessionContext.session && widget.sessionContext.session.kernel;
  return {pending, errors, widgets, status: kernel ? kernel.status : 'none'};
}"""

# each ``grader.check`` cell: its source and the text of its outputs
CHECK_REPORTS_JS = """() => {
  const reports = [];
  for (const cell of window.jupyterapp.shell.currentWidget.content.model.cells) {
    const source = cell.sharedModel.getSource();
    if (cell.type !== 'code' || !source.startsWith('grader.check(')) continue;
    let text = '';
    for (let i = 0; i < cell.outputs.length; i++) {
      const data = cell.outputs.get(i).data;
      for (const key in data) if (typeof data[key] === 'string') text += data[key];
    }
    reports.push([source, text]);
  }
  return reports;
}"""

CONTROLS = ", ".join(f".jp-OutputArea-output {kind}" for kind in
                     (".widget-slider", ".widget-dropdown", ".widget-toggle-buttons"))
# the source of the figure in the output area that holds the first controls
FIGURE_UNDER_CONTROLS_JS = f"""() => {{
  const control = document.querySelector({json.dumps(CONTROLS)});
  const area = control && control.closest('.jp-Cell-outputArea');
  const image = area && area.querySelector('img');
  return image ? image.src : null;
}}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a copy of the notebooks and their jupytext pairing (so a browser save
    never touches the repo)."""
    root = tmp_path_factory.mktemp("lab")
    for path in [*NOTEBOOKS, ROOT / "notebooks" / "jupytext.toml"]:
        shutil.copy(path, root / path.name)
    with running_lab(root, "--LabApp.expose_app_in_browser=True") as (base, token):
        yield base, token, root


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    """JupyterLab serving the student edition, built as Binder builds it."""
    root = tmp_path_factory.mktemp("student")
    edition.build(root, NOTEBOOKS)
    with running_lab(root, "--LabApp.expose_app_in_browser=True") as (base, token):
        yield base, token, root


def move_first_control(page) -> None:
    """Choose the next entry of the first menu, or else nudge the first slider one step right."""
    menus = page.locator(".jp-OutputArea-output .widget-dropdown select")
    if menus.count():
        menu = menus.first
        chosen, entries = menu.evaluate("select => [select.selectedIndex, select.options.length]")
        menu.select_option(index=(chosen + 1) % entries)
    else:
        page.locator(".jp-OutputArea-output .noUi-handle").first.press("ArrowRight")


def shut_down_kernels(base: str, token: str) -> None:
    """End every session, as a learner on Binder should before the next notebook."""
    headers = {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions",
                                                       headers=headers)) as response:
        sessions = json.load(response)
    for session in sessions:
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions/{session['id']}",
                                                      headers=headers, method="DELETE"))


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


# the later notebooks run longest; started first, they leave this file's short tests for last,
# when pytest-xdist gives a worker its next file (see the Makefile's --no-loadscope-reorder)
@pytest.mark.parametrize("path", NOTEBOOKS[::-1], ids=lambda p: p.stem)
def test_student_notebook_runs_in_jupyterlab_and_each_open_exercise_says_so(student_lab, browser,
                                                                             path):
    base, token, _ = student_lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # a workspace of its own: JupyterLab would otherwise reopen the earlier notebooks as tabs
    page.goto(f"{base}/lab/workspaces/{path.stem}/tree/{path.name}?token={token}")
    page.wait_for_function(f"() => {{ const s = ({NOTEBOOK_STATE_JS})(); "
                           "return s !== null && s.status === 'idle'; }", timeout=120_000)
    page.evaluate("async () => { const c = window.jupyterapp.commands;"
                  " await c.execute('notebook:clear-all-cell-outputs');"
                  " await c.execute('notebook:run-all-cells'); }")
    # done when the kernel is idle and every cell ran, or an error stopped the run
    page.wait_for_function(f"() => {{ const s = ({NOTEBOOK_STATE_JS})(); return s !== null &&"
                           " s.status === 'idle' && (s.pending === 0 || s.errors > 0); }",
                           timeout=300_000, polling=1000)
    state = page.evaluate(NOTEBOOK_STATE_JS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{path.stem}.png")
    assert state["errors"] == 0, f"{path.name}: {state['errors']} cell(s) show an error"
    assert_each_open_exercise_says_so(path, page.evaluate(CHECK_REPORTS_JS))
    if "ipywidgets" in path.read_text():
        assert state["widgets"] > 0, f"{path.name}: no widget output"
        # cells off screen are not drawn: scroll to the first cell whose outputs hold a widget
        page.evaluate("async () => { const nb = window.jupyterapp.shell.currentWidget.content;"
                      " const has = c => { for (let i = 0; i < (c.outputs ? c.outputs.length : 0);"
                      " i++) { if ('application/vnd.jupyter.widget-view+json' in"
                      " c.outputs.get(i).data) return true; } return false; };"
                      " const i = Array.from(nb.model.cells).findIndex(has);"
                      " nb.activeCellIndex = i; await nb.scrollToItem(i, 'center'); }")
        control = page.locator(CONTROLS).first
        control.wait_for(state="visible", timeout=30_000)
        page.screenshot(path=SCREENSHOTS / f"{path.stem}_widgets.png")
        # the kernel redraws and replaces the figure under the controls
        before = page.evaluate(FIGURE_UNDER_CONTROLS_JS)
        move_first_control(page)
        page.wait_for_function(f"before => ({FIGURE_UNDER_CONTROLS_JS})() !== before",
                               arg=before, timeout=60_000)
        page.screenshot(path=SCREENSHOTS / f"{path.stem}_widgets_moved.png")
    page.close()
    shut_down_kernels(base, token)


def test_saving_in_jupyterlab_writes_the_paired_twin(lab, browser):
    base, token, root = lab
    notebook = NOTEBOOKS[0]
    twin = root / f"{notebook.stem}.py"
    twin.unlink(missing_ok=True)
    page = browser.new_page()
    page.goto(f"{base}/lab/workspaces/pairing/tree/{notebook.name}?token={token}")
    page.wait_for_function("() => { const w = window.jupyterapp &&"
                           " window.jupyterapp.shell.currentWidget;"
                           " return w && w.context && w.context.isReady; }", timeout=60_000)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    for _ in range(60):
        if twin.exists():
            break
        time.sleep(0.5)
    page.close()
    shut_down_kernels(base, token)
    assert twin.exists(), "saving the notebook did not write its py:percent twin"
    assert twin.read_text() == notebook.with_suffix(".py").read_text()


def test_file_browser_shows_each_notebook_once(lab, browser):
    base, token, root = lab
    for notebook in NOTEBOOKS:  # the twins are on disk, as in a checkout
        shutil.copy(notebook.with_suffix(".py"), root)
    page = browser.new_page()
    page.goto(f"{base}/lab/workspaces/files/tree?token={token}")
    entries = page.locator(".jp-DirListing-item .jp-DirListing-itemText")
    entries.first.wait_for(timeout=60_000)
    page.wait_for_function(f"() => document.querySelectorAll('.jp-DirListing-item').length"
                           f" >= {len(NOTEBOOKS)}", timeout=60_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "file_browser.png")
    shown = sorted(entries.all_inner_texts())
    page.close()
    assert shown == sorted([path.name for path in NOTEBOOKS] + ["jupytext.toml"])
