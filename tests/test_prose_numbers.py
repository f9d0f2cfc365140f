"""A guard against drift: every number the prose states with a unit is one the notebook printed.

Rule. In a markdown cell, every decimal number followed by a unit (``dB``, ``%``, ``s``, ``ms``,
``us``, ``µs``, ``x`` or ``×``; a space before the unit is allowed), for example ``26.2 %`` or
``19.26 dB``, must either

- appear in the same notebook's stored outputs (printed text: stdout and the ``text/plain`` of
  results) rounded as written: some printed number with at least as many decimals rounds to it
  (the sign is ignored, so "loses 0.36 dB" may quote a printed ``-0.36``); for ``%`` a printed
  fraction counts too (``0.262`` supports ``26.2 %``); or
- be marked as a quoted figure, with its source named, right after the unit:
  ``19.1 dB (quoted: paper, Sec. 3.1)``. The marker reads as a footnote in the rendered notebook
  and is the only way to state a number the notebook does not compute.

Integers (``75 %``, ``8 bits``) are settings more often than results and are not checked; write a
result with its decimals. Training-dependent numbers are never quoted as literals (see the
developers' guide): point at the printed table instead.

Every numbered notebook is under the rule (``NOTEBOOKS``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(path.name for path in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))

_MINUS = "-\u2212"
CLAIM = re.compile(
    rf"(?<![\w.])[{_MINUS}]?(?P<number>\d+\.\d+)[ \u00a0\u202f]?(?P<unit>dB|%|ms|us|µs|s|x|×)"
    r"(?![\w])(?P<quoted>\s*\(quoted:\s*[^)\s][^)]*\))?"
)
PRINTED = re.compile(rf"[{_MINUS}+]?(?P<digits>\d+)(?:\.(?P<decimals>\d+))?(?:[eE](?P<exp>[-+]?\d+))?")


def prose_claims(markdown: str) -> list[tuple[str, float, int, str, bool]]:
    """``(text, value, decimals, unit, quoted)`` for every decimal number with a unit."""
    return [(m.group(0).strip(), float(m["number"]), len(m["number"].split(".")[1]), m["unit"],
             m["quoted"] is not None) for m in CLAIM.finditer(markdown)]


def printed_numbers(text: str) -> list[tuple[float, int]]:
    """``(|value|, decimals)`` of every number in printed text; ``1.5e-03`` has 4 decimals."""
    numbers = []
    for m in PRINTED.finditer(text):
        decimals, exponent = len(m["decimals"] or ""), int(m["exp"] or 0)
        value = float(f"{m['digits']}.{m['decimals'] or 0}e{exponent}")
        numbers.append((value, decimals - exponent))
    return numbers


def supported(value: float, decimals: int, unit: str, printed: list[tuple[float, int]]) -> bool:
    """Whether a printed number with at least ``decimals`` decimals rounds to ``value``."""
    half_step = 0.5 * 10.0**-decimals * (1 + 1e-9)
    scalings = [(1.0, 0), (100.0, 2)] if unit == "%" else [(1.0, 0)]
    return any(shown - shift >= decimals and abs(number * factor - value) <= half_step
               for number, shown in printed for factor, shift in scalings)


def notebook_texts(notebook: dict) -> tuple[list[str], str]:
    """The markdown cells' sources, and all printed output text joined."""
    markdown = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"]
    printed = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                printed.append("".join(output["text"]))
            elif "text/plain" in output.get("data", {}):
                printed.append("".join(output["data"]["text/plain"]))
    return markdown, "\n".join(printed)


def unsupported_claims(notebook: dict) -> list[str]:
    """Every unquoted prose number with a unit that no printed output supports."""
    markdown, printed_text = notebook_texts(notebook)
    printed = printed_numbers(printed_text)
    return [text for cell in markdown for text, value, decimals, unit, quoted in prose_claims(cell)
            if not quoted and not supported(value, decimals, unit, printed)]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_prose_numbers_are_printed_or_quoted(name):
    notebook = json.loads((NOTEBOOK_DIR / name).read_text())
    missing = unsupported_claims(notebook)
    assert not missing, (f"{name}: these numbers in the prose are neither printed by the notebook "
                         f"nor marked '(quoted: source)': {missing}")


def _fake_notebook(markdown: str, printed: str) -> dict:
    return {"cells": [
        {"cell_type": "markdown", "source": [markdown]},
        {"cell_type": "code", "source": ["print(...)"], "outputs": [
            {"output_type": "stream", "name": "stdout", "text": [printed]}]},
    ]}


def test_checker_finds_a_number_the_notebook_did_not_print():
    notebook = _fake_notebook("Quantization wins by 13.8 dB, and pruning wins for 26.2 % of them.",
                              "gap 13.68 dB\nshare 0.2619\n")
    assert unsupported_claims(notebook) == ["13.8 dB"]


def test_checker_accepts_rounding_fractions_signs_and_quoted_figures():
    notebook = _fake_notebook(
        "Gap 13.7 dB; wins 26.2 %; loses 0.36 dB; the paper says 19.1 dB (quoted: paper, Sec. 3.1)"
        ", and took 1.5 s.", "gap 13.68 dB\nshare 0.2619\nchange -0.36\ntime 1.52 s\n")
    assert unsupported_claims(notebook) == []


def test_checker_wants_enough_printed_decimals_and_a_named_source():
    assert unsupported_claims(_fake_notebook("about 26.2 %", "26%")) == ["26.2 %"]
    assert unsupported_claims(_fake_notebook("19.1 dB (quoted: )", "")) == ["19.1 dB"]
    assert unsupported_claims(_fake_notebook("a 1.5x speed-up", "1.44x")) == ["1.5x"]
    # words that begin with a unit's letters are not units; integers are not checked
    assert prose_claims("2.7 sigma, 75 % sparsity, 1.81 bits") == []
