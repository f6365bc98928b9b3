"""Build and query speed and memory of the vector index at several sizes, on synthetic unit
vectors (clustered like region vectors: a few hundred centres plus noise), exact and HNSW,
with the approximate index's recall@10 against the exact one."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from emosem.retrieval.embed import normalize_rows
from emosem.retrieval.vectors import new_index

logger = logging.getLogger(__name__)


def clustered_vectors(n: int, dim: int, seed: int = 0, centres: int = 300) -> np.ndarray:
    """[n, dim] unit vectors around ``centres`` random centres (noise 0.5 of a centre's length)."""
    rng = np.random.default_rng(seed)
    c = normalize_rows(rng.standard_normal((centres, dim)).astype(np.float32))
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 10000):
        m = min(10000, n - s)
        out[s:s + m] = c[rng.integers(0, centres, m)] + 0.5 * rng.standard_normal((m, dim)).astype(np.float32) / np.sqrt(dim)
    return normalize_rows(out)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def measure_size(n: int, dim: int, queries: int, seed: int = 0, k: int = 10,
                 modes: tuple[str, ...] = ("exact", "hnsw")) -> dict[str, Any]:
    """One size: per mode the build seconds, regions/s, index bytes and RSS growth, single-query
    latency (median and p95 ms over ``queries``), and HNSW's recall@10 against exact (when both)."""
    import faiss

    x = clustered_vectors(n, dim, seed)
    q = x[np.random.default_rng(seed + 1).choice(n, queries, replace=False)] \
        + 0.01 * np.random.default_rng(seed + 2).standard_normal((queries, dim)).astype(np.float32)
    q = normalize_rows(q)
    row: dict[str, Any] = {"regions": n, "dim": dim}
    found = {}
    for mode in modes:
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        index = new_index(dim, mode)
        index.add_with_ids(x, np.arange(n, dtype=np.int64))
        build = time.perf_counter() - t0
        size = faiss.serialize_index(index).nbytes
        lat = []
        ids = np.empty((queries, k), np.int64)
        for i in range(queries):
            t = time.perf_counter()
            _, ids[i : i + 1] = index.search(q[i : i + 1], k)
            lat.append(1000 * (time.perf_counter() - t))
        found[mode] = ids
        row[mode] = {"build_s": round(build, 3), "build_regions_per_s": round(n / build, 1),
                     "index_mb": round(size / 2**20, 1), "rss_growth_mb": round(_rss_mb() - rss0, 1),
                     "query_ms_median": round(float(np.median(lat)), 3),
                     "query_ms_p95": round(float(np.percentile(lat, 95)), 3)}
        del index
        logger.info("%d regions %s: %s", n, mode, row[mode])
    if {"exact", "hnsw"} <= set(found):
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found["hnsw"], found["exact"])])
        row["hnsw"]["recall_at_10_vs_exact"] = round(float(recall), 4)
    return row


def measure_sizes(sizes: list[int], dim: int, queries: int, seed: int = 0,
                  modes: tuple[str, ...] = ("exact", "hnsw")) -> list[dict[str, Any]]:
    import faiss

    logger.info("FAISS %s, %d threads", faiss.__version__, faiss.omp_get_max_threads())
    return [measure_size(n, dim, min(queries, n), seed, modes=modes) for n in sizes]
