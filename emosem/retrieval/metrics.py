"""Ranking metrics of one query: precision@k and average precision over a full ranking."""

from __future__ import annotations

import numpy as np


def precision_at_k(relevant: np.ndarray, k: int) -> float:
    """Share of relevant items among the first ``k`` of a ranking (``relevant`` [n] bool in rank
    order; a ranking shorter than ``k`` counts its missing places as misses)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return float(np.asarray(relevant[:k], bool).sum()) / k


def average_precision(relevant: np.ndarray, n_relevant: int | None = None) -> float:
    """Average precision of a ranking (``relevant`` [n] bool in rank order): the mean of the
    precision at each relevant item's rank, over ``n_relevant`` (default: those in the ranking);
    0 when there is nothing relevant."""
    rel = np.asarray(relevant, bool)
    total = int(rel.sum()) if n_relevant is None else int(n_relevant)
    if total == 0:
        return 0.0
    hits = np.cumsum(rel)
    ranks = np.flatnonzero(rel) + 1
    return float((hits[rel] / ranks).sum()) / total
