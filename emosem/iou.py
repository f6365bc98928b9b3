"""Mask IoU: the one definition behind the IoU-prediction target, validation and the evaluation report.

Conventions (LISA's gIoU / cIoU):

* the IoU of two empty masks is 1.0 (nothing to find, nothing found);
* ``gIoU`` is the mean of per-mask IoUs, ``cIoU`` the cumulative intersection over the cumulative
  union of all masks (1.0 when every mask is empty); both are NaN for no masks.

The resolution is the caller's: training compares at the model's input resolution
(``EmoSEM.forward``, ``training.trainer.validate``), the evaluation report at each painting's
original resolution (``evaluation.metrics``). Quotients are taken in float64, so a float32 IoU
target is the correctly rounded ``inter / union``.
"""

from __future__ import annotations

import math

import torch


def intersection_union(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel counts of bool masks ``[..., H, W]`` → ``(|pred ∩ target|, |pred ∪ target|)``, each ``[...]`` int64."""
    pred, target = pred.bool(), target.bool()
    return (pred & target).flatten(-2).sum(-1), (pred | target).flatten(-2).sum(-1)


def iou(inter: torch.Tensor, union: torch.Tensor) -> torch.Tensor:
    """Per-mask IoU ``[...]`` float64 from the counts of ``intersection_union``; 1.0 where the union is empty."""
    inter, union = inter.double(), union.double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def giou_ciou(inter: torch.Tensor, union: torch.Tensor) -> tuple[float, float]:
    """``(gIoU, cIoU)`` of masks with the given counts ``[N]``; ``(nan, nan)`` for ``N = 0``."""
    if inter.numel() == 0:
        return math.nan, math.nan
    total = union.sum().item()
    return iou(inter, union).mean().item(), (inter.sum().item() / total if total else 1.0)
