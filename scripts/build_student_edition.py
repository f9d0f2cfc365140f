"""Build the student edition: solutions removed, checks kept, outputs cleared.

Every cell tagged ``solution`` only assigns ``answer_*`` names; in the student edition each
assignment becomes ``answer_x = ...  # your answer here``, so the check cell below it fails with
"no answer yet" (``pvq.exercises.ExerciseNotAnswered``) until the learner fills it in.

    .venv/bin/python scripts/build_student_edition.py [--output student]
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "...  # your answer here"


def answer_names(source: str) -> list[str]:
    """The ``answer_*`` names a solution cell assigns (and nothing else is allowed in it)."""
    names = []
    for statement in ast.parse(source).body:
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if len(targets) != 1 or not isinstance(targets[0], ast.Name) \
                or not targets[0].id.startswith("answer_"):
            raise ValueError(f"a solution cell may only assign answer_* names:\n{source}")
        names.append(targets[0].id)
    return names


def student_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy with every solution replaced by placeholders and every output cleared."""
    student = nbformat.from_dict(notebook)
    for cell in student.cells:
        if cell.cell_type != "code":
            continue
        if "solution" in cell.metadata.get("tags", []):
            cell.source = "\n".join(f"{name} = {PLACEHOLDER}" for name in answer_names(cell.source))
            cell.metadata["tags"] = ["exercise"]
        cell.outputs, cell.execution_count = [], None
    return student


def build(output: Path, notebooks: list[Path]) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        target = output / path.name
        nbformat.write(student_notebook(nbformat.read(path, as_version=4)), target)
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
