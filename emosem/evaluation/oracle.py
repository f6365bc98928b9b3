"""An independent faithfulness oracle: is what an explanation says true of the pixels, the mask
and the painting, judged by rules that grounded decoding does not use?

The project's own check (:mod:`emosem.evaluation.faithfulness`) scores the words against the
cues that the decoder read and banned words by, so it can only count leaks. This oracle checks
the same kinds of words against independent evidence:

* **Colour.** Each pixel of the region gets one of the eleven basic colour terms by fixed
  regions of HSV space (:func:`pixel_terms`; not the project's k-means over XKCD names in
  CIELAB). A colour word (its own lexicon, :data:`COLOUR_LEXICON`, wider than the decoder's:
  "teal", "amber", "ivory") is true when one of its terms covers at least
  :data:`MIN_COLOUR_SHARE` of the mask's pixels.
* **Position.** A position phrase ("upper left", "at the top", "in the center") is true when,
  along each axis it names, the named third of the canvas holds the largest share of the
  mask's pixels (a plurality of the region's mass, from the mask itself; not the centroid
  cell of the cues).
* **Objects.** A thing word is true when the painting shows it: on real paintings, its list of
  visible things (``visible.json``), with plural forms and :data:`THING_SYNONYMS`; on the
  synthetic set, the generator's ground truth (the annotated motif's vocabulary). Thing words
  are the trained vocabulary's object nouns and common concrete nouns (:data:`THING_WORDS`)
  and, where WordNet's database is installed (Debian's ``wordnet-base``, read from
  ``$WORDNET_DIR`` or ``/usr/share/wordnet``; ``make wordnet``), every noun whose most frequent
  sense is a concrete thing (:data:`THING_LEXFILES`: WordNet's lexicographer files of
  artifacts, animals, plants, people, body parts, food, natural objects and phenomena), except
  the words that describe what is measured (:data:`NOT_THINGS`: "light", "spot", "band",
  "canvas"…). Nouns in a simile ("like a beacon", "as if …") are not claims about the
  painting and are skipped. :func:`thing_lexicon_name` says which lexicon was used.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from emosem.data.cue_words import (
    MOTIF_WORDS,
    OBJECT_NOUNS,
    POSITIONS,
    plural_forms,
    position_phrases,
    words,
)

__all__ = [
    "COLOUR_LEXICON", "MIN_COLOUR_SHARE", "THING_SYNONYMS", "THING_WORDS", "Verdicts",
    "check_explanation", "colour_shares", "is_thing", "motif_things", "non_words", "pixel_terms", "position_true",
    "present_things", "thing_lexicon_name",
]

MIN_COLOUR_SHARE = 0.10
TERMS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey")
# colour word → the basic terms it may stand for (any one covering the share makes it true)
COLOUR_LEXICON: dict[str, frozenset[str]] = {w: frozenset(t.split()) for w, t in {
    **{t: t for t in TERMS}, "gray": "grey", "silver": "grey white", "ashen": "grey",
    "crimson": "red", "scarlet": "red", "maroon": "red brown", "ruby": "red", "vermilion": "red orange",
    "amber": "orange yellow", "ochre": "yellow brown orange", "golden": "yellow orange brown",
    "gold": "yellow orange brown", "blond": "yellow brown", "olive": "green yellow brown",
    "emerald": "green", "teal": "blue green", "turquoise": "blue green", "cyan": "blue green",
    "azure": "blue", "navy": "blue", "indigo": "blue purple", "violet": "purple", "lavender": "purple pink",
    "magenta": "pink purple", "rose": "pink red", "beige": "brown white yellow", "tan": "brown orange",
    "ivory": "white yellow", "cream": "white yellow", "ebony": "black",
}.items()}

COMMON_THINGS = frozenset({
    "ship", "boat", "sail", "mast", "sky", "star", "moon", "man", "woman", "child", "people",
    "girl", "boy", "crowd", "head", "hand", "eye", "body", "skull", "bridge", "road", "street",
    "river", "field", "forest", "hill", "village", "town", "city", "church", "tower", "building",
    "wall", "window", "door", "room", "table", "chair", "lamp", "bottle", "basket", "plate",
    "flower", "grass", "bush", "animal", "bird", "dog", "cat", "bear", "cub", "cow", "crow",
    "fish", "ocean", "shore", "beach", "rock", "cliff", "valley", "earring", "turban", "dress",
    "hat", "umbrella", "cypress", "wheat", "angel", "soldier", "sword", "cross", "fire", "flame",
})
THING_WORDS: frozenset[str] = frozenset(OBJECT_NOUNS | {f for w in COMMON_THINGS for f in plural_forms(w)})
# WordNet lexicographer files (wndb(5), lex_filenum) whose nouns are concrete things: animal,
# artifact, body, food, object, person, phenomenon, plant.
THING_LEXFILES = frozenset({5, 6, 8, 13, 17, 18, 19, 20})
# Nouns that describe what is measured (place, size, colour, light, shape, texture) or the
# painting itself, not a thing in it.
NOT_THINGS = frozenset("""
    light lights glow shade shades tone tones hue colour colours color colors contrast texture
    spot spots patch patches band bands strip strips stripe stripes streak streaks area areas
    region regions shape shapes mass masses form forms line lines blob blobs stroke strokes
    brushwork swirl swirls pattern patterns detail details edge edges corner corners side sides
    centre center middle part parts surface background foreground half top bottom
    painting paintings picture canvas artist painter viewer scene image piece work
