"""Build the student edition with otter-grader: ``otter assign`` on every master notebook.

A master notebook is an otter-grader master (its first cell is a raw ``# ASSIGNMENT CONFIG``
cell). Each graded question sits between raw cells ``# BEGIN QUESTION`` (with ``name: ...``)
and ``# END QUESTION``: its markdown statement, its solution between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` (lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` comments in the
cell become ``...``; a line ending in ``# SOLUTION`` becomes ``name = ...``; the cell is tagged
``solution`` so the site folds it), and its test between ``# BEGIN TESTS`` and ``# END TESTS``:
one function ``test_...`` whose arguments name the learner's variables, and the call of that
function (the master runs it, so nbval fails if the solution does not pass; otter drops it).
The student edition keeps the statements, replaces each solution by ``...``, each test by
``grader.check("name")`` (the test travels in the notebook's metadata: it runs offline, with no
grading server), drops the ``solution`` tags and clears every output.

Every numbered notebook is an otter master; a notebook that is not is refused.

    .venv/bin/python scripts/build_student_edition.py [--output student]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from pathlib import Path

import nbformat
from otter.assign import main as otter_assign

ROOT = Path(__file__).resolve().parents[1]
CONFIG_MARKER = "# ASSIGNMENT CONFIG"


def is_otter_master(notebook: nbformat.NotebookNode) -> bool:
    """Whether the notebook's first cell is otter-grader's raw assignment configuration."""
    first = notebook.cells[0] if notebook.cells else None
    return first is not None and first.cell_type == "raw" \
        and first.source.lstrip().startswith(CONFIG_MARKER)


def _finish(student: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """No ``solution`` tag, no output and no record of the master's run left."""
    for cell in student.cells:
        cell.metadata.pop("execution", None)
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            cell.metadata["tags"] = [tag for tag in tags if tag != "solution"] or ["exercise"]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return student


def otter_student(master: Path) -> nbformat.NotebookNode:
    """``otter assign`` on ``master`` (tests not re-run: nbval runs the master), student part."""
    with tempfile.TemporaryDirectory() as work:
        log = io.StringIO()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            otter_assign(str(master), work, no_run_tests=True, no_pdfs=True)
        return _finish(nbformat.read(Path(work) / "student" / master.name, as_version=4))


def build(output: Path, notebooks: list[Path]) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        if not is_otter_master(nbformat.read(path, as_version=4)):
            raise ValueError(f"{path.name} is not an otter master (no # ASSIGNMENT CONFIG cell)")
        student = otter_student(path)
        target = output / path.name
        nbformat.write(student, target)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "student")
    args = parser.parse_args()
    for path in build(args.output, sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
