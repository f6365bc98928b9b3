"""COCO run-length encoding of masks: ``[H, W]`` bool arrays <-> ``{"size": [H, W], "counts": str}``."""

from __future__ import annotations

import warnings

import numpy as np
from pycocotools import mask as mask_util


def encode_mask(mask: np.ndarray) -> dict:
    """``[H, W]`` bool mask -> COCO RLE ``{"size": [H, W], "counts": str}``."""
    rle = mask_util.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict) -> np.ndarray:
    """COCO RLE (compressed, ``counts`` str or bytes) -> ``[H, W]`` bool mask."""
    r = rle
    if isinstance(rle.get("counts"), list):
        h, w = rle["size"]
        r = mask_util.frPyObjects(rle, h, w)
    elif isinstance(rle.get("counts"), str):
        r = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    with warnings.catch_warnings():
        # pycocotools' decode trips a harmless numpy-2 "copy keyword" DeprecationWarning
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*copy keyword.*")
        return mask_util.decode(r).astype(bool)


def rle_to_str(rle: dict) -> dict:
    """A pycocotools RLE (``counts`` bytes) -> the JSON form (``counts`` str, ``size`` ints)."""
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def rle_as_bytes(rle: dict) -> dict:
    """The JSON form of an RLE (``counts`` str) -> what pycocotools takes (``counts`` bytes)."""
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
