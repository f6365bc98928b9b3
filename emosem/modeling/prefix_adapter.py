"""Prefix adapter: mask, image and emotion evidence → ``L`` prefix embeddings for the LM.

ClipCap-style mapper (learned constant queries + a small transformer). Its inputs, each a
256-d token with a learned type embedding:

* ``g×g`` global visual tokens: the image embedding average-pooled to a ``g×g`` grid;
* 1 mask-pooled token: the image embedding averaged under the soft stimulus mask;
* 1 mask-layout token: the soft mask pooled to ``g2×g2`` and projected (where the region is);
* 1 decoded mask token from SAM's mask decoder;
* ``K`` emotion prompt tokens.

The queries read them through ``num_layers`` transformer layers and a linear map to the LM width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NUM_INPUT_TYPES = 5
LAYOUT_GRID = 8


def mask_pool(image_embeddings: torch.Tensor, soft_mask: torch.Tensor) -> torch.Tensor:
    """Image embedding averaged under a soft mask: [B, C, h, w], [B, 1, H', W'] → [B, C]."""
    m = F.interpolate(soft_mask, size=image_embeddings.shape[-2:], mode="bilinear", align_corners=False)
    return (image_embeddings * m).sum((2, 3)) / m.sum((2, 3)).clamp_min(1e-4)


class PrefixAdapter(nn.Module):
    """Fuse visual, mask and emotion tokens into ``prefix_length`` LM input embeddings."""

    def __init__(
        self,
        lm_dim: int,
        in_dim: int = 256,
        prefix_length: int = 8,
        num_layers: int = 2,
        num_heads: int = 8,
        global_grid: int = 2,
    ) -> None:
        super().__init__()
        self.global_grid = global_grid
        self.queries = nn.Parameter(torch.randn(prefix_length, in_dim) * 0.02)
        self.type_embed = nn.Parameter(torch.zeros(NUM_INPUT_TYPES, in_dim))
        self.layout = nn.Linear(LAYOUT_GRID * LAYOUT_GRID, in_dim)
        layer = nn.TransformerEncoderLayer(
            in_dim, num_heads, dim_feedforward=4 * in_dim, dropout=0.0,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(in_dim)
        self.proj = nn.Linear(in_dim, lm_dim)

    @property
    def prefix_length(self) -> int:
        return self.queries.shape[0]

    def forward(
        self,
        image_embeddings: torch.Tensor,
        soft_mask: torch.Tensor,
        mask_token: torch.Tensor,
        emotion_tokens: torch.Tensor,
    ) -> torch.Tensor:
        """Build the prefix.

        image_embeddings: [B, 256, h, w]; soft_mask: [B, 1, H', W'] probabilities (any size);
        mask_token: [B, 256]; emotion_tokens: [B, K, 256] → prefix [B, L, D_lm].
        """
        b, c, h, w = image_embeddings.shape
        glob = F.adaptive_avg_pool2d(image_embeddings, self.global_grid).flatten(2).transpose(1, 2)
        pooled = mask_pool(image_embeddings, soft_mask)
        layout = self.layout(F.adaptive_avg_pool2d(soft_mask, LAYOUT_GRID).flatten(1))
        groups = [glob, pooled[:, None], layout[:, None], mask_token[:, None], emotion_tokens]
        inputs = torch.cat([g + self.type_embed[i] for i, g in enumerate(groups)], dim=1)
        q = self.queries.unsqueeze(0).expand(b, -1, -1)
        out = self.transformer(torch.cat([q, inputs], dim=1))[:, : self.prefix_length]
        return self.proj(self.norm(out))
