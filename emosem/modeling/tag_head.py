"""Tag head: what the stimulus region shows, as words the language model can copy.

A linear multi-label classifier over a tag vocabulary of content tokens of the LM's tokenizer
(open vocabulary: whatever words the training explanations use, e.g. " volcano", " red",
" left"). Its input is the evidence the prefix adapter also sees, pooled to three 256-d
vectors: the image embedding averaged under the soft mask, SAM's decoded mask token and the
mean emotion prompt token. The ``k`` tags that most exceed their prior (logit − prior logit)
are embedded with the LM's frozen table and appended to the prefix, so the LM reads real words
about the region (semantic tags/attributes in captioning: Yao et al. 2017; OSCAR's object tags).

The head is first fitted on frozen features of the training split (:func:`fit_tag_head`:
full-batch Adam, seconds), then keeps training with a BCE loss alongside the LM.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from emosem.modeling.prefix_adapter import mask_pool

FEATURE_DIM = 3 * 256


def tag_vocabulary(
    token_lists: list[list[int]], decode: Callable[[list[int]], str],
    min_df: int = 5, max_df: float = 0.2, max_tags: int = 2048,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Content tokens of a corpus: alphabetic, ≥ 3 letters, in ≥ ``min_df`` documents and in at
    most a ``max_df`` share of them (drops "the", "feel"), the ``max_tags`` most frequent.
    Returns (token ids [T], document frequency share [T])."""
    df: dict[int, int] = {}
    for ids in token_lists:
        for t in set(ids):
            df[t] = df.get(t, 0) + 1
    n = max(1, len(token_lists))
    keep = []
    for t, c in df.items():
        word = decode([t]).strip()
        if c >= min_df and c / n <= max_df and len(word) >= 3 and word.isalpha():
            keep.append((c, t))
    keep.sort(key=lambda ct: (-ct[0], ct[1]))
    keep = keep[:max_tags]
    if not keep:
        raise ValueError("No tag words: the training explanations are too few or too short")
    return (torch.tensor([t for _, t in keep], dtype=torch.long),
            torch.tensor([c / n for c, _ in keep], dtype=torch.float32))


class TagHead(nn.Module):
    """Linear multi-label tag classifier; ``token_ids``/``prior_logit`` are saved with it."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.linear = nn.Linear(FEATURE_DIM, num_tags)
        self.register_buffer("token_ids", torch.zeros(num_tags, dtype=torch.long))
        self.register_buffer("prior_logit", torch.zeros(num_tags))
        self.register_buffer("feature_mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("feature_std", torch.ones(FEATURE_DIM))

    @staticmethod
    def features(image_embeddings, soft_mask, mask_token, emotion_tokens) -> torch.Tensor:
        """[B, 256, h, w], [B, 1, H', W'], [B, 256], [B, K, 256] → [B, 768]."""
        pooled = mask_pool(image_embeddings, soft_mask)
        return torch.cat([pooled, mask_token, emotion_tokens.mean(1)], dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, 768] → tag logits [B, T]."""
        return self.linear((features - self.feature_mean) / self.feature_std)

    def top_tokens(self, logits: torch.Tensor, k: int) -> torch.Tensor:
        """The ``k`` tags with the highest lift over their prior → LM token ids [B, k]."""
        idx = (logits - self.prior_logit).topk(k, dim=-1).indices
        return self.token_ids[idx]

    def targets(self, token_lists: list[list[int]]) -> torch.Tensor:
        """Multi-hot targets [B, T]: which tags each explanation contains."""
        pos = {int(t): i for i, t in enumerate(self.token_ids.tolist())}
        y = torch.zeros(len(token_lists), len(self.token_ids), device=self.token_ids.device)
        for row, ids in enumerate(token_lists):
            hits = [pos[t] for t in set(ids) if t in pos]
            if hits:
                y[row, hits] = 1.0
        return y

    def loss(self, logits: torch.Tensor, token_lists: list[list[int]]) -> torch.Tensor:
        """Multi-label BCE against the tags of each explanation (scalar)."""
        return F.binary_cross_entropy_with_logits(logits, self.targets(token_lists))

    @torch.no_grad()
    def fit(self, features: torch.Tensor, token_lists: list[list[int]], steps: int = 300,
            lr: float = 1e-2, weight_decay: float = 1e-4) -> float:
        """Full-batch fit on frozen features [N, 768]; returns the final BCE."""
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-4))
        y = self.targets(token_lists)
        p = y.mean(0).clamp(1e-4, 1 - 1e-4)
        self.prior_logit.copy_(torch.log(p / (1 - p)))
        self.linear.weight.zero_()
        self.linear.bias.copy_(self.prior_logit)
        opt = torch.optim.Adam(self.linear.parameters(), lr=lr, weight_decay=weight_decay)
        loss = torch.tensor(math.nan)
        with torch.enable_grad():
            for _ in range(steps):
                loss = F.binary_cross_entropy_with_logits(self(features), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        return float(loss)
