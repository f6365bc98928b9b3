"""Segmentation and emotion-distribution metrics (numpy; the IoU itself is ``emosem.iou``).

Masks are ``HxW`` boolean arrays at the image's **original** resolution (resize predictions
before scoring). Conventions, chosen to match the referring/reasoning-segmentation literature
(LISA's gIoU/cIoU) and the salient-object literature (F-measure with β² = 0.3, MAE):

* ``IoU``, ``gIoU`` and ``cIoU`` follow ``emosem.iou`` (two empty masks: 1.0; cIoU is the
  cumulative intersection over the cumulative union, so large masks weigh more).
* ``F_beta`` is computed from the precision and recall of the *binary* mask (not the max-F over
  thresholds of a soft map); 0 when precision and recall are both 0, 1.0 when both masks are
  empty.
* ``MAE`` is the mean absolute error between a soft map in [0, 1] (or the binary mask) and the
  ground truth.

The ArtEmis emotion-distribution metrics follow Achlioptas et al. (2021): an artwork has a
*dominant* emotion when at least half of its annotators chose it and no other emotion ties it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from emosem.emotions import ARTEMIS_EMOTIONS, NUM_EMOTIONS, normalize_prompt_emotion, parse_emotion
from emosem.iou import giou_ciou, iou
from emosem.iou import intersection_union as iou_counts

logger = logging.getLogger(__name__)

__all__ = [
    "BETA2",
    "SegmentationMeter",
    "correct_motif",
    "distribution_metrics",
    "dominant_emotion",
    "emotion_counts",
    "f_measure",
    "intersection_union",
    "mae",
    "mask_iou",
    "soft_to_shape",
]

BETA2 = 0.3
"""β² of the F-measure, the salient-object convention (Achanta et al., 2009)."""

PROB_EPS = 1e-8
"""Predicted probabilities are clipped at this value before taking logs."""

# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _as_mask(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as an ``HxW`` bool array; refuse soft maps and wrong ranks."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be an HxW mask, got an array of shape {arr.shape}.")
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError(
                f"{name} is a soft (float) map, not a binary mask: threshold it first "
                "(e.g. prob > 0.5) and pass the probabilities as `soft=` for MAE."
            )
        return arr.astype(bool)
    if np.issubdtype(arr.dtype, np.integer):
        return arr != 0
    raise ValueError(f"{name} must be a bool or 0/1 array, got dtype {arr.dtype}.")


def _check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}: resize the "
            "prediction to the image's original resolution before scoring."
        )


# ---------------------------------------------------------------------------------------------
# Per-mask metrics
# ---------------------------------------------------------------------------------------------


def intersection_union(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """Pixel counts ``(|pred ∩ gt|, |pred ∪ gt|)`` of two ``HxW`` bool masks."""
    p, g = _as_mask(pred, "pred"), _as_mask(gt, "gt")
    _check_same_shape(p, g, "pred", "gt")
    inter, union = iou_counts(torch.from_numpy(p), torch.from_numpy(g))
    return int(inter), int(union)


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two ``HxW`` bool masks; 1.0 when both are empty (``emosem.iou``)."""
    inter, union = intersection_union(pred, gt)
    return iou(torch.tensor(inter), torch.tensor(union)).item()


def f_measure(pred: np.ndarray, gt: np.ndarray, beta2: float = BETA2) -> float:
    """F-measure ``(1+β²)·P·R / (β²·P + R)`` of a binary ``HxW`` mask against ``gt``.

    Precision ``P = |pred ∩ gt| / |pred|`` (0 if ``pred`` is empty), recall
    ``R = |pred ∩ gt| / |gt|`` (0 if ``gt`` is empty). Returns 0.0 when ``P = R = 0`` and 1.0 when
    both masks are empty.
    """
    p, g = _as_mask(pred, "pred"), _as_mask(gt, "gt")
    _check_same_shape(p, g, "pred", "gt")
    n_pred, n_gt = int(np.count_nonzero(p)), int(np.count_nonzero(g))
    if n_pred == 0 and n_gt == 0:
        return 1.0
    tp = int(np.count_nonzero(p & g))
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gt if n_gt else 0.0
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return (1.0 + beta2) * precision * recall / (beta2 * precision + recall)


