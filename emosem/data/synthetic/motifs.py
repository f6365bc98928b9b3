"""The motif library: :class:`Motif` (name, emotion, the words that name it, how it is drawn,
where it stands), :data:`MOTIFS`, and lookups by name and by keyword."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from emosem.data.synthetic.drawing import (
    Color,
    DrawFn,
    Layer,
    draw_balloons,
    draw_clown,
    draw_cottage,
    draw_fireworks,
    draw_horse,
    draw_mountain,
    draw_pond,
    draw_rain_cloud,
    draw_rotting_fruit,
    draw_shadow_figure,
    draw_storm,
    draw_sun,
    draw_swamp,
    draw_volcano,
    draw_wave,
    draw_weeping_figure,
    draw_wilted_tree,
)


@dataclass(frozen=True)
class Motif:
    """A drawable emotion-evoking motif.

    ``phrases`` are ways to name it in an utterance (each contains one of ``keywords``);
    ``draw(layer, rng, cx, cy, extent)`` paints into a :class:`Layer` (an RGB image and its
    exact mask, drawn together; see :meth:`render`) and returns the main colour;
    ``noun`` is the bare name; ``reasons`` are motif-specific clauses for utterances;
    ``zone`` is the range of its centre's y (fraction of the side), ``scale`` the range of its
    extent (fraction of the side); ``depth`` orders drawing (lower first).
    """

    name: str
    emotion: str
    phrases: tuple[str, ...]
    keywords: tuple[str, ...]
    draw: DrawFn = field(repr=False, compare=False)
    noun: str = ""
    reasons: tuple[str, ...] = ()
    zone: tuple[float, float] = (0.3, 0.7)
    scale: tuple[float, float] = (0.3, 0.45)
    depth: int = 1

    def render(self, rng: np.random.Generator, size: int, cx: float, cy: float, extent: float
               ) -> tuple[np.ndarray, np.ndarray, Color | None]:
        """Draw the motif alone, centred at ``(cx, cy)`` with extent ``extent`` pixels.

        Returns ``(rgb, mask, color)``: ``rgb`` ``[S, S, 3]`` uint8 (zero outside the mask),
        the exact ``[S, S]`` bool mask of what was drawn, and the main colour (``None``: many).
        """
        layer = Layer(size)
        color = self.draw(layer, rng, cx, cy, extent)
        mask = layer.mask.astype(bool)
        layer.rgb[~mask] = 0  # details drawn past the outline are not part of the motif
        return layer.rgb, mask, color


MOTIFS: list[Motif] = [
    Motif("wave", "fear", ("towering wave", "crashing wave", "giant wave", "breaking wave", "stormy sea"),
          ("wave", "waves", "sea", "surf", "breaker", "breakers", "swell"), draw_wave, "wave",
          ("it could swallow a boat in an instant", "it rises far above anything around it",
           "its foaming crest is about to crash down"), (0.5, 0.72), (0.38, 0.55), 1),
    Motif("shadow_figure", "fear", ("looming shadow figure", "looming phantom", "shadowy silhouette", "ghostly figure"),
          ("shadow", "shadowy", "phantom", "specter", "silhouette", "ghost", "ghostly", "wraith"),
          draw_shadow_figure, "shadow figure",
          ("its long arms seem to reach out for me", "it seems to be watching me with glowing eyes",
           "I cannot tell what it wants"), (0.4, 0.62), (0.38, 0.55), 1),
    Motif("sun", "awe", ("radiant sun", "blazing sun", "glowing sunburst", "rising sun"),
          ("sun", "suns", "sunburst", "sunlight", "sunrise"), draw_sun, "sun",
          ("its light seems to fill the whole sky", "its rays stretch out in every direction",
           "it shines with such overwhelming power"), (0.15, 0.35), (0.28, 0.42), 0),
    Motif("mountain", "awe", ("vast mountain", "snowy peak", "towering mountain", "majestic summit"),
          ("mountain", "mountains", "peak", "peaks", "summit", "mountainside"), draw_mountain, "mountain",
          ("its snowy top rises so high above the land", "it has stood there for millions of years",
           "it makes everything else look small"), (0.35, 0.55), (0.42, 0.6), 0),
    Motif("wilted_tree", "sadness", ("wilted tree", "dying tree", "bare tree with drooping branches", "withered tree"),
          ("tree", "trees", "branches", "trunk"), draw_wilted_tree, "tree",
          ("its drooping branches seem to have given up", "it has lost almost all of its leaves",
           "it stands alone and forgotten"), (0.4, 0.62), (0.38, 0.55), 1),
    Motif("weeping_figure", "sadness", ("weeping figure", "hunched mourner", "sobbing person", "crying figure"),
          ("weeping", "mourner", "sobbing", "crying", "weeps"), draw_weeping_figure, "mourner",
          ("the person hides their face in their hands", "nobody is there to comfort them",
           "their bowed head shows such grief"), (0.5, 0.75), (0.3, 0.45), 1),
    Motif("rain_cloud", "sadness", ("heavy rain cloud", "cloud full of rain", "gloomy cloud pouring rain", "dreary rain cloud"),
          ("cloud", "clouds", "rain", "raincloud", "drizzle", "downpour"), draw_rain_cloud, "rain cloud",
          ("the falling drops look like tears", "it blocks out all the light",
           "it makes the whole day feel dreary"), (0.17, 0.38), (0.36, 0.5), 0),
    Motif("cottage", "contentment", ("cozy cottage", "little cottage", "quiet farmhouse", "warm cabin"),
          ("cottage", "house", "cabin", "farmhouse", "hut"), draw_cottage, "cottage",
          ("its glowing windows look so welcoming", "it looks like a safe place to rest",
           "I imagine a simple and happy life inside"), (0.52, 0.75), (0.3, 0.45), 1),
    Motif("pond", "contentment", ("calm pond", "still lake", "quiet pool of water", "peaceful pond with lilies"),
          ("pond", "lake", "pool", "water", "lilies"), draw_pond, "pond",
          ("its smooth surface barely moves", "the lily pads float so gently",
           "it looks like a perfect spot for a quiet afternoon"), (0.68, 0.85), (0.38, 0.55), 0),
    Motif("clown", "amusement", ("laughing clown", "silly clown face", "grinning jester", "funny clown"),
          ("clown", "clowns", "jester"), draw_clown, "clown",
          ("its red nose and big grin are just ridiculous", "its crazy hair and pointy hat are so silly",
           "it looks ready to tell a joke"), (0.4, 0.65), (0.32, 0.45), 1),
    Motif("balloons", "amusement", ("bunch of balloons", "colorful balloons", "floating balloons", "party balloons"),
          ("balloon", "balloons"), draw_balloons, "balloons",
          ("they remind me of a birthday party", "they bob around so playfully",
           "they look like they might float away any second"), (0.3, 0.6), (0.35, 0.5), 1),
    Motif("fireworks", "excitement", ("bursting fireworks", "exploding fireworks", "dazzling firework display", "sparkling fireworks"),
          ("firework", "fireworks", "pyrotechnics"), draw_fireworks, "fireworks",
          ("I can almost hear them bang and crackle", "they light up everything like a festival",
           "they explode in every direction at once"), (0.17, 0.4), (0.36, 0.5), 0),
    Motif("horse", "excitement", ("galloping horse", "wild stallion", "running horse", "charging steed"),
          ("horse", "horses", "stallion", "mare", "steed"), draw_horse, "horse",
          ("its legs are stretched out in full gallop", "I can feel its speed and power",
           "it seems to race right out of the picture"), (0.52, 0.72), (0.4, 0.55), 1),
    Motif("volcano", "anger", ("erupting volcano", "volcano spewing lava", "fiery volcano", "exploding volcano"),
          ("volcano", "volcanoes", "lava", "eruption", "magma"), draw_volcano, "volcano",
          ("it spits fire like it is furious", "its lava destroys everything in its path",
           "it seems to boil over with rage"), (0.42, 0.62), (0.42, 0.58), 0),
    Motif("storm", "anger", ("raging storm", "violent thunderstorm", "lightning bolt", "angry storm"),
          ("storm", "storms", "thunderstorm", "lightning", "thunder", "bolt"), draw_storm, "storm",
          ("its lightning strikes down so violently", "the blood red sky looks furious",
           "it seems to lash out at the ground below"), (0.2, 0.42), (0.38, 0.52), 0),
    Motif("rotting_fruit", "disgust", ("rotting fruit", "moldy apples", "spoiled pears", "decaying fruit"),
          ("fruit", "fruits", "apple", "apples", "pear", "pears"), draw_rotting_fruit, "fruit",
          ("the brown spots and flies make my stomach turn", "I can almost smell it going bad",
           "it is covered in mold and flies"), (0.55, 0.78), (0.3, 0.42), 1),
    Motif("swamp", "disgust", ("murky swamp", "stagnant bog", "slimy marsh", "foul swamp"),
          ("swamp", "swamps", "bog", "marsh", "mire", "sludge"), draw_swamp, "swamp",
          ("its slimy surface bubbles with something foul", "I can almost smell the rot rising from it",
           "it looks thick, stagnant and filthy"), (0.68, 0.85), (0.4, 0.55), 0),
]

_MOTIF_INDEX = {m.name: m for m in MOTIFS}


def motif_by_name(name: str) -> Motif:
    """The :class:`Motif` called ``name`` (e.g. ``"wave"``)."""
    try:
        return _MOTIF_INDEX[name]
    except KeyError:
        raise KeyError(f"Unknown motif {name!r}; motifs: {', '.join(_MOTIF_INDEX)}") from None


@cache
def _keyword_re(motif_name: str) -> re.Pattern:
    kws = sorted(motif_by_name(motif_name).keywords, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(k) for k in kws) + r")\b", re.IGNORECASE)


def mentions_motif(text: str, motif_name: str) -> bool:
    """True if ``text`` names the motif by one of its keywords (whole words, any case)."""
    return bool(_keyword_re(motif_name).search(text or ""))
