"""Painting one synthetic picture: art styles, backgrounds, motif placement, the brush-stroke
pass, and :func:`render_painting` (image, exact motif masks and the annotators' rows)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from emosem.data.synthetic.drawing import Color, Layer
from emosem.data.synthetic.motifs import MOTIFS, Motif, motif_by_name
from emosem.data.synthetic.utterances import (
    COLOR_WORDS,
    POSITIONS,
    color_name,
    grid_cell,
    make_something_else_utterance,
    make_utterance,
    pick,
    size_word,
)


@dataclass(frozen=True)
class ArtStyle:
    name: str
    skies: tuple[tuple[Color, Color], ...]
    grounds: tuple[tuple[Color, Color], ...]
    fields: tuple[Color, ...]
    abstract_p: float
    n_strokes: int  # per 256x256 pixels
    stroke_len: tuple[float, float]  # pixels at 256 px
    stroke_w: tuple[int, int]
    jitter: float
    angle: str  # random | horizontal | flow | diagonal
    blur: float
    artists: tuple[str, ...]


_FIELDS = ((200, 40, 40), (240, 200, 60), (30, 40, 90), (240, 235, 220), (25, 25, 25), (60, 120, 180),
           (230, 120, 30), (120, 40, 110), (40, 110, 80))

ART_STYLE_SPECS: tuple[ArtStyle, ...] = (
    ArtStyle("Impressionism",
             (((150, 185, 225), (235, 220, 200)), ((170, 200, 235), (245, 230, 215)), ((190, 180, 220), (250, 215, 190))),
             (((120, 160, 80), (70, 110, 50)), ((170, 170, 90), (110, 120, 60)), ((140, 170, 110), (90, 120, 70))),
             _FIELDS, 0.05, 1900, (5, 12), (2, 4), 18.0, "random", 0.6,
             ("claire-dumont", "henri-lavalle", "berthe-roussel", "alfred-marchand")),
    ArtStyle("Post_Impressionism",
             (((30, 60, 150), (90, 130, 200)), ((50, 90, 170), (150, 180, 210)), ((20, 40, 110), (70, 110, 170))),
             (((190, 150, 50), (120, 90, 30)), ((90, 130, 60), (50, 80, 40)), ((200, 160, 80), (140, 100, 50))),
             _FIELDS, 0.1, 1600, (8, 18), (2, 5), 22.0, "flow", 0.5,
             ("vincent-aalders", "paul-severin", "emile-brandt")),
    ArtStyle("Romanticism",
             (((90, 80, 90), (230, 170, 100)), ((60, 70, 90), (200, 160, 120)), ((120, 100, 90), (240, 200, 140))),
             (((90, 70, 45), (40, 30, 20)), ((80, 80, 50), (35, 35, 25))),
             _FIELDS, 0.0, 1400, (8, 20), (3, 6), 12.0, "horizontal", 1.0,
             ("caspar-wendel", "eugene-morvan", "william-ashdown")),
    ArtStyle("Expressionism",
             (((230, 120, 40), (240, 200, 60)), ((200, 50, 60), (240, 150, 80)), ((60, 160, 150), (230, 200, 90))),
             (((120, 50, 140), (60, 30, 90)), ((40, 120, 90), (20, 70, 60)), ((150, 60, 40), (80, 30, 30))),
             _FIELDS, 0.3, 1300, (10, 26), (3, 6), 28.0, "diagonal", 0.5,
             ("ernst-kohlmann", "edvarda-lund", "franz-reiter")),
    ArtStyle("Realism",
             (((160, 175, 185), (215, 215, 205)), ((140, 160, 180), (205, 205, 200))),
             (((110, 100, 70), (70, 60, 40)), ((100, 110, 80), (60, 65, 45))),
             _FIELDS, 0.0, 2200, (3, 8), (1, 3), 8.0, "horizontal", 0.7,
             ("gustave-perrin", "ilya-sorokin", "rosa-bellamy")),
    ArtStyle("Abstract_Expressionism", (), (), _FIELDS, 1.0, 900, (15, 36), (4, 8), 26.0, "random", 0.4,
             ("jackson-mercer", "lee-kasner-hall", "mark-rothenberg")),
)
ART_STYLES: tuple[str, ...] = tuple(s.name for s in ART_STYLE_SPECS)

_TITLES = ("landscape", "composition", "study", "evening", "morning", "reverie", "memory", "untitled",
           "impression", "fantasy", "scene", "view", "dream", "improvisation", "nocturne")


def _landscape(rng, size: int, st: ArtStyle) -> np.ndarray:
    sky = st.skies[int(rng.integers(len(st.skies)))]
    ground = st.grounds[int(rng.integers(len(st.grounds)))]
    y = np.arange(size, dtype=np.float32)
    x = np.arange(size, dtype=np.float32)
    hy = size * rng.uniform(0.5, 0.66)
    horizon = hy + size * 0.03 * np.sin(2 * np.pi * x / (size * rng.uniform(0.5, 1.2)) + rng.uniform(0, 6.3))
    ts = np.clip(y / hy, 0, 1)[:, None]
    sky_rows = (1 - ts) * np.array(sky[0], np.float32) + ts * np.array(sky[1], np.float32)
    tg = np.clip((y - hy * 0.97) / (size - hy * 0.97), 0, 1)[:, None]
    ground_rows = (1 - tg) * np.array(ground[0], np.float32) + tg * np.array(ground[1], np.float32)
    is_sky = y[:, None] < horizon[None, :]
    img = np.where(is_sky[..., None], sky_rows[:, None, :], ground_rows[:, None, :]).astype(np.float32)
    # soft atmospheric patches in the sky
    patch = img.copy()
    col = tuple(float(v) for v in np.clip(np.array(sky[1]) + 25, 0, 255))
    for _ in range(int(rng.integers(1, 5))):
        c = (int(rng.uniform(0, size)), int(rng.uniform(0, hy * 0.8)))
        ax = (int(size * rng.uniform(0.08, 0.2)), int(size * rng.uniform(0.03, 0.06)))
        cv2.ellipse(patch, c, ax, 0, 0, 360, col, -1)
    k = max(3, size // 24) | 1
    return _soft_patches(img, patch, k)


def _soft_patches(img: np.ndarray, patch: np.ndarray, k: int) -> np.ndarray:
    diff = patch - img
    if not diff.any():
        return img
    return img + 0.45 * cv2.GaussianBlur(diff, (k, k), 0)


def _abstract(rng, size: int, st: ArtStyle) -> np.ndarray:
    cols = st.fields
    img = np.empty((size, size, 3), np.float32)
    img[:] = cols[int(rng.integers(len(cols)))]
    for _ in range(int(rng.integers(2, 5))):
        c = tuple(float(v) for v in cols[int(rng.integers(len(cols)))])
        if rng.random() < 0.6:
            x0, y0 = rng.uniform(-0.1, 0.6, 2) * size
            x1, y1 = x0 + rng.uniform(0.3, 0.8) * size, y0 + rng.uniform(0.2, 0.6) * size
            cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), c, -1)
        else:
            cv2.ellipse(img, (int(rng.uniform(0, size)), int(rng.uniform(0, size))),
                        (int(rng.uniform(0.15, 0.4) * size), int(rng.uniform(0.1, 0.3) * size)),
                        float(rng.uniform(0, 180)), 0, 360, c, -1)
    k = max(3, size // 20) | 1
    return cv2.GaussianBlur(img, (k, k), 0)


def _brush_pass(rng, canvas: np.ndarray, labels: np.ndarray, st: ArtStyle, size: int, density: float = 1.0) -> np.ndarray:
    """Paint short strokes coloured from the canvas; each stroke stays inside its own region."""
    f = size / 256.0
    n = int(st.n_strokes * density * f * f)
    xs = rng.uniform(0, size, n)
    ys = rng.uniform(0, size, n)
    xi, yi = np.clip(xs.astype(int), 0, size - 1), np.clip(ys.astype(int), 0, size - 1)
    base = canvas[yi, xi].astype(np.float32)
    # motifs keep their colour signature: their strokes vary less than the background's
    jit = np.where(labels[yi, xi] > 0, 0.6 * st.jitter, st.jitter)[:, None]
    cols = base + jit * (rng.standard_normal((n, 1)) + rng.standard_normal((n, 3)) / 3)
    cols = np.clip(cols + 0.5, 0, 255)
    if st.angle == "horizontal":
        ang = rng.normal(0, 0.25, n)
    elif st.angle == "diagonal":
        ang = rng.choice([-1.0, 1.0]) * math.pi / 4 + rng.normal(0, 0.35, n)
    elif st.angle == "flow":
        p = rng.uniform(0, 6.3, 2)
        fr = rng.uniform(3, 7, 2) / size
        ang = math.pi * (np.sin(xs * fr[0] * 2 * math.pi / 3 + p[0]) + np.cos(ys * fr[1] * 2 * math.pi / 3 + p[1])) * 0.6
    else:
        ang = rng.uniform(0, math.pi, n)
    ln = rng.uniform(st.stroke_len[0], st.stroke_len[1], n) * f / 2
    dx, dy = np.cos(ang) * ln, np.sin(ang) * ln
    th = np.maximum(1, np.round(rng.integers(st.stroke_w[0], st.stroke_w[1] + 1, n) * f)).astype(int)
    lab = labels[yi, xi]
    order = np.argsort(lab, kind="stable")
    lab_sorted = lab[order]
    q = np.rint(np.stack([xs - dx, ys - dy, xs + dx, ys + dy], 1)[order]).astype(np.int32)
    strokes = list(zip(q[:, :2].tolist(), q[:, 2:].tolist(), cols[order].astype(np.int32).tolist(),
                       th[order].tolist()))
    out = canvas.copy()
    line = cv2.line
    # The strokes of each region are painted on their own copy of the canvas and kept only inside
    # that region, so no colour leaks across a motif's outline (the masks stay exact).
    bounds = np.flatnonzero(np.diff(lab_sorted)) + 1
    for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(strokes)]):
        if lo == hi:
            continue
        buf = canvas.copy()
        for a, b, c, t in strokes[lo:hi]:
            line(buf, a, b, c, t)
        cv2.copyTo(buf, (labels == lab_sorted[lo]).view(np.uint8), out)
    return out


@dataclass
class PlacedMotif:
    """A motif as it appears in one painting (``mask`` is its visible region, ``[H, W]`` bool)."""

    name: str
    emotion: str
    mask: np.ndarray
    color: str
    position: str
    size: str
    area_fraction: float


@dataclass
class SyntheticPainting:
    """One generated painting: ``image`` ``[S, S, 3]`` uint8, its motifs, and its CSV rows."""

    index: int
    art_style: str
    painting: str
    image: np.ndarray
    motifs: list[PlacedMotif]
    rows: list[tuple[str, str]]  # (emotion, utterance), one per annotator

    @property
    def key(self) -> str:
        return f"{self.art_style}/{self.painting}"


@lru_cache(maxsize=4)
def _weave(size: int) -> np.ndarray:
    """A faint canvas-weave pattern ``[S, S]`` float32."""
    t = np.sin(np.arange(size, dtype=np.float32) * 2.1)
    return 2.0 * t[:, None] * t[None, :]


def painting_rng(seed: int, index: int) -> np.random.Generator:
    """The RNG of painting ``index`` (independent of worker count and order)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 0x5EED]))


