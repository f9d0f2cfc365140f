"""The course site (`make site`: Sphinx, myst-nb, sphinx-book-theme): one page per numbered
notebook in course order, figures inline, widgets replaced by a note, exercises boxed with their
solutions folded, a Binder button per page, nothing loaded from the web."""

import json
import re
from pathlib import Path

import pytest
from site_helpers import book_config, built_site
from test_binder import binder_url, repository_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
conf = book_config()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return built_site(tmp_path_factory.mktemp("book"))


def page_of(built: Path, notebook: Path) -> str:
    return (built / "notebooks" / f"{notebook.stem}.html").read_text()


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text())["cells"]


def test_index_lists_every_numbered_notebook_in_course_order(built):
    index = (built / "index.html").read_text()
    course_map = index[index.index('id="course-map"'):]
    links = re.findall(r'class="toctree-l1"><a class="reference internal" href="([^"]+)"',
                       course_map)
    assert links == [f"notebooks/{path.stem}.html" for path in NOTEBOOKS]
    assert "self-paced course" in index  # the README's introduction


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_page_has_its_text_and_its_figures(built, path):
    page = page_of(built, path)
    assert "Learning objectives" in page and "Recap" in page
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    assert title.startswith(f"{int(path.stem[:2])}. ")
    figures = re.findall(r'<img alt="[^"]*" src="\.\./(_images/[^"]+\.png)"', page)
    outputs = [output for cell in cells(path) for output in cell.get("outputs", [])]
    assert len(figures) == sum("image/png" in output.get("data", {}) for output in outputs)
    assert all((built / figure).is_file() for figure in figures)


def test_pages_link_their_neighbours(built):
    pages = ["../index.html", *(f"{path.stem}.html" for path in NOTEBOOKS)]
    for number, path in enumerate(NOTEBOOKS, start=1):
        footer = page_of(built, path).split('class="prev-next-area"')[1].split("</footer>")[0]
        expected = [pages[number - 1], *pages[number + 1:number + 2]]
        assert re.findall(r'href="([^"]+)"', footer) == expected, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_widgets_become_a_note_and_nothing_comes_from_the_web(built, path):
    page = page_of(built, path)
    assert conf.WIDGET_VIEW not in page and "widget-state" not in page
    assert (conf.CONTROLS_NOTE in page) == (conf.WIDGET_VIEW in path.read_text())
    assert not re.search(r'<(script|img)[^>]+src="(https?:)?//', page)
    assert not re.search(r'<link[^>]+href="(https?:)?//', page)
    # MathJax comes with the site, on each page with formulas
    has_math = 'class="math notranslate nohighlight"' in page
    assert has_math == ('<script async="async" src="../_static/mathjax/MathJax.js' in page)
    assert (built / "_static" / "mathjax" / "MathJax.js").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_boxed_and_solutions_folded(built, path):
    page = page_of(built, path)
    sources = ["".join(cell["source"]) for cell in cells(path)]
    numbers = [found for source in sources for found in conf.EXERCISE.findall(source)]
    solutions = sum("solution" in cell["metadata"].get("tags", []) for cell in cells(path))
    assert numbers and solutions
    boxes = re.findall(r'class="admonition-title">(Exercise \d+)</p>', page)
    assert boxes == [f"Exercise {number}" for number in numbers]
    folded = re.findall(r'<details class="admonition hide above-input">\s*<summary[^>]*>\s*'
                        r'<p class="collapsed admonition-title">Show the solution</p>', page)
    assert len(folded) == solutions


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_page_launches_its_student_notebook_on_binder(built, path):
    """The page shows the master (solutions folded); Binder opens the student edition."""
    page = page_of(built, path)
    assert f'href="{binder_url(repository_url(), notebook=f"student/{path.name}")}"' in page
    assert binder_url(repository_url(), notebook=f"notebooks/{path.name}") not in page


def test_exercise_box_starts_at_the_statement_and_leaves_other_text_alone():
    plain = "## Exercises\nNo statement here."
    assert conf.exercise_block(plain) == plain
    boxed = conf.exercise_block("## Exercises\n**Exercise 3.** Find it.\n\nHint: look.\n")
    assert boxed == ("## Exercises\n::::{admonition} Exercise 3\n:class: exercise\n"
                     "Find it.\n\nHint: look.\n::::\n")
