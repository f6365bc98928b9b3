"""EmoSEM web demo for art analysts (Gradio).

    python demo/app.py                              # bundled checkpoint, http://127.0.0.1:7860
    python demo/app.py --checkpoint DIR --port 8080 --device cpu

Upload a painting (or pick a bundled sample), choose one or more of the nine ArtEmis emotions,
type a free-text one ("melancholy") or tick "All nine emotions", and press Run. For each emotion
the page shows the stimulus overlay, the heat map of the mask probability, the explanation, the
confidence and the predicted IoU; the nine-way emotion distribution when the checkpoint has an
emotion head; and the mask PNGs plus a JSON file of the records to download.

The model is loaded once at start. Every request encodes its own image into its own
:class:`~emosem.inference.predictor.ImageState` (``predict(state=...)``), so concurrent users never
see each other's paintings; the language-model part runs under ``predictor.lock``. Bad uploads
(not an image, corrupt, too large) give a one-line message in the page and the server goes on.

Importing this module loads no model and does not import ``gradio``: :func:`analyze` (the request
handler, usable without a browser) and :func:`build_app` (the ``gr.Blocks``) are what tests use;
:func:`main` is the command line.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import html
import json
import logging
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO_ROOT = Path(__file__).resolve().parents[1]
try:
    import emosem  # noqa: F401
except ImportError:  # run as `python demo/app.py` from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from emosem.data.image_io import IMAGE_EXTENSIONS, ImageLoadError, decode_image  # noqa: E402
from emosem.emotions import (  # noqa: E402
    ARTEMIS_EMOTIONS,
    emotion_color,
    emotion_file_stem,
    normalize_prompt_emotion,
)
from emosem.files import file_stem  # noqa: E402
from emosem.in_domain import domain_lines, domain_note  # noqa: E402
from emosem.visualization.cues import CUES_TITLE, NO_REGION_NOTE, cue_lines  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

    from emosem.inference.predictor import EmoSEMPredictor, StimulusResult

logger = logging.getLogger("emosem.demo")

ASSETS_DIR = REPO_ROOT / "demo" / "assets"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_EMOTIONS = 12  # per request (the nine + a few free-text words)
PREVIEW_SIDE = 900  # longest side of the preview / gallery images, pixels
# Pixel budget per request: a painting is decoded and analysed at most this long on its longer
# side (masks and records are still given at its original size), so an upload's memory follows
# this, not the size its header declares.
WORK_SIDE = 2048
# Work slots: the app (build_app) bounds how many uploads are decoded or analysed at once,
# previews and runs together, with a semaphore of its own (--concurrency) that it passes to
# analyze() and preview(): a request's peak is the file's full-size decode before the pixel
# budget's reduce and the mask PNG and RLE at the original size (a few hundred MB for a 13,000²
# 1-bit PNG), so this bounds the demo's memory however many requests arrive. Called directly,
# analyze() and preview() are bounded only by the slots given to them.


def work_slots(concurrency: int) -> threading.BoundedSemaphore:
    """The slots of one app: at most ``concurrency`` uploads decoded or analysed at once."""
    return threading.BoundedSemaphore(max(1, int(concurrency)))


def _held(slots: threading.Semaphore | None) -> Any:
    return slots if slots is not None else contextlib.nullcontext()


def limit_malloc_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas (``mallopt(M_ARENA_MAX, n)``, as ``MALLOC_ARENA_MAX=n`` does).

    glibc gives each request thread an arena of its own (up to 8 per core), which keeps the
    pages of a freed full-size decode: with 4 concurrent 13,000² uploads the peak was 850 MB
    above idle and 145 MB stayed; with 2 arenas 450 MB and 16 MB (``demo/measure_memory.py``).
    The server calls it (:func:`main`) before its request threads start; importing this module
    does not. Returns whether it applied (glibc only)."""
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-8, n))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to cap
        return False

SAMPLE_TITLES = {
    "starry_night": "Van Gogh, The Starry Night (1889)",
    "the_scream": "Munch, The Scream (1893)",
    "shipwreck": "Turner, The Shipwreck (1805)",
}
ALL_EMOTIONS_LABEL = "All nine emotions"

