"""Near-duplicate paintings: copies, crops and reproductions of one work, grouped so that they
do not fill the top results of a search.

Two paintings are near-duplicates when the cosine similarity of their whole-painting vectors
(the encoder's features pooled over the whole image, :func:`~emosem.retrieval.embed.embed_whole`)
is at least a threshold; groups are the connected components of that relation. The default
threshold was measured on the synthetic set (see the README's search section).
"""

from __future__ import annotations

import numpy as np

from emosem.retrieval.store import RegionStore

DUPLICATE_THRESHOLD = 0.95


def connected_groups(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Group label [n] of each row of ``vectors`` [n, d] (unit rows): rows joined when their inner
    product is >= ``threshold``, labels are the smallest row index of each component."""
    n = len(vectors)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for start in range(0, n, 1024):  # blocks keep the similarity matrix at 1024 x n
        sim = vectors[start:start + 1024] @ vectors.T
        rows, cols = np.nonzero(sim >= threshold)
        for i, j in zip(rows + start, cols):
            if i < j:
                a, b = find(int(i)), find(int(j))
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return np.asarray([find(i) for i in range(n)])


def assign_groups(store: RegionStore, threshold: float = DUPLICATE_THRESHOLD) -> int:
    """Store every painting's group (the id of its group's first painting); returns the number
    of groups with more than one painting."""
    if not 0 < threshold <= 1:
        raise ValueError(f"duplicate threshold must lie in (0, 1], got {threshold}")
    ids, whole = store.paintings_whole()
    if len(ids) == 0:
        return 0
    labels = connected_groups(whole, threshold)
    store.set_groups({int(p): int(ids[g]) for p, g in zip(ids, labels)})
    return int(sum(c > 1 for c in np.bincount(labels)))
