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


def build(output: Path, notebooks: list[Path]) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    pages = []
    for path in notebooks:
        body, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))
        page = output / f"{path.stem}.html"
        page.write_text(body)
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
