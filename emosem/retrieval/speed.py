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


def synthetic_store(folder, n: int, dim: int, seed: int = 0, per_painting: int = 3):
    """A region index of ``n`` synthetic regions (:func:`clustered_vectors`; ``per_painting``
    regions per painting, emotions, sizes, places and colour names drawn at random), for timing
    whole queries at a collection's size."""
    from emosem.emotions import ARTEMIS_EMOTIONS
    from emosem.retrieval.duplicates import assign_groups
    from emosem.retrieval.search import SIZE_WORDS
    from emosem.retrieval.store import PaintingRow, RegionRow, RegionStore

    rng = np.random.default_rng(seed)
    x = clustered_vectors(n, dim, seed)
    places = ("at the top", "at the bottom", "on the left", "on the right", "in the center")
    colours = ("blue", "dark blue", "yellow", "pale yellow", "red", "brown", "black", "grey", "green")
    store = RegionStore(folder, create=True)
    store.check_settings({"synthetic": {"n": n, "dim": dim, "seed": seed}})
    for p in range(0, n, per_painting):
        regions = [RegionRow(emotion=str(rng.choice(ARTEMIS_EMOTIONS)), vector=x[i],
                             confidence=float(rng.random()),
                             cues={"place": str(rng.choice(places)), "size": str(rng.choice(SIZE_WORDS)),
                                   "area_fraction": float(rng.random() * 0.5),
                                   "colours": [{"name": str(c)} for c in rng.choice(colours, 2, replace=False)]})
                   for i in range(p, min(p + per_painting, n))]
        whole = normalize_rows(rng.standard_normal((1, 64)).astype(np.float32))[0]  # no near-duplicates
        store.put(PaintingRow(f"p{p:07d}.jpg", None, f"sha{p}", 100, 100, whole, 0.0, regions))
    assign_groups(store)
    return store


def measure_queries(n: int, dim: int, queries: int, mode: str = "exact", seed: int = 0) -> dict[str, Any]:
    """Whole queries through :class:`~emosem.retrieval.search.RegionIndex` on a synthetic index of
    ``n`` regions: the SQL filters, the vector search and the metadata of the 10 hits. Kinds:
    like a region; like a region among one emotion; an emotion + colour filter ranked by
    confidence. Median and p95 ms each, and the seconds to fill and open the index."""
    import tempfile

    from emosem.retrieval.search import CueFilter, Query, RegionIndex

    with tempfile.TemporaryDirectory(prefix="emosem-search-speed-") as tmp:
        t0 = time.perf_counter()
        synthetic_store(tmp, n, dim, seed).close()
        fill = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = RegionIndex.open(tmp, mode)
        _ = index.vectors
        open_s = time.perf_counter() - t0
        ids = np.random.default_rng(seed + 3).choice(np.arange(1, n + 1), queries, replace=False)
        kinds = {"like_region": lambda i: Query(like_region=int(i), k=10),
                 "like_region_same_emotion": lambda i: Query(like_region=int(i), emotion=index.region(int(i))["emotion"], k=10),
                 "emotion_and_colour": lambda i: Query(emotion="fear", filters=CueFilter(colours=["blue"]), k=10)}
        row: dict[str, Any] = {"regions": n, "dim": dim, "mode": mode, "fill_s": round(fill, 1),
                               "open_s": round(open_s, 2)}
        for name, make in kinds.items():
            lat = []
            for i in ids:
                q = make(i)
                t = time.perf_counter()
                hits = index.search(q)
                lat.append(1000 * (time.perf_counter() - t))
                assert len(hits) == 10, f"{name}: {len(hits)} hits"
            row[name] = {"query_ms_median": round(float(np.median(lat)), 2),
                         "query_ms_p95": round(float(np.percentile(lat, 95)), 2)}
            logger.info("%d regions %s %s: %s", n, mode, name, row[name])
        index.close()
    return row