""".split())
_SIMILE = re.compile(r"\b(?:like|as if|as though)\b[^.,;:!?]*", re.IGNORECASE)


def _wordnet_dir() -> Path:
    return Path(os.environ.get("WORDNET_DIR", "/usr/share/wordnet"))


POS = ("noun", "verb", "adj", "adv")
# WordNet's morphological detachment rules per part of speech (morphy(7WN)).
_DETACH = {
    "noun": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
             ("men", "man"), ("ies", "y")),
    "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "adj": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "adv": (),
}
# Function words WordNet also lists as rare nouns ("can", "will").
FUNCTION_WORDS = frozenset("can could will would shall should may might must do does did have has had".split())


@dataclass(frozen=True)
class WordNet:
    """What the oracle reads from WordNet's database (wndb(5)): per part of speech, lemma →
    sense-tagged count in SemCor (``tagsense_cnt``, how often the lemma is used so), the
    lexicographer file of each noun's most frequent sense, and the irregular forms."""

    tagged: dict[str, dict[str, int]]
    noun_lexfile: dict[str, int]
    exceptions: dict[str, dict[str, list[str]]]

    def bases(self, word: str, pos: str) -> list[str]:
        """The word's base forms of one part of speech that WordNet lists (morphy)."""
        forms = [word, *self.exceptions[pos].get(word, [])]
        forms += [word[: -len(a)] + b for a, b in _DETACH[pos] if word.endswith(a) and len(word) > len(a) + 1]
        return [f for f in dict.fromkeys(forms) if f in self.tagged[pos]]

    def usage(self, word: str, pos: str) -> int:
        """How often the word is used as ``pos`` (-1 when it cannot be)."""
        return max((self.tagged[pos][b] for b in self.bases(word, pos)), default=-1)


