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

Where B and S are measured from matters: z-scores against the synthetic training paintings
(:data:`SYNTHETIC_REFERENCE`, the first version) read every real painting as dark and muted
(real paintings have C*ab ~24 against the synthetic 39), so sadness came first on 13 of 15 sample
paintings. V&M regressed on *colour samples* (Munsell chips), so B and S are here z-scores against
a published set of colour samples, the Berkeley Color Project 37 (:data:`BCP37`, Palmer, S. E.,
Schloss, K. B., Xu, Z., & Prado-León, L. R. (2013). Music–color associations are mediated by
emotion. *PNAS* 110(22), 8836–8841), chosen from the Munsell book at saturated, light, muted
and dark levels of eight hues plus five greys (:data:`CHIP_REFERENCE`). A linear map of L* to
Munsell value (V ≈ L*/10) and of C*ab to Munsell chroma leaves z-scores unchanged, so the chips'
CIELAB coordinates serve directly.

Hue, which V&M's brightness/saturation model leaves out, enters through the same chips' rated
colour-emotion associations: mean "happy" and "sad" ratings (−100..100) of each BCP-37 colour
(Schloss, K. B., Witzel, C., & Lai, L. Y. (2020). Blue hues don't bring the blues: questioning
conventional notions of color–emotion associations. *JOSA A* 37(5), 813–824; data
github.com/SchlossVRL/coloremoblues ``T_BCP.csv``). A least-squares plane over (L*, C*ab, a*, b*)
gives any colour's valence (:func:`chip_valence`). A painting is several colours: k-means in
CIELAB (:func:`colour_clusters`) and the prior is the share-weighted mixture of each cluster's
distribution (:func:`cluster_mixture_prior`).

An emotion's score is the dot product of the painting's (P, A, D) with its word's (V, A, D): a
dark, muted painting (low P, low A) scores sadness highest; a bright, saturated one amusement and
excitement. The prior is the softmax of the scores (temperature 1: a soft distribution).

The candidates (:data:`PRIOR_METHODS`: these colour priors and the language-model ones of
:mod:`emosem.inference.lm_prior`) are measured on the fifteen sample paintings in
``docs/results/issue27_priors.json`` (``tools/measure_affect_prior.py``). None of the colour
priors beat the language model's PMI prior there; its variant whose description also tells the
light and colours of the upper and lower halves and whether the strokes swirl (``lm_pmi_layout``)
is :func:`painting_prior`'s default (:data:`DEFAULT_METHOD`); the colour prior of the first
version is its fallback.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from emosem.emotions import ARTEMIS_EMOTIONS

logger = logging.getLogger(__name__)

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
SYNTHETIC_REFERENCE = ColourReference(lightness_mean=49.39, lightness_sd=15.19,
                                      chroma_mean=39.31, chroma_sd=13.31)