def _choose_motifs(rng) -> list[Motif]:
    n = int(rng.choice([1, 2, 3, 4], p=[0.2, 0.35, 0.3, 0.15]))
    idx = rng.permutation(len(MOTIFS))[:n]
    chosen = [MOTIFS[i] for i in idx]
    chosen.sort(key=lambda m: m.depth)
    return chosen


def _background(rng, size: int, st: ArtStyle) -> tuple[np.ndarray, Color]:
    """The painting's background ``[S, S, 3]`` uint8 and the mean colour of its top third."""
    abstract = (not st.skies) or rng.random() < st.abstract_p
    bg = _abstract(rng, size, st) if abstract else _landscape(rng, size, st)
    canvas = np.clip(bg + 0.5, 0, 255).astype(np.uint8)
    bg_color = tuple(int(v) for v in canvas[: size // 3].reshape(-1, 3).mean(0))
    return canvas, bg_color  # type: ignore[return-value]


def _try_motif(
    rng, motif: Motif, canvas: np.ndarray, occupied: np.ndarray, placed: list, min_area: float
) -> tuple[Layer, np.ndarray, Color | None] | None:
    """Draw ``motif`` at a random place; ``(layer, mask, colour)`` if it fits there, else ``None``."""
    size = canvas.shape[0]
    count = np.count_nonzero
    s = rng.uniform(*motif.scale) * size
    cx = rng.uniform(max(0.08, 0.5 * s / size - 0.05), min(0.92, 1 - 0.5 * s / size + 0.05)) * size
    cy = rng.uniform(*motif.zone) * size
    layer = Layer(size)
    color = motif.draw(layer, rng, cx, cy, s)
    m = layer.mask.view(bool)
    area = count(m)
    if area < min_area:
        return None
    # must stand out from what it covers (mean colour distance, L1 over RGB)
    if sum(abs(a - b) for a, b in zip(cv2.mean(layer.rgb, layer.mask)[:3], cv2.mean(canvas, layer.mask)[:3])) < 70:
        return None
    if placed:
        # little overlap with what is there, and earlier motifs stay >= 70% visible
        if count(m & occupied) > 0.15 * area:
            return None
        if any(count(p[1]) - count(p[1] & m) < max(min_area, 0.7 * count(p[1])) for p in placed):
            return None
    return layer, m, color


def _place_motifs(rng, canvas: np.ndarray) -> list[tuple[Motif, np.ndarray, Color | None]]:
    """Draw 1-4 motifs onto ``canvas`` (in place): ``[(motif, visible mask, colour)]``, drawing order."""
    size = canvas.shape[0]
    placed: list[tuple[Motif, np.ndarray, Color | None]] = []
    occupied = np.zeros((size, size), bool)
    min_area = 0.012 * size * size
    for motif in _choose_motifs(rng):
        for _ in range(12):
            fit = _try_motif(rng, motif, canvas, occupied, placed, min_area)
            if fit is None:
                continue
            layer, m, color = fit
            for i, (pm, pmask, pc) in enumerate(placed):
                placed[i] = (pm, pmask & ~m, pc)
            cv2.copyTo(layer.rgb, layer.mask, canvas)
            occupied |= m
            placed.append((motif, m, color))
            break
    if not placed:  # always at least one motif: draw one in its default place
        motif = MOTIFS[int(rng.integers(len(MOTIFS)))]
        layer = Layer(size)
        color = motif.draw(layer, rng, size / 2, size * sum(motif.zone) / 2, motif.scale[1] * size)
        m = layer.mask.view(bool)
        cv2.copyTo(layer.rgb, layer.mask, canvas)
        placed.append((motif, m, color))
    return placed


def _finish_canvas(rng, canvas: np.ndarray, masks: list[np.ndarray], st: ArtStyle) -> np.ndarray:
    """The brush pass (strokes kept inside each motif's mask), the style's blur and the grain."""
    size = canvas.shape[0]
    labels = np.zeros((size, size), np.uint8)
    for k, m in enumerate(masks, start=1):
        labels[m] = k
    canvas = _brush_pass(rng, canvas, labels, st, size)
    if st.blur > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), st.blur * size / 256.0)
    grain = np.rint(_weave(size) + 3.0 * rng.standard_normal((size, size), dtype=np.float32)).astype(np.int16)
    return np.clip(canvas.astype(np.int16) + grain[..., None], 0, 255).astype(np.uint8)


