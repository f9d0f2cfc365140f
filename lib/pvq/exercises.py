"""Checks for the notebooks' exercises: a clear message for a missing or wrong answer."""

from __future__ import annotations

import math
import numbers

import numpy as np


class ExerciseNotAnswered(AssertionError):
    """The answer variable still holds the placeholder (``None`` or ``...``)."""


def check_answer(
    name: str, answer: object, expected: object, *, rel_tol: float = 1e-6, abs_tol: float = 0.0
) -> None:
    """Assert that ``answer`` matches ``expected`` (numbers within the tolerances), then say so.

    Numbers and arrays compare with ``rel_tol`` / ``abs_tol``; anything else with ``==``.
    """
    if answer is None or answer is Ellipsis:
        raise ExerciseNotAnswered(f"{name}: no answer yet. Replace the placeholder and re-run.")
    if isinstance(expected, numbers.Real) and not isinstance(expected, bool):
        if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
            raise AssertionError(f"{name}: expected a number, got {type(answer).__name__}")
        correct = math.isclose(float(answer), float(expected), rel_tol=rel_tol, abs_tol=abs_tol)
    elif isinstance(expected, np.ndarray):
        answer = np.asarray(answer)
        correct = answer.shape == expected.shape and bool(
            np.allclose(answer, expected, rtol=rel_tol, atol=abs_tol)
        )
    else:
        correct = answer == expected
    if not correct:
        raise AssertionError(f"{name}: {answer!r} is not right yet. Look again at the hint.")
    print(f"{name}: correct")
