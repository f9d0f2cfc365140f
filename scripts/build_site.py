"""Render the executed notebooks into a static HTML site a teacher can put on any web server.

One page per notebook (figures inline) and an index with the course map from README.md.

    .venv/bin/python scripts/build_site.py [--output site]
"""

from __future__ import annotations

import argparse
import html
import re
from pathlib import Path

import mistune
import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
TITLE = "Pruning vs Quantization: the course"


def course_map_markdown(readme: str) -> str:
    """The README's "## Course map" section, with notebook links pointing at the HTML pages."""
    section = re.search(r"^## Course map\n(.*?)(?=^## )", readme, flags=re.S | re.M)
    if section is None:
        raise ValueError("README.md has no '## Course map' section")
    return re.sub(r"\(notebooks/([^)]+)\.ipynb\)", r"(\1.html)", section.group(1))


def index_page(readme: str) -> str:
    body = mistune.html(course_map_markdown(readme))
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(TITLE)}</title>"
            "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.4rem}</style>"
            f"</head><body><h1>{html.escape(TITLE)}</h1>\n<h2>Course map</h2>\n{body}"
            "</body></html>\n")


def notebook_title(notebook: nbformat.NotebookNode) -> str:
    """The first level-1 heading of the notebook's first cell ("# 4. Per-layer bounds: ...")."""
    heading = re.search(r"^# (.+)$", notebook.cells[0].source, flags=re.M)
    if heading is None:
        raise ValueError("notebook: its first cell must open with a '# Title' heading")
    return heading.group(1).strip()


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CONTROLS_NOTE = ("<p><em>Interactive controls appear here when the notebook runs in JupyterLab; "
                 "the figure below is drawn for their default setting.</em></p>")


def without_widgets(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with each widget output replaced by a note, and no widget state.

    A static page has no kernel, so live-looking controls would do nothing; without the state,
    nbconvert also leaves out the script that would fetch a widget renderer from the web.
    """
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        for index, output in enumerate(cell.get("outputs", [])):
            if WIDGET_VIEW in output.get("data", {}):
                cell.outputs[index] = nbformat.v4.new_output(
                    "display_data", data={"text/html": CONTROLS_NOTE})
    return notebook


def with_navigation(page: str, previous: tuple[str, str] | None,
                    following: tuple[str, str] | None) -> str:
    """The page with a bar at the top of its body: the course map, then the previous and the
    next notebook, each given as ``(file name, title)``."""
    links = ['<a href="index.html">Course map</a>']
    for label, neighbour in (("Previous", previous), ("Next", following)):
        if neighbour is not None:
            href, title = neighbour
            links.append(f'<a href="{href}">{label}: {html.escape(title)}</a>')
    bar = ('<nav style="font-family:sans-serif;padding:.5rem 1rem;border-bottom:1px solid #ccc">'
           + " | ".join(links) + "</nav>")
    opening = re.search(r"<body[^>]*>", page)
    if opening is None:
        raise ValueError("page: no <body> tag to put the navigation in")
    return page[:opening.end()] + bar + page[opening.end():]


def build(output: Path, notebooks: list[Path]) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    contents = [without_widgets(nbformat.read(path, as_version=4)) for path in notebooks]
    links = [(f"{path.stem}.html", notebook_title(notebook))
             for path, notebook in zip(notebooks, contents)]
    pages = []
    for number, notebook in enumerate(contents):
        href, title = links[number]
        body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": title}})
        previous = links[number - 1] if number > 0 else None
        following = links[number + 1] if number + 1 < len(links) else None
        page = output / href
        page.write_text(with_navigation(body, previous, following))
        pages.append(page)
    index = output / "index.html"
    index.write_text(index_page((ROOT / "README.md").read_text()))
    return [index, *pages]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "site")
    args = parser.parse_args()
    for page in build(args.output, sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))):
        print(f"wrote {page}")


if __name__ == "__main__":
    main()
