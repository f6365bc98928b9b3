"""Result files for one image: mask/overlay/heat-map/panel PNGs, grid figure, ``results.json``.

Layout under ``out_dir`` (one folder per input image, named by the caller)::

    <emotion>_mask.png  <emotion>_overlay.png  <emotion>_heatmap.png  <emotion>_panel.png
    grid.png            (several emotions: all overlays with their explanations)
    distribution.png    (when the emotion distribution was predicted)
    annotations.json    (W3C Web Annotation page, see :mod:`emosem.inference.annotations`)
    results.json        (every file above is named in it)

``<emotion>`` is :func:`emosem.emotions.emotion_file_stem`: unique and stable for any script.
The painting may have been analysed at a reduced *working* size (a pixel budget, see
:func:`emosem.data.image_io.decode_image`); masks, their PNGs, COCO RLE, ``bbox`` and ``area``
are always at the image's original size (nearest-neighbour from the working mask), the overlay,
heat-map and panel pictures at the working size.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emosem.emotions import emotion_color, emotion_file_stem
from emosem.files import atomic_write_json
from emosem.in_domain import domain_note
from emosem.inference.predictor import StimulusResult
from emosem.visualization.overlay import BackgroundPNGs, heatmap_overlay, overlay_mask, save_image


def _nearest_index(n_out: int, n_in: int) -> np.ndarray:
    """Source index of each of ``n_out`` output pixels, sampling pixel centres (PIL's NEAREST)."""
    return ((2 * np.arange(n_out, dtype=np.int64) + 1) * n_in) // (2 * n_out)


def upscale_rows(mask: np.ndarray, size: tuple[int, int], block: int = 256):
    """Yield ``(y0, rows)`` blocks of ``mask`` resized (nearest) to ``size`` = (H, W), so a
    13,000² mask never exists in memory at once."""
    H, W = size
    sy, sx = _nearest_index(H, mask.shape[0]), _nearest_index(W, mask.shape[1])
    for y0 in range(0, H, block):
        yield y0, mask[sy[y0 : y0 + block]][:, sx]


def mask_rle(mask: np.ndarray, size: tuple[int, int]) -> dict[str, Any]:
    """COCO RLE (compressed ``counts`` string) of ``mask`` resized (nearest) to ``size`` = (H, W),
    computed from the small mask's column runs without building the large one; equal to
    ``pycocotools.mask.encode`` of the resized mask."""
    from pycocotools import mask as mask_utils

    H, W = size
    h, w = mask.shape
    sy, sx = _nearest_index(H, h), _nearest_index(W, w)
    row_edges = np.concatenate([[0], np.cumsum(np.bincount(sy, minlength=h))])
    cols_per = np.bincount(sx, minlength=w)
    vals, lens = [], []
    for j in np.flatnonzero(cols_per):
        col = mask[:, j]
        change = np.flatnonzero(col[1:] != col[:-1]) + 1
        starts, ends = np.concatenate([[0], change]), np.concatenate([change, [h]])
        n = row_edges[ends] - row_edges[starts]
        keep = n > 0
        vals.append(np.tile(col[starts][keep], cols_per[j]))
        lens.append(np.tile(n[keep], cols_per[j]))
    v, n = np.concatenate(vals), np.concatenate(lens)
    first = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
    counts = np.add.reduceat(n, first).tolist()
    if v[0]:
        counts = [0, *counts]
    rle = mask_utils.frPyObjects({"counts": counts, "size": [H, W]}, H, W)
    return {"size": [int(H), int(W)], "counts": rle["counts"].decode("ascii")}


def write_mask_png(path: Path, mask: np.ndarray, size: tuple[int, int]) -> Path:
    """8-bit grayscale PNG (0 / 255) of ``mask`` at ``size`` = (H, W), streamed row block by row
    block (the full-size picture is never held in memory)."""
    H, W = size

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(6)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 0, 0, 0, 0)))
        for _, rows in upscale_rows(mask, size):
            raw = np.zeros((rows.shape[0], W + 1), np.uint8)  # filter byte 0 per row
            raw[:, 1:] = rows.astype(np.uint8) * 255
            data = comp.compress(raw.tobytes())
            if data:
                f.write(chunk(b"IDAT", data))
        f.write(chunk(b"IDAT", comp.flush()) + chunk(b"IEND", b""))
    return Path(path)


def full_size_record(result: StimulusResult, size: tuple[int, int]) -> dict[str, Any]:
    """``result.to_record()`` with ``segmentation``, ``bbox`` and ``area`` at ``size`` = (H, W)."""
    from pycocotools import mask as mask_utils

    record = result.to_record()
    if tuple(result.mask.shape) != tuple(size):
        rle = mask_rle(result.mask, size)
        coco = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
        record["segmentation"] = rle
        record["area"] = int(mask_utils.area(coco))
        record["bbox"] = [int(round(v)) for v in mask_utils.toBbox(coco)] if record["area"] else [0, 0, 0, 0]
    return record


