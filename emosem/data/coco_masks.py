"""The COCO stimulus-mask file of an ArtEmis-style set -> images and decoded annotations by painting.

Bad entries are skipped and counted in the :class:`~emosem.data.report.DataReport`; only a file
that is not COCO JSON raises :class:`~emosem.data.report.ArtEmisFormatError`.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from pycocotools import mask as mask_util
from pycocotools.coco import COCO

from emosem.data.image_io import IMAGE_EXTENSIONS
from emosem.data.report import ArtEmisFormatError, DataReport
from emosem.data.rle import rle_to_str
from emosem.emotions import ARTEMIS_EMOTIONS, NUM_EMOTIONS, UnknownEmotionError, parse_emotion


def _split_file_name(file_name: str) -> tuple[str, str]:
    """``"Impressionism/monet_x.jpg"`` -> ``("Impressionism", "monet_x")``."""
    p = PurePosixPath(str(file_name).replace("\\", "/"))
    name = p.name
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        name = name[: -len(p.suffix)]
    parent = str(p.parent)
    return ("" if parent == "." else parent), name


def _category_map(cats: Any, report: DataReport) -> dict[int, str | None]:
    out: dict[int, str | None] = {}
    for c in cats if isinstance(cats, list) else []:
        if not isinstance(c, dict) or "id" not in c:
            continue
        try:
            out[int(c["id"])] = parse_emotion(str(c.get("name", "")))
        except (UnknownEmotionError, TypeError, ValueError):
            out[int(c["id"])] = None
            report.notes.append(f"COCO category {c.get('id')} {c.get('name')!r} is not an ArtEmis emotion")
    return out


def _load_coco_json(path: Path, report: DataReport) -> dict:
    """The masks file as a dict with ``images`` and ``annotations`` lists (else raise)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtEmisFormatError(f"The masks file {path} is not valid JSON ({e})", report) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(
        data.get("annotations"), list
    ):
        raise ArtEmisFormatError(
            f"The masks file {path} is not COCO JSON: expected an object with 'images' and "
            "'annotations' lists",
            report,
        )
    return data


def _coco_images(entries: list, report: DataReport) -> dict[int, dict]:
    """COCO ``images`` -> ``{id: {"id", "file_name", "height", "width"}}`` (bad entries skipped)."""
    images: dict[int, dict] = {}
    for im in entries:
        try:
            image_id = int(im["id"])
            file_name = str(im["file_name"])
            h, w = int(im["height"]), int(im["width"])
            if h <= 0 or w <= 0:
                raise ValueError("non-positive size")
        except (KeyError, TypeError, ValueError) as e:
            report.skip("bad_image_entry", f"{str(im)[:80]} ({type(e).__name__}: {e})")
            continue
        images[image_id] = {"id": image_id, "file_name": file_name, "height": h, "width": w}
    return images


def _clean_annotations(
    entries: list, images: dict[int, dict], cat_map: dict[int, str | None], report: DataReport
) -> list[dict]:
    """The COCO annotations on a known image with an emotion and a segmentation (+ ``_emotion``)."""
    clean_anns = []
    for ann in entries:
        if not isinstance(ann, dict):
            report.skip("bad_annotation", f"not an object: {str(ann)[:60]}")
            continue
        try:
            image_id = int(ann["image_id"])
            cid = int(ann["category_id"])
        except (KeyError, TypeError, ValueError):
            report.skip("bad_annotation", f"annotation {ann.get('id')}: missing image_id/category_id")
            continue
        if image_id not in images:
            report.skip("bad_annotation", f"annotation {ann.get('id')}: unknown image_id {image_id}")
            continue
        if cid in cat_map:
            emotion = cat_map[cid]
        else:
            emotion = ARTEMIS_EMOTIONS[cid - 1] if 1 <= cid <= NUM_EMOTIONS else None
        if emotion is None:
            report.skip("unknown_category", f"annotation {ann.get('id')}: category_id {cid}")
            continue
        if not ann.get("segmentation"):
            report.skip("bad_annotation", f"annotation {ann.get('id')}: no segmentation")
            continue
        clean_anns.append({**ann, "image_id": image_id, "category_id": cid, "_emotion": emotion})
    return clean_anns


def _decode_annotations(
    images: dict[int, dict], clean_anns: list[dict], report: DataReport
) -> dict[tuple[str, str], list[dict]]:
    """Each annotation's RLE (checked against its image's size, non-empty), by painting."""
    coco = COCO()
    coco.dataset = {"images": list(images.values()), "annotations": clean_anns, "categories": []}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()

    anns: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for ann in clean_anns:
        im = images[ann["image_id"]]
        where = f"annotation {ann.get('id')} on {im['file_name']}"
        seg = ann["segmentation"]
        if isinstance(seg, dict) and isinstance(seg.get("size"), (list, tuple)):
            try:
                size_ok = [int(seg["size"][0]), int(seg["size"][1])] == [im["height"], im["width"]]
            except (TypeError, ValueError, IndexError):
                size_ok = False
            if not size_ok:
                report.skip(
                    "mask_size_mismatch",
                    f"{where}: RLE size {seg.get('size')} vs image {im['height']}x{im['width']}",
                )
                continue
        try:
            rle = coco.annToRLE(ann)
            area = float(mask_util.area(rle))
        except Exception as e:
            report.skip("bad_annotation", f"{where}: undecodable segmentation ({type(e).__name__}: {e})")
            continue
        if area <= 0:
            report.skip("empty_mask", where)
            continue
        motif = ann.get("motif")
        anns[_split_file_name(im["file_name"])].append(
            {"emotion": ann["_emotion"], "rle": rle_to_str(rle), "motif": None if motif is None else str(motif)}
        )
    return anns


def read_masks(
    path: Path, report: DataReport
) -> tuple[dict[tuple[str, str], dict], dict[tuple[str, str], list[dict]]]:
    """Read a COCO stimulus-mask file.

    Returns ``(images, anns)``: ``images[(art_style, painting)] = {"file_name", "height", "width"}``
    and ``anns[(art_style, painting)] = [{"emotion", "rle", "motif"}, ...]`` (RLE counts as str).
    """
    data = _load_coco_json(path, report)
    cat_map = _category_map(data.get("categories"), report)
    images = _coco_images(data["images"], report)
    clean_anns = _clean_annotations(data["annotations"], images, cat_map, report)
    anns = _decode_annotations(images, clean_anns, report)
    out_images: dict[tuple[str, str], dict] = {}
    for im in images.values():
        out_images.setdefault(_split_file_name(im["file_name"]), im)
    return out_images, anns
