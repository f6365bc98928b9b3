"""W3C Web Annotations and IIIF Presentation 3 for inference results.

Per image, an ``AnnotationPage`` (JSON-LD, ``http://www.w3.org/ns/anno.jsonld``) holds one
``Annotation`` per stimulus:

* target: a ``SpecificResource`` whose ``source`` is the image file (``file://`` URI) or, with a
  IIIF manifest, the canvas that shows the image; two equivalent selectors: an ``SvgSelector``
  (one ``<path>`` with ``fill-rule="evenodd"``: every part of the mask and its holes, OpenCV
  contours simplified by Douglas-Peucker to ``tolerance`` pixels of the original image) and a
  ``FragmentSelector`` ``xywh=`` bounding box (media fragments), both in the target's units
  (image pixels, or canvas units scaled from them);
* bodies: the emotion (``purpose: tagging``), the explanation (``describing``), and the
  confidence and predicted IoU (``assessing``).

:func:`validate_annotation_page` checks a page against the data model's requirements with
``jsonschema`` (``schemas/annotation_page.schema.json``); :func:`rasterize_svg_selector` turns a
selector back into a mask, its SVG paths parsed by ``svgelements``.
"""

from __future__ import annotations

import functools
import json
import mimetypes
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from emosem.regions import record_is_empty

ANNO_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
IIIF_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
MEDIA_FRAGMENTS = "http://www.w3.org/TR/media-frags/"
SVG_NS = "http://www.w3.org/2000/svg"
DEFAULT_TOLERANCE = 1.0  # pixels of the original image


# --------------------------------------------------------------------------------- polygons

