"""The fixed inputs and weights of the stored references (make_references.py)."""

from __future__ import annotations

import numpy as np
import torch

VARIANTS = ("lite0", "lite2")
INDICES = (2, 3, 4)  # forward_intermediates' feature indices compared
RESIZE_SHAPES = ((300, 200), (201, 333), (64, 64), (1000, 17))


def reference_input() -> torch.Tensor:
    """[2, 3, 97, 75]: odd sides, where TensorFlow's "same" padding is uneven."""
    return torch.randn(2, 3, 97, 75, generator=torch.Generator().manual_seed(0))


def reference_weights(template: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights for a state dict's keys and shapes, in its order, from one seeded generator:
    N(0, 0.1²) tensors, BatchNorm running variances in [0.5, 1.5), counters zero."""
    g = torch.Generator().manual_seed(1)
    out = {}
    for key, value in template.items():
        if not value.is_floating_point():
            out[key] = torch.zeros_like(value)
        elif key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(value.shape, generator=g)
        else:
            out[key] = 0.1 * torch.randn(value.shape, generator=g)
    return out


def resize_input(shape: tuple[int, int]) -> np.ndarray:
    """A seeded HxWx3 uint8 noise image of ``shape``."""
    return np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
