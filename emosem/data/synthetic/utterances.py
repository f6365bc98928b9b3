"""What the annotators write: emotion words, utterance templates, colour / position / size words,
and :func:`make_utterance` (a first-person sentence naming a motif)."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np

from emosem.data.synthetic.motifs import Motif

EMOTION_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "fear": {"adj": ("afraid", "scared", "frightened", "uneasy", "terrified", "anxious"),
             "noun": ("fear", "dread", "terror", "unease"),
             "reasons": ("I feel that something terrible is about to happen", "it seems so threatening and out of control",
                         "nothing could escape from it", "it looks ready to strike at any moment")},
    "awe": {"adj": ("in awe", "amazed", "humbled", "astonished", "awestruck"),
            "noun": ("awe", "wonder", "amazement", "reverence"),
            "reasons": ("it feels so much bigger than me", "it radiates a majestic power",
                        "nature looks grand and timeless here", "it makes me feel tiny in a good way")},
    "sadness": {"adj": ("sad", "melancholic", "gloomy", "heartbroken", "sorrowful", "lonely"),
                "noun": ("sadness", "sorrow", "melancholy", "grief"),
                "reasons": ("everything about it feels lonely and lost", "it reminds me of loss",
                            "it looks so tired and hopeless", "there is no joy left in it")},
    "contentment": {"adj": ("content", "calm", "peaceful", "at ease", "relaxed", "serene"),
                    "noun": ("peace", "calm", "contentment", "serenity"),
                    "reasons": ("life there seems simple and safe", "everything feels gentle and still",
                                "I would love to spend a slow afternoon there", "it feels so comforting and familiar")},
    "amusement": {"adj": ("amused", "cheerful", "playful", "giddy", "entertained"),
                  "noun": ("amusement", "delight", "fun", "laughter"),
                  "reasons": ("it looks so silly and playful", "I cannot help but smile at it",
                              "it reminds me of a fun day at the fair", "it is so goofy and bright")},
    "excitement": {"adj": ("excited", "thrilled", "energized", "exhilarated", "pumped"),
                   "noun": ("excitement", "thrill", "energy", "exhilaration"),
                   "reasons": ("it is full of movement and energy", "it feels like a celebration",
                               "I can almost feel the rush of the moment", "everything seems to be racing forward")},
    "anger": {"adj": ("angry", "furious", "irritated", "enraged", "tense"),
              "noun": ("anger", "rage", "fury", "tension"),
              "reasons": ("it looks violent and full of rage", "the harsh color feels aggressive",
                          "it seems to attack everything near it", "it destroys whatever gets close")},
    "disgust": {"adj": ("disgusted", "repulsed", "sickened", "grossed out", "queasy"),
                "noun": ("disgust", "revulsion", "nausea", "repulsion"),
                "reasons": ("it looks rotten and dirty", "I can almost smell the decay",
                            "it seems slimy and filthy", "it looks like it is crawling with germs")},
}

_FEEL3 = ("makes me feel {adj}", "fills me with {noun}", "gives me a sense of {noun}", "leaves me feeling {adj}",
          "stirs up {noun} in me", "makes me feel quite {adj}")

UTTERANCE_TEMPLATES: tuple[str, ...] = (
    "{NP} {pos} {feel3} because {reason}.",
    "I feel {adj} when I look at {np} {pos}, because {reason}.",
    "Looking at {np} {pos}, I feel {adj}; {reason}.",
    "{NP} {pos} fills me with {noun} since {reason}.",
    "My eyes go straight to {np} {pos}, and I feel {adj} because {reason}.",
    "There is {npa} {pos} and it {feel3} because {reason}.",
    "I notice {npa} {pos}; it {feel3}, as {reason}.",
    "What strikes me is {np} {pos}: {reason}, and that makes me feel {adj}.",
    "{NP} {pos} gives me a feeling of {noun} because {reason}.",
    "I can't stop looking at {np} {pos}; {reason}, so I feel {adj}.",
    "Seeing {np} {pos} makes me feel {adj} because {reason}.",
    "The artist painted {npa} {pos}, and it {feel3} since {reason}.",
    "I feel a sense of {noun} from {np} {pos} because {reason}.",
    "When I see {np} {pos} I think {reason}, and I feel {adj}.",
    "I get a feeling of {noun} from {np} {pos}; {reason}.",
    "{NP} {pos} catches my eye and {feel3}, since {reason}.",
    "My attention is drawn to {np} {pos}, which {feel3} because {reason}.",
    "I sense {noun} in {np} {pos}, because {reason}.",
    "Because {reason}, {np} {pos} makes me feel {adj}.",
    "Honestly, {np} {pos} {feel3}; {reason}.",
    "I look at {np} {pos} and feel {adj}, since {reason}.",
    "{NP} that sits {pos} {feel3} because {reason}.",
    "It is {np} {pos} that makes me feel {adj}, because {reason}.",
    "I find {np} {pos} very striking; it {feel3} as {reason}.",
    "Even at first glance, {np} {pos} {feel3} because {reason}.",
    "I keep coming back to {np} {pos}, which leaves me feeling {adj} since {reason}.",
    "For me, {np} {pos} brings a sense of {noun}; {reason}.",
    "I feel {adj} looking at this painting because of {np} {pos}; {reason}.",
    "The painter put {npa} {pos}, and I feel {adj} because {reason}.",
    "I am drawn to {np} {pos} and it {feel3}; {reason}.",
    "{NP} {pos} is what makes me feel {adj} here, because {reason}.",
    "In this painting I see {npa} {pos}, and I feel {adj} since {reason}.",
    "The sight of {np} {pos} {feel3}, because {reason}.",
    "I feel {adj}: {np} {pos} stands out and {reason}.",
)

SOMETHING_ELSE_TEMPLATES: tuple[str, ...] = (
    "I don't feel any strong emotion here; the {color} brushstrokes just look {qual} to me.",
    "I feel nothing in particular, although the {color} tones of the background are {qual}.",
    "The {color} colors remind me of {thing}, but I can't name what I feel.",
    "I am mostly curious about the technique, since the strokes look {qual} and {qual2}.",
    "I feel somewhat indifferent because the composition seems {qual} and a bit {qual2}.",
    "I'm not sure what I feel; the painting seems {qual} and unfinished to me.",
    "I feel a little confused by the {color} tones, which seem {qual} to me.",
    "It makes me think of {thing}, and I feel a strange mix of things.",
    "I feel neutral about this one; the {color} palette is {qual} but nothing more.",
    "To me the whole thing feels {qual}, like {thing}, and I don't react much.",
)
_QUAL = ("busy", "muted", "rough", "flat", "hazy", "restless", "unusual", "plain", "soft", "careless", "dense")
_THINGS = ("an old photograph", "a half-remembered dream", "a school art class", "a faded postcard",
           "a quiet museum corridor", "a dusty attic")

COLOR_WORDS = ("colorful", "bright", "multicolored", "vivid")


def color_name(rgb: Sequence[int] | None) -> str:
    """A plain English colour word for an RGB colour (``None`` -> "colorful")."""
    if rgb is None:
        return "colorful"
    r, g, b = (float(x) / 255.0 for x in rgb[:3])
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    hd = h * 360.0
    if v < 0.2:
        return "black"
    if s < 0.16:
        if v > 0.85:
            return "white"
        if v > 0.62:
            return "light gray"
        return "gray" if v > 0.4 else "dark gray"
    if 15 <= hd < 50 and v < 0.62:
        return "dark brown" if v < 0.35 else "brown"
    if 50 <= hd < 80 and v < 0.6:
        return "olive"
    if hd < 15 or hd >= 345:
        name = "red"
    elif hd < 42:
        name = "orange"
    elif hd < 68:
        name = "yellow"
    elif hd < 160:
        name = "green"
    elif hd < 195:
        name = "turquoise"
    elif hd < 255:
        name = "blue"
    elif hd < 290:
        name = "purple"
    else:
        name = "pink"
    if v < 0.45:
        return "dark " + name
    if s < 0.4 and v > 0.75:
        return "pale " + name
    return name


POSITIONS = {
    (0, 0): ("in the upper left", "in the top left corner", "at the upper left"),
    (0, 1): ("at the top", "near the top", "in the upper part"),
    (0, 2): ("in the upper right", "in the top right corner", "at the upper right"),
    (1, 0): ("on the left", "on the left side", "at the left"),
    (1, 1): ("in the center", "in the middle", "at the center"),
    (1, 2): ("on the right", "on the right side", "at the right"),
    (2, 0): ("in the lower left", "in the bottom left corner", "at the lower left"),
    (2, 1): ("at the bottom", "near the bottom", "in the lower part"),
    (2, 2): ("in the lower right", "in the bottom right corner", "at the lower right"),
}


def grid_cell(mask: np.ndarray) -> tuple[int, int]:
    h, w = mask.shape
    total = mask.sum()
    if total == 0:
        return 1, 1
    cy = float((mask.sum(1) * np.arange(h)).sum()) / total
    cx = float((mask.sum(0) * np.arange(w)).sum()) / total
    return min(2, int(3 * cy / h)), min(2, int(3 * cx / w))


def size_word(area_fraction: float, rng: np.random.Generator | None = None) -> str:
    """"small"/"large"-style word for a motif covering ``area_fraction`` of the image ("" if medium)."""
    if area_fraction < 0.04:
        opts = ("small", "tiny", "little")
    elif area_fraction < 0.09:
        opts = ("", "medium-sized", "")
    elif area_fraction < 0.2:
        opts = ("large", "big", "sizable")
    else:
        opts = ("huge", "enormous", "large")
    return opts[0] if rng is None else opts[int(rng.integers(len(opts)))]


def _words(text: str) -> int:
    return len(text.split())


def _article(np_: str) -> str:
    return ("an " if np_[:1].lower() in "aeiou" else "a ") + np_


def pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def make_utterance(rng: np.random.Generator, motif: Motif, color: str, position: str, size: str) -> str:
    """A first-person utterance (8-30 words) naming ``motif`` and its colour, position and size."""
    ew = EMOTION_WORDS[motif.emotion]
    for attempt in range(12):
        phrase = pick(rng, motif.phrases)
        form = int(rng.integers(5)) if attempt < 8 else 4
        if form == 0 and size:
            core = f"{size} {color} {motif.noun}"
        elif form == 1 and color not in phrase:
            core = f"{color} {phrase}"
        elif form == 2 and size:
            core = f"{size} {phrase}"
        elif form == 3 and color not in motif.noun:
            core = f"{color} {motif.noun}"
        else:
            core = phrase
        reasons = motif.reasons if (motif.reasons and rng.random() < 0.6) else ew["reasons"]
        adj = pick(rng, ew["adj"])
        slots = {
            "np": "the " + core,
            "NP": "The " + core,
            "npa": _article(core),
            "pos": position,
            "adj": adj,
            "noun": pick(rng, ew["noun"]),
            "reason": pick(rng, reasons),
        }
        slots["feel3"] = pick(rng, _FEEL3).format(**slots)
        tpl = pick(rng, UTTERANCE_TEMPLATES) if attempt < 10 else "{NP} {pos} {feel3}."
        text = " ".join(tpl.format(**slots).split())
        text = text[0].upper() + text[1:]
        if 8 <= _words(text) <= 30:
            return text
    return text


def make_something_else_utterance(rng: np.random.Generator, color: str) -> str:
    """A first-person "something else" utterance that names no motif."""
    tpl = pick(rng, SOMETHING_ELSE_TEMPLATES)
    q = list(rng.permutation(len(_QUAL))[:2])
    return tpl.format(color=color, qual=_QUAL[q[0]], qual2=_QUAL[q[1]], thing=pick(rng, _THINGS))


# Plain nouns that no motif uses, for the language stage's "swap" samples: the slot holds one
# and the reference names it, so the LM learns to name what the slot licenses, whatever it is.
SWAP_NOUNS = ("ship", "boat", "church", "bridge", "dog", "bird", "woman", "man", "child", "vase",
              "tower", "road", "field", "crowd", "table", "rock", "lamp", "hat", "cart", "fence")

# What a viewer says of a region named by its look rather than by a thing ("the dark grey
# horizontal band along the bottom edge"): the language stage's abstention targets.
_LOOK_TEMPLATES: tuple[str, ...] = (
    "{NP} {pos} {feel3} because {reason}.",
    "I feel {adj} when I look at {np} {pos}, because {reason}.",
    "Looking at {np} {pos}, I feel {adj}; {reason}.",
    "My eyes go straight to {np} {pos}, and I feel {adj} because {reason}.",
    "What strikes me is {np} {pos}: {reason}, and that makes me feel {adj}.",
    "I keep coming back to {np} {pos}, which leaves me feeling {adj} since {reason}.",
    "{NP} {pos} gives me a feeling of {noun} because {reason}.",
    "Seeing {np} {pos} makes me feel {adj} because {reason}.",
)


def describe_utterance(rng: np.random.Generator, emotion: str, appearance: str, where: str,
                       noun: str | None = None) -> str:
    """A first-person utterance about a region described by what is measured (``appearance``,
    e.g. "dark grey band", from :attr:`emosem.data.cues.Cues.appearance`, and ``where``, its
    place phrase), naming no motif; with ``noun`` the appearance's last word (the shape noun)
    becomes that noun ("dark grey ship"). Reasons are the emotion's generic ones (no motif's)."""
    ew = EMOTION_WORDS.get(emotion)
    if ew is None:  # "something else": the region's look, no emotion claim
        return f"I notice the {appearance} {where}, but I can't name what I feel."
    if noun:
        words = appearance.split()
        if words and words[0] == "scattered":
            words = words[1:]
        shape_nouns = ("band", "form", "streak", "patches", "shape", "mass")
        while words and words[-1] in shape_nouns + ("vertical", "round"):
            words.pop()
        appearance = " ".join([*words, noun])
    adj = pick(rng, ew["adj"])
    slots = {"np": "the " + appearance, "NP": "The " + appearance, "pos": where, "adj": adj,
             "noun": pick(rng, ew["noun"]), "reason": pick(rng, ew["reasons"])}
    slots["feel3"] = pick(rng, _FEEL3).format(**slots)
    text = " ".join(pick(rng, _LOOK_TEMPLATES).format(**slots).split())
    return text[0].upper() + text[1:]