def write_image_results(
    out_dir: Path,
    image_name: str,
    image: np.ndarray,
    results: list[StimulusResult],
    distribution: dict[str, float] | None = None,
    figures: bool = True,
    extra: dict[str, Any] | None = None,
    original_size: tuple[int, int] | None = None,
    annotate: Callable[[dict[str, Any], list[np.ndarray]], dict[str, Any]] | None = None,
    in_domain: float | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write every file for one image; returns (results.json content, gallery entries).

    ``image`` is the picture at the working size the masks in ``results`` have; ``original_size``
    (H, W; default: the same) is where masks, RLE, bbox and area are written. ``annotate`` gets
    the finished ``results.json`` content and the working-size masks, and returns the annotation
    page written next to it. ``in_domain``: the painting's in-domain score
    (``EmoSEMPredictor.domain_score``), written as ``in_domain`` with ``in_domain_note`` where it
    is low, and shown on the panels and in the gallery beside each region's own score.
    """
    if figures:  # matplotlib only where figures are drawn (its import is 0.4 s of a cold start)
        from emosem.visualization.figures import (
            close_figure,
            distribution_figure,
            grid_figure,
            panel_figure,
        )
    # every PNG is finished when the block ends; results.json, written last, marks the folder done
    with BackgroundPNGs():
        out_dir.mkdir(parents=True, exist_ok=True)
        size = tuple(original_size or image.shape[:2])
        records, entries, tiles = [], [], []
        for r in results:
            stem = emotion_file_stem(r.emotion)
            record = full_size_record(r, size)
            paths: dict[str, Path] = {}
            if figures:
                overlay = overlay_mask(image, r.mask, color=emotion_color(r.emotion))
                paths = {
                    "mask": write_mask_png(out_dir / f"{stem}_mask.png", r.mask, size),
                    "overlay": save_image(out_dir / f"{stem}_overlay.png", overlay),
                    "heatmap": save_image(out_dir / f"{stem}_heatmap.png", heatmap_overlay(image, r.soft_mask)),
                }
                fig = panel_figure(image, overlay, r.emotion, r.explanation, r.confidence,
                                   distribution=distribution, title=image_name,
                                   out_path=out_dir / f"{stem}_panel.png",
                                   cues=record["cues"], in_domain=in_domain,
                                   region_in_domain=record.get("in_domain"))
                close_figure(fig)
                paths["panel"] = out_dir / f"{stem}_panel.png"
                tiles.append({"emotion": r.emotion, "overlay": overlay, "explanation": r.explanation,
                              "confidence": r.confidence, "cues": record.get("cues")})
                record["files"] = {k: p.name for k, p in paths.items()}
            records.append(record)
            entries.append(gallery_entry(image_name, record, out_dir, in_domain))
        doc: dict[str, Any] = {
            "image": image_name,
            "height": int(size[0]),
            "width": int(size[1]),
            "in_domain": in_domain,
            "results": records,
        }
        if domain_note(in_domain):
            doc["in_domain_note"] = domain_note(in_domain)
        if size != tuple(image.shape[:2]):
            doc["working_size"] = [int(image.shape[0]), int(image.shape[1])]
        if distribution is not None:
            doc["emotion_distribution"] = {k: round(float(v), 4) for k, v in distribution.items()}
        doc.update(extra or {})
        files: list[str] = [f for rec in records for f in rec.get("files", {}).values()]
        if figures and len(tiles) > 1:
            close_figure(grid_figure(image, tiles, distribution=distribution, title=image_name,
                                     out_path=out_dir / "grid.png"))
            doc["grid"] = "grid.png"
            files.append("grid.png")
        if figures and distribution is not None:
            close_figure(distribution_figure(distribution, out_path=out_dir / "distribution.png"))
            doc["distribution_figure"] = "distribution.png"
            files.append("distribution.png")
        if annotate is not None:
            atomic_write_json(out_dir / "annotations.json", annotate(doc, [r.mask for r in results]))
            doc["annotations"] = "annotations.json"
            files.append("annotations.json")
    doc["files"] = sorted(files) + ["results.json"]
    atomic_write_json(out_dir / "results.json", doc)
    return doc, entries


def gallery_entry(image_name: str, record: dict[str, Any], out_dir: Path,
                  in_domain: float | None = None) -> dict[str, Any]:
    """The gallery card of one ``results.json`` record whose files lie in ``out_dir``
    (``in_domain``: the painting's score, ``results.json``'s ``in_domain``)."""
    files = record.get("files") or {}
    return {
        "image": image_name, "emotion": record["emotion"],
        "overlay_path": out_dir / files["overlay"] if "overlay" in files else None,
        "heatmap_path": out_dir / files["heatmap"] if "heatmap" in files else None,
        "mask_path": out_dir / files["mask"] if "mask" in files else None,
        "explanation": record.get("explanation"), "confidence": record.get("confidence"),
        "cues": record.get("cues"),
        "trained": record.get("trained_emotion"),
        "in_domain": in_domain, "region_in_domain": record.get("in_domain"),
    }