# Berkeley Color Project 37 (Palmer et al. 2013): name, CIELAB L*, a*, b*, and the mean happy, sad
# and angry association ratings (−100..100) of Schloss, Witzel & Lai (2020), T_BCP.csv.
BCP37: tuple[tuple[str, float, float, float, float, float, float], ...] = (
    ("SR", 51.57, 62.23, 32.20, 54.5, -75.0, 47.7),
    ("LR", 71.60, 31.58, 16.68, 32.6, -39.5, -24.9),
    ("MR", 51.57, 33.58, 16.98, 3.5, -16.8, 1.9),
    ("DR", 30.76, 37.02, 16.39, -3.4, -26.2, 57.2),
    ("SO", 71.60, 31.21, 69.65, 71.6, -81.5, 23.0),
    ("LO", 81.35, 15.00, 30.17, 15.1, -35.4, -35.0),
    ("MO", 61.70, 15.94, 30.33, -25.4, 4.6, -19.3),
    ("DO", 36.51, 18.35, 30.60, -48.5, 12.6, 3.6),
    ("SY", 91.08, -5.75, 86.68, 76.2, -86.8, -16.6),
    ("LY", 91.08, -5.46, 47.70, 32.1, -41.4, -32.9),
    ("MY", 71.60, -3.33, 45.94, -7.4, -8.2, -31.4),
    ("DY", 46.83, -0.93, 43.35, -51.6, 24.0, -11.7),
    ("SH", 81.35, -32.92, 72.05, 60.0, -73.5, -21.2),
    ("LH", 86.44, -20.62, 40.64, 16.9, -27.9, -43.4),
    ("MH", 66.94, -19.98, 37.45, -19.4, 10.7, -38.2),
    ("DH", 46.83, -19.92, 36.86, -31.3, 13.6, -39.5),
    ("SG", 66.94, -59.95, 24.54, 49.5, -49.7, -50.3),
    ("LG", 79.09, -34.13, 15.21, 19.5, -22.9, -54.4),
    ("MG", 61.70, -33.27, 14.06, -10.3, 7.1, -47.9),
    ("DG", 38.96, -33.29, 12.41, -11.2, -4.3, -48.4),
    ("SC", 71.60, -44.32, -6.11, 45.9, -34.9, -48.6),
    ("LC", 81.35, -26.12, -2.73, 26.8, -11.4, -55.8),
    ("MC", 61.70, -25.40, -4.13, -12.9, 21.5, -56.6),
    ("DC", 41.22, -24.26, -5.45, -25.3, 16.9, -47.5),
    ("SB", 61.70, -13.21, -38.40, 35.3, -18.1, -50.6),
    ("LB", 76.73, -8.87, -20.82, 10.4, -2.2, -58.1),
    ("MB", 56.99, -7.86, -21.41, -18.9, 26.6, -59.3),
    ("DB", 36.51, -6.56, -23.73, -27.6, 31.8, -50.8),
    ("SP", 46.83, 57.21, -50.49, 43.6, -37.1, -22.9),
    ("LP", 71.60, 26.03, -27.87, 30.7, -25.4, -49.5),
    ("MP", 51.57, 28.05, -27.82, -4.1, -3.6, -45.1),
    ("DP", 30.76, 33.04, -29.66, 6.9, 3.7, -20.6),
    ("BK", 2.34, -0.00, -0.07, -63.3, 32.3, 25.6),
    ("A1", 38.96, -0.01, -0.54, -72.9, 58.5, -12.6),
    ("A2", 59.42, -0.01, -0.74, -63.6, 51.1, -20.2),
    ("A3", 79.09, -0.02, -0.94, -24.2, 8.3, -38.1),
    ("WH", 100.00, -0.02, -1.14, 40.7, -49.5, -49.6),
)


def _bcp37_lab() -> np.ndarray:
    """[37, 3] CIELAB of the BCP-37 chips."""
    return np.array([row[1:4] for row in BCP37], dtype=np.float64)


def _reference_of(lab: np.ndarray) -> ColourReference:
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    return ColourReference(float(lab[:, 0].mean()), float(lab[:, 0].std()),
                           float(chroma.mean()), float(chroma.std()))


# B and S as z-scores against colour samples, as Valdez & Mehrabian measured them.
CHIP_REFERENCE = _reference_of(_bcp37_lab())
# The default stays the synthetic set: against the chips real paintings read darker and more muted
# still (top-1 plausible 1/15 against 4/15, docs/results/issue27_priors.json).
REFERENCE = SYNTHETIC_REFERENCE
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


def pad_distribution(pad: tuple[float, float, float] | np.ndarray,
                     temperature: float = TEMPERATURE) -> dict[str, float]:
    """{emotion: probability}: softmax over emotions of (P, A, D) · (V, A, D) of the emotion's word."""
    pad = np.asarray(pad, dtype=np.float64)
    scores = np.array([pad @ np.asarray(EMOTION_VAD[e]) for e in ARTEMIS_EMOTIONS]) / temperature
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    return dict(zip(ARTEMIS_EMOTIONS, (float(p) for p in probs)))


def colour_emotion_prior(lightness: float, chroma: float,
                         reference: ColourReference = REFERENCE,
                         temperature: float = TEMPERATURE) -> dict[str, float]:
    """The nine-way prior {emotion: probability} of a painting from its whole-canvas mean L* and
    C*ab (:func:`colour_pad`, then :func:`pad_distribution`)."""
    return pad_distribution(colour_pad(lightness, chroma, reference), temperature)


# ---------------------------------------------------------------------- hue: rated chips
@lru_cache(maxsize=1)
def _chip_valence_plane() -> tuple[np.ndarray, float, float]:
    """Least-squares plane of the BCP-37 valence ((happy − sad) / 200) over
    [1, L*, C*ab, a*, b*] / 100, and the valence's mean and SD over the chips."""
    lab = _bcp37_lab()
    design = np.column_stack([np.ones(len(lab)), lab[:, 0], np.hypot(lab[:, 1], lab[:, 2]),
                              lab[:, 1], lab[:, 2]]) / np.array([1, 100, 100, 100, 100])
    valence = np.array([(row[4] - row[5]) / 200.0 for row in BCP37])
    coef, *_ = np.linalg.lstsq(design, valence, rcond=None)
    return coef, float(valence.mean()), float(valence.std())


