"""Search results as a self-contained HTML page (overlays embedded as base64 PNG, inline CSS, no
network) and a CSV, like the collection gallery."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from emosem.emotions import emotion_color
from emosem.files import atomic_write_text
from emosem.retrieval.search import Hit

THUMB_SIDE = 320

_CSS = """
body { margin: 0; padding: 24px 32px; background: #f6f8fa; color: #1f2328;
  font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, "DejaVu Sans", sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; } .muted { color: #656d76; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 16px; margin-top: 16px; }
.hit { background: #fff; border: 1px solid #d8dee4; border-radius: 8px; padding: 10px; }
.hit img { width: 100%; height: auto; border-radius: 4px; display: block; }
.hit h2 { font-size: 15px; margin: 6px 0 2px; word-break: break-all; }
.hit p { margin: 2px 0; font-size: 13px; } .score { font-weight: 600; }
"""


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def overlay_image(source: str | None, segmentation: dict | None, emotion: str,
                  side: int = THUMB_SIDE) -> np.ndarray | None:
    """[h, w, 3] uint8: the painting (long side ``side``) with the region tinted in the emotion's
    colour; None when the painting cannot be read."""
    from PIL import ImageOps
    from pycocotools import mask as mask_utils

    from emosem.visualization.overlay import overlay_mask

    if not source:
        return None
    try:
        with Image.open(source) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((side, side))
            rgb = np.asarray(im)
    except (OSError, ValueError):  # a moved or unreadable painting: the hit is listed without a picture
        return None
    if segmentation:
        counts = segmentation["counts"]
        rle = {"size": segmentation["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        mask = mask_utils.decode(rle).astype(np.uint8) * 255
        small = np.asarray(Image.fromarray(mask).resize((rgb.shape[1], rgb.shape[0]), Image.NEAREST)) > 127
        rgb = overlay_mask(rgb, small, color=emotion_color(emotion))
    return rgb


def overlay_thumbnail(source: str | None, segmentation: dict | None, emotion: str,
                      side: int = THUMB_SIDE) -> str | None:
    """:func:`overlay_image` as a ``data:image/png`` URI; None when the painting cannot be read."""
    rgb = overlay_image(source, segmentation, emotion, side)
    if rgb is None:
        return None
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _card(h: Hit) -> str:
    r = h.region
    uri = overlay_thumbnail(r["source"], r["segmentation"], r["emotion"])
    img = (f'<img src="{uri}" alt="{_esc(r["emotion"])} region in {_esc(r["painting"])}">' if uri
           else '<p class="muted">(painting not readable)</p>')
    cues = ", ".join(x for x in [r["extent"] or r["place"], r["size"], *(r["colours"] or []),
                                 *(r["light_words"] or [])] if x)
    expl = f"<p>{_esc(r['explanation'])}</p>" if r["explanation"] else ""
    conf = "" if r["confidence"] is None else f" · confidence {r['confidence']:.2f}"
    return (f'<div class="hit" data-region="{r["id"]}">{img}<h2>{h.rank}. {_esc(r["painting"])}</h2>'
            f'<p><span class="score">score {h.score:.3f}</span> · {_esc(r["emotion"])}{conf}</p>'
            f'<p class="muted">{_esc(cues)}</p>{expl}</div>')


def write_page(path: Path, hits: list[Hit], title: str, description: str) -> Path:
    """The result page: a card per hit (overlay, rank, score, emotion, cues, explanation)."""
    cards = "\n".join(_card(h) for h in hits) or '<p class="muted">No region matches this query.</p>'
    doc = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
           f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"
           f'<p class="muted">{_esc(description)} · {len(hits)} result(s)</p>'
           f'<div class="grid">{cards}</div></body></html>\n')
    return atomic_write_text(Path(path), doc)


def write_csv(path: Path, hits: list[Hit]) -> Path:
    """One row per hit (:meth:`Hit.row`)."""
    buf = io.StringIO()
    fields = list(Hit(0, 0.0, _EMPTY).row())
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for h in hits:
        w.writerow(h.row())
    return atomic_write_text(Path(path), buf.getvalue())


_EMPTY = {k: None for k in ("id", "painting", "source", "emotion", "confidence", "area_fraction", "place",
                            "extent", "size", "colours", "light_words", "bbox", "mask_file", "group",
                            "in_domain", "explanation")}