CSS = """
#status p { margin: 4px 0; }
#status .error { color: #b3261e; font-weight: 600; }
#status .ok { color: #1b5e20; }
/* result galleries: cells follow the painting's aspect ratio instead of squares */
#overlays .thumbnail-item, #heatmaps .thumbnail-item { aspect-ratio: auto !important;
                                                       height: auto !important; }
#overlays .thumbnail-lg > img, #heatmaps .thumbnail-lg > img { height: auto !important;
                                                               display: block; }
#overlays .grid-wrap, #heatmaps .grid-wrap { max-height: none !important; min-height: 0 !important;
                                             overflow-y: visible !important; }
#results .card { border: 1px solid #ddd; border-left: 6px solid var(--emo); border-radius: 6px;
                 padding: 8px 12px; margin: 0 0 10px 0; }
#results .card h4 { margin: 0 0 4px 0; font-size: 1.05em; }
#results .metrics { color: #555; font-size: 0.92em; margin: 0 0 4px 0; }
#results .note { color: #a15c00; font-size: 0.9em; font-style: italic; }
#results .explanation { margin: 4px 0 0 0; font-size: 1.02em; }
#results .explanation.empty { color: #888; font-style: italic; }
#results .cues { color: #555; font-size: 0.9em; margin-top: 4px; }
#results .cues ul { margin: 2px 0 0 0; padding-left: 18px; }
"""


# ------------------------------------------------------------------------------- request logic


class DemoInputError(ValueError):
    """A request the demo cannot run (no painting, no emotion, unreadable file): shown in the page."""


@dataclass
class EmotionView:
    """One emotion's result, ready to show: pictures, numbers, text."""

    result: StimulusResult
    overlay: np.ndarray  # H x W x 3 uint8 (display size)
    heatmap: np.ndarray  # H x W x 3 uint8 (display size)
    mask_png: Path
    record: dict[str, Any]
    painting_in_domain: float | None = None  # EmoSEMPredictor's domain_score of the painting

    @property
    def caption(self) -> str:
        free = " (free text)" if not self.result.trained else ""
        return f"{self.result.emotion}{free} · confidence {self.result.confidence:.2f}"


@dataclass
class Analysis:
    """What one Run request produced (or the message saying why it could not run)."""

    ok: bool
    message: str
    image_name: str = ""
    image_size: tuple[int, int] = (0, 0)  # H, W of the analysed image
    views: list[EmotionView] = field(default_factory=list)
    distribution: dict[str, float] | None = None
    distribution_png: Path | None = None
    files: list[Path] = field(default_factory=list)
    out_dir: Path | None = None
    seconds: float = 0.0
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def status_html(self) -> str:
        cls, prefix = ("ok", "") if self.ok else ("error", "Error: ")
        return (f'<p class="{cls}" data-request="{self.request_id}">{prefix}'
                f"{html.escape(self.message)}</p>")

    def results_html(self) -> str:
        return render_results_html(self.views) if self.ok else ""


def display_name(path: str | Path | None) -> str:
    """The file name a user recognises (Gradio stores uploads under a random folder)."""
    return Path(str(path)).name if path else ""


def load_error_message(err: Exception, path: str | Path) -> str:
    """One line for the page: the bare file name instead of the server-side temp path."""
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    return msg.replace(str(path), display_name(path))


def parse_emotion_request(
    selected: Sequence[str] | None, free_text: str | None, all_emotions: bool
) -> list[str]:
    """Checkboxes + free text (comma/semicolon separated) → emotions, canonical, no repeats.

    ``all_emotions`` gives the nine ArtEmis emotions (plus any free-text ones after them).
    """
    raw: list[str] = list(ARTEMIS_EMOTIONS) if all_emotions else list(selected or [])
    raw += [w for w in re.split(r"[,;\n]", free_text or "") if w.strip()]
    out: list[str] = []
    for label in raw:
        name, _ = normalize_prompt_emotion(label)
        if len(name) > 60:
            raise DemoInputError(f"The emotion {name[:30]!r}… is too long: use a word or a short phrase.")
        if name not in out:
            out.append(name)
    if not out:
        raise DemoInputError(
            "Choose at least one emotion (tick a box, type one such as 'melancholy', or tick "
            f"'{ALL_EMOTIONS_LABEL}')."
        )
    if len(out) > MAX_EMOTIONS:
        raise DemoInputError(f"Too many emotions ({len(out)}): ask for at most {MAX_EMOTIONS} at once.")
    return out


