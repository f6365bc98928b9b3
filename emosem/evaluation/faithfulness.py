"""Faithfulness of an explanation to the region: do its colour and position words agree with
what was measured on the region the model segmented (:mod:`emosem.data.cues`)?

The rule (README, "Faithfulness"; the words are those of :mod:`emosem.data.cue_words`):

* **Colour.** An explanation agrees when every basic colour term it uses ("the dark gray sea"
  → grey) is the basic term of one of the region's measured dominant colours (each ≥ 15 % of
  the region). An explanation without colour words is not scored on colour.
* **Position.** It agrees when every position phrase it uses ("upper left", "at the top", "on
  the left", "in the center" …) names the 3×3 grid cell of the region's centroid
  (``Cues.centroid``). An explanation without position phrases is not scored on position.

Scores are shares of the scored explanations, reported with how many were scored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from emosem.data.cue_words import colour_terms, measured_terms, phrases_hold, position_phrases
from emosem.regions import cues_see_region


def colour_agrees(text: str, cues: Mapping) -> bool | None:
    """True/False when the text uses colour words (see the module rule), None otherwise."""
    used = colour_terms(text)
    if not used:
        return None
    return used <= measured_terms(cues)


def position_agrees(text: str, cues: Mapping) -> bool | None:
    """True/False when the text uses position phrases (see the module rule), None otherwise."""
    phrases = position_phrases(text)
    if not phrases:
        return None
    return phrases_hold(phrases, cues)


def faithfulness(pairs: Iterable[tuple[str, Mapping]]) -> dict[str, float | int | None]:
    """Scores over (explanation, cues record of the region) pairs: ``colour`` and ``position``
    (shares of the scored explanations, None when none was scored) and their counts."""
    scored = [(t, c) for t, c in pairs if t and cues_see_region(c)]
    col = [a for a in (colour_agrees(t, c) for t, c in scored) if a is not None]
    pos = [a for a in (position_agrees(t, c) for t, c in scored) if a is not None]
    return {
        "colour": sum(col) / len(col) if col else None, "colour_scored": len(col),
        "position": sum(pos) / len(pos) if pos else None, "position_scored": len(pos),
    }