def mask_rings(mask: np.ndarray, tolerance: float = DEFAULT_TOLERANCE,
               scale: tuple[float, float] = (1.0, 1.0)) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Outer boundaries and holes of a HxW bool mask as polygons.

    Returns ``[(outer, [hole, ...]), ...]`` (each ``[N, 2]`` float x, y), largest part first, so a
    part that lies inside another part's hole comes after it. Coordinates are pixel centres of
    ``mask`` mapped by ``scale`` = (sx, sy) (``x' = (x + 0.5) * sx - 0.5``) and simplified to
    ``tolerance`` in the scaled units.
    """
    import cv2

    sx, sy = scale
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return []
    hierarchy = hierarchy[0]
    eps = tolerance / max(min(sx, sy), 1e-9)

    def ring(c: np.ndarray) -> np.ndarray:
        simple = cv2.approxPolyDP(c, eps, True) if eps > 0 else c
        if len(simple) < 3:
            simple = c
        pts = simple[:, 0, :].astype(np.float64)
        if len(pts) < 3:  # a one- or two-pixel part: its pixels' square outline
            x0, y0 = pts.min(0) - 0.5
            x1, y1 = pts.max(0) + 0.5
            pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        return np.stack([(pts[:, 0] + 0.5) * sx - 0.5, (pts[:, 1] + 0.5) * sy - 0.5], 1)

    parts = []
    for i, c in enumerate(contours):
        if hierarchy[i][3] != -1:  # a hole: added with its parent
            continue
        holes, child = [], hierarchy[i][2]
        while child != -1:
            holes.append(ring(contours[child]))
            child = hierarchy[child][0]
        parts.append((cv2.contourArea(c), ring(c), holes))
    parts.sort(key=lambda p: -p[0])
    return [(outer, holes) for _, outer, holes in parts]


def svg_selector_value(rings: list[tuple[np.ndarray, list[np.ndarray]]], width: float, height: float) -> str:
    """An SVG document with one even-odd ``<path>`` per part: its outline, then its holes
    (coordinates rounded to 2 decimals)."""
    def d(pts: np.ndarray) -> str:
        return "M" + " L".join(f"{x:.2f},{y:.2f}".replace(".00", "") for x, y in pts) + " Z"

    paths = "".join(f'<path fill-rule="evenodd" d="{" ".join(d(r) for r in (outer, *holes))}"/>'
                    for outer, holes in rings)
    return f'<svg xmlns="{SVG_NS}" width="{width:g}" height="{height:g}">{paths}</svg>'


def _svg_rings(value: str) -> list[list[np.ndarray]]:
    """The rings (x, y) of each ``<path>`` of an SVG document: its ``d`` parsed by
    ``svgelements``, one ring per subpath (split at each move-to, as the SVG spec does, even
    where a ring starts on the previous one's point)."""
    import xml.etree.ElementTree as ET

    from svgelements import Close
    from svgelements import Path as SvgPath

    paths = []
    for el in ET.fromstring(value).iter(f"{{{SVG_NS}}}path"):
        rings = [np.array([[seg.end.x, seg.end.y] for seg in sub if not isinstance(seg, Close)])
                 for sub in SvgPath(el.get("d", "")).as_subpaths()]
        paths.append([r for r in rings if len(r) >= 3])
    return paths


def rasterize_svg_selector(value: str, size: tuple[int, int],
                           scale: float | tuple[float, float] = 1.0) -> np.ndarray:
    """The mask an :func:`svg_selector_value` describes, at ``size`` = (H, W) pixels, its
    coordinates first mapped by ``scale`` = (sx, sy) (or one factor for both) with the pixel-centre
    convention of :func:`mask_polygons` (``x = (x' + 0.5) * sx - 0.5``; e.g. canvas units back to
    image pixels with ``sx = image width / canvas width``).

    Parts are filled in order (larger first) at 1/16-pixel precision; a part's holes are cleared
    after it, their outlines kept (OpenCV traces a hole along the part's own pixels).
    """
    import cv2

    shift = 4
    factors = np.asarray(scale if isinstance(scale, tuple) else (scale, scale), dtype=np.float64)
    out = np.zeros(size, np.uint8)
    for rings in _svg_rings(value):
        if not rings:
            continue
        pts = [np.round(((r + 0.5) * factors - 0.5) * (1 << shift)).astype(np.int32) for r in rings]
        cv2.fillPoly(out, [pts[0]], 1, shift=shift)
        if len(pts) > 1:
            cv2.fillPoly(out, pts[1:], 0, shift=shift)
            cv2.polylines(out, pts[1:], True, 1, shift=shift)
    return out.astype(bool)


# --------------------------------------------------------------------------------- annotations

@dataclass
class Target:
    """What annotations point at: an image file or a IIIF canvas, and its size in its own units."""

    source: dict[str, Any]  # {"id": ..., "type": "Image" | "Canvas", ...}
    width: float
    height: float

    @property
    def is_canvas(self) -> bool:
        return self.source.get("type") == "Canvas"


def image_target(path: Path, width: int, height: int) -> Target:
    src = {"id": Path(path).resolve().as_uri(), "type": "Image", "width": width, "height": height}
    mime, _ = mimetypes.guess_type(Path(path).name, strict=False)
    if mime and mime.startswith("image/"):
        src["format"] = mime
    return Target(src, float(width), float(height))


def annotation_page(doc: dict[str, Any], page_id: str, target: Target,
                    tolerance: float = DEFAULT_TOLERANCE, context: str = ANNO_CONTEXT,
                    masks: list[np.ndarray] | None = None) -> dict[str, Any]:
    """The ``AnnotationPage`` of one image's ``results.json`` content ``doc``.

    ``masks`` (optional, one per record) are the masks at the working size the painting was
    analysed at; contours are traced on them and mapped to the target, instead of decoding each
    record's full-size RLE (which for a 13,000² painting costs far more memory than the model).
    """
    from pycocotools import mask as mask_utils

    H, W = int(doc["height"]), int(doc["width"])
    items = []
    for i, rec in enumerate(doc["results"]):
        if record_is_empty(rec):
            continue  # no region to annotate (emosem.regions: a speck the cues do not see)
        if masks is not None:
            mask = masks[i]
        else:
            seg = rec["segmentation"]
            mask = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode("ascii")}).astype(bool)
        sx, sy = target.width / mask.shape[1], target.height / mask.shape[0]
        rings = mask_rings(mask, tolerance * target.width / W, (sx, sy))
        del mask
        sx, sy = target.width / W, target.height / H
        x, y, w, h = rec["bbox"]
        xywh = [round(x * sx), round(y * sy), max(1, round(w * sx)), max(1, round(h * sy))]
        body = [{"type": "TextualBody", "purpose": "tagging", "value": rec["emotion"],
                 "format": "text/plain", "language": "en"}]
        if rec.get("explanation"):
            body.append({"type": "TextualBody", "purpose": "describing", "value": rec["explanation"],
                         "format": "text/plain", "language": "en"})
        body.append({"type": "TextualBody", "purpose": "assessing", "format": "text/plain",
                     "value": f"confidence {rec['confidence']:.4f}; predicted IoU {rec['predicted_iou']:.4f}"})
        from emosem.emotions import emotion_file_stem

        items.append({
            "id": f"{page_id}#{emotion_file_stem(rec['emotion'])}",
            "type": "Annotation",
            "motivation": "tagging",
            "body": body,
            "target": {
                "type": "SpecificResource",
                "source": target.source,
                "selector": [
                    {"type": "SvgSelector", "value": svg_selector_value(rings, target.width, target.height)},
                    {"type": "FragmentSelector", "conformsTo": MEDIA_FRAGMENTS,
                     "value": "xywh=" + ",".join(str(int(v)) for v in xywh)},
                ],
            },
        })
    return {"@context": context, "id": page_id, "type": "AnnotationPage",
            "label": {"en": [f"EmoSEM emotion stimuli: {doc.get('image', '')}"]},
            "emosem_polygon_tolerance": {"value": tolerance, "unit": "original image pixels"},
            "items": items}