def fit_side(image: np.ndarray, max_side: int = PREVIEW_SIDE) -> np.ndarray:
    """Downscale an RGB array (area interpolation) so its longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    import cv2

    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _at_size(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask (nearest) or a probability map (area) resized to ``size`` = (h, w)."""
    if tuple(mask.shape) == tuple(size):
        return mask
    import cv2

    if mask.dtype == bool:
        return cv2.resize(mask.view(np.uint8), size[::-1], interpolation=cv2.INTER_NEAREST).view(bool)
    return cv2.resize(mask, size[::-1], interpolation=cv2.INTER_AREA)


def render_results_html(views: Sequence[EmotionView]) -> str:
    """One card per emotion: name, confidence, predicted IoU, area, explanation."""
    cards = []
    for v in views:
        r = v.result
        rgb = "rgb({},{},{})".format(*emotion_color(r.emotion))
        total = r.mask.size or 1
        metrics = (
            f"confidence <b>{r.confidence:.2f}</b> · predicted IoU <b>{r.predicted_iou:.2f}</b>"
            f" · area {100.0 * r.area / total:.1f}% of the painting"
        )
        note = (
            '<div class="note">free text: outside the trained set (not one of the nine ArtEmis '
            "emotions), so treat the result with care</div>"
            if not r.trained
            else ""
        )
        text = (r.explanation or "").strip()
        if text:
            expl = f'<p class="explanation">“{html.escape(text)}”</p>'
        elif r.explanation is None and r.cues is not None and not r.cues.area_fraction:
            expl = f'<p class="explanation empty">({NO_REGION_NOTE})</p>'
        elif r.explanation is None:
            expl = '<p class="explanation empty">(explanations were switched off)</p>'
        else:
            expl = '<p class="explanation empty">(the model generated no explanation)</p>'
        lines = cue_lines(r.cues.record() if r.cues is not None else None)
        cues = (f'<div class="cues"><b>{html.escape(CUES_TITLE)}</b><ul>'
                + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul></div>"
                if lines else "")
        domain = domain_lines(v.painting_in_domain, r.in_domain)
        cues += "".join(f'<div class="{"metrics" if i == 0 else "note"}">{html.escape(line)}</div>'
                        for i, line in enumerate(domain))
        cards.append(
            f'<div class="card" data-emotion="{html.escape(r.emotion)}" style="--emo: {rgb}">'
            f"<h4>{html.escape(r.emotion)}</h4>{note}"
            f'<div class="metrics">{metrics}</div>{expl}{cues}</div>'
        )
    return "\n".join(cards)


