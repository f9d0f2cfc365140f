"""The rendered site: an index with the course map and one page per notebook, figures inline."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
spec = importlib.util.spec_from_file_location("build_site", ROOT / "scripts/build_site.py")
site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(site)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    output = tmp_path_factory.mktemp("site")
    site.build(output, NOTEBOOKS)
    return output


def test_index_links_every_notebook_page(built):
    index = (built / "index.html").read_text()
    links = set(re.findall(r'href="([^"]+\.html)"', index))
    assert links == {f"{path.stem}.html" for path in NOTEBOOKS}
    assert all((built / link).exists() for link in links)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_page_has_its_text_and_inline_figures(built, path):
    page = (built / f"{path.stem}.html").read_text()
    assert "Learning objectives" in page and "Recap" in page
    assert "data:image/png;base64," in page
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    assert title.startswith(f"{int(path.stem[:2])}. ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_widgets_become_a_note_and_nothing_is_fetched_for_them(built, path):
    page = (built / f"{path.stem}.html").read_text()
    assert site.WIDGET_VIEW not in page and "widget-state" not in page
    has_controls = site.WIDGET_VIEW in path.read_text()
    assert (site.CONTROLS_NOTE in page) == has_controls


def test_pages_link_the_course_map_and_their_neighbours(built):
    for number, path in enumerate(NOTEBOOKS):
        links = re.findall(r'<nav[^>]*>(.*?)</nav>', (built / f"{path.stem}.html").read_text())
        targets = re.findall(r'href="([^"]+)"', links[0])
        neighbours = [NOTEBOOKS[i] for i in (number - 1, number + 1) if 0 <= i < len(NOTEBOOKS)]
        assert targets == ["index.html", *(f"{p.stem}.html" for p in neighbours)]


def test_readme_without_course_map_is_refused():
    with pytest.raises(ValueError, match="Course map"):
        site.course_map_markdown("# nothing here\n## Other\n")
