"""Emotion-recognition head: which emotions does this painting evoke?

Reads the (unconditioned) image embedding and predicts the nine-way ArtEmis distribution of
annotators' emotions. Trained with the KL divergence to the annotator distribution (same
gradients as soft cross-entropy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emosem.emotions import NUM_EMOTIONS


class EmotionHead(nn.Module):
    """image embedding [B, 256, h, w] → logits [B, 9] (mean- and max-pooled features + MLP)."""

    def __init__(self, in_dim: int = 256, hidden: int = 256, num_emotions: int = NUM_EMOTIONS):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.LayerNorm(2 * in_dim),
            nn.Linear(2 * in_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, num_emotions),
        )

    def forward(self, image_embeddings: torch.Tensor) -> torch.Tensor:
        feats = torch.cat([image_embeddings.mean((2, 3)), image_embeddings.amax((2, 3))], dim=1)
        return self.mlp(feats)


def distribution_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """KL(target ‖ softmax(logits)) averaged over rows. logits, target: [B, 9]; rows sum to 1."""
    return F.kl_div(F.log_softmax(logits, dim=-1), target, reduction="batchmean")