def chip_valence(lab: np.ndarray) -> np.ndarray:
    """Rated valence of CIELAB colours [..., 3] as z-scores over the BCP-37 chips (the plane of
    :func:`_chip_valence_plane`): > 0 for colours rated happier than the average chip."""
    coef, mean, sd = _chip_valence_plane()
    lab = np.asarray(lab, dtype=np.float64)
    design = np.stack([np.ones(lab.shape[:-1]), lab[..., 0], np.hypot(lab[..., 1], lab[..., 2]),
                       lab[..., 1], lab[..., 2]], axis=-1) / np.array([1, 100, 100, 100, 100])
    return (design @ coef - mean) / sd


# ---------------------------------------------------------------------- colour clusters
@dataclass(frozen=True)
class ColourCluster:
    """One colour of a painting: its CIELAB centre and its share of the canvas."""

    lab: tuple[float, float, float]
    share: float


CLUSTERS = 5
WORK_SIDE = 128


def colour_clusters(image: np.ndarray, k: int = CLUSTERS, work_side: int = WORK_SIDE) -> list[ColourCluster]:
    """The ``k`` main colours of an HxWx3 uint8 RGB painting: k-means in CIELAB (OpenCV, seeded,
    on the painting resized to at most ``work_side`` px), largest share first."""
    import cv2

    from emosem.data.cues import rgb_to_lab

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    h, w = image.shape[:2]
    scale = min(1.0, work_side / max(h, w))
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    lab = rgb_to_lab(image).reshape(-1, 3).astype(np.float32)
    k = min(k, len(np.unique(lab.round(1), axis=0)))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(lab, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    shares = np.bincount(labels[:, 0], minlength=k) / len(labels)
    out = [ColourCluster(tuple(float(v) for v in centres[j]), float(shares[j]))
           for j in range(k) if shares[j] > 0]
    return sorted(out, key=lambda c: -c.share)


def cluster_pad(cluster: ColourCluster, hue: bool,
                reference: ColourReference = REFERENCE) -> tuple[float, float, float]:
    """(P, A, D) of one colour: V&M on its L* and C*ab; with ``hue`` the pleasure is the chips'
    rated valence of the colour itself (:func:`chip_valence`), which sees its hue."""
    lightness, a, b = cluster.lab
    pad = colour_pad(lightness, math.hypot(a, b), reference)
    if hue:
        pad = (float(chip_valence(np.asarray(cluster.lab))), pad[1], pad[2])
    return pad


def cluster_mixture_prior(clusters: list[ColourCluster], hue: bool,
                          reference: ColourReference = REFERENCE) -> dict[str, float]:
    """Share-weighted mixture over a painting's colours of each colour's distribution."""
    total = sum(c.share for c in clusters)
    if not clusters or total <= 0:
        raise ValueError("a painting needs at least one colour cluster with a positive share")
    mix = dict.fromkeys(ARTEMIS_EMOTIONS, 0.0)
    for c in clusters:
        for e, p in pad_distribution(cluster_pad(c, hue, reference)).items():
            mix[e] += c.share / total * p
    return mix


# ---------------------------------------------------------------------- the candidates
def _whole_canvas(image: np.ndarray, reference: ColourReference) -> dict[str, float]:
    from emosem.data.cues import extract_cues

    cues = extract_cues(image, np.ones(np.asarray(image).shape[:2], np.float32))
    return colour_emotion_prior(cues.lightness, cues.chroma, reference)


def _lm(kind: str) -> Callable[[np.ndarray], dict[str, float]]:
    def prior(image: np.ndarray) -> dict[str, float]:
        from emosem.inference.lm_prior import painting_lm_prior

        return painting_lm_prior(image, kind)
    return prior


def geometric_blend(priors: list[dict[str, float]]) -> dict[str, float]:
    """The normalised geometric mean of distributions over the same emotions (a product of
    experts with equal weights)."""
    logs = np.mean([[math.log(max(p[e], 1e-12)) for e in ARTEMIS_EMOTIONS] for p in priors], axis=0)
    probs = np.exp(logs - logs.max())
    probs /= probs.sum()
    return dict(zip(ARTEMIS_EMOTIONS, (float(p) for p in probs)))


# name → prior of an HxWx3 uint8 RGB painting. Fixed before measuring on the sample paintings.
PRIOR_METHODS: dict[str, Callable[[np.ndarray], dict[str, float]]] = {
    # the first version: mean L*/C* as z-scores against the synthetic training paintings
    "vm_synthetic": lambda img: _whole_canvas(img, SYNTHETIC_REFERENCE),
    # mean L*/C* as z-scores against colour samples (V&M's own kind of scale)
    "vm_chips": lambda img: _whole_canvas(img, CHIP_REFERENCE),
    # per colour cluster, mixed by share, against the chips
    "vm_chips_clusters": lambda img: cluster_mixture_prior(colour_clusters(img), False, CHIP_REFERENCE),
    # per colour cluster with the chips' rated valence of the colour (hue) as pleasure
    "chip_valence_clusters": lambda img: cluster_mixture_prior(colour_clusters(img), True, CHIP_REFERENCE),
    # the two cluster variants with arousal/dominance (and, without hue, pleasure) against the
    # synthetic set as in the first version (measured first by mistake, kept and labelled)
    "vm_synthetic_clusters": lambda img: cluster_mixture_prior(colour_clusters(img), False,
                                                               SYNTHETIC_REFERENCE),
    "chip_valence_synthetic_clusters": lambda img: cluster_mixture_prior(colour_clusters(img), True,
                                                                         SYNTHETIC_REFERENCE),
    # the language model (emosem.inference.lm_prior): the naive baseline, and the PMI prior
    "lm_naive": _lm("naive"),
    "lm_pmi": _lm("pmi"),
    # the PMI prior over several adjectives per emotion (lm_prior.EMOTION_VERBALIZERS)
    "lm_pmi_words": _lm("pmi_words"),
    # the PMI prior with the halves' light and colours and the strokes' swirl in the description
    "lm_pmi_layout": _lm("pmi_layout"),
    # the same as Bayes' posterior under ArtEmis's base rates of the nine emotions
    "lm_pmi_layout_rates": _lm("pmi_layout_rates"),
    # lm_pmi_layout with the direction the lines mostly run, in art theory's words: measured worse
    # (docs/results/issue27_priors_lines.json: 5/15 and 13/15; nearly every painting reads level or
    # upright against edges in every direction), kept as a measured candidate
    "lm_pmi_layout_lines": _lm("pmi_layout_lines"),
    # the noisy-channel direction: the description scored after each emotion's sentence
    # (lm_prior.LMPrior.channel_prior), raw and with the reference descriptions' mean subtracted:
    # measured worse (docs/results/issue27_priors_channel.json: 5/15, 9/15 and 4/15, 11/15 against
    # lm_pmi_layout's 10/15, 14/15; "disgust" first on most paintings), kept as measured candidates
    "lm_channel_layout": _lm("channel_layout"),
    "lm_channel_layout_ref": _lm("channel_layout_ref"),
    # a combination: the PMI prior and the first colour prior as equal experts
    "lm_pmi_x_vm_synthetic": lambda img: geometric_blend([_lm("pmi")(img),
                                                          _whole_canvas(img, SYNTHETIC_REFERENCE)]),
}
LM_METHODS = frozenset({"lm_naive", "lm_pmi", "lm_pmi_words", "lm_pmi_layout", "lm_pmi_layout_rates",
                        "lm_pmi_layout_lines", "lm_channel_layout", "lm_channel_layout_ref",
                        "lm_pmi_x_vm_synthetic"})
# The best measured (docs/results/issue27_priors_layout.json: top-1 plausible 10/15 and top-3 14/15
# against lm_pmi's 8/15 and 12/15 and the first version's 4/15 and 10/15); without the language
# model, the first version.
DEFAULT_METHOD = "lm_pmi_layout"
FALLBACK_METHOD = "vm_synthetic"


def painting_prior(image: np.ndarray, method: str = DEFAULT_METHOD) -> dict[str, float]:
    """The prior over the nine emotions of an HxWx3 uint8 RGB painting by one of
    :data:`PRIOR_METHODS` (default :data:`DEFAULT_METHOD`). A language-model method on a machine
    where the language model is not prepared logs a warning and uses :data:`FALLBACK_METHOD`."""
    from emosem.modeling.errors import LMWeightsNotFoundError

    if method not in PRIOR_METHODS:
        raise ValueError(f"unknown prior method {method!r}; choose one of {sorted(PRIOR_METHODS)}")
    try:
        return PRIOR_METHODS[method](image)
    except LMWeightsNotFoundError as e:
        if method not in LM_METHODS:
            raise
        _warn_fallback(method, str(e))
        return PRIOR_METHODS[FALLBACK_METHOD](image)


@cache
def _warn_fallback(method: str, reason: str) -> None:
    logger.warning("emotion prior %r needs the language model (%s); using %r instead",
                   method, reason, FALLBACK_METHOD)


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
