"""The learnable emotional prompt: emotion projector and emotion conditioning of the image.

The emotion enters as words: ``"generate the mask for the emotion {e}"`` is tokenised, looked up
in the language model's frozen input-embedding table, and projected here into SAM's 256-d
prompt space. A per-token MLP lifts the LM embeddings; ``K`` learned queries attend over them
(padding masked) so that any word or phrase gives exactly ``K`` sparse prompt tokens for the
mask decoder. The same tokens condition the image embedding through FiLM
(``E' = E · (1 + γ) + β`` per channel, ``γ, β`` predicted from the mean prompt token, initialised
to the identity) so that the decoder's cross-attention sees emotion-specific image features.
"""

from __future__ import annotations

import torch
from torch import nn


class EmotionProjector(nn.Module):
    """LM token embeddings → ``K`` emotion prompt tokens in SAM's prompt space.

    Args:
        lm_dim: width of the LM's input embeddings.
        prompt_dim: SAM prompt width (256).
        num_tokens: ``K``, the number of prompt tokens.
        num_heads: heads of the pooling attention.
        film: also predict FiLM parameters for the image embedding.
    """

    def __init__(
        self,
        lm_dim: int,
        prompt_dim: int = 256,
        num_tokens: int = 4,
        num_heads: int = 8,
        film: bool = True,
    ) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.LayerNorm(lm_dim),
            nn.Linear(lm_dim, prompt_dim),
            nn.GELU(),
            nn.Linear(prompt_dim, prompt_dim),
        )
        self.queries = nn.Parameter(torch.randn(num_tokens, prompt_dim) * 0.02)
        self.pool = nn.MultiheadAttention(prompt_dim, num_heads, batch_first=True)
        self.out = nn.Sequential(nn.LayerNorm(prompt_dim), nn.Linear(prompt_dim, prompt_dim))
        self.film = nn.Linear(prompt_dim, 2 * prompt_dim) if film else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, token_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """token_embeds: [B, T, D_lm]; attention_mask: [B, T] (1 = real) → tokens [B, K, 256]."""
        x = self.mlp(token_embeds)
        q = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)
        pooled, _ = self.pool(q, x, x, attn_mask=self._padding_mask(attention_mask, q.shape[1], x.dtype),
                              need_weights=False)
        return self.out(pooled + q)

    def _padding_mask(self, attention_mask: torch.Tensor, queries: int, dtype: torch.dtype) -> torch.Tensor:
        """The padding as the additive mask [B·heads, K, T] (0 or −inf) that MultiheadAttention
        builds from ``key_padding_mask`` itself: the same sums, without its first-call shape check
        (``torch._check_with`` imports torch.fx's symbolic shapes, 0.3–0.5 s of a cold start)."""
        b, t = attention_mask.shape
        heads = self.pool.num_heads
        mask = torch.zeros(b, 1, 1, t, dtype=dtype, device=attention_mask.device)
        mask.masked_fill_((attention_mask == 0)[:, None, None], float("-inf"))
        return mask.expand(b, heads, queries, t).reshape(b * heads, queries, t)

    def condition(self, image_embeddings: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """FiLM: image_embeddings [B, 256, h, w], tokens [B, K, 256] → [B, 256, h, w]."""
        if self.film is None:
            return image_embeddings
        gamma, beta = self.film(tokens.mean(dim=1)).chunk(2, dim=-1)
        return image_embeddings * (1 + gamma[..., None, None]) + beta[..., None, None]
