"""Writing a synthetic data set: :func:`generate_synthetic_artemis` (images, CSV, COCO masks; in
worker processes, the same files for any number of them) and :func:`make_contact_sheet`."""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_util

from emosem.data.layout import CSV_NAME, IMAGES_DIR, MASKS_NAME
from emosem.data.rle import decode_rle, encode_mask, rle_as_bytes
from emosem.data.synthetic.painter import render_painting
from emosem.emotions import ARTEMIS_EMOTIONS, EMOTION_TO_INDEX

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("art_style", "painting", "emotion", "utterance", "repetition")


def _encode(mask: np.ndarray) -> tuple[dict, float, list[float]]:
    """``[H, W]`` bool mask -> ``(COCO RLE with str counts, area, bbox)``."""
    rle = encode_mask(mask)
    packed = rle_as_bytes(rle)
    return rle, float(mask_util.area(packed)), [float(x) for x in mask_util.toBbox(packed)]


def _work(args: tuple[int, int, int, str, int]) -> dict:
    index, seed, size, out, quality = args
    t0 = time.process_time()
    p = render_painting(index, seed, size)
    path = Path(out) / IMAGES_DIR / p.art_style / f"{p.painting}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(p.image).save(path, format="JPEG", quality=quality)
    anns = []
    for pm in p.motifs:
        rle, area, bbox = _encode(pm.mask)
        anns.append({"motif": pm.name, "emotion": pm.emotion, "rle": rle, "area": area, "bbox": bbox})
    return {"index": index, "art_style": p.art_style, "painting": p.painting, "height": size, "width": size,
            "annotations": anns, "rows": p.rows, "peak_rss_kb": _peak_rss_kb(),
            "cpu_seconds": time.process_time() - t0}


def _peak_rss_kb() -> int:
    try:
        import resource

        v = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(v // 1024) if sys.platform == "darwin" else int(v)
    except (ImportError, OSError):  # pragma: no cover - non-POSIX
        return 0


def _init_worker() -> None:
    cv2.setNumThreads(1)


def generate_synthetic_artemis(
    out: str | Path,
    num_paintings: int = 1000,
    size: int = 256,
    seed: int = 0,
    workers: int | None = None,
    jpeg_quality: int = 92,
    progress: bool | None = None,
) -> dict:
    """Write a synthetic ArtEmis-style data set to ``out`` (see the module docstring).

    Args:
        workers: processes (default ``min(2, cpu count)``); results do not depend on it.
        progress: show a tqdm bar (default: only when stderr is a terminal).

    Returns:
        A summary dict: paths, ``paintings``, ``rows``, ``annotations``, ``seconds``.
    """
    if num_paintings < 1:
        raise ValueError(f"num_paintings must be >= 1, got {num_paintings}")
    if size < 64:
        raise ValueError(f"size must be at least 64 pixels, got {size}")
    out = Path(out)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    workers = min(2, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    t0 = time.perf_counter()
    jobs = [(i, int(seed), int(size), str(out), int(jpeg_quality)) for i in range(num_paintings)]
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    if workers > 1 and num_paintings > 1:
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        with ctx.Pool(workers, initializer=_init_worker) as pool:
            chunk = max(1, min(16, num_paintings // (workers * 8) or 1))
            results = list(tqdm(pool.imap(_work, jobs, chunksize=chunk), total=len(jobs),
                                disable=not show, desc="paintings"))
    else:
        results = [_work(j) for j in tqdm(jobs, disable=not show, desc="paintings")]

    coco: dict = {
        "info": {"description": "EmoSEM synthetic ArtEmis-style emotion stimulus masks",
                 "version": "1.0", "seed": int(seed), "image_size": int(size)},
        "licenses": [],
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": e, "supercategory": "emotion"} for i, e in enumerate(ARTEMIS_EMOTIONS)],
    }
    n_rows = 0
    ann_id = 1
    with open(out / CSV_NAME, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for r in results:
            image_id = r["index"] + 1
            coco["images"].append({"id": image_id, "file_name": f"{r['art_style']}/{r['painting']}.jpg",
                                   "height": r["height"], "width": r["width"]})
            for a in r["annotations"]:
                coco["annotations"].append({
                    "id": ann_id, "image_id": image_id, "category_id": EMOTION_TO_INDEX[a["emotion"]] + 1,
                    "segmentation": a["rle"], "area": a["area"], "bbox": a["bbox"], "iscrowd": 0,
                    "motif": a["motif"],
                })
                ann_id += 1
            for emotion, utt in r["rows"]:
                w.writerow((r["art_style"], r["painting"], emotion, utt, len(r["rows"])))
                n_rows += 1
    with open(out / MASKS_NAME, "w", encoding="utf-8") as f:
        json.dump(coco, f)
    seconds = time.perf_counter() - t0
    logger.info("Wrote %d paintings, %d rows, %d masks to %s in %.1f s",
                num_paintings, n_rows, ann_id - 1, out, seconds)
    return {"out": str(out), "csv": str(out / CSV_NAME), "masks": str(out / MASKS_NAME),
            "images": str(out / IMAGES_DIR), "paintings": num_paintings, "rows": n_rows,
            "annotations": ann_id - 1, "seconds": seconds, "workers": workers,
            "peak_worker_rss_mb": max(r["peak_rss_kb"] for r in results) / 1024.0,
            "cpu_seconds": sum(r["cpu_seconds"] for r in results)}


def make_contact_sheet(root: str | Path, out: str | Path, n: int = 12, cols: int = 4, tile: int = 256) -> Path:
    """Save a preview of ``n`` paintings (spread over the set) with every mask outlined in its emotion colour.

    Reads the set through :func:`emosem.data.artemis.load_artemis` (so it previews exactly what
    training sees) and labels each outline with its motif name (or emotion).
    """
    from emosem.data.artemis import load_artemis
    from emosem.data.image_io import load_image
    from emosem.emotions import emotion_color

    data = load_artemis(root, check_images=False)
    every = data.paintings()
    keys = [every[int(i)] for i in np.unique(np.linspace(0, len(every) - 1, min(n, len(every))).round())]
    tiles = []
    for key in keys:
        sample = data.samples_of(key)[0]
        img = load_image(sample.image_path)
        scale = tile / max(img.shape[:2])
        img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        canvas = np.full((tile + 18, tile, 3), 255, np.uint8)
        canvas[: img.shape[0], : img.shape[1]] = img
        for a in data.annotations(key):
            m = cv2.resize(decode_rle(a["rle"]).astype(np.uint8), (img.shape[1], img.shape[0]),
                           interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            color = emotion_color(a["emotion"])
            cv2.drawContours(canvas, contours, -1, (255, 255, 255), 3)
            cv2.drawContours(canvas, contours, -1, color, 1)
            ys, xs = np.nonzero(m)
            if len(xs):
                x, y = int(xs.min()), max(10, int(ys.min()) - 3)
                label = a["motif"] or a["emotion"]
                cv2.putText(canvas, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 2, cv2.LINE_AA)
                cv2.putText(canvas, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1, cv2.LINE_AA)
        cv2.putText(canvas, key.split("/")[0], (3, tile + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(canvas)
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(out)
    return out
