"""W3C Web Annotations checked by oracles other than the writer's own code: the data model's
JSON Schema through ``jsonschema``, polygons parsed by ``svgelements`` and filled by PIL with
the even-odd rule (not the package's OpenCV rasterizer), boxes and MIME types computed by hand."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from svgelements import Close
from svgelements import Path as SvgPath

from emosem.inference.annotations import (
    SVG_NS,
    annotation_page,
    image_target,
    rasterize_svg_selector,
    validate_annotation_page,
)

H, W = 120, 160


def _mask() -> np.ndarray:
    """A 60x80 frame with a 20x30 hole, and a separate 10x10 blob."""
    m = np.zeros((H, W), bool)
    m[20:80, 30:110] = True
    m[40:60, 55:85] = False
    m[95:105, 130:140] = True
    return m


def _page() -> dict:
    m = _mask()
    ys, xs = np.nonzero(m)
    rec = {"emotion": "awe", "area": int(m.sum()), "empty": False, "explanation": "the frame",
           "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1],
           "confidence": 0.8, "predicted_iou": 0.7, "cues": {"area_fraction": 0.3}}
    doc = {"height": H, "width": W, "results": [rec]}
    return annotation_page(doc, "https://example.org/page/1", image_target(Path("p.png"), W, H),
                           tolerance=0.0, masks=[m])


def _selector(page: dict, kind: str) -> dict:
    (sel,) = [s for s in page["items"][0]["target"]["selector"] if s["type"] == kind]
    return sel


def _even_odd_fill(svg: str) -> np.ndarray:
    """The independent oracle: every subpath of every <path> filled by PIL, XOR-ed (even-odd)."""
    import xml.etree.ElementTree as ET

    out = np.zeros((H, W), bool)
    for el in ET.fromstring(svg).iter(f"{{{SVG_NS}}}path"):
        for sub in SvgPath(el.get("d")).as_subpaths():
            img = Image.new("1", (W, H), 0)
            ring = [(s.end.x, s.end.y) for s in sub if not isinstance(s, Close)]
            ImageDraw.Draw(img).polygon(ring, fill=1, outline=1)
            out ^= np.array(img)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_page_is_valid_and_its_geometry_matches_the_mask_by_independent_oracles():
    page = _page()
    assert validate_annotation_page(page) == []
    assert _selector(page, "FragmentSelector")["value"] == "xywh=30,20,110,85"  # by hand
    svg = _selector(page, "SvgSelector")["value"]
    mask = _mask()
    assert _iou(_even_odd_fill(svg), mask) > 0.9  # PIL's fill, not the package's rasterizer
    assert not _even_odd_fill(svg)[50, 70]  # the hole stays a hole
    back = rasterize_svg_selector(svg, (H, W))
    assert _iou(back, mask) > 0.97 and not back[50, 70]


def _broken(edit) -> list[str]:
    page = copy.deepcopy(_page())
    edit(page)
    return validate_annotation_page(page)


@pytest.mark.parametrize("edit, where, words", [
    (lambda p: p.update({"@context": "http://schema.org"}), "page.@context", ""),
    (lambda p: p.update({"type": "Collection"}), "page.type", ""),
    (lambda p: p.update({"id": "page 1"}), "page.id", "does not match"),
    (lambda p: p["items"][0].pop("target"), "page.items[0]", "'target' is a required property"),
    (lambda p: p["items"][0].update({"type": "Note"}), "page.items[0].type", ""),
    (lambda p: p["items"][0]["body"][0].update({"purpose": "liking"}), "page.items[0].body", ""),
    (lambda p: p["items"][0]["body"][0].pop("value"), "page.items[0].body", ""),
    (lambda p: _selector(p, "FragmentSelector").update({"value": "xywh=1,2,3"}),
     "page.items[0].target", ""),
    (lambda p: _selector(p, "SvgSelector").update({"value": "M0,0 L1,1 Z"}),
     "page.items[0].target", ""),
])
def test_schema_names_each_defect(edit, where, words):
    problems = _broken(edit)
    assert problems and all(p.startswith(where) for p in problems), problems
    assert words in " ".join(problems)


@pytest.mark.parametrize("name, mime", [
    ("a.jpg", "image/jpeg"), ("a.JPEG", "image/jpeg"), ("a.png", "image/png"),
    ("a.tif", "image/tiff"), ("a.tiff", "image/tiff"), ("a.webp", "image/webp"),
    ("a.gif", "image/gif"), ("a.bmp", "image/bmp"), ("a.txt", None), ("noext", None),
])
def test_image_target_format_from_the_standard_mime_table(name, mime):
    assert image_target(Path(name), 4, 3).source.get("format") == mime


def test_each_move_to_starts_a_ring_even_on_the_previous_ring_s_point():
    # a part and a corner hole written as two subpaths from the same point: the rings are split
    # at the move-to (svgpathtools' continuous_subpaths joins them there), so the hole is cleared
    svg = (f'<svg xmlns="{SVG_NS}" width="40" height="40"><path fill-rule="evenodd" '
           'd="M0,0 L30,0 L30,30 L0,30 Z M0,0 L10,0 L10,10 L0,10 Z"/></svg>')
    back = rasterize_svg_selector(svg, (40, 40))
    assert back[20, 20] and back[5, 20] and not back[5, 5]


def test_a_coarser_tolerance_gives_fewer_vertices_within_it():
    yy, xx = np.mgrid[:H, :W]
    disc = (yy - 60) ** 2 + (xx - 80) ** 2 < 45**2
    doc = {"height": H, "width": W, "results": [{"emotion": "awe", "area": int(disc.sum()),
           "empty": False, "bbox": [35, 15, 90, 90], "confidence": 0.5, "predicted_iou": 0.5}]}
    target = image_target(Path("p.png"), W, H)
    fine, coarse = (annotation_page(doc, "https://example.org/p", target, tolerance=t, masks=[disc])
                    for t in (0.5, 4.0))
    count = [_selector(p, "SvgSelector")["value"].count(",") for p in (fine, coarse)]
    assert count[1] < count[0] / 2, count
    # Douglas-Peucker: every pixel the coarse polygon gets wrong lies within the tolerance (plus
    # a pixel of rasterisation) of the circle's edge
    wrong = _even_odd_fill(_selector(coarse, "SvgSelector")["value"]) ^ disc
    edge_distance = np.abs(np.hypot(yy - 60, xx - 80) - 45)
    assert wrong.any() and edge_distance[wrong].max() <= 4.0 + 1.5