@lru_cache(maxsize=1)
def _wordnet() -> WordNet | None:
    """WordNet's database from :func:`_wordnet_dir` (``index.*``, ``data.noun``, ``*.exc``), or
    None when it is not installed."""
    root = _wordnet_dir()
    if not all((root / f"index.{pos}").is_file() for pos in POS):
        return None
    tagged: dict[str, dict[str, int]] = {}
    first: dict[str, int] = {}
    exceptions: dict[str, dict[str, list[str]]] = {}
    for pos in POS:
        tagged[pos] = {}
        with open(root / f"index.{pos}", encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                p = line.split()
                n_ptr = int(p[3])
                tagged[pos][p[0]] = int(p[4 + n_ptr + 1])
                if pos == "noun":
                    first[p[0]] = int(p[4 + n_ptr + 2])  # offsets follow, most frequent first
        exc = root / f"{pos}.exc"
        exceptions[pos] = {}
        if exc.is_file():
            for line in exc.read_text(encoding="utf-8").splitlines():
                p = line.split()
                exceptions[pos][p[0]] = p[1:]
    lexfile: dict[str, int] = {}
    with open(root / "data.noun", "rb") as f:
        for lemma, offset in first.items():
            f.seek(offset)
            lexfile[lemma] = int(f.readline().split(b" ", 2)[1])
    return WordNet(tagged, lexfile, exceptions)


# Closed-class words WordNet does not list (it has only nouns, verbs, adjectives and adverbs).
CLOSED_CLASS = frozenset("""
    the and but nor yet for because although though while whereas unless until since than that
    which who whom whose what whatever whichever whoever this these those there
    i me my mine myself you your yours yourself he him his himself she her hers herself it its
    itself we us our ours ourselves they them their theirs themselves one ones
    of to in into onto on upon at from with within without by about above below across along
    among around before behind beneath beside besides between beyond during except inside
    near off out outside over past through throughout toward towards under underneath up
    a an some any each every either neither no none all both few many much several such
    is am are was were be been being isn aren wasn weren don doesn didn won wouldn couldn
    shouldn can could will would shall should may might must do does did have has had
    not if whether so as how why when where whenever wherever else
    everything something nothing anything everyone someone anyone noone everybody somebody
    anybody nobody
""".split())


def non_words(text: str) -> list[str]:
    """Words of three or more letters that neither WordNet nor :data:`CLOSED_CLASS` knows
    ("raceruboutrainer": a decoder steering round banned words); [] without WordNet."""
    wn = _wordnet()
    if wn is None:
        return []
    return [w for w in words(text) if len(w) >= 3 and w.isalpha() and w not in CLOSED_CLASS
            and not any(wn.bases(_ascii(w), pos) for pos in POS)]


def _ascii(word: str) -> str:
    """A word without its accents, as WordNet spells it: "café" → "cafe"."""
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode("ascii")


def thing_lexicon_name() -> str:
    """Which thing lexicon :func:`is_thing` uses: WordNet's database (with its folder) or the
    built-in list."""
    return f"WordNet 3 ({_wordnet_dir()}) + built-in" if _wordnet() else "built-in list only"


def is_thing(word: str) -> bool:
    """Whether a word (lower case) names a concrete thing (see the module rule): with WordNet,
    a noun at least as often as any other part of speech (SemCor's counts: "stands", "small"
    and "lower" are not) whose most frequent noun sense is in :data:`THING_LEXFILES`."""
    if word in NOT_THINGS or word in COLOUR_LEXICON or word in FUNCTION_WORDS:
        return False
    if word in THING_WORDS:
        return True
    wn = _wordnet()
    if wn is None:
        return False
    nouns = wn.bases(word, "noun")
    if not nouns or wn.usage(word, "noun") < max(wn.usage(word, pos) for pos in POS[1:]):
        return False
    return wn.noun_lexfile[nouns[0]] in THING_LEXFILES


# Groups of words a viewer uses for the same thing: naming one is true when another is listed.
THING_SYNONYMS: tuple[frozenset[str], ...] = tuple(frozenset(g.split()) for g in (
    "sea ocean", "wave surf breaker", "ship boat vessel", "person figure man woman people",
    "house cottage cabin hut farmhouse", "mountain peak summit", "lake pond pool",
    "sun sunlight", "tree cypress pine", "crowd people",
))


def pixel_terms(rgb: np.ndarray) -> np.ndarray:
    """Basic colour term index (into :data:`TERMS`) of each pixel: rgb [..., 3] uint8 → [...] int.

    Fixed HSV regions: value < 0.2 is black; saturation < 0.18 is white (value ≥ 0.8) or grey;
    otherwise by hue (degrees): red < 15 or ≥ 345, orange < 42, yellow < 70, green < 165,
    blue < 255, purple < 300, pink < 345; dark reds, oranges and yellows (value < 0.55, hue
    10–65) are brown; light, soft reds and magentas (saturation < 0.5, value ≥ 0.7) are pink.
    """
    x = np.asarray(rgb, dtype=np.float32) / 255.0
    v = x.max(-1)
    c = v - x.min(-1)
    s = np.where(v > 0, c / np.maximum(v, 1e-6), 0.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    safe = np.maximum(c, 1e-6)
    h = np.where(v == r, ((g - b) / safe) % 6, np.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60
    bounds = [(15, "red"), (42, "orange"), (70, "yellow"), (165, "green"), (255, "blue"), (300, "purple"),
              (345, "pink"), (361, "red")]
    out = np.full(v.shape, TERMS.index("red"), dtype=np.int64)
    for hi, term in reversed(bounds):
        out[h < hi] = TERMS.index(term)
    out[(h >= 10) & (h < 65) & (v < 0.55)] = TERMS.index("brown")
    out[((h >= 300) | (h < 15)) & (s < 0.5) & (v >= 0.7)] = TERMS.index("pink")
    grey = s < 0.18
    out[grey] = TERMS.index("grey")
    out[grey & (v >= 0.8)] = TERMS.index("white")
    out[v < 0.2] = TERMS.index("black")
    return out


def colour_shares(image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Share of the mask's pixels per basic term: image [H, W, 3] uint8, mask [H, W] bool."""
    terms = pixel_terms(np.asarray(image)[np.asarray(mask, dtype=bool)])
    if terms.size == 0:
        return {}
    counts = np.bincount(terms, minlength=len(TERMS)) / terms.size
    return {t: float(counts[i]) for i, t in enumerate(TERMS) if counts[i] > 0}


def position_true(phrase: str, mask: np.ndarray) -> bool:
    """A position phrase of :data:`emosem.data.cue_words.POSITIONS` is true of a mask [H, W] when
    each third it names holds the largest share of the mask's pixels along its axis."""
    row, col = POSITIONS[phrase]
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return False
    for axis, third in ((1, row), (0, col)):  # rows: sum over columns
        if third is None:
            continue
        profile = m.sum(axis=axis).astype(np.float64)
        parts = [p.sum() for p in np.array_split(profile, 3)]
        if parts[third] < max(parts):
            return False
    return True


def present_things(visible: Collection[str]) -> frozenset[str]:
    """A painting's visible things, widened by plural forms and :data:`THING_SYNONYMS`."""
    seen = {f for w in visible for f in plural_forms(w)}
    for group in THING_SYNONYMS:
        forms = {f for w in group for f in plural_forms(w)}
        if forms & seen:
            seen |= forms
    return frozenset(seen)


def motif_things(motif: str) -> frozenset[str]:
    """The synthetic generator's ground truth for a region: its motif's vocabulary."""
    return MOTIF_WORDS[motif]


@dataclass
class Verdicts:
    """What one explanation says and whether each is true: ``colours`` {word: true?},
    ``positions`` {phrase: true?}, ``things`` {word: present?}."""

    colours: dict[str, bool] = field(default_factory=dict)
    positions: dict[str, bool] = field(default_factory=dict)
    things: dict[str, bool] = field(default_factory=dict)

    @property
    def absent_things(self) -> list[str]:
        return sorted(w for w, ok in self.things.items() if not ok)


def check_explanation(text: str, image: np.ndarray, mask: np.ndarray, present: Collection[str]) -> Verdicts:
    """Check an explanation against a region: image [H, W, 3] uint8 and mask [H, W] bool at the
    same size, ``present`` the things the painting shows (:func:`present_things` or
    :func:`motif_things`)."""
    said = words(text)
    shares = colour_shares(image, mask) if any(w in COLOUR_LEXICON for w in said) else {}
    return Verdicts(
        colours={w: any(shares.get(t, 0.0) >= MIN_COLOUR_SHARE for t in COLOUR_LEXICON[w])
                 for w in said if w in COLOUR_LEXICON},
        positions={p: position_true(p, mask) for p in position_phrases(text)},
        things={w: w in present for w in words(_SIMILE.sub(" ", text or "")) if is_thing(w)},
    )