def _is_iri(value: Any) -> bool:
    return isinstance(value, str) and bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value))


#: The JSON Schema of the Web Annotation data model's requirements for a page (shipped with the
#: package; written from the W3C Recommendation, see its description).
SCHEMA_PATH = Path(__file__).with_name("schemas") / "annotation_page.schema.json"


@functools.lru_cache(maxsize=1)
def _page_validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _where(error: Any) -> str:
    return "page" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def validate_annotation_page(page: Any) -> list[str]:
    """Problems with an ``AnnotationPage`` against the Web Annotation data model (empty list:
    valid), checked by ``jsonschema`` with :data:`SCHEMA_PATH`: each ``"<where>: <what>"``,
    the deepest failing rule of each problem first."""
    from jsonschema.exceptions import best_match

    errors = sorted(_page_validator().iter_errors(page), key=lambda e: list(e.absolute_path))
    return [f"{_where(e)}: {best_match([e]).message}" for e in errors]


# --------------------------------------------------------------------------------- IIIF

class ManifestError(ValueError):
    """A IIIF manifest the run cannot use; the message names the problem."""


MANIFEST_MAX_BYTES = 64 * 1024 * 1024  # a manifest of a few thousand canvases is a few MB
MANIFEST_MAX_DEPTH = 64  # IIIF Presentation 3 nests about 10 deep
CANVAS_MAX_SIDE = 1e9  # canvas units; any real canvas is far smaller


@dataclass
class Canvas:
    id: str
    width: float
    height: float
    names: list[str] = field(default_factory=list)  # file names / paths of the painted images


def _list_of_objects(value: Any, where: str) -> list[dict[str, Any]]:
    """``value`` if it is a list of JSON objects (a missing value: an empty list); else ValueError."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{where} must be a list of objects")
    return value


def _image_names(canvas: dict[str, Any], where: str) -> list[str]:
    """The image URL paths a canvas's painting annotations show; ValueError on a wrong shape."""
    names = []
    for i, page in enumerate(_list_of_objects(canvas.get("items"), f"{where} items")):
        for anno in _list_of_objects(page.get("items"), f"{where} items[{i}].items"):
            bodies = anno.get("body")
            for b in bodies if isinstance(bodies, list) else [bodies]:
                bid = b.get("id") if isinstance(b, dict) else b
                if isinstance(bid, str):
                    names.append(unquote(urlparse(bid).path))
    return names


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def read_json_bounded(path: Path, max_bytes: int, max_depth: int) -> Any:
    """A regular file's JSON, read without waiting (a FIFO or a device is refused before it is
    opened), within ``max_bytes`` and ``max_depth``; ValueError with the reason otherwise."""
    import stat

    st = path.stat()  # FileNotFoundError / OSError for the caller
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
        raise ValueError(f"{kind}, not a regular file")
    cap = f"larger than the limit of {max_bytes / 2**20:.3g} MB"
    if st.st_size > max_bytes:
        raise ValueError(cap)
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(cap)
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_not_json)
    except RecursionError:
        raise ValueError(f"JSON nested more than {max_depth} deep") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at line {e.lineno})") from None
    except ValueError as e:  # UnicodeDecodeError, NaN / Infinity
        raise ValueError(f"not JSON ({e})") from None
    if _depth(value) > max_depth:
        raise ValueError(f"JSON nested more than {max_depth} deep")
    return value


