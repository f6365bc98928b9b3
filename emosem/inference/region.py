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

The rule works on a map of at most :data:`WORK_SIDE` on the longer side: the predictor hands it
the decoder's logits upsampled straight to that size (not the full-size map shrunk again), and
only the chosen mask is brought to the painting's size (the working-size mask is kept too,
:attr:`Region.work_mask`, for what reads the region at the decoder's resolution).
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
    and the share of the canvas it covers; ``work_mask`` [h, w] bool: the mask on the map the rule
    worked on, where it chose one (None for the thresholded mask)."""

    mask: np.ndarray
    rule: str
    parts: int
    area_fraction: float
    work_mask: np.ndarray | None = None

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


def region_of(mask: np.ndarray, rule: str, parts: int | None = None,
              work_mask: np.ndarray | None = None) -> Region:
    """The :class:`Region` of a bool mask chosen by ``rule`` (``parts``: its number of parts,
    when already counted; ``work_mask``: the mask on the rule's working map)."""
    return Region(mask, rule, number_of_parts(mask) if parts is None else parts, coverage(mask), work_mask)


def is_pointable(mask: np.ndarray, min_fraction: float = MIN_FRACTION,
                 max_parts: int = MAX_PARTS) -> bool:
    """Whether a bool mask covers at least ``min_fraction`` of the canvas in at most ``max_parts``."""
    return coverage(mask) >= min_fraction and number_of_parts(mask) <= max_parts


def choose_region(soft: np.ndarray, threshold: float, out_of_domain: bool,
                  min_fraction: float = MIN_FRACTION, max_parts: int = MAX_PARTS,
                  work: np.ndarray | None = None) -> Region:
    """The region of one probability map ``soft`` (HxW float in [0, 1]): the thresholded mask, or
    on a painting out of domain whose mask is not pointable, :func:`largest_parts`, which works
    on ``work`` [h, w] (the same probabilities at a lower resolution, e.g. the decoder's logits upsampled straight to that size)
    where given, else on ``soft`` shrunk to :data:`WORK_SIDE`."""
    mask = soft > threshold
    if not out_of_domain:
        return region_of(mask, RULE_THRESHOLD)
    area = coverage(mask)
    parts = number_of_parts(mask) if area >= min_fraction else None  # counted once, kept
    if parts is not None and parts <= max_parts:
        return region_of(mask, RULE_THRESHOLD, parts)
    small = work if work is not None else working_map(soft)
    chosen, full = largest_parts(small, area, min_fraction, max_parts, size=soft.shape)
    return region_of(full, RULE_LARGEST_PARTS, work_mask=chosen)


def working_map(soft: np.ndarray) -> np.ndarray:
    """``soft`` [H, W] as float32, shrunk by area averaging to at most :data:`WORK_SIDE` on the
    longer side."""
    import cv2

    h, w = soft.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale == 1.0:
        return soft.astype(np.float32)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(soft.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool mask [h, w] brought to ``shape`` (H, W): bilinear, then ≥ 0.5."""
    import cv2

    if mask.shape == tuple(shape):
        return mask
    size = (int(shape[1]), int(shape[0]))
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) >= 0.5


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


def largest_parts(small: np.ndarray, target: float, min_fraction: float = MIN_FRACTION,
                  max_parts: int = MAX_PARTS, size: tuple[int, int] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The rule of the module docstring on a working probability map [h, w] (at most
    :data:`WORK_SIDE` a side: :func:`working_map`); ``target`` is the share of the canvas to cover
    (at least ``min_fraction`` is used). Returns (bool mask [h, w], the same brought to ``size``
    (H, W), default [h, w]): the cover is checked on the latter, the mask as shown."""
    import cv2

    small = np.asarray(small, dtype=np.float32)
    sigma = 0.5 * math.sqrt(min_fraction * small.size / math.pi)
    smooth = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma, sigmaY=sigma,
                              borderType=cv2.BORDER_REPLICATE)
    share = max(float(target), min_fraction)
    while True:
        level = float(np.quantile(smooth, 1.0 - min(share, 0.5)))
        kept = _kept_parts(smooth, small, level, max_parts, min_fraction / 4)
        shown = resize_mask(kept, size or kept.shape)
        if coverage(shown) >= min_fraction or share >= 0.5:
            return kept, shown
        share *= 1.5
