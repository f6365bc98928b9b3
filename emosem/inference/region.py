"""Choosing a stimulus region a viewer can point at.

At the calibrated threshold the decoder's mask is the region on an in-domain painting, and stays
so. On a painting out of the model's domain the probability map is low and scattered: at the
threshold it leaves specks of 0–3% of the canvas in dozens of fragments. There the region is
chosen by one rule that holds across images (:func:`largest_parts`):

1. smooth the probability map at the scale of the smallest region worth pointing at (a Gaussian
   whose sigma is half the radius of a disc of ``min_fraction`` of the canvas), so fragments
   of one area merge;
2. take the smoothed map's superlevel set that covers a target share of the canvas (the
   thresholded mask's own share, at least ``min_fraction``), split it into connected parts and
   keep the ones holding the most probability mass, at most ``max_parts``, fragments under a
   quarter of ``min_fraction`` dropped;
3. while the kept parts cover less than ``min_fraction``, widen the target (×1.5, up to half the
   canvas).

A mask that already covers ``min_fraction`` in at most ``max_parts`` parts is kept as it is.
The rule that applied is recorded with the region (:meth:`Region.record`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_FRACTION = 0.02  # the smallest region worth pointing at, as a share of the canvas
MAX_PARTS = 3  # the most parts one region may come in
WORK_SIDE = 256  # the rule works on the map resized to this longer side
RULE_THRESHOLD = "threshold"
RULE_LARGEST_PARTS = "largest_parts"


@dataclass
class Region:
    """A chosen region: HxW bool ``mask``, the ``rule`` that chose it, its connected ``parts``
    and the share of the canvas it covers."""

    mask: np.ndarray
    rule: str
    parts: int
    area_fraction: float

    def record(self) -> dict:
        return {"rule": self.rule, "parts": self.parts, "area_fraction": round(self.area_fraction, 4)}


def count_parts(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(number of 8-connected parts, label image HxW int32, area of each part [n]) of a bool mask.

    The areas are counted from the labels: OpenCV's ``connectedComponentsWithStats`` gives the
    same labels and areas but took ~25× as long as ``connectedComponents`` on a 640×1024 mask."""
    import cv2

    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return n - 1, labels, np.bincount(labels.ravel(), minlength=n)[1:]


def number_of_parts(mask: np.ndarray) -> int:
    """The number of 8-connected parts of a bool mask (the first value of :func:`count_parts`)."""
    import cv2

    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1


def coverage(mask: np.ndarray) -> float:
    """The share of the canvas a bool mask covers (``count_nonzero``: ~20× a bool ``mean``)."""
    return np.count_nonzero(mask) / mask.size if mask.size else 0.0


def region_of(mask: np.ndarray, rule: str, parts: int | None = None) -> Region:
    """The :class:`Region` of a bool mask chosen by ``rule`` (``parts``: its number of parts,
    when already counted)."""
    return Region(mask, rule, number_of_parts(mask) if parts is None else parts, coverage(mask))


def is_pointable(mask: np.ndarray, min_fraction: float = MIN_FRACTION,
                 max_parts: int = MAX_PARTS) -> bool:
    """Whether a bool mask covers at least ``min_fraction`` of the canvas in at most ``max_parts``."""
    return coverage(mask) >= min_fraction and number_of_parts(mask) <= max_parts


def choose_region(soft: np.ndarray, threshold: float, out_of_domain: bool,
                  min_fraction: float = MIN_FRACTION, max_parts: int = MAX_PARTS) -> Region:
    """The region of one probability map ``soft`` (HxW float in [0, 1]): the thresholded mask, or
    on a painting out of domain whose mask is not pointable, :func:`largest_parts`."""
    mask = soft > threshold
    if not out_of_domain:
        return region_of(mask, RULE_THRESHOLD)
    area = coverage(mask)
    parts = number_of_parts(mask) if area >= min_fraction else None  # counted once, kept
    if parts is not None and parts <= max_parts:
        return region_of(mask, RULE_THRESHOLD, parts)
    return region_of(largest_parts(soft, area, min_fraction, max_parts), RULE_LARGEST_PARTS)


def _kept_parts(smooth: np.ndarray, soft: np.ndarray, level: float, max_parts: int,
                min_part: float) -> np.ndarray:
    """The superlevel set {smooth ≥ level} reduced to its parts of most mass of ``soft``."""
    n, labels, areas = count_parts(smooth >= level)
    if n == 0:
        return np.zeros(smooth.shape, bool)
    mass = np.bincount(labels.ravel(), weights=soft.ravel(), minlength=n + 1)[1:]
    order = np.argsort(-mass, kind="stable")
    keep = [i for i in order if areas[i] >= min_part * smooth.size or i == order[0]][:max_parts]
    return np.isin(labels, np.asarray(keep) + 1)


def largest_parts(soft: np.ndarray, target: float, min_fraction: float = MIN_FRACTION,
                  max_parts: int = MAX_PARTS) -> np.ndarray:
    """The rule of the module docstring on a probability map [H, W] → bool mask [H, W]; ``target``
    is the share of the canvas to cover (at least ``min_fraction`` is used)."""
    import cv2

    h, w = soft.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(soft.astype(np.float32), size, interpolation=cv2.INTER_AREA) if scale < 1 \
        else soft.astype(np.float32)
    sigma = 0.5 * math.sqrt(min_fraction * small.size / math.pi)
    smooth = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma, sigmaY=sigma,
                              borderType=cv2.BORDER_REPLICATE)
    share = max(float(target), min_fraction)
    while True:
        level = float(np.quantile(smooth, 1.0 - min(share, 0.5)))
        kept = _kept_parts(smooth, small, level, max_parts, min_fraction / 4)
        if scale < 1:
            kept = cv2.resize(kept.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
        if coverage(kept) >= min_fraction or share >= 0.5:
            return kept
        share *= 1.5
