"""Painting-grouped batches: all emotions of a painting land in the same batch.

EmoSEM encodes each distinct image of a batch once and decodes every (image, emotion) pair from
it, so grouping a painting's samples roughly halves the encoder work per supervised mask on
ArtEmis-style data (about 2.3 emotions per painting) and puts contrastive pairs (same image,
different emotion, different region) into every step. The order depends only on
``(seed, epoch)``, so ``skip_first_batches`` resumes exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler


class PaintingBatchSampler(Sampler[list[int]]):
    """Shuffle paintings per epoch, then emit each painting's samples consecutively in batches
    of ``batch_size`` (a painting may straddle two batches).

    Args:
        keys: the painting key of each dataset index.
        batch_size: samples per batch.
        seed: base seed; the epoch is added.
        drop_last: drop a final short batch.
    """

    def __init__(self, keys: Sequence[str], batch_size: int, seed: int = 0, drop_last: bool = True):
        super().__init__()
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        self.groups = list(groups.values())
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        order = list(range(len(self.groups)))
        random.Random(self.seed * 100_003 + self.epoch).shuffle(order)
        batches, current = [], []
        for g in order:
            for idx in self.groups[g]:
                if len(current) == self.batch_size:
                    batches.append(current)
                    current = []
                current.append(idx)
            if len(current) == self.batch_size:
                batches.append(current)
                current = []
        if current and not self.drop_last:
            batches.append(current)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
