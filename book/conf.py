"""Sphinx configuration of the course site: myst-nb renders the executed notebooks, the
sphinx-book-theme lays them out (contents, previous/next, search, a Binder button per page, which
opens the page's notebook in the student edition that Binder builds: exercises open).

    .venv/bin/python -m sphinx -b html book build/site      (what `make site` runs)

Everything the pages load ships with the site: MathJax comes from the jupyter-server-mathjax
package, the notebooks' widget state is dropped (no widget renderer fetched from the web).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jupyter_server_mathjax
from sphinx.util.fileutil import copy_asset

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]

project = "Pruning vs Quantization"
html_title = "Pruning vs Quantization: the course"
author = "the pvq course authors"
copyright = "the pvq course authors, BSD-3-Clause"

extensions = ["myst_nb"]
# notebooks/ is a link to the repository's notebooks; the numbered ones are the pages
exclude_patterns = ["notebooks/.ipynb_checkpoints", *(
    f"notebooks/{path.name}" for path in (ROOT / "notebooks").glob("*.ipynb")
    if not re.match(r"\d\d_", path.name))]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_update_mathjax = False  # its settings are MathJax 3's; MathJax 2 finds \( \) and \[ \] itself
nb_execution_mode = "off"  # pages show the committed outputs; nothing is re-run
nb_ipywidgets_js = {}  # no widget renderer from the web: widgets become a note, see below

# MathJax 2 from the jupyter-server-mathjax package, copied into the site (see setup)
MATHJAX = Path(jupyter_server_mathjax.__file__).parent / "static"
mathjax_path = "mathjax/MathJax.js"
# (the package ships MathJax's STIX web fonts only)
mathjax2_config = {"config": ["TeX-AMS-MML_HTMLorMML-full.js"], "showMathMenu": False,
                   "messageStyle": "none",
                   "HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web",
                                "webFont": "STIX-Web", "imageFont": None}}

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "main",
    "path_to_docs": "",  # pages are notebooks/NN_*.ipynb, as in the repository
    "use_repository_button": True,
    "launch_buttons": {"binderhub_url": "https://mybinder.org", "notebook_interface": "jupyterlab"},
    "show_navbar_depth": 1,
    "home_page_in_toc": True,
}

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CONTROLS_NOTE = ('<p class="widget-note">Interactive controls appear here when the notebook runs '
                 "in JupyterLab or on Binder; the figure below is drawn for their default "
                 "setting.</p>")

# an exercise's statement opens with "**Exercise N.**" and runs to the end of its cell
EXERCISE = re.compile(r"^\*\*Exercise (\d+)\.\*\*[ \t]*", flags=re.M)


def exercise_block(markdown: str) -> str:
    """The markdown with its exercise statement, if any, in an "Exercise N" box."""
    found = EXERCISE.search(markdown)
    if found is None:
        return markdown
    return (f"{markdown[:found.start()]}::::{{admonition}} Exercise {found[1]}\n"
            f":class: exercise\n{markdown[found.end():].rstrip()}\n::::\n")


def static_notebook(notebook: dict) -> dict:
    """The notebook as a page shows it: each widget output replaced by a note (its figure, the
    next output, stays), no widget state, no raw cell (otter-grader's markers), each exercise in
    a box and its solution cell folded under a "Show the solution" prompt."""
    notebook["metadata"].pop("widgets", None)
    # otter-grader's markers (raw cells: the assignment configuration, BEGIN/END QUESTION ...)
    notebook["cells"] = [cell for cell in notebook["cells"] if cell["cell_type"] != "raw"]
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            source = cell["source"]
            cell["source"] = exercise_block(source if isinstance(source, str) else "".join(source))
        outputs = cell.get("outputs", [])
        for index, output in enumerate(outputs):
            if WIDGET_VIEW in output.get("data", {}):
                outputs[index] = {"output_type": "display_data", "metadata": {},
                                  "data": {"text/html": CONTROLS_NOTE}}
        if "solution" in cell.get("metadata", {}).get("tags", []):
            cell["metadata"]["tags"].append("hide-input")
            cell["metadata"]["mystnb"] = {"code_prompt_show": "Show the solution",
                                          "code_prompt_hide": "Hide the solution"}
    return notebook


def read_notebook_for_the_page(app, docname: str, source: list[str]) -> None:
    if app.env.doc2path(docname).suffix == ".ipynb":
        source[0] = json.dumps(static_notebook(json.loads(source[0])))


def copy_mathjax(app) -> None:
    copy_asset(MATHJAX, str(Path(app.outdir) / "_static" / "mathjax"))


def student_edition_url(url: str) -> str:
    """A Binder address of a master notebook, ``.../tree/notebooks/NN.ipynb``, made the address of
    its student edition (``binder/postBuild`` builds it into ``student/``); others unchanged."""
    return url.replace("urlpath=lab/tree/notebooks/", "urlpath=lab/tree/student/")


def launch_the_student_edition(app, pagename, templatename, context, doctree) -> None:
    """After the theme's launch buttons (priority 501): Binder opens the student edition."""
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []):
            if "url" in button:
                button["url"] = student_edition_url(button["url"])


def setup(app):
    app.connect("source-read", read_notebook_for_the_page)
    app.connect("builder-inited", copy_mathjax)
    app.connect("html-page-context", launch_the_student_edition, priority=900)
