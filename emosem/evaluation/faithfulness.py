"""Faithfulness of an explanation to the region: do its colour and position words agree with
what was measured on the region the model segmented (:mod:`emosem.data.cues`)?

The rule (README, "Faithfulness"):

* **Colour.** The colour words of an explanation are the basic colour terms it uses
  (``red, orange, yellow, green, blue, purple, pink, brown, black, white, grey``, with
  ``gray``/``violet``/``golden``/``crimson``… mapped to them; modifiers such as "dark" or "pale"
  are ignored). It agrees when every term it uses is the basic term of one of the region's
  measured dominant colours (each ≥ 15 % of the region). An explanation without colour words
  is not scored on colour.
* **Position.** Its position phrases are mapped to the 3×3 grid of the canvas: "upper left" /
  "top left" → row 0 and column 0, "at the top" / "upper part" → row 0, "on the left" → column 0,
  "center" / "middle" → the centre cell, and so on. It agrees when every phrase it uses holds
  for the cell of the region's centroid (``Cues.centroid``). An explanation without position
  phrases is not scored on position.

Scores are shares of the scored explanations, reported with how many were scored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

BASIC = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black",
         "white", "grey")
SYNONYMS = {"gray": "grey", "violet": "purple", "golden": "yellow", "gold": "yellow",
            "crimson": "red", "scarlet": "red", "turquoise": "blue", "navy": "blue",
            "olive": "green", "silver": "grey"}
_COLOUR_RE = re.compile(r"\b(" + "|".join(sorted((*BASIC, *SYNONYMS), key=len, reverse=True))
                        + r")\b", re.I)

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


def colour_terms(text: str) -> set[str]:
    """Basic colour terms an explanation uses: "the dark gray sea" → {"grey"}."""
    return {SYNONYMS.get(w.lower(), w.lower()) for w in _COLOUR_RE.findall(text or "")}


def position_phrases(text: str) -> list[str]:
    """Position phrases an explanation uses, longest match first: ["upper left", …]."""
    return [m.lower() for m in _POSITION_RE.findall(text or "")]


def region_cell(cues: Mapping) -> tuple[int, int]:
    """The 3×3 grid cell (row, column) of a cues record's centroid."""
    x, y = cues["centroid"]
    return min(2, int(3 * y)), min(2, int(3 * x))


def colour_agrees(text: str, cues: Mapping) -> bool | None:
    """True/False when the text uses colour words (see the module rule), None otherwise."""
    used = colour_terms(text)
    if not used:
        return None
    measured = {c["name"].split()[-1] for c in cues.get("colours", [])}
    return used <= measured


def position_agrees(text: str, cues: Mapping) -> bool | None:
    """True/False when the text uses position phrases (see the module rule), None otherwise."""
    phrases = position_phrases(text)
    if not phrases:
        return None
    row, col = region_cell(cues)
    return all((r is None or r == row) and (c is None or c == col)
               for r, c in (POSITIONS[p] for p in phrases))


def faithfulness(pairs: Iterable[tuple[str, Mapping]]) -> dict[str, float | int | None]:
    """Scores over (explanation, cues record of the region) pairs: ``colour`` and ``position``
    (shares of the scored explanations, None when none was scored) and their counts."""
    scored = [(t, c) for t, c in pairs if t and c and c.get("area_fraction")]
    col = [a for a in (colour_agrees(t, c) for t, c in scored) if a is not None]
    pos = [a for a in (position_agrees(t, c) for t, c in scored) if a is not None]
    return {
        "colour": sum(col) / len(col) if col else None, "colour_scored": len(col),
        "position": sum(pos) / len(pos) if pos else None, "position_scored": len(pos),
    }
