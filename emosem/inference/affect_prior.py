"""A knowledge prior over the nine ArtEmis emotions from a painting's measured colours, and its
blend with the visual emotion head by how far the painting is in domain.

The emotion head learned what evokes an emotion from synthetic paintings; on a real painting it
is far outside what it saw. Published colour-emotion relations do not depend on those motifs:

* **Colour → feeling** (Valdez, P., & Mehrabian, A. (1994). Effects of color on emotions.
  *Journal of Experimental Psychology: General*, 123(4), 394–409): standardised regressions of
  pleasure, arousal and dominance on brightness B and saturation S,

      P = .69 B + .22 S,    A = −.31 B + .60 S,    D = −.76 B + .32 S.

  B and S are the whole painting's mean CIELAB lightness L* and chroma C*ab, as z-scores against
  :data:`REFERENCE` (see there).
* **Feeling → emotion word**: the valence, arousal and dominance of each emotion's own word in the
  NRC VAD lexicon v1 (Mohammad, S. M. (2018). Obtaining reliable human ratings of valence,
  arousal, and dominance for 20,000 English words. *ACL 2018*, 174–184), rescaled from [0, 1] to
  [−1, 1] (:data:`EMOTION_VAD`). "something else" has no word and sits at the centre.

An emotion's score is the dot product of the painting's (P, A, D) with its word's (V, A, D): a
dark, muted painting (low P, low A) scores sadness highest; a bright, saturated one amusement and
excitement. The prior is the softmax of the scores (temperature 1: a soft distribution).

Measured against the emotion head on the fifteen sample paintings: ``docs/results/``
(``tools/measure_affect_prior.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emosem.emotions import ARTEMIS_EMOTIONS

# Valdez & Mehrabian (1994), standardised coefficients of (brightness, saturation).
PAD_FROM_COLOUR = {"pleasure": (0.69, 0.22), "arousal": (-0.31, 0.60), "dominance": (-0.76, 0.32)}

# NRC VAD lexicon v1 (Mohammad 2018): valence, arousal, dominance of each emotion's word, in [0, 1].
NRC_VAD = {
    "amusement": (0.929, 0.837, 0.803),
    "awe": (0.469, 0.740, 0.300),
    "contentment": (0.875, 0.610, 0.782),
    "excitement": (0.896, 0.684, 0.731),
    "anger": (0.167, 0.865, 0.657),
    "disgust": (0.052, 0.775, 0.317),
    "fear": (0.073, 0.840, 0.293),
    "sadness": (0.052, 0.288, 0.164),
}
# Rescaled to [−1, 1]; "something else" (no word, no direction) at the centre.
EMOTION_VAD: dict[str, tuple[float, float, float]] = {
    e: tuple(2.0 * v - 1.0 for v in NRC_VAD[e]) if e in NRC_VAD else (0.0, 0.0, 0.0)
    for e in ARTEMIS_EMOTIONS
}


@dataclass(frozen=True)
class ColourReference:
    """Mean and standard deviation of whole-painting L* and C*ab that B and S are z-scores of."""

    lightness_mean: float
    lightness_sd: float
    chroma_mean: float
    chroma_sd: float


# Measured on the 2,011 training paintings of the synthetic set (data/synthetic, seed 0) with
# extract_cues(image, all-ones mask) at max_side 512; not on the sample paintings (the check).
REFERENCE = ColourReference(lightness_mean=49.39, lightness_sd=15.19,
                            chroma_mean=39.31, chroma_sd=13.31)
TEMPERATURE = 1.0


def colour_pad(lightness: float, chroma: float,
               reference: ColourReference = REFERENCE) -> tuple[float, float, float]:
    """(pleasure, arousal, dominance) of a painting of mean L* ``lightness`` and C*ab ``chroma``
    (Valdez & Mehrabian 1994 on their z-scores)."""
    for name, value in (("lightness", lightness), ("chroma", chroma)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    b = (lightness - reference.lightness_mean) / reference.lightness_sd
    s = (chroma - reference.chroma_mean) / reference.chroma_sd
    return tuple(kb * b + ks * s for kb, ks in PAD_FROM_COLOUR.values())


def colour_emotion_prior(lightness: float, chroma: float,
                         reference: ColourReference = REFERENCE,
                         temperature: float = TEMPERATURE) -> dict[str, float]:
    """The nine-way prior {emotion: probability} of a painting from its whole-canvas mean L* and
    C*ab: softmax over emotions of (P, A, D) · (V, A, D) of the emotion's word."""
    pad = np.asarray(colour_pad(lightness, chroma, reference))
    scores = np.array([pad @ np.asarray(EMOTION_VAD[e]) for e in ARTEMIS_EMOTIONS]) / temperature
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    return dict(zip(ARTEMIS_EMOTIONS, (float(p) for p in probs)))


def painting_prior(image: np.ndarray, reference: ColourReference = REFERENCE) -> dict[str, float]:
    """:func:`colour_emotion_prior` of an HxWx3 uint8 RGB painting (its whole-canvas cues)."""
    from emosem.data.cues import extract_cues

    cues = extract_cues(image, np.ones(np.asarray(image).shape[:2], np.float32))
    return colour_emotion_prior(cues.lightness, cues.chroma, reference)


# ---------------------------------------------------------------------- blending by domain
# The in-domain score (emosem.inference.domain) is about uniform in [0, 1] on training-like
# paintings and 0 beyond all of them; below this level a painting counts as out of domain
# (about 2% of training-like paintings fall there). The prior's weight ramps from 0 at this score
# to 1 at a score of 0.
PRIOR_RAMP = 0.02


def prior_weight(in_domain: float | None, ramp: float = PRIOR_RAMP) -> float:
    """The prior's share of the blend: 0 for an in-domain painting (score ≥ ``ramp``, or None:
    no score, taken as in domain), rising linearly to 1 as the score falls to 0."""
    if in_domain is None:
        return 0.0
    if not 0.0 <= float(in_domain) <= 1.0:  # also false for NaN
        raise ValueError(f"the in-domain score is in [0, 1], got {in_domain}")
    return float(np.clip(1.0 - float(in_domain) / ramp, 0.0, 1.0))


def is_out_of_domain(in_domain: float | None, ramp: float = PRIOR_RAMP) -> bool:
    """Whether the prior takes over at least half of the painting's distribution."""
    return prior_weight(in_domain, ramp) >= 0.5


def blend_distribution(head: dict[str, float], prior: dict[str, float],
                       in_domain: float | None) -> tuple[dict[str, float], float]:
    """The painting's distribution: (1 − w)·head + w·prior with w = :func:`prior_weight`.

    Returns (distribution over the head's emotions, w).
    """
    if set(head) != set(prior):
        raise ValueError(f"head and prior must cover the same emotions: {sorted(head)} vs {sorted(prior)}")
    w = prior_weight(in_domain)
    return {e: (1.0 - w) * head[e] + w * prior[e] for e in head}, w
