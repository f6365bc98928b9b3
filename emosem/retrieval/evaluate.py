"""Retrieval quality where the truth is known: the synthetic ArtEmis-style set.

Every ground-truth stimulus region of the set is a query ("regions like this one"); the
collection is every region of the *other* paintings; a region is relevant when it shows the same
motif for the same emotion (the COCO annotations carry ``motif``). The index's region vectors are
compared on exactly the same queries with baselines: random order, emotion only (regions of the
query's emotion first, in random order), and the pooled whole-image embedding (regions ranked by
their painting's similarity to the query's painting, with and without the emotion filter).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emosem.retrieval.embed import (
    DEFAULT_SPEC,
    EmbeddingSpec,
    compose,
    feature_maps,
    normalize_rows,
    padded_masks,
    pool_under_masks,
)
from emosem.retrieval.metrics import average_precision, precision_at_k

logger = logging.getLogger(__name__)


@dataclass
class TruthRegions:
    """The set's regions: painting index, emotion, motif, cues per region; pooled feature blocks
    per feature kind [n, C]; whole-painting vectors per kind [n_paintings, C]."""

    paintings: list[str]
    painting: np.ndarray  # [n] int
    emotion: list[str]
    motif: list[str]
    cues: list[dict | None]
    pooled: dict[str, np.ndarray]
    whole: dict[str, np.ndarray]


def embed_truth(data_root: Path, predictor: Any, limit: int | None = None) -> TruthRegions:
    """Encode every painting of a COCO stimulus-mask set once and pool both feature kinds under
    each ground-truth mask (the mask decoder is not run)."""
    import json

    import torch
    from pycocotools import mask as mask_utils
    from tqdm import tqdm

    from emosem.data.cues import extract_cues
    from emosem.emotions import ARTEMIS_EMOTIONS

    coco = json.loads((Path(data_root) / "stimulus_masks.json").read_text(encoding="utf-8"))
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    by_image: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    images = [im for im in coco["images"] if im["id"] in by_image][:limit]
    paintings, painting, emotion, motif, cues = [], [], [], [], []
    pooled: dict[str, list] = {"concepts": [], "sam": []}
    whole: dict[str, list] = {"concepts": [], "sam": []}
    for i, im in enumerate(tqdm(images, desc="embed regions", disable=None)):
        state = predictor.encode(Path(data_root) / "images" / im["file_name"])
        masks = []
        for a in by_image[im["id"]]:
            seg = a["segmentation"]
            if isinstance(seg, list):
                seg = mask_utils.merge(mask_utils.frPyObjects(seg, im["height"], im["width"]))
            elif isinstance(seg.get("counts"), list):
                seg = mask_utils.frPyObjects(seg, im["height"], im["width"])
            m = mask_utils.decode(seg).astype(bool)
            masks.append(m)
            name = cats[a["category_id"]]
            emotion.append(name if name in ARTEMIS_EMOTIONS else name.replace("_", " "))
            motif.append(a.get("motif", ""))
            cues.append(extract_cues(state.image, m).record())
            painting.append(i)
        paintings.append(im["file_name"])
        pm = padded_masks(predictor.transform, masks)
        h, w = state.input_size
        full = torch.zeros(1, *pm.shape[-2:])
        full[:, :h, :w] = 1
        for kind in pooled:
            (fmap,) = feature_maps(state.embedding, state.concept_map, kind)
            pooled[kind].append(pool_under_masks(fmap, pm).numpy())
            whole[kind].append(pool_under_masks(fmap, full).numpy())
    return TruthRegions(paintings, np.asarray(painting), emotion, motif, cues,
                        {k: np.concatenate(v) for k, v in pooled.items()},
                        {k: normalize_rows(np.concatenate(v)) for k, v in whole.items()})


# The index's default vector (see cli.py) and its parts, compared on the same queries.
DEFAULT_SPECS: dict[str, EmbeddingSpec] = {
    "region concepts": EmbeddingSpec("concepts"),
    "region sam": EmbeddingSpec("sam"),
    "region both": EmbeddingSpec("both"),
    "region both + emotion": EmbeddingSpec("both", emotion_weight=1.0),
    "region both + emotion + cues (default)": DEFAULT_SPEC,
}


@dataclass
class MethodScore:
    """One ranking method on the same queries: mean precision@k and mAP."""

    method: str
    precision_at_10: float
    map: float
    queries: int


def score_rankings(scores: np.ndarray, truth: TruthRegions, k: int = 10) -> tuple[float, float, int]:
    """Mean precision@k and mAP of rankings by ``scores`` [n_queries = n, n] (higher first);
    a query's own painting is left out; queries without a relevant region elsewhere are skipped."""
    key = np.asarray([f"{m}|{e}" for m, e in zip(truth.motif, truth.emotion)])
    p, ap = [], []
    for q in range(len(key)):
        other = truth.painting != truth.painting[q]
        rel = (key == key[q]) & other
        if not rel.any():
            continue
        cand = np.flatnonzero(other)
        order = cand[np.argsort(-scores[q, cand], kind="stable")]
        r = rel[order]
        p.append(precision_at_k(r, k))
        ap.append(average_precision(r, int(rel.sum())))
    return float(np.mean(p)), float(np.mean(ap)), len(p)


def method_scores(truth: TruthRegions, specs: dict[str, EmbeddingSpec], seed: int = 777,
                  k: int = 10) -> list[MethodScore]:
    """Every method's precision@k and mAP on the same queries: the region vectors of each
    ``specs`` entry, and the baselines."""
    rng = np.random.default_rng(seed)
    n = len(truth.emotion)
    same_emotion = np.asarray([[a == b for b in truth.emotion] for a in truth.emotion], np.float32)
    noise = rng.random((n, n)).astype(np.float32)  # ties broken at random, the same for all
    out: list[tuple[str, np.ndarray]] = [("random", noise), ("emotion only", same_emotion + 0.1 * noise)]
    for kind in ("concepts", "sam"):
        w = truth.whole[kind][truth.painting]
        sim = w @ w.T
        out.append((f"whole-image {kind}", sim + 1e-4 * noise))
        out.append((f"whole-image {kind} + emotion", sim + 2 * same_emotion + 1e-4 * noise))
    for name, spec in specs.items():
        pooled = [truth.pooled[kind] for kind in (("concepts", "sam") if spec.features == "both" else (spec.features,))]
        v = compose(pooled, truth.emotion, truth.cues, spec)
        out.append((name, v @ v.T + 1e-4 * noise))
    rows = []
    for name, s in out:
        p, m, q = score_rankings(s, truth, k)
        rows.append(MethodScore(name, round(p, 4), round(m, 4), q))
        logger.info("%-40s P@%d %.4f  mAP %.4f  (%d queries)", name, k, p, m, q)
    return rows


def quality_report(rows: list[MethodScore]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]

