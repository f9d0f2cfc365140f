"""Real English text that ships with Python: the prose paragraphs of the documentation topics.

``pydoc_data.topics`` holds the text of ``help()`` topics. Its running-text paragraphs (not
indented: code and grammar blocks are) of at least ``MIN_WORDS`` words are the course's corpus,
unwrapped to one line each, in the sorted order of the topics. ``split_paragraphs`` cuts them
once, seeded, into a calibration part (to build Hessians) and a held-out part (to evaluate).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pydoc_data.topics

from pvq._validation import check_int

#: a paragraph needs this many words to count as prose
MIN_WORDS = 30
#: paragraphs in the calibration part, and the seed of the split
CALIBRATION_COUNT = 128
SPLIT_SEED = 0

__all__ = ["CALIBRATION_COUNT", "MIN_WORDS", "SPLIT_SEED", "TextSplit", "halves",
           "prose_paragraphs", "split_paragraphs"]


class TextSplit(NamedTuple):
    """Disjoint calibration and held-out paragraphs (each in corpus order)."""

    calibration: list[str]
    held_out: list[str]


def prose_paragraphs(min_words: int = MIN_WORDS) -> list[str]:
    """The prose paragraphs (not indented, at least ``min_words`` words) of
    ``pydoc_data.topics``, whitespace collapsed, without duplicates."""
    min_words = check_int(min_words, "min_words", 1)
    paragraphs: dict[str, None] = {}
    for topic in sorted(pydoc_data.topics.topics):
        for block in re.split(r"\n\s*\n", pydoc_data.topics.topics[topic]):
            if block.strip() and not block.startswith(" ") and len(block.split()) >= min_words:
                paragraphs[" ".join(block.split())] = None
    return list(paragraphs)


def split_paragraphs(calibration: int = CALIBRATION_COUNT, seed: int = SPLIT_SEED,
                     min_words: int = MIN_WORDS) -> TextSplit:
    """``calibration`` paragraphs drawn without replacement (``numpy.random.default_rng(seed)``)
    for calibration; all the others are held out."""
    paragraphs = prose_paragraphs(min_words)
    calibration = check_int(calibration, "calibration", 1, len(paragraphs) - 1)
    seed = check_int(seed, "seed")
    chosen = np.zeros(len(paragraphs), dtype=bool)
    chosen[np.random.default_rng(seed).choice(len(paragraphs), calibration, replace=False)] = True
    return TextSplit([p for p, c in zip(paragraphs, chosen) if c],
                     [p for p, c in zip(paragraphs, chosen) if not c])


def halves(paragraph: str) -> tuple[str, str]:
    """The first and the second half of a paragraph's words (the first half the shorter one)."""
    if not isinstance(paragraph, str):
        raise TypeError(f"paragraph must be a str, got {type(paragraph).__name__}")
    words = paragraph.split()
    if len(words) < 2:
        raise ValueError(f"paragraph must have at least 2 words, got {len(words)}")
    middle = len(words) // 2
    return " ".join(words[:middle]), " ".join(words[middle:])
