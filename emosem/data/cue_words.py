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
  centre cell. A phrase holds when it names the region's cell (where most of it is).
* **Object nouns** (:data:`OBJECT_NOUNS`) are the trained vocabulary's names of things: the
  synthetic motifs' nouns, the head nouns of their phrases and their keywords
  (:data:`emosem.data.synthetic.motifs.MOTIFS`), singular and plural. A region's cues license
  at most one object (``Cues.object``: ``{"word", "source", "score"}``, None when nothing is
  licensed); an object noun holds only when it names that object (a licensed motif licenses
  all of its vocabulary).

Words are matched whole (``\\b…\\b``, any case), as the decoder sees them (:func:`words`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from emosem.data.cues import BASIC_TERMS
from emosem.data.synthetic.motifs import MOTIFS, Motif

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



_NOT_NOUNS = ("ing", "tly", "wy")  # keyword endings that are not nouns: "weeping", "ghostly", "shadowy"


def plural_forms(word: str) -> set[str]:
    """A noun and its regular singular/plural forms: "lily" → {"lily", "lilies"}, "peaks" →
    {"peaks", "peak"}, "mass" → {"mass", "masses"}."""
    w = word.lower()
    if w.endswith("ies"):
        return {w, w[:-3] + "y"}
    if w.endswith(("ches", "shes", "sses", "xes", "oes")):
        return {w, w[:-2]}
    if w.endswith("s") and not w.endswith("ss"):
        return {w, w[:-1]}
    if w.endswith("y") and w[-2:-1] not in "aeiou":
        return {w, w[:-1] + "ies"}
    if w.endswith(("ch", "sh", "ss", "x", "o")):
        return {w, w + "es"}
    return {w, w + "s"}


def _motif_vocabulary(motif: Motif) -> set[str]:
    """The words that name one motif: its noun's words, its phrases' head nouns, its keywords,
    each singular and plural (keywords that are adjectives or verb forms, "ghostly",
    "weeping", as they are)."""
    heads = [p.split()[-1] for p in motif.phrases]
    heads += [p.split(" with ")[0].split()[-1] for p in motif.phrases if " with " in p]
    return {f for w in (*motif.noun.split(), *heads, *motif.keywords)
            for f in ({w} if w.endswith(_NOT_NOUNS) else plural_forms(w))}


MOTIF_WORDS: dict[str, frozenset[str]] = {m.name: frozenset(_motif_vocabulary(m)) for m in MOTIFS}
OBJECT_NOUNS: frozenset[str] = frozenset().union(*MOTIF_WORDS.values())
_WORD_RE = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The whole words of a text, lower case, as the matchers and the decoder split them:
    "(blood-RED sky" → ["blood", "red", "sky"]."""
    return [w.lower() for w in _WORD_RE.findall(text or "")]


def object_words(text: str) -> set[str]:
    """Object nouns of the trained vocabulary a text uses: "two tiny Boats, a wave" → {"wave"}."""
    return {w for w in words(text) if w in OBJECT_NOUNS}


def licensed_object(cues: Mapping | object) -> dict | None:
    """The object a cues record (or :class:`~emosem.data.cues.Cues`) licenses, or None (also
    for cues from before the object slot: nothing is licensed)."""
    return cues.get("object") if isinstance(cues, Mapping) else getattr(cues, "object", None)


def licensed_words(obj: Mapping | None) -> set[str]:
    """The object nouns an object slot allows: its word's forms, and for a motif of the trained
    vocabulary (``source == "motif"``) every word that names that motif."""
    if not obj or not obj.get("word"):
        return set()
    allowed = {f for w in str(obj["word"]).split() for f in plural_forms(w)}
    if obj.get("source") == "motif":
        for vocab in MOTIF_WORDS.values():
            if allowed & vocab:
                allowed |= vocab
    return allowed


def colour_terms(text: str) -> set[str]:
    """Basic colour terms a text uses: "the dark gray sea" → {"grey"}."""
    return {SYNONYMS.get(w.lower(), w.lower()) for w in _COLOUR_RE.findall(text or "")}


def position_phrases(text: str) -> list[str]:
    """Position phrases a text uses, longest match first: ["upper left", …]."""
    return [m.lower() for m in _POSITION_RE.findall(text or "")]


def region_cell(cues: Mapping) -> tuple[int, int]:
    """The 3×3 grid cell (row, column) that a cues record's place phrase names: its stored
    ``cell`` (where most of the region is, :func:`emosem.data.cues.region_grid_cell`); records
    made before it was stored fall back to the centroid's cell."""
    if cues.get("cell") is not None:
        row, col = cues["cell"]
        return int(row), int(col)
    x, y = cues["centroid"]
    return min(2, int(3 * y)), min(2, int(3 * x))


def measured_terms(cues: Mapping) -> set[str]:
    """Basic colour terms of a cues record's dominant colours: "greyish blue" → "blue"."""
    return {SYNONYMS.get(t, t) for t in (c["name"].split()[-1] for c in cues.get("colours", []))}


def _holds(cell: tuple[int | None, int | None], row: int, col: int) -> bool:
    r, c = cell
    return (r is None or r == row) and (c is None or c == col)


def contradicting_words(cues: Mapping) -> list[str]:
    """The colour, position and object words that would be false of the region a cues record
    describes (none for an empty region, which is not explained): colours not measured,
    positions off the region's cell, object nouns the region's object slot does not license."""
    if not cues or not cues.get("area_fraction"):
        return []
    terms = measured_terms(cues)
    row, col = region_cell(cues)
    colours = [w for w in COLOUR_WORDS if SYNONYMS.get(w, w) not in terms]
    positions = [w for w, cell in POSITION_WORDS.items() if not _holds(cell, row, col)]
    objects = sorted(OBJECT_NOUNS - licensed_words(licensed_object(cues)))
    return colours + positions + objects


def leaked_words(text: str, cues: Mapping) -> list[str]:
    """The words of ``text`` that grounded decoding should have kept out (its
    :func:`contradicting_words`), in order: the decoder-side leak count, not a faithfulness
    score (it checks the decoder against the same cues it was given)."""
    banned = set(contradicting_words(cues))
    return [w for w in words(text) if w in banned]


def phrases_hold(phrases: list[str], cues: Mapping) -> bool:
    """Every position phrase names the region's cell."""
    row, col = region_cell(cues)
    return all(_holds(POSITIONS[p], row, col) for p in phrases)
