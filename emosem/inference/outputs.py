"""Result files for one image: mask/overlay/heat-map/panel PNGs, grid figure, ``results.json``.

Layout under ``out_dir/<image stem>/``::

    <emotion>_mask.png  <emotion>_overlay.png  <emotion>_heatmap.png  <emotion>_panel.png
    grid.png            (several emotions: all overlays with their explanations)
    distribution.png    (when the emotion distribution was predicted)
    results.json
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from emosem.emotions import emotion_color
from emosem.inference.predictor import StimulusResult
from emosem.visualization.figures import (
    close_figure,
    distribution_figure,
    grid_figure,
    panel_figure,
)
from emosem.visualization.overlay import heatmap_overlay, mask_to_png, overlay_mask, save_image


def emotion_slug(emotion: str) -> str:
    """File-name-safe form of an emotion ("something else" → "something_else")."""
    return re.sub(r"[^a-z0-9]+", "_", emotion.lower()).strip("_")[:48] or "emotion"


def write_image_results(
    out_dir: Path,
    image_name: str,
    image: np.ndarray,
    results: list[StimulusResult],
    distribution: dict[str, float] | None = None,
    figures: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write every file for one image; returns (results.json content, gallery entries)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records, entries, tiles = [], [], []
    for r in results:
        slug = emotion_slug(r.emotion)
        record = r.to_record()
        paths: dict[str, Path] = {}
        if figures:
            overlay = overlay_mask(image, r.mask, color=emotion_color(r.emotion))
            paths = {
                "mask": save_image(out_dir / f"{slug}_mask.png", mask_to_png(r.mask)),
                "overlay": save_image(out_dir / f"{slug}_overlay.png", overlay),
                "heatmap": save_image(out_dir / f"{slug}_heatmap.png", heatmap_overlay(image, r.soft_mask)),
            }
            fig = panel_figure(image, overlay, r.emotion, r.explanation, r.confidence,
                               distribution=distribution, title=image_name,
                               out_path=out_dir / f"{slug}_panel.png")
            close_figure(fig)
            paths["panel"] = out_dir / f"{slug}_panel.png"
            tiles.append({"emotion": r.emotion, "overlay": overlay, "explanation": r.explanation,
                          "confidence": r.confidence})
            record["files"] = {k: p.name for k, p in paths.items()}
        records.append(record)
        entries.append({
            "image": image_name, "emotion": r.emotion, "overlay_path": paths.get("overlay"),
            "heatmap_path": paths.get("heatmap"), "mask_path": paths.get("mask"),
            "explanation": r.explanation, "confidence": r.confidence, "trained": r.trained,
        })
    doc: dict[str, Any] = {
        "image": image_name,
        "height": int(image.shape[0]),
        "width": int(image.shape[1]),
        "results": records,
    }
    if distribution is not None:
        doc["emotion_distribution"] = {k: round(float(v), 4) for k, v in distribution.items()}
    doc.update(extra or {})
    if figures and len(tiles) > 1:
        close_figure(grid_figure(image, tiles, distribution=distribution, title=image_name,
                                 out_path=out_dir / "grid.png"))
        doc["grid"] = "grid.png"
    if figures and distribution is not None:
        close_figure(distribution_figure(distribution, out_path=out_dir / "distribution.png"))
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2))
    return doc, entries