def _annotator_rows(
    rng, motifs: list[PlacedMotif], cells: list[tuple[int, int]], bg_color: Color
) -> list[tuple[str, str]]:
    """5-8 annotators' ``(emotion, utterance)`` rows: every motif gets one vote, the rest go by
    sqrt(area); some choose "something else". No two rows of a painting are the same."""
    n_ann = int(rng.integers(5, 9))
    weights = np.sqrt(np.array([pm.area_fraction for pm in motifs]))
    weights = weights / weights.sum()
    votes = list(range(len(motifs)))
    while len(votes) < n_ann:
        votes.append(-1 if rng.random() < 0.1 else int(rng.choice(len(motifs), p=weights)))
    votes = [votes[i] for i in rng.permutation(len(votes))]
    rows: list[tuple[str, str]] = []
    bg_word = color_name(bg_color)
    seen: set[tuple[str, str]] = set()
    for v in votes:
        for _ in range(20):  # annotators of one painting never write the very same sentence
            if v < 0:
                row = ("something else", make_something_else_utterance(rng, bg_word))
            else:
                pm = motifs[v]
                motif = motif_by_name(pm.name)
                opts = POSITIONS[cells[v]]
                pos = opts[int(rng.integers(len(opts)))]
                row = (motif.emotion, make_utterance(rng, motif, pm.color, pos, size_word(pm.area_fraction, rng)))
            if row not in seen:
                break
        if row in seen:
            continue
        seen.add(row)
        rows.append(row)
    return rows


