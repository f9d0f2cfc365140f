"""Student editions: no solution left, every check fails clearly on an empty answer."""

import ast
import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
spec = importlib.util.spec_from_file_location("build_student_edition",
                                              ROOT / "scripts/build_student_edition.py")
edition = importlib.util.module_from_spec(spec)
spec.loader.exec_module(edition)


def loaded_names(source: str) -> set[str]:
    tree = ast.parse(source)
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    output = tmp_path_factory.mktemp("student")
    edition.build(output, NOTEBOOKS)
    return output


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_solution_is_left_and_outputs_are_cleared(path, student_dir):
    original = nbformat.read(path, as_version=4)
    student = nbformat.read(student_dir / path.name, as_version=4)
    solutions = [c.source for c in original.cells if "solution" in c.metadata.get("tags", [])]
    assert solutions, f"{path.name} has no exercise (a cell tagged solution)"
    student_code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    for solution in solutions:
        for statement in ast.parse(solution).body:
            assert ast.unparse(statement.value) not in student_code.replace(edition.PLACEHOLDER, "")
    assert all(not c.outputs for c in student.cells if c.cell_type == "code")
    assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_answer_is_checked_right_after_and_used_nowhere_else(path):
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    for index, cell in enumerate(cells):
        if "solution" in cell.metadata.get("tags", []):
            names = set(edition.answer_names(cell.source))
            check = cells[index + 1].source
            assert "check_answer" in check and names <= loaded_names(check), check
    free = [c for i, c in enumerate(cells) if "solution" not in c.metadata.get("tags", [])
            and not (i and "solution" in cells[i - 1].metadata.get("tags", []))]
    for cell in free:
        assert not {n for n in loaded_names(cell.source) if n.startswith("answer_")}, cell.source


def test_a_student_notebook_runs_and_each_check_says_no_answer_yet(student_dir):
    notebook = nbformat.read(student_dir / NOTEBOOKS[0].name, as_version=4)
    NotebookClient(notebook, kernel_name="python3", allow_errors=True, timeout=300,
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    exercises = sum("exercise" in c.metadata.get("tags", []) for c in notebook.cells)
    assert len(errors) == exercises > 0
    assert {e.ename for e in errors} == {"ExerciseNotAnswered"}
    assert all("no answer yet" in e.evalue for e in errors)
