"""The region vectors in a FAISS index: ``exact`` (flat inner product) or ``hnsw`` (approximate,
a graph index), region ids as FAISS ids, saved next to the SQLite file and rebuilt when the
regions changed since it was saved (the store's version)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from emosem.retrieval.store import RegionStore

logger = logging.getLogger(__name__)

MODES = ("exact", "hnsw")
HNSW_M = 32  # graph degree
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - listed in requirements.txt
        raise RuntimeError("region search needs FAISS: pip install faiss-cpu") from None
    return faiss


def new_index(dim: int, mode: str):
    """An empty FAISS index with explicit ids (``IndexIDMap2``) over a flat or HNSW inner-product index."""
    faiss = _faiss()
    if mode not in MODES:
        raise ValueError(f"index mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "exact":
        base = faiss.IndexFlatIP(dim)
    else:
        base = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        base.hnsw.efSearch = HNSW_EF_SEARCH
    return faiss.IndexIDMap2(base)


def build_vectors(store: RegionStore, mode: str):
    """A FAISS index of every region vector of ``store``, added block by block."""
    index = None
    for ids, vecs in store.iter_vectors():
        if index is None:
            index = new_index(vecs.shape[1], mode)
        index.add_with_ids(np.ascontiguousarray(vecs, np.float32), ids)
    return index


def faiss_path(folder: Path, mode: str) -> Path:
    return Path(folder) / f"vectors-{mode}.faiss"


def load_or_build(store: RegionStore, mode: str):
    """The saved FAISS index of ``mode`` when it is as new as the store, else one built now and
    saved (atomically); None for an index with no regions."""
    faiss = _faiss()
    path = faiss_path(store.folder, mode)
    version = store.version
    if path.is_file() and store.get_meta(f"faiss_{mode}_version") == version:
        index = faiss.read_index(str(path))
    else:
        index = build_vectors(store, mode)
        if index is None:
            return None
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=store.folder)
        os.close(fd)
        try:
            faiss.write_index(index, tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        store.set_meta(f"faiss_{mode}_version", version)
        logger.info("vector index %s: %d regions (%s)", path.name, index.ntotal, mode)
    if mode == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = HNSW_EF_SEARCH
    return index


def search(index, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores [q, k], ids [q, k]; -1 where fewer) of the ``k`` best regions for each query
    vector [q, d]; ``allowed`` (ids) restricts the search to those regions."""
    faiss = _faiss()
    q = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
    k = max(1, min(int(k), index.ntotal))
    if allowed is None:
        return index.search(q, k)
    sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, np.int64))
    params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(HNSW_EF_SEARCH, k)) \
        if isinstance(faiss.downcast_index(index.index), faiss.IndexHNSW) else faiss.SearchParameters(sel=sel)
    return index.search(q, k, params=params)
