"""Mask losses (SAM-style focal + dice, optional BCE) and the IoU-prediction target.

All take mask logits and targets of the same shape ``[B, H, W]`` and return one value per
sample ``[B]``, so that samples without a mask can be dropped before averaging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from emosem.iou import intersection_union, iou


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Per-sample mean sigmoid focal loss, [B, H, W] → [B] (Lin, T.-Y., et al. (2017). Focal loss
    for dense object detection. *ICCV 2017*; the formula of torchvision's ``sigmoid_focal_loss``,
    which this equals: torchvision itself is not a dependency). ``alpha`` < 0: no class weighting."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.mean((1, 2))


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Per-sample soft dice loss, [B, H, W] → [B]."""
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1)
    return 1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample mean binary cross-entropy, [B, H, W] → [B]."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean((1, 2))


@torch.no_grad()
def batch_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the thresholded prediction (logit > 0) with the target, [B, H, W] → [B]."""
    return iou(*intersection_union(logits > 0, target > 0.5)).to(logits.dtype)