def _canvas(c: Any, i: int) -> Canvas:
    """``items[i]`` of a manifest as a :class:`Canvas`, every field the run uses checked."""
    if not isinstance(c, dict) or c.get("type") != "Canvas":
        raise ValueError(f"items[{i}] is not a Canvas")
    if not _is_iri(c.get("id")):
        raise ValueError(f"canvas items[{i}] has no IRI id")
    w, h = c.get("width"), c.get("height")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= CANVAS_MAX_SIDE
               for v in (w, h)):  # also refuses NaN and infinities
        raise ValueError(f"canvas {c['id']} needs positive width and height, finite and at most "
                         f"{CANVAS_MAX_SIDE:g} (got {w!r} x {h!r})")
    _list_of_objects(c.get("annotations"), f"canvas {c['id']} annotations")
    return Canvas(c["id"], float(w), float(h), _image_names(c, f"canvas {c['id']}"))


def load_manifest(path: str | Path, max_bytes: int = MANIFEST_MAX_BYTES) -> tuple[dict[str, Any], list[Canvas]]:
    """Read a local IIIF Presentation 3 manifest; every defect is a one-line :class:`ManifestError`.

    Bounded: a regular file only (never a FIFO or a device), at most ``max_bytes``, nested at most
    :data:`MANIFEST_MAX_DEPTH` deep; every field the run uses later is type- and range-checked
    here (canvas sizes, unique canvas ids, lists where lists are meant), so nothing about the
    manifest can fail after the images are analysed.
    """
    path = Path(path)
    try:
        manifest = read_json_bounded(path, max_bytes, MANIFEST_MAX_DEPTH)
    except FileNotFoundError:
        raise ManifestError(f"IIIF manifest {path}: no such file") from None
    except OSError as e:
        raise ManifestError(f"IIIF manifest {path}: unreadable ({e.strerror or e})") from None
    except ValueError as e:
        raise ManifestError(f"IIIF manifest {path}: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("type") != "Manifest":
        raise ManifestError(f"IIIF manifest {path}: not a IIIF Presentation 3 Manifest (\"type\": \"Manifest\" missing)")
    items = manifest.get("items")
    if not isinstance(items, list) or not items:
        raise ManifestError(f"IIIF manifest {path}: \"items\" must be a non-empty list of canvases")
    canvases: list[Canvas] = []
    seen: set[str] = set()
    for i, c in enumerate(items):
        try:
            canvas = _canvas(c, i)
        except ValueError as e:
            raise ManifestError(f"IIIF manifest {path}: {e}") from None
        if canvas.id in seen:
            raise ManifestError(f"IIIF manifest {path}: canvas id {canvas.id} is used by more than one canvas; "
                                "each canvas needs its own id")
        seen.add(canvas.id)
        canvases.append(canvas)
    return manifest, canvases


def match_canvas(canvases: list[Canvas], key: str) -> Canvas | None:
    """The canvas painting the image whose relative path in the run is ``key``: the one whose
    image URL path ends with ``key``, else with ``key``'s file name (when only one does)."""
    key = key.replace("\\", "/")
    for c in canvases:
        if any(n == key or n.endswith("/" + key) for n in c.names):
            return c
    name = key.rsplit("/", 1)[-1]
    hits = [c for c in canvases if any(n.rsplit("/", 1)[-1] == name for n in c.names)]
    return hits[0] if len(hits) == 1 else None


def canvas_target(canvas: Canvas, manifest: dict[str, Any]) -> Target:
    src = {"id": canvas.id, "type": "Canvas"}
    if _is_iri(manifest.get("id")):
        src["partOf"] = [{"id": manifest["id"], "type": "Manifest"}]
    return Target(src, canvas.width, canvas.height)


def annotated_manifest(manifest: dict[str, Any], pages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A copy of ``manifest`` whose canvases carry their annotation pages (``pages``: canvas id →
    page), embedded so that a viewer (Mirador, Universal Viewer) shows them without more files."""
    out = json.loads(json.dumps(manifest))
    for c in out["items"]:
        page = pages.get(c["id"])
        if page is None:
            continue
        page = {k: v for k, v in page.items() if k != "@context"}
        c["annotations"] = [a for a in c.get("annotations", []) if a.get("id") != page["id"]] + [page]
    return out