def render_painting(index: int, seed: int = 0, size: int = 256) -> SyntheticPainting:
    """Render painting ``index`` of the set generated with ``seed`` at ``size`` x ``size``."""
    # The order of the steps is the order of the random draws: keep it.
    rng = painting_rng(seed, index)
    st = ART_STYLE_SPECS[int(rng.integers(len(ART_STYLE_SPECS)))]
    artist = pick(rng, st.artists)
    title = f"{pick(rng, _TITLES)}-{int(rng.integers(1, 30))}-{int(rng.integers(1820, 1971))}"
    painting = f"{artist}_{title}-{index:05d}"

    canvas, bg_color = _background(rng, size, st)
    placed = _place_motifs(rng, canvas)
    image = _finish_canvas(rng, canvas, [m for _, m, _ in placed], st)

    motifs: list[PlacedMotif] = []
    for motif, m, color in placed:
        frac = float(m.sum()) / (size * size)
        motifs.append(PlacedMotif(motif.name, motif.emotion, m,
                                  color_name(color) if color is not None else pick(rng, COLOR_WORDS),
                                  "", "", frac))
    cells = [grid_cell(pm.mask) for pm in motifs]
    rows = _annotator_rows(rng, motifs, cells, bg_color)
    for pm, cell in zip(motifs, cells):
        pm.position = POSITIONS[cell][0]
        pm.size = size_word(pm.area_fraction)
    return SyntheticPainting(index, st.name, painting, image, motifs, rows)
