"""Run-level outputs, written by one process (rank 0) after every process has finished:
``summary.json`` (every input accounted for), ``results.csv`` (one row per image × emotion),
``index.html`` (the gallery) and, with a IIIF manifest, ``manifest.json`` (annotated copy).

Everything is read back from the ledgers (the inputs are not walked again: files the run wrote
are never taken for inputs) and the per-image ``results.json`` files they name, streaming in
input order, so the figures are the same whether one process or several wrote the images, and
whether the run was interrupted and resumed. An image whose results cannot be read back is
reported as failed, not a crash of the merge.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emosem.files import atomic_write_json
from emosem.inference.collection import STATE_DIR
from emosem.inference.outputs import gallery_entry

logger = logging.getLogger(__name__)

CSV_COLUMNS = [
    "image", "source", "emotion", "trained_emotion", "width", "height", "area", "area_share",
    "bbox_x", "bbox_y", "bbox_w", "bbox_h", "confidence", "predicted_iou", "explanation",
    "concepts", "cues", "mask_file", "in_domain", "region_in_domain",
]


def _flat(value: Any) -> str:
    """A cell for a list/dict value such as ``concepts`` or ``cues``: ``a; b`` or ``k=v; ...``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "; ".join(f"{k}={_flat(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        parts = []
        for v in value:
            if isinstance(v, dict):
                name = next((v[k] for k in ("name", "label", "concept", "cue", "text") if k in v), None)
                score = next((v[k] for k in ("score", "weight", "probability", "value") if k in v), None)
                if name is not None:
                    parts.append(f"{name} ({score:.3f})" if isinstance(score, float) else
                                 f"{name}" if score is None else f"{name} ({score})")
                    continue
                parts.append(json.dumps(v, sort_keys=True, ensure_ascii=False))
            else:
                parts.append(_flat(v))
        return "; ".join(parts)
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def csv_rows(key: str, doc: dict[str, Any]) -> Iterable[dict[str, Any]]:
    total = max(1, int(doc["width"]) * int(doc["height"]))
    for rec in doc["results"]:
        x, y, w, h = rec["bbox"]
        yield {
            "image": key, "source": doc.get("source", ""), "emotion": rec["emotion"],
            "trained_emotion": rec.get("trained_emotion"), "width": doc["width"], "height": doc["height"],
            "area": rec["area"], "area_share": f"{rec['area'] / total:.6f}",
            "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h,
            "confidence": rec["confidence"], "predicted_iou": rec["predicted_iou"],
            "explanation": rec.get("explanation") or "",
            "concepts": _flat(rec.get("concepts")), "cues": _flat(rec.get("cues")),
            "mask_file": f"{key}/{rec['files']['mask']}" if rec.get("files", {}).get("mask") else "",
            "in_domain": _flat(doc.get("in_domain")), "region_in_domain": _flat(rec.get("in_domain")),
        }


def _read_result(folder: Path) -> dict[str, Any]:
    """``folder/results.json``, checked enough for the merge; ValueError/OSError if not."""
    doc = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ValueError("results.json holds no list of results")
    return doc


def _canvas_page(folder: Path, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{canvas id: annotation page} for an image whose annotations target a IIIF canvas."""
    if not doc.get("annotations"):
        return {}
    page = json.loads((folder / doc["annotations"]).read_text(encoding="utf-8"))
    items = page.get("items") or []
    if items and items[0]["target"]["source"].get("type") == "Canvas":
        return {items[0]["target"]["source"]["id"]: page}
    return {}


def write_run_outputs(
    out: Path,
    rows: Iterable[dict[str, Any]],
    this_run: dict[str, Any],
    gallery: bool = True,
    manifest: tuple[dict[str, Any], Any] | None = None,
) -> dict[str, Any]:
    """Write summary.json, results.csv, index.html and manifest.json from the ledger ``rows``
    (input order, see :func:`~emosem.inference.collection.read_ledgers`); returns the summary."""
    from emosem.inference.annotations import annotated_manifest

    done, failed, skipped, notes = [], [], [], []
    entries: list[dict[str, Any]] = []
    pages: dict[str, dict[str, Any]] = {}
    csv_tmp = out / STATE_DIR / "results.csv.tmp"
    csv_file = open(csv_tmp, "w", encoding="utf-8", newline="")
    writer = csv.DictWriter(csv_file, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n_rows = 0
    for row in rows:
        key, source, status = row["key"], row["source"], row["status"]
        if row.get("note"):
            notes.append({"image": key, "note": row["note"]})
        if status == "skipped":
            skipped.append({"image": key, "source": source, "reason": row.get("reason", "")})
            continue
        folder = out / key
        if status == "done":
            try:
                doc = _read_result(folder)
                image_rows = list(csv_rows(key, doc))
                image_pages = _canvas_page(folder, doc) if manifest is not None else {}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                status, row = "failed", {"reason": f"its results in {folder} cannot be read back ({e}); "
                                                   "run again with --overwrite"}
        if status != "done":
            failed.append({"image": source, "key": key, "reason": row.get("reason", "")})
            entries.append({"image": key, "error": row.get("reason", "")})
            continue
        done.append(key)
        writer.writerows(image_rows)
        n_rows += len(image_rows)
        pages.update(image_pages)
        if gallery:
            entries.extend(gallery_entry(key, rec, folder, doc.get("in_domain")) for rec in doc["results"])
    csv_file.close()
    os.replace(csv_tmp, out / "results.csv")  # streamed to a temporary file, then one rename
    summary = {
        "images_total": len(done) + len(failed) + len(skipped),
        "images_done": len(done), "images_failed": len(failed), "images_skipped": len(skipped),
        "done": done, "failed": failed, "skipped": skipped, "notes": notes,
        "csv_rows": n_rows,
        "this_run": this_run,
        # also at the top level, where readers of earlier versions (the benchmark) look for it
        "cold_start_to_first_result_s": this_run.get("cold_start_to_first_result_s"),
    }
    if gallery and entries:
        from emosem.visualization.gallery import write_gallery

        write_gallery(out / "index.html", entries, thumbs=out / STATE_DIR / "thumbs")  # kept for the next merge
    if manifest is not None:
        atomic_write_json(out / "manifest.json", annotated_manifest(manifest[0], pages))
        summary["manifest_canvases_annotated"] = len(pages)
    atomic_write_json(out / "summary.json", summary)
    return summary