def mae(soft_pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error between a soft map ``HxW`` in [0, 1] (or a bool mask) and ``gt``."""
    s = np.asarray(soft_pred)
    if s.ndim != 2:
        raise ValueError(f"soft_pred must be an HxW map, got an array of shape {s.shape}.")
    s = s.astype(np.float64)
    if np.isnan(s).any() or (s.size and (s.min() < 0.0 or s.max() > 1.0)):
        raise ValueError(
            "soft_pred must hold probabilities in [0, 1] (apply a sigmoid to logits first)."
        )
    g = _as_mask(gt, "gt")
    _check_same_shape(s, g, "soft_pred", "gt")
    if s.size == 0:
        return 0.0
    return float(np.mean(np.abs(s - g)))


def correct_motif(
    pred: np.ndarray, target_masks: Sequence[np.ndarray], other_masks: Sequence[np.ndarray]
) -> bool:
    """Whether ``pred`` picks the asked emotion's motif rather than another one.

    True when the intersection area of ``pred`` with the union of ``target_masks`` is > 0 and
    strictly larger than its intersection with every single mask of ``other_masks`` (the motifs
    of the other emotions). False when ``pred`` overlaps no target pixel or there is no target.
    """
    p = _as_mask(pred, "pred")
    if len(target_masks) == 0:
        return False
    target = np.zeros_like(p)
    for i, m in enumerate(target_masks):
        m = _as_mask(m, f"target_masks[{i}]")
        _check_same_shape(p, m, "pred", f"target_masks[{i}]")
        target |= m
    hit = int(np.count_nonzero(p & target))
    if hit == 0:
        return False
    for i, m in enumerate(other_masks):
        m = _as_mask(m, f"other_masks[{i}]")
        _check_same_shape(p, m, "pred", f"other_masks[{i}]")
        if int(np.count_nonzero(p & m)) >= hit:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Dataset-level segmentation meter
# ---------------------------------------------------------------------------------------------


def _nan_mean(values: Iterable[float]) -> float:
    vals = list(values)
    return float(np.mean(vals)) if vals else math.nan


def _summary(rows: Sequence[dict]) -> dict[str, float]:
    counts = torch.tensor([[int(r["intersection"]), int(r["union"])] for r in rows], dtype=torch.int64)
    _, ciou = giou_ciou(*counts.reshape(-1, 2).unbind(1))
    return {
        "gIoU": _nan_mean(r["iou"] for r in rows),
        "cIoU": float(ciou),
        "F_beta": _nan_mean(r["f_beta"] for r in rows),
        "MAE": _nan_mean(r["mae"] for r in rows),
        "n": len(rows),
    }


class SegmentationMeter:
    """Accumulates per-sample segmentation scores; ``compute()`` gives dataset metrics.

    Every ``update`` stores one row ``{"key", "emotion", "intersection", "union", "iou",
    "f_beta", "mae"}`` of plain Python values, so rows can be gathered across processes
    (``accelerate.utils.gather_object(meter.to_rows())``) and rebuilt with ``from_rows``.

    >>> meter = SegmentationMeter()
    >>> meter.update(pred_mask, gt_mask, "awe", soft=prob_map, key="img1/awe")
    >>> meter.compute()["cIoU"]
    """

    def __init__(self, beta2: float = BETA2) -> None:
        self.beta2 = float(beta2)
        self._rows: list[dict] = []

    def __len__(self) -> int:
        return len(self._rows)

    def reset(self) -> None:
        """Drop all accumulated samples."""
        self._rows.clear()

    def update(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        emotion: str,
        soft: np.ndarray | None = None,
        key: Any = None,
    ) -> dict:
        """Score one sample and store its row (returned).

        Args:
            pred: ``HxW`` bool predicted mask at the original resolution.
            gt: ``HxW`` bool ground-truth mask.
            emotion: the prompted emotion (ArtEmis labels are canonicalised; free text is kept).
            soft: optional ``HxW`` probability map in [0, 1] for MAE (else the binary mask).
            key: optional sample identifier (e.g. ``"style/painting/emotion"``).
        """
        p, g = _as_mask(pred, "pred"), _as_mask(gt, "gt")
        inter, union = intersection_union(p, g)
        row = {
            "key": key,
            "emotion": normalize_prompt_emotion(emotion)[0],
            "intersection": inter,
            "union": union,
            "iou": iou(torch.tensor(inter), torch.tensor(union)).item(),
            "f_beta": float(f_measure(p, g, self.beta2)),
            "mae": mae(p if soft is None else soft, g),
        }
        self._rows.append(row)
        return row

    @property
    def per_sample(self) -> list[dict]:
        """Copies of the stored rows (``key``, ``emotion``, ``iou``, ...), in update order."""
        return [dict(r) for r in self._rows]

    def best_worst(self, k: int = 5) -> tuple[list[dict], list[dict]]:
        """The ``k`` highest- and ``k`` lowest-IoU rows (ties broken by update order)."""
        order = sorted(range(len(self._rows)), key=lambda i: (-self._rows[i]["iou"], i))
        best = [dict(self._rows[i]) for i in order[:k]]
        worst = [dict(self._rows[i]) for i in reversed(order[-k:])] if k > 0 else []
        return best, worst

    def compute(self) -> dict:
        """``{"gIoU", "cIoU", "F_beta", "MAE", "n", "per_emotion": {emotion: {same keys}}}``.

        Values are Python floats (NaN when there are no samples). ``per_emotion`` lists the
        ArtEmis emotions in ArtEmis order, then any free-text emotions alphabetically.
        """
        out: dict[str, Any] = _summary(self._rows)
        groups: dict[str, list[dict]] = {}
        for r in self._rows:
            groups.setdefault(r["emotion"], []).append(r)
        order = [e for e in ARTEMIS_EMOTIONS if e in groups]
        order += sorted(e for e in groups if e not in ARTEMIS_EMOTIONS)
        out["per_emotion"] = {e: _summary(groups[e]) for e in order}
        return out

    # -- merging across processes ---------------------------------------------------------------

    def to_rows(self) -> list[dict]:
        """The per-sample rows as plain dicts (picklable / JSON-able) for gathering."""
        return self.per_sample

    @classmethod
    def from_rows(
        cls, rows: Iterable[dict], beta2: float = BETA2, deduplicate: bool = False
    ) -> SegmentationMeter:
        """Rebuild a meter from rows gathered from one or several processes.

        ``deduplicate=True`` keeps only the first row of each ``(key, emotion)`` pair with a
        non-``None`` key (distributed samplers pad the last batch by repeating samples).
        """
        meter = cls(beta2=beta2)
        seen: set = set()
        required = {"emotion", "intersection", "union", "iou", "f_beta", "mae"}
        for i, r in enumerate(rows):
            missing = required - set(r)
            if missing:
                raise ValueError(f"Row {i} lacks {sorted(missing)}: pass rows from to_rows().")
            if deduplicate and r.get("key") is not None:
                ident = (r["key"], r["emotion"])
                if ident in seen:
                    continue
                seen.add(ident)
            meter._rows.append(dict(r, key=r.get("key")))
        return meter

    def merge(self, other: SegmentationMeter) -> SegmentationMeter:
        """Append the samples of ``other`` to this meter (in place) and return ``self``."""
        self._rows.extend(dict(r) for r in other._rows)
        return self

    def state_dict(self) -> dict:
        """``{"beta2": float, "rows": [...]}``."""
        return {"beta2": self.beta2, "rows": self.to_rows()}

    def load_state_dict(self, state: dict) -> None:
        """Replace the content with a ``state_dict()``."""
        other = self.from_rows(state["rows"], beta2=state.get("beta2", BETA2))
        self.beta2 = other.beta2
        self._rows = other._rows


# ---------------------------------------------------------------------------------------------
# ArtEmis emotion distributions
# ---------------------------------------------------------------------------------------------


def emotion_counts(labels: Iterable[str | int]) -> np.ndarray:
    """Annotator labels (names or indices) → counts ``[9]`` (int64) in ArtEmis order."""
    counts = np.zeros(NUM_EMOTIONS, dtype=np.int64)
    for lab in labels:
        if isinstance(lab, (int, np.integer)):
            if not 0 <= int(lab) < NUM_EMOTIONS:
                raise ValueError(f"Emotion index {lab} is outside 0..{NUM_EMOTIONS - 1}.")
            counts[int(lab)] += 1
        else:
            counts[ARTEMIS_EMOTIONS.index(parse_emotion(lab))] += 1
    return counts


def dominant_emotion(counts: np.ndarray) -> int | None:
    """Index of the dominant emotion of annotator ``counts [9]`` (or a distribution), else None.

    ArtEmis definition: the most chosen emotion is dominant when at least half of the
    annotations chose it and no other emotion has the same count.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.shape != (NUM_EMOTIONS,):
        raise ValueError(f"counts must have shape ({NUM_EMOTIONS},), got {c.shape}.")
    if np.any(c < 0) or not np.all(np.isfinite(c)):
        raise ValueError("counts must be finite and non-negative.")
    total = float(c.sum())
    if total <= 0:
        return None
    top = float(c.max())
    tol = 1e-9 * total
    if np.count_nonzero(c >= top - tol) > 1:
        return None
    if 2.0 * top < total - tol:
        return None
    return int(np.argmax(c))


def _as_matrix(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != NUM_EMOTIONS:
        raise ValueError(f"{name} must have shape [N, {NUM_EMOTIONS}], got {arr.shape}.")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and non-negative.")
    return arr


def distribution_metrics(pred_probs: np.ndarray, target_dists: np.ndarray) -> dict:
    """Compare predicted emotion probabilities with annotator distributions (ArtEmis).

    Args:
        pred_probs: ``[N, 9]`` probabilities (rows sum to 1; softmax of the logits).
        target_dists: ``[N, 9]`` annotator distributions or raw counts (rows are normalised).

    Returns:
        ``{"accuracy_dominant": mean of argmax(p) == dominant over rows with a dominant emotion
        (NaN if none), "n_dominant": int, "cross_entropy": mean -Σ t·log p, "kl": mean
        KL(t‖p), "n": N}``; ``p`` is clipped at 1e-8 before the logs, ``0·log 0 = 0``.
    """
    p = _as_matrix(pred_probs, "pred_probs")
    t = _as_matrix(target_dists, "target_dists")
    if p.shape != t.shape:
        raise ValueError(f"pred_probs {p.shape} and target_dists {t.shape} differ in shape.")
    n = p.shape[0]
    if n == 0:
        raise ValueError("distribution_metrics needs at least one row.")
    if np.any(p > 1.0 + 1e-6) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("pred_probs rows must be probabilities summing to 1 (softmax logits).")
    t_sum = t.sum(axis=1, keepdims=True)
    if np.any(t_sum <= 0):
        raise ValueError("Every row of target_dists needs at least one annotation.")
    t = t / t_sum

    log_p = np.log(np.clip(p, PROB_EPS, None))
    cross_entropy = -(t * log_p).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_log_t = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)
    kl = t_log_t.sum(axis=1) + cross_entropy

    dominant = [dominant_emotion(row) for row in t]
    has_dom = np.array([d is not None for d in dominant])
    n_dom = int(has_dom.sum())
    if n_dom:
        dom_idx = np.array([d for d in dominant if d is not None])
        acc = float(np.mean(np.argmax(p[has_dom], axis=1) == dom_idx))
    else:
        acc = math.nan
    return {
        "accuracy_dominant": acc,
        "n_dominant": n_dom,
        "cross_entropy": float(cross_entropy.mean()),
        "kl": float(kl.mean()),
        "n": int(n),
    }


def soft_to_shape(
    soft: np.ndarray, shape: tuple[int, int], threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """A soft map ``[h, w]`` → ``(soft > threshold, soft)`` at ``shape`` ``(H, W)``: bilinear
    resize (clipped to [0, 1]) only when the sizes differ (an image downscaled on load)."""
    if soft.shape == tuple(shape):
        return soft > threshold, soft
    import cv2

    soft = cv2.resize(soft.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    soft = np.clip(soft, 0.0, 1.0)
    return soft > threshold, soft