class RequestFolders:
    """Per-request output folders under one base folder; folders older than ``keep_s`` go."""

    def __init__(self, base: str | Path | None = None, keep_s: float = 3600.0) -> None:
        self.own = base is None
        self.base = Path(base) if base else Path(tempfile.mkdtemp(prefix="emosem-demo-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.keep_s = keep_s
        self._lock = threading.Lock()
        if self.own:
            atexit.register(shutil.rmtree, self.base, True)

    def new(self) -> Path:
        self.prune()
        path = self.base / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def prune(self) -> None:
        cutoff = time.time() - self.keep_s
        with self._lock:
            for child in self.base.iterdir():
                try:
                    if child.is_dir() and child.stat().st_mtime < cutoff:
                        shutil.rmtree(child, ignore_errors=True)
                except OSError:
                    pass


def analyze(
    predictor: EmoSEMPredictor,
    image: str | Path | None,
    emotions: Sequence[str] | None = None,
    free_text: str | None = None,
    all_emotions: bool = False,
    threshold: float | None = None,
    max_new_tokens: int = 40,
    explain: bool = True,
    folders: RequestFolders | None = None,
    generation: Mapping[str, Any] | None = None,
    slots: threading.Semaphore | None = None,
) -> Analysis:
    """Run one request: load + encode ``image`` into its own state, segment, explain, save files.

    Never raises for bad input: the returned :class:`Analysis` has ``ok=False`` and a one-line
    ``message`` instead. ``generation`` goes to the LM's ``generate`` (e.g. ``num_beams``);
    ``slots`` (:func:`work_slots`) is held while the request decodes and runs.
    """
    with _held(slots):
        return _analyze(predictor, image, emotions, free_text, all_emotions, threshold,
                        max_new_tokens, explain, folders, generation)


def _analyze(predictor: EmoSEMPredictor, image: str | Path | None, emotions: Sequence[str] | None,
             free_text: str | None, all_emotions: bool, threshold: float | None, max_new_tokens: int,
             explain: bool, folders: RequestFolders | None, generation: Mapping[str, Any] | None,
             ) -> Analysis:
    t0 = time.perf_counter()
    name = display_name(image)
    try:
        if not image:
            raise DemoInputError("Upload a painting or pick a sample painting first.")
        names = parse_emotion_request(emotions, free_text, all_emotions)
        threshold = predictor.threshold(threshold)  # a bad value: ValueError, one line below
        try:
            decoded = decode_image(image, max_side=WORK_SIDE)
            state = predictor.encode(decoded.rgb)  # per-request state: independent of other users
        except ImageLoadError as e:
            raise DemoInputError(load_error_message(e, image)) from None
        with predictor.lock:  # the tokenizer and generate are not meant for concurrent use
            results = predictor.predict(
                names, explain=explain, threshold=float(threshold),
                max_new_tokens=int(max_new_tokens), state=state, **dict(generation or {}),
            )
            dist = (
                predictor.predict_emotions(state).distribution
                if predictor.model.emotion_head is not None
                else None
            )
    except (DemoInputError, ValueError) as e:
        return Analysis(ok=False, message=str(e).splitlines()[0] if str(e) else "Bad request",
                        image_name=name, seconds=time.perf_counter() - t0)
    except Exception as e:  # keep serving; the log has the traceback
        logger.exception("request on %s failed", name)
        return Analysis(ok=False, message=f"Internal error ({type(e).__name__}: {e}); see the server log.",
                        image_name=name, seconds=time.perf_counter() - t0)

    from emosem.files import atomic_write_text
    from emosem.inference.outputs import full_size_record, write_mask_png
    from emosem.visualization.overlay import heatmap_overlay, overlay_mask

    folders = folders or RequestFolders()
    out = folders.new()
    stem = file_stem(Path(name).stem, max_chars=60, fallback="painting")
    views: list[EmotionView] = []
    files: list[Path] = []
    shown = fit_side(state.image)  # overlays are drawn at the size they are shown
    for r in results:
        mask, soft = _at_size(r.mask, shown.shape[:2]), _at_size(r.soft_mask, shown.shape[:2])
        over = overlay_mask(shown, mask, emotion_color(r.emotion))
        heat = heatmap_overlay(shown, soft)
        mask_path = write_mask_png(out / f"{stem}_{emotion_file_stem(r.emotion)}_mask.png", r.mask,
                                   decoded.original_size)
        record = {"image": name, **full_size_record(r, decoded.original_size)}
        views.append(EmotionView(r, over, heat, mask_path, record, state.domain_score))
        files.append(mask_path)
    payload = {
        "image": name,
        "height": int(decoded.original_size[0]),
        "width": int(decoded.original_size[1]),
        "threshold": float(threshold),
        "in_domain": state.domain_score,
        "in_domain_note": domain_note(state.domain_score),
        "emotion_distribution": {k: round(float(v), 4) for k, v in (dist or {}).items()} or None,
        "results": [v.record for v in views],
    }
    json_path = out / f"{stem}_emosem.json"
    atomic_write_text(json_path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    files.append(json_path)

    dist_png = None
    if dist is not None:
        from emosem.visualization.figures import close_figure, distribution_figure

        top = max(dist, key=dist.get)
        dist_png = out / f"{stem}_distribution.png"
        close_figure(distribution_figure(dist, highlight=top, out_path=dist_png, dpi=100))

    seconds = time.perf_counter() - t0
    h, w = decoded.original_size
    n = len(results)
    msg = (
        f"Analysed {name} ({w}×{h}) for {n} emotion{'s' if n != 1 else ''} in {seconds:.1f} s."
    )
    if payload["in_domain_note"]:
        msg += f" Note: {payload['in_domain_note']}."
    return Analysis(True, msg, name, (int(h), int(w)), views, dist, dist_png, files, out, seconds,
                    request_id=out.name)


def preview(image: str | Path | None, slots: threading.Semaphore | None = None
            ) -> tuple[np.ndarray | None, str]:
    """Load an upload for the preview: ``(RGB array or None, status HTML)``; never raises.
    ``slots`` (:func:`work_slots`) is held while it decodes."""
    if not image:
        return None, ""
    try:
        with _held(slots):  # decoded straight at preview size: the run decodes it again
            decoded = decode_image(image, max_side=PREVIEW_SIDE)
    except ImageLoadError as e:
        msg = load_error_message(e, image)
        return None, Analysis(False, msg).status_html()
    except Exception as e:  # pragma: no cover - defensive
        logger.exception("preview of %s failed", image)
        return None, Analysis(False, f"Cannot load image {display_name(image)}: {e}").status_html()
    h, w = decoded.original_size
    note = f"Loaded {display_name(image)} ({w}×{h}). Choose emotions and press Run."
    return fit_side(decoded.rgb), Analysis(True, note).status_html()


def sample_paintings() -> list[Path]:
    """The bundled sample paintings (``demo/assets/*.jpg``), sorted."""
    return sorted(ASSETS_DIR.glob("*.jpg"))


# ------------------------------------------------------------------------------ the search tab
SEARCH_PLACES = ("top", "bottom", "left", "right", "center")


def search_cache_folder(checkpoint: str | Path | None, files: Sequence[Path]) -> Path:
    """Where the search tab keeps its index: ``$EMOSEM_CACHE`` (default ``~/.cache/emosem``)
    ``/demo_search/<key>``, the key hashing the checkpoint folder (None: the bundled one) and the
    paintings' paths (a build reuses a painting stored with the same content, re-indexes a changed one)."""
    import hashlib

    from emosem.paths import default_checkpoint, user_cache

    parts = [str(Path(checkpoint or default_checkpoint()).resolve()), *sorted(str(Path(p).resolve()) for p in files)]
    key = hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]
    return user_cache("demo_search", key)


@dataclass
class SearchAnswer:
    """One search request's outcome: a status line, the hits' overlays with captions, the result
    page and CSV files (``files``), and an HTML list of the hits."""

    ok: bool
    message: str
    gallery: list[tuple[np.ndarray, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    html: str = ""

    def status_html(self) -> str:
        return Analysis(self.ok, self.message).status_html()


class CollectionSearch:
    """The search tab: a region index (:mod:`emosem.retrieval`) over a collection of paintings
    (default: the bundled samples), built on first use with every trained emotion's stimulus
    region (no explanations) and kept in ``folder``; queries by a stored painting's emotion region
    ("like this one"), by emotion, and by the measured cues. One request at a time touches the
    index (SQLite connections stay in their thread: each request opens its own)."""

    def __init__(self, predictor: EmoSEMPredictor, images: Sequence[Path], folder: Path | None = None,
                 checkpoint: str | Path | None = None) -> None:
        from emosem.inference.collection import iter_inputs

        self.predictor = predictor
        self.images = [Path(p) for p in images]
        # painting key (as the index names it) → file
        self.keys = {i.key: i.path for i in iter_inputs([str(p) for p in self.images]) if not i.skip and not i.error}
        self.checkpoint = str(checkpoint or "bundled")
        self.folder = Path(folder) if folder else search_cache_folder(checkpoint, list(self.keys.values()))
        self._lock = threading.Lock()
        self._built = False

    def _ensure_built(self) -> None:
        from emosem.retrieval.build import build_index, iter_image_paintings
        from emosem.retrieval.embed import DEFAULT_SPEC
        from emosem.retrieval.store import RegionStore

        if self._built:
            return
        store = RegionStore(self.folder, create=True)
        try:
            store.check_settings({"embedding": DEFAULT_SPEC.record(), "checkpoint": self.checkpoint, "source": "images",
                                  "emotions": list(ARTEMIS_EMOTIONS), "top_k": None}, overwrite=True)
            report = build_index(store, iter_image_paintings([str(p) for p in self.keys.values()]), self.predictor,
                                 DEFAULT_SPEC, list(ARTEMIS_EMOTIONS))
        finally:
            store.close()
        logger.info("search index %s: %d paintings added, %d reused, %d regions", self.folder,
                    report.added, report.reused, report.regions)
        self._built = True

    def paintings(self) -> list[str]:
        """The collection's paintings as the index names them (built on first use)."""
        from emosem.retrieval.search import RegionIndex

        with self._lock:
            self._ensure_built()
            index = RegionIndex.open(self.folder)
            try:
                return index.painting_keys()
            finally:
                index.close()

    def search(self, like: str | None, emotion: str | None, colours: str = "", places: Sequence[str] = (),
               sizes: Sequence[str] = (), k: int = 6, out: Path | None = None) -> SearchAnswer:
        """Regions like ``like``'s ``emotion`` region (a painting key), or of ``emotion``, filtered by
        colour terms (comma separated), places and sizes; ``k`` results, at most one per
        near-duplicate group. ``out``: write results.html and results.csv there."""
        from emosem.retrieval.page import overlay_image, write_csv, write_page
        from emosem.retrieval.search import CueFilter, Query, RegionIndex

        emotion = emotion or None
        try:
            filters = CueFilter([c for c in (colours or "").split(",") if c.strip()], list(places or []),
                                list(sizes or []))
        except ValueError as e:
            return SearchAnswer(False, f"Error: {e}")
        if like and not emotion:
            return SearchAnswer(False, "Error: choose the emotion whose region to search with.")
        with self._lock:
            self._ensure_built()
            index = RegionIndex.open(self.folder)
            try:
                region = index.region_of(like, emotion) if like else None
                if like and region is None:
                    return SearchAnswer(False, f"Error: {like} has no {emotion} region in the index; "
                                               "try another emotion.")
                hits = index.search(Query(like_region=region, emotion=emotion, filters=filters, k=int(k)))
            finally:
                index.close()
        what = (f"regions like the {emotion} region of {like}" if like else
                f"{emotion} regions" if emotion else "all regions") + (
            f" ({', '.join(x for x in [colours, *places, *sizes] if x)})" if colours or places or sizes else "")
        gallery = []
        for h in hits:
            r = h.region
            rgb = overlay_image(r["source"], r["segmentation"], r["emotion"])
            if rgb is not None:
                gallery.append((rgb, f"{h.rank}. {r['painting']} · {r['emotion']} · score {h.score:.3f}"))
        files = []
        if out is not None:
            files = [write_page(Path(out) / "results.html", hits, "Emotion stimulus search", what),
                     write_csv(Path(out) / "results.csv", hits)]
        rows = "".join(
            f'<tr data-region="{h.region["id"]}"><td>{h.rank}</td><td>{html.escape(h.region["painting"])}</td>'
            f'<td>{html.escape(h.region["emotion"])}</td><td>{h.score:.3f}</td>'
            f'<td>{html.escape(h.region["cue_text"] or "")}</td></tr>' for h in hits)
        table = ('<table class="search-hits"><tr><th>#</th><th>painting</th><th>emotion</th><th>score</th>'
                 f"<th>measured cues</th></tr>{rows}</table>") if hits else ""
        message = f"{len(hits)} result(s): {what}." if hits else f"No region matches: {what}."
        return SearchAnswer(True, message, gallery, files, table)


# ------------------------------------------------------------------------------------- the UI


def build_app(
    predictor: EmoSEMPredictor,
    concurrency: int = 2,
    folders: RequestFolders | None = None,
    generation: Mapping[str, Any] | None = None,
    search: CollectionSearch | None = None,
) -> gr.Blocks:
    """The Gradio Blocks app over a loaded predictor (queue set up; call :func:`launch_app`); its
    search tab searches ``search`` (default: the bundled samples, indexed in the user cache)."""
    import gradio as gr

    from emosem.retrieval.search import SIZE_WORDS

    folders = folders or RequestFolders()
    search = search or CollectionSearch(predictor, sample_paintings())
    slots = work_slots(concurrency)  # this app's own: previews and runs share them
    samples = sample_paintings()
    has_head = predictor.model.emotion_head is not None
    trained_note = ", ".join(ARTEMIS_EMOTIONS)

    def on_upload(path: str | None):
        img, status = preview(path, slots)
        return img, status

    def on_sample(evt):
        return str(samples[evt.index]) if 0 <= evt.index < len(samples) else None

    on_sample.__annotations__ = {"evt": gr.SelectData}  # (string annotations hide it from gradio)

    def result_gallery(elem_id: str, **kwargs: Any) -> gr.Gallery:
        """A read-only gallery of result pictures, three per row (overlays, heat maps, search hits)."""
        return gr.Gallery(columns=3, height="auto", object_fit="contain", elem_id=elem_id, format="jpeg",
                          interactive=False, **kwargs)

    def on_search(like, emotion, colours, places, sizes, k):
        with _held(slots):
            a = search.search(like or None, emotion or None, colours, places, sizes, k, out=folders.new())
        return a.status_html(), a.gallery or None, a.html, [str(p) for p in a.files] or None

    def on_run(path, selected, free_text, all_emotions, threshold, max_new_tokens, explain):
        a = analyze(predictor, path, selected, free_text, all_emotions, threshold,
                    max_new_tokens, explain, folders=folders, generation=generation, slots=slots)
        if not a.ok:
            return (a.status_html(), None, None, "", gr.update(value=None, visible=False), None)
        overlays = [(v.overlay, v.caption) for v in a.views]
        heatmaps = [(v.heatmap, f"{v.result.emotion} · mask probability") for v in a.views]
        dist = gr.update(value=str(a.distribution_png) if a.distribution_png else None,
                         visible=a.distribution_png is not None)
        return (a.status_html(), overlays, heatmaps, a.results_html(), dist,
                [str(p) for p in a.files])

    with gr.Blocks(title="EmoSEM — emotion stimuli in paintings", analytics_enabled=False,
                   delete_cache=(1800, 3600)) as app:
        gr.Markdown(
            "# EmoSEM — which regions of a painting evoke an emotion, and why\n"
            "Upload a painting or pick a sample, choose emotions, press **Run**. Each emotion "
            "gets its stimulus region (overlay and heat map), an explanation in the words of a "
            "viewer, and a confidence. Free-text emotions work too but lie outside the nine "
            "trained ArtEmis emotions."
        )
        with gr.Tabs():
            with gr.Tab("Analyse a painting", id="analyse-tab"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        painting = gr.File(label="Painting (JPEG, PNG, TIFF, WebP, BMP)",
                                           file_types=list(IMAGE_EXTENSIONS), type="filepath",
                                           elem_id="painting", height=90)
                        shown = gr.Image(label="Preview", interactive=False, elem_id="preview",
                                         height=260, buttons=[])
                        if samples:
                            sample_gallery = gr.Gallery(
                                value=[(str(p), SAMPLE_TITLES.get(p.stem, p.stem)) for p in samples],
                                label="…or pick a sample painting", columns=3, height=150,
                                allow_preview=False, object_fit="cover", elem_id="samples",
                                interactive=False, buttons=[],
                            )
                        emotions = gr.CheckboxGroup(list(ARTEMIS_EMOTIONS), label="Emotions",
                                                    info="the nine ArtEmis emotions the model was trained on",
                                                    elem_id="emotions")
                        free_text = gr.Textbox(label="Other emotion (free text)", placeholder="melancholy",
                                               info="one or more words, comma separated", elem_id="free-text")
                        all_emotions = gr.Checkbox(label=ALL_EMOTIONS_LABEL, value=False, elem_id="all-emotions")
                        with gr.Accordion("Settings", open=False):
                            threshold = gr.Slider(0.05, 0.95, value=predictor.model.config.mask_threshold, step=0.05,
                                                  label="Mask threshold",
                                                  info="on the mask probability (default: the checkpoint's)")
                            max_tokens = gr.Slider(5, 80, value=40, step=1, label="Explanation length (tokens)")
                            explain = gr.Checkbox(value=True, label="Write explanations")
                        run = gr.Button("Run", variant="primary", elem_id="run")
                    with gr.Column(scale=3, min_width=420):
                        status = gr.HTML("", elem_id="status")
                        overlays = result_gallery("overlays", label="Stimulus overlays")
                        results = gr.HTML("", elem_id="results")
                        with gr.Accordion("Heat maps (mask probability)", open=True):
                            heatmaps = result_gallery("heatmaps", show_label=False)
                        dist = gr.Image(label="Emotion distribution the painting evokes", type="filepath",
                                        interactive=False, visible=False, elem_id="distribution",
                                        buttons=["download"])
                        downloads = gr.File(label="Downloads: mask PNGs and JSON records",
                                            file_count="multiple", interactive=False, elem_id="downloads")
            with gr.Tab("Search the collection", id="search-tab", elem_id="search-tab"):
                gr.Markdown(
                    "Find the stimulus regions of a collection that evoke an emotion, like a region "
                    "of one painting and/or with measured cues. The collection: "
                    + html.escape(", ".join(search.keys) or "(none)")
                    + ". Its index is built on the first search.")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        s_like = gr.Dropdown([("(any painting)", "")] + [(k, k) for k in search.keys],
                                             value="", label="Regions like this painting's region",
                                             elem_id="search-like")
                        s_emotion = gr.Dropdown([("(any emotion)", "")] + [(e, e) for e in ARTEMIS_EMOTIONS],
                                                value="", label="Emotion", elem_id="search-emotion")
                        s_colours = gr.Textbox(label="Colours (any of, comma separated)", placeholder="blue, yellow",
                                               elem_id="search-colours")
                        s_places = gr.CheckboxGroup(list(SEARCH_PLACES), label="Place (any of)",
                                                    elem_id="search-places")
                        s_sizes = gr.CheckboxGroup(list(SIZE_WORDS),
                                                   label="Size (any of)", elem_id="search-sizes")
                        s_k = gr.Slider(1, 24, value=6, step=1, label="Results")
                        s_run = gr.Button("Search", variant="primary", elem_id="search-run")
                    with gr.Column(scale=3, min_width=420):
                        s_status = gr.HTML("", elem_id="search-status")
                        s_gallery = result_gallery("search-hits", label="Regions found")
                        s_table = gr.HTML("", elem_id="search-table")
                        s_files = gr.File(label="Downloads: results.html and results.csv", file_count="multiple",
                                          interactive=False, elem_id="search-downloads")
        gr.Markdown(
            f"Trained emotions: {trained_note}. "
            + ("" if has_head else "This checkpoint has no emotion head, so no distribution is shown. ")
            + "Sample paintings are public domain (see demo/assets/README.md)."
        )

        painting.change(on_upload, painting, [shown, status], queue=False)
        if samples:
            sample_gallery.select(on_sample, None, painting, queue=False)
        run.click(on_run, [painting, emotions, free_text, all_emotions, threshold, max_tokens, explain],
                  [status, overlays, heatmaps, results, dist, downloads],
                  concurrency_limit=concurrency)
        s_run.click(on_search, [s_like, s_emotion, s_colours, s_places, s_sizes, s_k],
                    [s_status, s_gallery, s_table, s_files], concurrency_limit=1)
    app.queue(default_concurrency_limit=concurrency)
    return app


def launch_app(
    app: gr.Blocks,
    host: str = DEFAULT_HOST,
    port: int | None = DEFAULT_PORT,
    block: bool = True,
    max_file_size_mb: int = 100,
    **kwargs: Any,
) -> Any:
    """Launch with the demo's settings (CSS, sample folder allowed, no analytics, size limit)."""
    return app.launch(
        server_name=host, server_port=port, prevent_thread_lock=not block, quiet=not block,
        show_error=True, css=CSS, allowed_paths=[str(ASSETS_DIR)], ssr_mode=False,
        max_file_size=f"{max_file_size_mb}mb", footer_links=[], **kwargs,
    )


# ------------------------------------------------------------------------------------- the CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="EmoSEM web demo (Gradio).")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint folder (default: the bundled checkpoints/emosem-tiny)")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="interface to bind (default 127.0.0.1, this machine only; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 7860)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    p.add_argument("--concurrency", type=int, default=2,
                   help="requests processed at the same time (default 2)")
    p.add_argument("--max-file-size-mb", type=int, default=100, help="upload size limit (default 100)")
    p.add_argument("--collection", nargs="+", default=None, metavar="PAINTINGS",
                   help="paintings (files or folders) the search tab searches (default: the bundled samples)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from emosem.inference.predictor import EmoSEMPredictor

    try:
        import gradio  # noqa: F401
    except ImportError:
        print("error: the demo needs gradio: pip install -e '.[demo]' (or pip install gradio)",
              file=sys.stderr)
        return 2
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up requests
    try:
        predictor = EmoSEMPredictor.from_pretrained(args.checkpoint, device=args.device)
    except Exception as e:  # missing folder, bad config, unavailable device: one line, no trace
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        hint = "" if args.checkpoint else (
            " (the bundled checkpoint is made by `make train-default`; or pass --checkpoint DIR)")
        print(f"error: cannot load the checkpoint: {msg}{hint}", file=sys.stderr)
        return 2
    limit_malloc_arenas()  # before the server starts its request threads
    search = None
    if args.collection:
        search = CollectionSearch(predictor, [Path(p) for p in args.collection], checkpoint=args.checkpoint)
    app = build_app(predictor, concurrency=max(1, args.concurrency), search=search)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("binding %s: anyone who can reach this machine can use the demo", args.host)
    logger.info("starting the demo on http://%s:%d (Ctrl+C stops)", args.host, args.port)
    try:
        launch_app(app, args.host, args.port, block=True, max_file_size_mb=args.max_file_size_mb)
    except OSError as e:  # port taken, address not available
        print(f"error: cannot serve on {args.host}:{args.port}: {str(e).splitlines()[0]} "
              "(choose another --port)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
