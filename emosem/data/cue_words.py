"""The words of an explanation that a region's measured cues can check, in one place: the
faithfulness metric (``emosem.evaluation.faithfulness``) scores them and grounded decoding
(``emosem.inference.grounding``) keeps the language model from writing the ones that contradict
the region.

* **Colour words** are the basic colour terms (:data:`emosem.data.cues.BASIC_TERMS`), with
  :data:`SYNONYMS` (``gray``, ``violet``, ``golden``, ``crimson``…) mapped to them; modifiers
  ("dark", "pale") are not checked. A colour word holds when its term is the basic term of one
  of the region's measured dominant colours.
* **Position phrases** (:data:`POSITIONS`) name cells of the canvas's 3×3 grid: "upper left" →
  row 0 and column 0, "at the top" → row 0, "on the left" → column 0, "in the center" → the
  centre cell. A phrase holds when it names the cell of the region's centroid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from emosem.data.cues import BASIC_TERMS

SYNONYMS = {"gray": "grey", "violet": "purple", "golden": "yellow", "gold": "yellow",
            "crimson": "red", "scarlet": "red", "turquoise": "blue", "navy": "blue",
            "olive": "green", "silver": "grey"}
COLOUR_WORDS = (*BASIC_TERMS, *SYNONYMS)
_COLOUR_RE = re.compile(r"\b(" + "|".join(sorted(COLOUR_WORDS, key=len, reverse=True)) + r")\b", re.I)

# phrase → (row or None, column or None); longer phrases are matched first and consumed.
POSITIONS: dict[str, tuple[int | None, int | None]] = {
    "upper left": (0, 0), "top left": (0, 0), "upper right": (0, 2), "top right": (0, 2),
    "lower left": (2, 0), "bottom left": (2, 0), "lower right": (2, 2), "bottom right": (2, 2),
    "at the top": (0, None), "near the top": (0, None), "upper part": (0, None),
    "across the top": (0, None), "at the bottom": (2, None), "near the bottom": (2, None),
    "lower part": (2, None), "along the bottom": (2, None),
    "on the left": (None, 0), "left side": (None, 0), "at the left": (None, 0),
    "on the right": (None, 2), "right side": (None, 2), "at the right": (None, 2),
    "in the center": (1, 1), "at the center": (1, 1), "in the centre": (1, 1),
    "in the middle": (1, 1),
}
_POSITION_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, POSITIONS), key=len, reverse=True))
                          + r")\b", re.I)
# The single words that carry a position phrase's meaning, and the cells they name.
POSITION_WORDS: dict[str, tuple[int | None, int | None]] = {
    "left": (None, 0), "right": (None, 2), "top": (0, None), "upper": (0, None),
    "bottom": (2, None), "lower": (2, None), "center": (1, 1), "centre": (1, 1), "middle": (1, 1),
}


def colour_terms(text: str) -> set[str]:
    """Basic colour terms a text uses: "the dark gray sea" → {"grey"}."""
    return {SYNONYMS.get(w.lower(), w.lower()) for w in _COLOUR_RE.findall(text or "")}


def position_phrases(text: str) -> list[str]:
    """Position phrases a text uses, longest match first: ["upper left", …]."""
    return [m.lower() for m in _POSITION_RE.findall(text or "")]


def region_cell(cues: Mapping) -> tuple[int, int]:
    """The 3×3 grid cell (row, column) of a cues record's centroid."""
    x, y = cues["centroid"]
    return min(2, int(3 * y)), min(2, int(3 * x))


def measured_terms(cues: Mapping) -> set[str]:
    """Basic colour terms of a cues record's dominant colours: "greyish blue" → "blue"."""
    return {SYNONYMS.get(t, t) for t in (c["name"].split()[-1] for c in cues.get("colours", []))}


def _holds(cell: tuple[int | None, int | None], row: int, col: int) -> bool:
    r, c = cell
    return (r is None or r == row) and (c is None or c == col)


def contradicting_words(cues: Mapping) -> list[str]:
    """The colour and position words that would be false of the region a cues record
    describes (none for an empty region, which is not explained)."""
    if not cues or not cues.get("area_fraction"):
        return []
    terms = measured_terms(cues)
    row, col = region_cell(cues)
    colours = [w for w in COLOUR_WORDS if SYNONYMS.get(w, w) not in terms]
    return colours + [w for w, cell in POSITION_WORDS.items() if not _holds(cell, row, col)]


def phrases_hold(phrases: list[str], cues: Mapping) -> bool:
    """Every position phrase names the region's cell."""
    row, col = region_cell(cues)
    return all(_holds(POSITIONS[p], row, col) for p in phrases)
