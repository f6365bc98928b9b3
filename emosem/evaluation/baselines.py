"""Baselines that ``emosem evaluate`` scores on the same samples as the model.

Each baseline answers "how much of the model's number would a trivial method get?":

* :class:`CentrePrior` (masks) — paintings are composed around their centre, so a centred
  blob is a strong prior for "where the stimulus is". Fit on the TRAIN split: ``f`` = the mean,
  over the train samples that have a mask, of ``mask area / image area``. On an ``H x W``
  image the prior is the ``round(f·H·W)`` pixels closest to the image centre in the normalised
  distance ``((x + ½ − W/2) / W)² + ((y + ½ − H/2) / H)²`` (ties in raster order): a centred
  ellipse with the image's aspect ratio and area ``f·H·W`` (for ``f > π/4`` it is clipped by the
  frame and grows into the corners). Its area is exactly ``round(f·H·W)`` pixels, whatever the
  emotion.
* :func:`neutral_prediction` (masks) — the **emotion-agnostic model**: the same checkpoint
  decoding with the prompt template filled with an empty emotion (``"generate the mask for the
  emotion "``). It shows what the emotional prompt adds over the painting's generic salient
  region. (The predictor refuses an empty emotion from users; this goes through the model's
  public ``emotion_tokens``/``decode`` and the transform's ``postprocess_masks`` directly.)
* :class:`NearestNeighbourRetrieval` (explanations) — the nearest-neighbour captioning baseline
  (Devlin et al. 2015, ArtEmis' "NN"): the consensus utterance of that emotion among the ``k``
  visually nearest TRAIN paintings (cosine of a pooled SAM image embedding). It sees the test
  painting, but only as one global vector, not the stimulus region.
* :class:`RetrievalBaseline` (explanations) — the classic "most typical caption" baseline: for
  each emotion, the **medoid** of the TRAIN utterances of that emotion, i.e. the utterance with
  the highest mean TF-IDF cosine similarity to the other train utterances of the emotion.
  Tokens are :func:`~emosem.evaluation.text_metrics.simple_tokenize` words; the IDF
  (``ln((1 + N) / (1 + df)) + 1``, smoothed) is computed over all train utterances, so words
  every emotion uses ("painting", "feel") weigh little. It never looks at the test painting nor
  at the model. Since vectors are L2-normalised, the mean cosine to the others is
  ``(v_i · Σ_j v_j − 1) / (n − 1)``: linear time, fine for ArtEmis' ~400k utterances. Ties go
  to the first utterance in data order.
* :func:`majority_emotion` / :func:`mean_distribution` (emotion recognition) — the most frequent
  dominant emotion of the TRAIN paintings as a constant prediction (accuracy), and the TRAIN
  paintings' mean annotator distribution as a constant predicted distribution (cross-entropy,
  KL).
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from emosem.emotions import ARTEMIS_EMOTIONS, NUM_EMOTIONS
from emosem.evaluation.metrics import dominant_emotion

__all__ = [
    "CentrePrior",
    "NearestNeighbourRetrieval",
    "RetrievalBaseline",
    "majority_emotion",
    "mean_distribution",
    "neutral_prediction",
    "painting_feature",
    "tfidf_medoid",
]


# ---------------------------------------------------------------------------------------------
# Centre prior
# ---------------------------------------------------------------------------------------------


def rle_area_fraction(rle: dict) -> float:
    """``area / (H·W)`` of a COCO RLE (``counts`` str or bytes), without decoding it."""
    from pycocotools import mask as mask_util

    counts = rle["counts"]
    if isinstance(counts, list):
        h, w = rle["size"]
        r = mask_util.frPyObjects(rle, h, w)
    else:
        raw = counts.encode("ascii") if isinstance(counts, str) else counts
        r = {"size": list(rle["size"]), "counts": raw}
    h, w = (int(v) for v in rle["size"])
    return float(mask_util.area(r)) / float(h * w) if h * w else 0.0


class CentrePrior:
    """A centred elliptical mask covering a fixed fraction of the image (see the module doc).

    >>> prior = CentrePrior.fit(train_samples)      # f = mean train mask area fraction
    >>> prior.mask(480, 640).mean()                  # == round(f * 480 * 640) / (480 * 640)
    """

    def __init__(self, fraction: float, n_fit: int = 0) -> None:
        f = float(fraction)
        if not 0.0 <= f <= 1.0 or math.isnan(f):
            raise ValueError(f"The centre prior's area fraction must be in [0, 1], got {fraction}.")
        self.fraction = f
        self.n_fit = int(n_fit)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    @classmethod
    def fit(cls, samples: Iterable[Any]) -> CentrePrior:
        """Mean ``mask area / image area`` over the samples that carry a mask (``mask_rle``).

        Raises:
            ValueError: no sample has a mask (the prior is undefined).
        """
        fractions = [rle_area_fraction(s.mask_rle) for s in samples if s.mask_rle is not None]
        if not fractions:
            raise ValueError("No training sample has a mask: the centre prior cannot be fitted.")
        return cls(float(np.mean(fractions)), n_fit=len(fractions))

    def mask(self, height: int, width: int) -> np.ndarray:
        """The ``height x width`` bool prior mask (cached per size; a copy is returned)."""
        h, w = int(height), int(width)
        if h <= 0 or w <= 0:
            raise ValueError(f"Image size must be positive, got {h}x{w}.")
        key = (h, w)
        if key not in self._cache:
            k = int(round(self.fraction * h * w))
            ys = ((np.arange(h, dtype=np.float64) + 0.5 - h / 2.0) / h) ** 2
            xs = ((np.arange(w, dtype=np.float64) + 0.5 - w / 2.0) / w) ** 2
            dist = (ys[:, None] + xs[None, :]).ravel()
            flat = np.zeros(h * w, dtype=bool)
            if k > 0:
                flat[np.argsort(dist, kind="stable")[:k]] = True
            self._cache[key] = flat.reshape(h, w)
        return self._cache[key].copy()

    def describe(self) -> str:
        return (
            f"centred ellipse (image aspect ratio) covering {self.fraction:.1%} of the image, "
            f"the mean mask area fraction of {self.n_fit} train samples"
        )


# ---------------------------------------------------------------------------------------------
# Emotion-agnostic model
# ---------------------------------------------------------------------------------------------


def neutral_prediction(
    predictor: Any, state: Any, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray, float]:
    """The checkpoint's mask for an *empty* emotion on an encoded image.

    Args:
        predictor: an :class:`~emosem.inference.predictor.EmoSEMPredictor`.
        state: the painting's :class:`~emosem.inference.predictor.ImageState` (``encode``).
        threshold: on the mask probability, as in ``predict``.

    Returns:
        ``(mask HxW bool, soft HxW float32 in [0, 1], predicted IoU)`` at the image's original
        resolution.
    """
    import torch

    model = predictor.model
    with torch.no_grad():
        # the template with e = "" (model level, not user input)
        logits, iou, _, _ = model.segment(state.embedding, [""])
        full = predictor.transform.postprocess_masks(logits, state.input_size, state.original_size)
        soft = full[0, 0].float().sigmoid().cpu().numpy().astype(np.float32)
    return soft > threshold, soft, float(iou[0])


# ---------------------------------------------------------------------------------------------
# Retrieval (most typical train utterance)
# ---------------------------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    from emosem.evaluation.text_metrics import simple_tokenize

    return [sys.intern(t) for t in simple_tokenize(text).split()]  # shared across 100k texts


def _idf(docs: Sequence[list[str]]) -> dict[str, float]:
    df: Counter[str] = Counter()
    for d in docs:
        df.update(set(d))
    n = len(docs)
    return {t: math.log((1.0 + n) / (1.0 + c)) + 1.0 for t, c in df.items()}


def _unit_vector(tokens: list[str], idf: dict[str, float]) -> dict[str, float]:
    tf = Counter(tokens)
    vec = {t: c * idf.get(t, 0.0) for t, c in tf.items()}
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {t: v / norm for t, v in vec.items()} if norm > 0 else {}


def _medoid_index(token_lists: Sequence[list[str]], idf: dict[str, float]) -> tuple[int, float]:
    """(index, mean cosine to the others) of the medoid of ``token_lists``.

    Two passes (sum of the unit vectors, then each vector's dot product with it) so only one
    vector is alive at a time.
    """
    total: Counter[str] = Counter()
    for t in token_lists:
        for w, x in _unit_vector(t, idf).items():
            total[w] += x
    n = len(token_lists)
    best, best_score = 0, -math.inf
    for i, t in enumerate(token_lists):
        v = _unit_vector(t, idf)
        if not v:
            continue
        if n == 1:
            return i, 1.0
        score = (sum(x * total[w] for w, x in v.items()) - 1.0) / (n - 1)
        if score > best_score + 1e-12:
            best, best_score = i, score
    return best, (best_score if best_score > -math.inf else 0.0)


def tfidf_medoid(texts: Sequence[str], idf_corpus: Sequence[str] | None = None) -> int:
    """Index of the text with the highest mean TF-IDF cosine to the other ``texts``.

    ``idf_corpus`` (default: ``texts``) gives the document frequencies. Ties: the first text.
    """
    if not texts:
        raise ValueError("tfidf_medoid needs at least one text.")
    toks = [_tokens(t) for t in texts]
    idf = _idf(toks if idf_corpus is None else [_tokens(t) for t in idf_corpus])
    return _medoid_index(toks, idf)[0]


class RetrievalBaseline:
    """One explanation per emotion: the medoid train utterance of that emotion.

    ``explain(emotion)`` returns it; an emotion without train utterances gets the medoid of the
    emotion with the most train utterances (``fallback``). ``explain(None)`` (no emotion given,
    as in the ArtEmis alignment protocol) returns ``overall``: the medoid of all train
    utterances, whatever their emotion.
    """

    def __init__(
        self, texts: dict[str, str], fallback: str, scores: dict[str, float] | None = None,
        overall: str | None = None,
    ) -> None:
        # texts: {emotion: medoid utterance}; scores: {emotion: its mean cosine to the others}
        self.texts = dict(texts)
        self.fallback = fallback
        self.scores = dict(scores or {})
        self.overall = fallback if overall is None else overall

    @classmethod
    def fit(cls, samples: Iterable[Any]) -> RetrievalBaseline:
        """From samples with ``emotion`` and ``utterances`` (the TRAIN split)."""
        utts = [(s.emotion, u, _tokens(u)) for s in samples for u in s.utterances]  # data order
        if not utts:
            raise ValueError("No training utterances: the retrieval baseline cannot be fitted.")
        by_emotion: dict[str, list[str]] = {}
        tok: dict[str, list[list[str]]] = {}
        for e, u, t in utts:
            by_emotion.setdefault(e, []).append(u)
            tok.setdefault(e, []).append(t)
        idf = _idf([t for _, _, t in utts])
        texts, scores = {}, {}
        order = [e for e in ARTEMIS_EMOTIONS if e in by_emotion]
        order += sorted(e for e in by_emotion if e not in ARTEMIS_EMOTIONS)
        for e in order:
            i, score = _medoid_index(tok[e], idf)
            texts[e], scores[e] = by_emotion[e][i], score
        most = max(order, key=lambda e: len(by_emotion[e]))  # first in ArtEmis order on ties
        overall = utts[_medoid_index([t for _, _, t in utts], idf)[0]][1]
        return cls(texts, texts[most], scores, overall)

    def explain(self, emotion: str | None) -> str:
        if emotion is None:
            return self.overall
        return self.texts.get(emotion, self.fallback)


def painting_feature(embedding: Any) -> np.ndarray:
    """Global image feature for nearest-neighbour retrieval: SAM embedding ``[1, C, h, w]`` (or
    ``[C, h, w]``) → ``[2C]`` float32 unit vector (spatial mean and spatial max, concatenated)."""
    from emosem.modeling.image_encoders import split_image_features

    e = embedding.detach().float().cpu()
    if e.dim() == 4:  # packed image features (EfficientNet-Lite's HQ skip after SAM's 256)
        e = split_image_features(e)[0]
    e = e.reshape(e.shape[-3], -1)
    v = np.concatenate([e.mean(1).numpy(), e.amax(1).numpy()]).astype(np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class NearestNeighbourRetrieval:
    """Nearest-neighbour explanation (Devlin et al. 2015; ArtEmis' "NN" speaker baseline).

    For a test painting and an emotion: the ``k`` TRAIN paintings whose image feature
    (:func:`painting_feature` of the same checkpoint's SAM encoder) has the highest cosine to the
    test painting's, among those with utterances of that emotion; of their utterances of the
    emotion, the consensus one (highest mean TF-IDF cosine to the others, as in
    :func:`tfidf_medoid`; IDF over all train utterances). ``emotion=None`` (the ArtEmis "NN"
    speaker, which is not told an emotion) and an emotion no train painting has use the ``k``
    nearest paintings' utterances of any emotion. Ties: data order.
    """

    def __init__(self, keys: Sequence[str], features: np.ndarray,
                 utterances: dict[str, dict[str, list[str]]], idf: dict[str, float], k: int = 5):
        # features [N, F] unit rows, one per key; utterances {key: {emotion: [texts]}}
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.keys = list(keys)
        self.features = np.asarray(features, dtype=np.float32).reshape(len(self.keys), -1)
        self.utterances = utterances
        self.idf = idf
        self.k = int(k)

    @classmethod
    def fit(cls, samples: Iterable[Any], features: dict[str, np.ndarray], k: int = 5
            ) -> NearestNeighbourRetrieval:
        """From TRAIN samples (``key``, ``emotion``, ``utterances``) and ``{key: feature}``;
        paintings without a feature (failed to load) are left out."""
        utts: dict[str, dict[str, list[str]]] = {}
        for s in samples:
            if s.key in features and s.utterances:
                utts.setdefault(s.key, {}).setdefault(s.emotion, []).extend(s.utterances)
        if not utts:
            raise ValueError("No train painting with utterances and a feature: no nearest-"
                             "neighbour retrieval baseline.")
        keys = list(utts)
        idf = _idf([_tokens(u) for by_e in utts.values() for us in by_e.values() for u in us])
        return cls(keys, np.stack([features[k] for k in keys]), utts, idf, k)

    def neighbours(self, feature: np.ndarray, emotion: str | None = None) -> list[str]:
        """Keys of the ``k`` nearest train paintings with utterances of ``emotion`` (any: None)."""
        order = np.argsort(-(self.features @ np.asarray(feature, np.float32)), kind="stable")
        having = [self.keys[i] for i in order if emotion in self.utterances[self.keys[i]]]
        return (having or [self.keys[i] for i in order])[: self.k]

    def explain(self, feature: np.ndarray, emotion: str | None = None) -> str:
        near = self.neighbours(feature, emotion)
        by_e = [self.utterances[key] for key in near]
        texts = [u for d in by_e for u in d.get(emotion, [])] or [u for d in by_e
                                                                  for us in d.values() for u in us]
        return texts[_medoid_index([_tokens(t) for t in texts], self.idf)[0]]


# ---------------------------------------------------------------------------------------------
# Emotion recognition
# ---------------------------------------------------------------------------------------------


def majority_emotion(train_counts: Iterable[np.ndarray]) -> int | None:
    """Index of the most frequent *dominant* emotion among train paintings (ArtEmis order breaks
    ties); ``None`` if no painting has a dominant emotion."""
    votes: Counter[int] = Counter()
    for c in train_counts:
        c = np.asarray(c, dtype=np.float64)
        if c.sum() <= 0:
            continue
        d = dominant_emotion(c)
        if d is not None:
            votes[d] += 1
    if not votes:
        return None
    top = max(votes.values())
    return min(i for i, v in votes.items() if v == top)


def mean_distribution(train_counts: Iterable[np.ndarray]) -> np.ndarray:
    """``[9]`` mean of the train paintings' normalised annotator distributions (float64)."""
    rows = []
    for c in train_counts:
        c = np.asarray(c, dtype=np.float64)
        if c.shape != (NUM_EMOTIONS,):
            raise ValueError(f"counts must have shape ({NUM_EMOTIONS},), got {c.shape}.")
        if c.sum() > 0:
            rows.append(c / c.sum())
    if not rows:
        raise ValueError("No train painting has annotations: no prior distribution.")
    m = np.mean(rows, axis=0)
    return m / m.sum()
