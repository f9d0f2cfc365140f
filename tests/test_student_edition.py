"""The student edition (otter-grader's ``otter assign``), checked both ways: the master passes
its own checks (nbval runs it: each test cell calls its test), and in the student edition every
unanswered exercise fails with a message naming it, with no cell raising an error (the browser
test runs each student notebook top to bottom in JupyterLab, as Binder serves it, and checks
that with ``student_helpers.assert_each_open_exercise_says_so``)."""

import ast
from pathlib import Path

import nbformat
import pytest
from student_helpers import edition, question_names

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))

MASTERS = [path for path in NOTEBOOKS if edition.is_otter_master(nbformat.read(path, as_version=4))]


def blocks(notebook: nbformat.NotebookNode, kind: str) -> list[list[nbformat.NotebookNode]]:
    """The cells between the raw cells ``# BEGIN <kind>`` and ``# END <kind>``, per block."""
    found, current = [], None
    for cell in notebook.cells:
        marker = cell.source.strip().splitlines()[0] if cell.cell_type == "raw" else ""
        if marker == f"# BEGIN {kind}":
            current = []
        elif marker == f"# END {kind}":
            found.append(current)
            current = None
        elif current is not None:
            current.append(cell)
    return found


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    output = tmp_path_factory.mktemp("student")
    edition.build(output, NOTEBOOKS)
    return output


def test_every_notebook_is_an_otter_master():
    assert MASTERS == NOTEBOOKS and len(NOTEBOOKS) >= 7


@pytest.mark.parametrize("path", MASTERS, ids=lambda p: p.stem)
def test_each_master_has_four_to_six_exercises_and_a_prediction(path):
    notebook = nbformat.read(path, as_version=4)
    names = question_names(notebook)
    tests = ["\n".join(cell.source for cell in block) for block in blocks(notebook, "TESTS")]
    solutions = ["\n".join(cell.source for cell in block) for block in blocks(notebook, "SOLUTION")]
    assert len(names) == len(set(names)) == len(tests) == len(solutions)
    predictions = sum("check_choice" in test for test in tests)
    assert 4 <= len(names) - predictions <= 6 and predictions >= 1, names
    # the learner writes a few lines, not one call: median solution at least 3 lines
    lengths = sorted(_solution_lines(source) for source in solutions if "check_choice" not in
                     tests[solutions.index(source)])
    assert lengths[len(lengths) // 2] >= 3, lengths


def _solution_lines(source: str) -> int:
    """Lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` (or one ``# SOLUTION`` line)."""
    lines = source.splitlines()
    if not any("# BEGIN SOLUTION" in line for line in lines):
        return sum(line.rstrip().endswith("# SOLUTION") for line in lines)
    start = next(i for i, line in enumerate(lines) if "# BEGIN SOLUTION" in line)
    end = next(i for i, line in enumerate(lines) if "# END SOLUTION" in line)
    return len([line for line in lines[start + 1:end] if line.strip()])


@pytest.mark.parametrize("path", MASTERS, ids=lambda p: p.stem)
def test_each_check_calls_its_test_in_the_master_against_the_library(path):
    """nbval runs the master: the call after each test function makes the solution pass or
    fail there; each test takes its reference from ``pvq`` (it never recomputes the answer)."""
    for block in blocks(nbformat.read(path, as_version=4), "TESTS"):
        code = [cell for cell in block if cell.cell_type == "code"]
        assert len(code) == 1, [cell.source for cell in code]
        body = ast.parse(code[0].source).body
        assert isinstance(body[0], ast.FunctionDef) and body[0].name.startswith("test_")
        assert len(body) == 2 and ast.unparse(body[1]).startswith(f"{body[0].name}(")
        imported = {node.module for node in ast.walk(body[0]) if isinstance(node, ast.ImportFrom)}
        assert "pvq.exercises" in imported and len({m for m in imported if m.startswith("pvq.")
                                                    and m != "pvq.exercises"}) >= 1, imported


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_solution_is_left_and_outputs_are_cleared(path, student_dir):
    master = nbformat.read(path, as_version=4)
    student = nbformat.read(student_dir / path.name, as_version=4)
    student_code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    solutions = [c.source for c in master.cells if "solution" in c.metadata.get("tags", [])]
    assert solutions, f"{path.name} has no exercise (a cell tagged solution)"
    for solution in solutions:
        lines = solution.splitlines()
        hidden = [line.strip() for line in lines if line.rstrip().endswith("# SOLUTION")]
        if "# BEGIN SOLUTION" in solution:
            start = next(i for i, line in enumerate(lines) if "# BEGIN SOLUTION" in line)
            end = next(i for i, line in enumerate(lines) if "# END SOLUTION" in line)
            hidden += [line.strip() for line in lines[start + 1:end] if line.strip()]
        assert hidden and not [line for line in hidden if line in student_code], path.name
    assert all(not c.outputs for c in student.cells if c.cell_type == "code")
    assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)
    assert not any(c.cell_type == "raw" and "BEGIN" in c.source for c in student.cells)
