"""The student edition's build script and what its unanswered checks must say, shared by the
student-edition tests and the browser test that runs each student notebook in JupyterLab."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_student_edition",
                                               ROOT / "scripts/build_student_edition.py")
edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(edition)

QUESTION = re.compile(r"#\s*BEGIN QUESTION\s*\n\s*name:\s*(\S+)")


def question_names(notebook: nbformat.NotebookNode) -> list[str]:
    return [m[1] for cell in notebook.cells if cell.cell_type == "raw"
            for m in [QUESTION.search(cell.source)] if m]


def assert_each_open_exercise_says_so(master: Path, checks: list[tuple[str, str]]) -> None:
    """``checks``: each ``grader.check(...)`` cell of the student edition, as (source, output
    text) after a run with nothing answered. Each names its exercise and says that no answer was
    given yet: otter reports a failed test, not a traceback."""
    assert [re.search(r'"(.+)"', source)[1] for source, _ in checks] == question_names(
        nbformat.read(master, as_version=4)), master.name
    for source, report in checks:
        number = re.search(r"\d+", source)[0]
        assert "Test case failed" in report and "Traceback" not in report, report
        assert re.search(rf"ExerciseNotAnswered: Exercise {number}: no (answer|prediction) yet",
                         report), report
