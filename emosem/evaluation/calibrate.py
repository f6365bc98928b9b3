"""Choose a checkpoint's mask threshold on validation data.

SAM binarises its mask logits at 0 (probability 0.5). A segmenter trained with focal + dice
losses at a coarse mask resolution is often under-confident along boundaries, so the
probability threshold that maximises gIoU is a property of the checkpoint. It is chosen on a
validation split (never on the data a report is made on) and stored in the checkpoint's
``config.json`` as ``model.mask_threshold``, which :meth:`EmoSEMPredictor.predict`,
``tools/infer.py`` and ``tools/evaluate.py`` use unless a threshold is given.

    python tools/export_checkpoint.py runs/x/best checkpoints/x --calibrate-on data/synthetic
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emosem.evaluation.metrics import soft_to_shape

THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.2 + 0.05 * i, 2) for i in range(13))  # .2 … .8
MOTIF_GRID: tuple[float, ...] = tuple(round(0.05 + 0.05 * i, 2) for i in range(19))  # .05 … .95
MOTIF_PRECISION = 0.95


def threshold_sweep(
    predictor: Any,
    data: Any,
    samples: list[Any],
    thresholds: tuple[float, ...] = THRESHOLD_GRID,
    progress: bool = False,
) -> dict[str, Any]:
    """gIoU and cIoU of ``samples`` (those with a mask) at each probability threshold.

    One encode per painting and one batched decode for its emotions. Returns
    ``{"thresholds", "gIoU", "cIoU", "n", "best"}`` (``best``: the threshold of the highest
    gIoU; ties go to the one nearest 0.5).
    """
    from tqdm.auto import tqdm

    by_key: dict[str, list[Any]] = {}
    for s in samples:
        if s.has_mask:
            by_key.setdefault(s.key, []).append(s)
    if not by_key:
        raise ValueError("No sample with a stimulus mask to calibrate on")
    t = np.asarray(thresholds, dtype=np.float64)
    inters, unions = [], []
    for group in tqdm(list(by_key.values()), desc="calibrate", unit="painting", disable=not progress):
        state = predictor.encode(group[0].image_path)
        results = predictor.predict([s.emotion for s in group], explain=False, state=state)
        for s, r in zip(group, results):
            gt = data.decode_mask(s).astype(bool)
            soft = soft_to_shape(r.soft_mask, gt.shape, 0.5)[1]  # resized if the image was downscaled
            pred = soft[None] > t[:, None, None]  # [T, H, W]
            inters.append((pred & gt).sum((1, 2)))
            unions.append((pred | gt).sum((1, 2)))
    inter, union = np.array(inters, dtype=np.float64), np.array(unions, dtype=np.float64)  # [N, T]
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)  # [N, T]
    giou = iou.mean(0)
    best = max(range(len(t)), key=lambda i: (round(float(giou[i]), 4), -abs(float(t[i]) - 0.5)))
    return {
        "thresholds": [round(float(x), 4) for x in t],
        "gIoU": [round(float(x), 4) for x in giou],
        "cIoU": [round(float(x), 4) for x in inter.sum(0) / np.maximum(union.sum(0), 1)],
        "n": int(iou.shape[0]),
        "best": round(float(t[best]), 4),
    }


def motif_licence_sweep(
    predictor: Any,
    data: Any,
    samples: list[Any],
    grid: tuple[float, ...] = MOTIF_GRID,
    precision: float = MOTIF_PRECISION,
    progress: bool = False,
) -> dict[str, Any]:
    """The tag-head probability at which a motif may name a region (``model.motif_min_prob``,
    see :meth:`EmoSEMPredictor.object_slots`): on ``samples`` whose stimulus is a known motif
    (their COCO annotations' ``motif``), the region the model predicts for the emotion gets the
    motif the tag head is surest of; ``best`` is the lowest threshold of ``grid`` at which at least
    ``precision`` of the licensed regions get one of their true motifs (the highest if none).

    Returns ``{"thresholds", "precision", "coverage", "n", "best", "target_precision"}``
    (coverage: the share of regions licensed at each threshold).
    """
    import torch
    from tqdm.auto import tqdm

    by_key: dict[str, list[Any]] = {}
    for s in samples:
        truth = {a["motif"] for a in data.annotations(s.key) if a.get("motif") and a["emotion"] == s.emotion}
        if truth and s.has_mask:
            by_key.setdefault(s.key, []).append((s, truth))
    if not by_key:
        raise ValueError("No sample whose stimulus is a known motif to calibrate the motif licence on")
    model = predictor.model
    if model.tag_head is None:
        raise ValueError("The model has no tag head: motifs cannot be licensed")
    best_p, right = [], []
    with torch.no_grad():
        for group in tqdm(list(by_key.values()), desc="motif licence", unit="painting", disable=not progress):
            state = predictor.encode(group[0][0].image_path)
            names = [s.emotion for s, _ in group]
            logits, _, mask_token, tokens = model.segment(state.embedding, names)
            emb = model.gather(state.embedding, None, len(names))
            probs = model.tag_logits(emb, logits.sigmoid(), mask_token, tokens).sigmoid()
            for (_, truth), (motif, p) in zip(group, predictor.motif_evidence(probs)):
                best_p.append(p)
                right.append(motif in truth)
    p, ok = np.asarray(best_p), np.asarray(right)
    prec, cover = [], []
    for t in grid:
        hit = p >= t
        prec.append(round(float(ok[hit].mean()), 4) if hit.any() else 1.0)
        cover.append(round(float(hit.mean()), 4))
    passing = [t for t, q in zip(grid, prec) if q >= precision]
    return {"thresholds": list(grid), "precision": prec, "coverage": cover, "n": int(len(p)),
            "best": float(min(passing)) if passing else float(max(grid)), "target_precision": precision}
