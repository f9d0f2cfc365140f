"""Checks for the notebooks' exercises: the library is the reference, and a wrong or missing
answer gets a message that names the exercise and says exactly what differs.

The graded exercises are otter-grader questions (see ``scripts/build_student_edition.py``): each
question's test calls one of these functions, so the master notebook runs the same check that
``grader.check(...)`` runs in the student edition.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np


class ExerciseNotAnswered(AssertionError):
    """The answer is still the placeholder: ``None``, ``...`` or a function whose body is ``...``."""


def _unanswered(value: object) -> bool:
    return value is None or value is Ellipsis


_SHOWN = 6  # arrays with more entries, and lists with more items, are summarised in messages
_MESSAGE_CHARACTERS = 200  # a learner's exception text is cut to this length


def _short(value: object) -> str:
    """One line for a message: numbers with 6 significant digits; arrays of at most ``_SHOWN``
    entries in full, larger ones by shape and range; lists and tuples item by item, the first
    ``_SHOWN`` of them."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return _short(value.tolist()) if value.size <= _SHOWN else _summary(value)
    if isinstance(value, (float, np.floating)):
        text = f"{value:.6g}"
        return text + ".0" if text.lstrip("-").isdigit() else text  # 8.0 stays a float: "8.0"
    if isinstance(value, (list, tuple)):
        items = [_short(item) for item in value[:_SHOWN]]
        if len(value) > _SHOWN:
            items.append(f"... ({len(value)} items)")
        if isinstance(value, tuple):
            return f"({', '.join(items)}{',' if len(value) == 1 else ''})"
        return f"[{', '.join(items)}]"
    if hasattr(value, "shape") and hasattr(value, "columns"):  # a pandas DataFrame
        return f"<table of {value.shape[0]} rows>"
    if hasattr(value, "dist") and hasattr(value, "args"):  # a frozen scipy distribution
        arguments = [repr(a) for a in value.args] + [f"{k}={v!r}" for k, v in value.kwds.items()]
        return f"{value.dist.name}({', '.join(arguments)})"
    return _short_text(repr(value))


def _summary(array: np.ndarray) -> str:
    """A large array by its shape, type and range: ``<array of shape (3, 4), float64, from -1
    to 2.5>``."""
    described = f"array of shape {array.shape}, {array.dtype}"
    if array.dtype == bool:
        described += f", {int(array.sum())} True"
    elif np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating):
        described += f", from {_short(array.min().item())} to {_short(array.max().item())}"
    return f"<{described}>"


def check_value(exercise: str, what: str, got: object, expected: object, *,
                rel_tol: float = 1e-9, abs_tol: float = 0.0) -> None:
    """Assert that ``got`` equals ``expected``: numbers within ``rel_tol``/``abs_tol``
    (``|got - expected| <= max(rel_tol |expected|, abs_tol)``), arrays entry by entry with the
    same shape, anything else with ``==``. The message names ``exercise`` and ``what`` was
    compared, and for arrays the first entry that differs."""
    if _unanswered(got):
        raise ExerciseNotAnswered(f"{exercise}: no answer yet: {what} is {got!r}. Replace the "
                                  "placeholder `...`, run the cell, then run this check again.")
    if isinstance(expected, np.ndarray):
        got = np.asarray(got)
        if got.shape != expected.shape:
            raise AssertionError(f"{exercise}: {what} has shape {got.shape}, expected "
                                 f"{expected.shape}: {_short(got)} against {_short(expected)}")
        wrong = ~np.isclose(got, expected, rtol=rel_tol, atol=abs_tol, equal_nan=False)
        if wrong.any():
            first = tuple(int(i) for i in np.argwhere(wrong)[0])
            where = first[0] if len(first) == 1 else first
            raise AssertionError(
                f"{exercise}: {what} differs in {int(wrong.sum())} of {wrong.size} entries; "
                f"first at index {where}: {_short(got[first].item())} instead of "
                f"{_short(expected[first].item())}. Yours: {_short(got)}; expected: "
                f"{_short(expected)}")
    elif isinstance(expected, numbers.Real) and not isinstance(expected, bool):
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            raise AssertionError(f"{exercise}: {what} should be a number, got "
                                 f"{type(got).__name__} {_short(got)}")
        if not math.isclose(float(got), float(expected), rel_tol=rel_tol, abs_tol=abs_tol):
            raise AssertionError(f"{exercise}: {what} is {_short(float(got))}, expected "
                                 f"{_short(float(expected))} (difference "
                                 f"{float(got) - float(expected):.3g})")
    elif got != expected:
        raise AssertionError(f"{exercise}: {what} is {_short(got)}, expected {_short(expected)}")


def check_function(exercise: str, function: Callable | None, reference: Callable,
                   cases: Sequence[tuple], *, rel_tol: float = 1e-9, abs_tol: float = 0.0) -> None:
    """Call the learner's ``function`` and the library's ``reference`` on each case (a tuple of
    arguments) and compare the results with ``check_value``; then print that it passed."""
    check_functions(exercise, [(function, reference)], cases, rel_tol=rel_tol, abs_tol=abs_tol)


def check_functions(exercise: str, pairs: Sequence[tuple[Callable | None, Callable]],
                    cases: Sequence[tuple], *, rel_tol: float = 1e-9,
                    abs_tol: float = 0.0) -> None:
    """``check_function`` for an exercise with several functions: each ``(function,
    reference)`` pair on the same cases, in order, then one report for the exercise."""
    for function, reference in pairs:
        _compare_on_cases(exercise, function, reference, cases, rel_tol, abs_tol)
    functions = "" if len(pairs) == 1 else f"all {len(pairs)} functions "
    print(f"{exercise}: {functions}correct on {len(cases)} test inputs")


def _compare_on_cases(exercise: str, function: Callable | None, reference: Callable,
                      cases: Sequence[tuple], rel_tol: float, abs_tol: float) -> None:
    if function is None:
        raise ExerciseNotAnswered(f"{exercise}: the function is not defined yet: run the cell "
                                  "that defines it, then this check.")
    for case in cases:
        call = f"{function.__name__}({', '.join(_short(argument) for argument in case)})"
        try:
            got = function(*case)
        except Exception as error:  # the learner's code: report it, do not crash the check
            raise AssertionError(f"{exercise}: {call} raised {type(error).__name__}: "
                                 f"{_short_text(str(error))}") from None
        if _unanswered(got):
            raise ExerciseNotAnswered(f"{exercise}: no answer yet: {call} returned {got!r}. "
                                      "Write the function's body in place of `...`, run its "
                                      "cell, then run this check again.")
        check_value(exercise, call, got, reference(*case), rel_tol=rel_tol, abs_tol=abs_tol)


def _short_text(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARACTERS else text[:_MESSAGE_CHARACTERS] + " ..."


def check_choice(exercise: str, prediction: object, correct: object,
                 options: Sequence[object]) -> None:
    """A "predict, then run" answer: ``prediction`` must be one of ``options`` and equal to
    ``correct``, the value the cell above the check computed with the library."""
    if _unanswered(prediction):
        raise ExerciseNotAnswered(f"{exercise}: no prediction yet. Commit to one of "
                                  f"{list(options)} before you run the cell that reveals it.")
    if prediction not in options:
        raise AssertionError(f"{exercise}: {prediction!r} is not one of {list(options)}")
    if prediction != correct:
        raise AssertionError(f"{exercise}: you predicted {prediction!r}; the computation above "
                             f"says {correct!r}. Read the printed numbers to see why.")
    print(f"{exercise}: you predicted {prediction!r}, and so it is")
