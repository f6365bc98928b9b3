"""The nine ArtEmis emotions, their parsing, and their display colours.

ArtEmis labels, in ArtEmis order and spelling (lower case, ``"something else"`` with a space)::

    amusement, awe, contentment, excitement, anger, disgust, fear, sadness, something else

``parse_emotion`` accepts any case, surrounding spaces and ``something_else``; an unknown label
raises :class:`UnknownEmotionError` that lists the valid ones and suggests the closest.
``normalize_prompt_emotion`` is the open-vocabulary variant used at inference: an ArtEmis label
is canonicalised, any other non-empty word or phrase ("melancholy") is kept as free text.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable

from emosem.files import file_stem

ARTEMIS_EMOTIONS: tuple[str, ...] = (
    "amusement",
    "awe",
    "contentment",
    "excitement",
    "anger",
    "disgust",
    "fear",
    "sadness",
    "something else",
)
NUM_EMOTIONS = len(ARTEMIS_EMOTIONS)
EMOTION_TO_INDEX: dict[str, int] = {e: i for i, e in enumerate(ARTEMIS_EMOTIONS)}

# How often each emotion was chosen in ArtEmis: annotations per emotion in the dataset's release
# (Achlioptas, P., Ovsjanikov, M., Haydarov, K., Elhoseiny, M., & Guibas, L. (2021). ArtEmis:
# Affective language for visual art. *CVPR 2021*, 11569–11579; ``artemis_dataset_release_v0.csv``,
# 454,684 annotations of 80,031 paintings, the totals its authors' analysis notebook prints). The
# per-emotion counts are that file's ``emotion.value_counts()`` as printed in
# github.com/SashwatD/iml-a3, ``notebooks/01_explore_artemis_data.ipynb`` (commit 1d8e19f); they sum
# to the release's 454,684. The base rates a viewer's emotion is drawn from before anything of the
# painting is known (:data:`ARTEMIS_BASE_RATES`).
ARTEMIS_EMOTION_COUNTS: dict[str, int] = {
    "amusement": 45_336, "awe": 72_927, "contentment": 126_134, "excitement": 37_636, "anger": 6_640,
    "disgust": 22_411, "fear": 41_577, "sadness": 49_061, "something else": 52_962,
}
ARTEMIS_BASE_RATES: dict[str, float] = {
    e: n / sum(ARTEMIS_EMOTION_COUNTS.values()) for e, n in ARTEMIS_EMOTION_COUNTS.items()
}

POSITIVE_EMOTIONS = frozenset({"amusement", "awe", "contentment", "excitement"})
NEGATIVE_EMOTIONS = frozenset({"anger", "disgust", "fear", "sadness"})

# One RGB colour per emotion for overlays (colour-blind friendly where possible).
EMOTION_COLORS: dict[str, tuple[int, int, int]] = {
    "amusement": (255, 179, 0),
    "awe": (0, 158, 255),
    "contentment": (76, 175, 80),
    "excitement": (255, 87, 34),
    "anger": (211, 47, 47),
    "disgust": (124, 179, 66),
    "fear": (123, 31, 162),
    "sadness": (63, 81, 181),
    "something else": (158, 158, 158),
}
FREE_TEXT_COLOR = (0, 188, 212)

# Longest free-text emotion accepted (characters, after whitespace is collapsed): a word or a short
# phrase. The prompt goes through the language model's embedding table, so a 5,000-character
# "emotion" costs minutes and means nothing.
MAX_EMOTION_CHARS = 80


class UnknownEmotionError(ValueError):
    """An emotion label that is not one of the nine ArtEmis emotions."""


def _key(label: str) -> str:
    return " ".join(str(label).strip().lower().replace("_", " ").replace("-", " ").split())


def is_artemis_emotion(label: str) -> bool:
    """True if ``label`` names one of the nine ArtEmis emotions (any case, ``_`` for space)."""
    return _key(label) in EMOTION_TO_INDEX


def parse_emotion(label: str) -> str:
    """Return the canonical ArtEmis spelling of ``label``.

    >>> parse_emotion("Something_Else")
    'something else'
    """
    key = _key(label)
    if key in EMOTION_TO_INDEX:
        return key
    close = difflib.get_close_matches(key, ARTEMIS_EMOTIONS, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownEmotionError(
        f"Unknown emotion {label!r}.{hint} Valid emotions: {', '.join(ARTEMIS_EMOTIONS)}."
    )


def emotion_index(label: str) -> int:
    """Index of an ArtEmis emotion in :data:`ARTEMIS_EMOTIONS`."""
    return EMOTION_TO_INDEX[parse_emotion(label)]


def normalize_prompt_emotion(label: str) -> tuple[str, bool]:
    """Canonicalise an emotion prompt for inference.

    Returns ``(text, trained)``: the ArtEmis spelling and ``True`` for one of the nine trained
    emotions, else the cleaned free text and ``False``. An empty string is refused.
    """
    if label is None or not str(label).strip():
        raise ValueError("The emotion is empty: give one of the nine ArtEmis emotions or a word.")
    if is_artemis_emotion(label):
        return _key(label), True
    text = " ".join(str(label).strip().split())
    if len(text) > MAX_EMOTION_CHARS:
        raise ValueError(
            f"The emotion is {len(text)} characters long; give a word or a short phrase "
            f"(at most {MAX_EMOTION_CHARS} characters)."
        )
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise ValueError(f"The emotion {text[:40]!r} contains control characters.")
    return text, False


def emotion_file_stem(emotion: str) -> str:
    """The file-name stem of an emotion (``emosem.files.file_stem`` of its whitespace-normalised
    text): ``"something else"`` → ``something_else``, ``грусть`` → ``emotion-<hash>``."""
    return file_stem(" ".join(str(emotion).split()), fallback="emotion", spaces=True)


def parse_emotions(labels: Iterable[str]) -> list[str]:
    """Parse several labels, keeping order and dropping repeats."""
    out: list[str] = []
    for label in labels:
        e = parse_emotion(label)
        if e not in out:
            out.append(e)
    return out


def emotion_color(label: str) -> tuple[int, int, int]:
    """RGB colour for an emotion; free-text emotions share one colour."""
    return EMOTION_COLORS.get(_key(label), FREE_TEXT_COLOR)
