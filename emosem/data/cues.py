"""Region cues: what a stimulus region really shows, measured from the image and its mask.

``extract_cues(image, mask)`` is a pure function used the same way in training (ground-truth
mask) and at inference (predicted soft mask). It measures

* **place**: the centroid on a 3×3 grid ("in the upper left" … "in the lower right") and, for
  regions that span most of a side, the extent ("across the top", "along the bottom edge",
  "down the left side", "across the whole canvas"); the share of the canvas it covers, with a
  size word (small < 5 % ≤ medium < 20 % ≤ large < 50 % ≤ very large);
* **colour**: k-means (k = 3, OpenCV) of the region's pixels in CIELAB; each cluster holding
  ≥ 15 % of the region is named by its nearest colour in CIELAB from a published name set, the
  XKCD colour survey names that matplotlib ships (``matplotlib.colors.XKCD_COLORS``), restricted
  to the eleven basic colour terms (Berlin & Kay) with the survey's light/dark/pale variants, or,
  for muted colours (chroma < 40) far (ΔE*76 > 20) from all of those, the survey's other names
  of the same terms ("greyish blue", "dull green", "bluish grey");
* **light**: mean lightness L*, chroma (saturation) and warmth (b*, yellow-blue, plus a*/2)
  of the region against the rest of the painting, and its lightness contrast (std of L*),
  in words when the difference is clear ("darker than its surroundings", "the brightest part
  of the canvas", "more muted", "warmer");
* **concepts**: added by the caller where the segmenter has a pretrained classifier head
  (:meth:`emosem.modeling.emosem.EmoSEM.region_concepts`).

``Cues.text`` is the short phrase the language model reads; ``Cues.record()`` the JSON record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

BASIC_TERMS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black",
               "white", "grey")
MODIFIERS = ("", "light ", "dark ", "pale ")
# Survey names whose colour another, plainer name says better: "pale grey" is #fdfdfe.
EXCLUDED = ("pale grey",)
# The survey's basic colours are saturated; a painting's muted ones (a grey-blue night sky) are
# far from all of them. A muted colour (chroma below MUTED_CHROMA) farther than BASIC_MATCH
# (ΔE*76) from every basic name gets the nearest of the survey's modified names of the same
# basic terms instead ("greyish blue", "dull green", "bluish grey").
BASIC_MATCH, MUTED_CHROMA = 20.0, 40.0
SHADES = ("deep ", "dull ", "dusty ", "muted ", "greyish ", "grey ", "bright ", "dark grey ",
          "light grey ", "reddish ", "orangish ", "yellowish ", "greenish ", "bluish ", "purplish ",
          "pinkish ", "brownish ")
GRID_ROWS = ("upper", "", "lower")
GRID_COLS = ("left", "", "right")
SIZE_WORDS = ((0.05, "small"), (0.20, "medium"), (0.50, "large"), (1.01, "very large"))
MIN_COLOUR_SHARE = 0.15
# Differences (region − rest) that get words: CIELAB units.
LIGHT_DIFF, CHROMA_DIFF, WARM_DIFF = 8.0, 8.0, 6.0


@dataclass
class Colour:
    name: str
    share: float  # of the region's pixels (weighted by the soft mask)
    rgb: list[int]


@dataclass
class Cues:
    """Measured cues of one region (fractions are of the canvas; L*, chroma in CIELAB units)."""

    place: str
    extent: str | None
    centroid: list[float]  # x, y as fractions of width, height
    bbox: list[float]  # x0, y0, x1, y1 as fractions
    area_fraction: float
    size: str
    colours: list[Colour]
    lightness: float
    lightness_rest: float
    chroma: float
    chroma_rest: float
    warmth: float
    warmth_rest: float
    contrast: float
    light_words: list[str]
    concepts: list[dict] = field(default_factory=list)  # [{"name", "score"}], from the model

    @property
    def colour_names(self) -> list[str]:
        return [c.name for c in self.colours]

    @property
    def text(self) -> str:
        """The phrase the language model reads, e.g. "in the upper left, small (4% of the
        canvas); dark blue, grey; darker than its surroundings; shows: wreck, schooner"."""
        if self.area_fraction == 0:
            return "no region"
        where = self.extent or self.place
        parts = [f"{where}, {self.size} ({round(100 * self.area_fraction)}% of the canvas)"]
        if self.colours:
            parts.append(", ".join(self.colour_names))
        if self.light_words:
            parts.append(", ".join(self.light_words))
        if self.concepts:
            parts.append("shows: " + ", ".join(c["name"] for c in self.concepts))
        return "; ".join(parts)

    def record(self) -> dict:
        """JSON-ready record: the numbers and the words, and ``text``."""
        out = asdict(self)
        out["text"] = self.text
        return out

    def with_concepts(self, concepts: list[dict]) -> Cues:
        return Cues(**{**self.__dict__, "concepts": list(concepts)})


@lru_cache(maxsize=2)
def colour_lexicon(shades: bool = False) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(names, RGB uint8 [N,3], CIELAB float32 [N,3]) of the XKCD survey colours named by a
    basic term with a light/dark/pale modifier, or (``shades``) with the survey's other
    modifiers of those terms (:data:`SHADES`: "greyish blue", "dull green", "bluish grey")."""
    from matplotlib.colors import XKCD_COLORS, to_rgb

    names, rgbs = [], []
    for term in BASIC_TERMS:
        for mod in SHADES if shades else MODIFIERS:
            name = f"{mod}{term}"
            key = f"xkcd:{name}"
            if key in XKCD_COLORS and name not in EXCLUDED and mod.strip() != term:
                names.append(name)
                rgbs.append([round(255 * c) for c in to_rgb(XKCD_COLORS[key])])
    rgb = np.asarray(rgbs, dtype=np.uint8)
    return tuple(names), rgb, rgb_to_lab(rgb)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 [..., 3] → CIELAB float32 [..., 3] (L* 0..100; D65), via OpenCV."""
    import cv2

    flat = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).reshape(np.shape(rgb))


def name_colour(lab: np.ndarray) -> str:
    """The name of one CIELAB colour [3]: the nearest basic survey colour (Euclidean ΔE*76),
    or for a muted colour far from all of them the nearest shade name (see BASIC_MATCH)."""
    names, _, lex = colour_lexicon()
    dist = np.sqrt(((lex - lab) ** 2).sum(1))
    if dist.min() <= BASIC_MATCH or float(np.hypot(lab[1], lab[2])) >= MUTED_CHROMA:
        return names[int(np.argmin(dist))]
    shade_names, _, shade_lex = colour_lexicon(shades=True)
    shade = np.sqrt(((shade_lex - lab) ** 2).sum(1))
    return shade_names[int(np.argmin(shade))] if shade.min() < dist.min() else names[int(np.argmin(dist))]


def place_words(weights: np.ndarray) -> tuple[str, str | None, list[float], list[float]]:
    """Place phrase, extent phrase (or None), centroid and bbox fractions of a [H, W] weight map."""
    h, w = weights.shape
    total = float(weights.sum())
    ys, xs = np.nonzero(weights > 0.5 * weights.max()) if total > 0 else ([], [])
    if total <= 0 or len(xs) == 0:
        return "in the center", None, [0.5, 0.5], [0.0, 0.0, 0.0, 0.0]
    cy = float((weights.sum(1) * (np.arange(h) + 0.5)).sum()) / total / h
    cx = float((weights.sum(0) * (np.arange(w) + 0.5)).sum()) / total / w
    row, col = min(2, int(3 * cy)), min(2, int(3 * cx))
    if (row, col) == (1, 1):
        place = "in the center"
    elif row == 1:
        place = f"on the {GRID_COLS[col]}"
    elif col == 1:
        place = "at the top" if row == 0 else "at the bottom"
    else:
        place = f"in the {GRID_ROWS[row]} {GRID_COLS[col]}"
    x0, x1 = xs.min() / w, (xs.max() + 1) / w
    y0, y1 = ys.min() / h, (ys.max() + 1) / h
    wide, tall = x1 - x0 >= 0.75, y1 - y0 >= 0.75
    extent = None
    if wide and tall:
        extent = "across the whole canvas"
    elif wide:
        extent = {0: "across the top", 1: "across the middle", 2: "along the bottom edge"}[row]
    elif tall:
        extent = {0: "down the left side", 1: "down the middle", 2: "down the right side"}[col]
    return place, extent, [round(cx, 4), round(cy, 4)], [round(float(v), 4) for v in (x0, y0, x1, y1)]


def _size_word(fraction: float) -> str:
    return next(word for limit, word in SIZE_WORDS if fraction < limit)


def _dominant_colours(lab: np.ndarray, rgb: np.ndarray, weights: np.ndarray, k: int = 3,
                      max_pixels: int = 4096) -> list[Colour]:
    """k-means of the region's pixels in CIELAB (weighted shares), named; ≥ 15 % only."""
    import cv2

    if len(lab) > max_pixels:  # an even, deterministic subsample
        idx = np.linspace(0, len(lab) - 1, max_pixels).astype(int)
        lab, rgb, weights = lab[idx], rgb[idx], weights[idx]
    if len(lab) == 0:
        return []
    if len(lab) < 4 * k:  # too few pixels to cluster: one colour, their mean
        k, labels, centres = 1, np.zeros(len(lab), int), lab.mean(0, keepdims=True)
    else:
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
        cv2.setRNGSeed(0)
        _, labels, centres = cv2.kmeans(np.ascontiguousarray(lab, np.float32).reshape(-1, 3), k,
                                        None, criteria, 2, cv2.KMEANS_PP_CENTERS)
        labels = labels[:, 0]
    out: dict[str, Colour] = {}
    for j in range(k):
        share = float(weights[labels == j].sum() / weights.sum())
        if share <= 0:
            continue
        name = name_colour(centres[j])
        mean_rgb = [int(v) for v in np.round(rgb[labels == j].mean(0))]
        if name in out:  # two clusters with one name: one colour
            out[name].share += share
        else:
            out[name] = Colour(name, share, mean_rgb)
    colours = sorted(out.values(), key=lambda c: -c.share)
    for c in colours:
        c.share = round(c.share, 3)
    return [c for c in colours if c.share >= MIN_COLOUR_SHARE]


def _light_words(lab: np.ndarray, weights: np.ndarray, region: np.ndarray, rest: np.ndarray,
                 block_l: np.ndarray) -> tuple[dict, list[str]]:
    """Lightness / chroma / warmth of region vs rest, and the words the differences earn."""
    def stats(sel_w):
        w = sel_w / max(sel_w.sum(), 1e-6)
        L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
        return (float((L * w).sum()), float((np.hypot(a, b) * w).sum()),
                float(((b + a / 2) * w).sum()))

    (lr, cr, wr), (lo, co, wo) = stats(region), stats(rest)
    contrast = float(np.sqrt((((lab[..., 0] - lr) ** 2) * region).sum() / max(region.sum(), 1e-6)))
    words = []
    if block_l.size and lr >= block_l.max() - 1e-3:
        words.append("the brightest part of the canvas")
    elif block_l.size and lr <= block_l.min() + 1e-3:
        words.append("the darkest part of the canvas")
    elif lr - lo >= LIGHT_DIFF:
        words.append("brighter than its surroundings")
    elif lo - lr >= LIGHT_DIFF:
        words.append("darker than its surroundings")
    if cr - co >= CHROMA_DIFF:
        words.append("more vivid")
    elif co - cr >= CHROMA_DIFF:
        words.append("more muted")
    if wr - wo >= WARM_DIFF:
        words.append("warmer")
    elif wo - wr >= WARM_DIFF:
        words.append("cooler")
    numbers = {"lightness": round(lr, 2), "lightness_rest": round(lo, 2), "chroma": round(cr, 2),
               "chroma_rest": round(co, 2), "warmth": round(wr, 2), "warmth_rest": round(wo, 2),
               "contrast": round(contrast, 2)}
    return numbers, words


def extract_cues(image: np.ndarray, mask: np.ndarray, work_side: int = 128) -> Cues:
    """Cues of the region ``mask`` (HxW bool or soft [0, 1]) in ``image`` (HxWx3 uint8 RGB).

    Both are resized to at most ``work_side`` on the long side first (area averaging), so the
    cost does not grow with the painting; fractions are of the canvas.
    """
    import cv2

    image = np.asarray(image)
    mask = np.asarray(mask, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape} and mask {mask.shape} must be HxWx3 and HxW")
    h, w = mask.shape
    scale = min(1.0, work_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    weights = cv2.resize(mask, size, interpolation=cv2.INTER_AREA) if scale < 1 else mask
    weights = np.clip(weights, 0.0, 1.0)
    lab = rgb_to_lab(small)
    area = float(weights.mean())
    place, extent, centroid, bbox = place_words(weights)
    inside = weights > 0.5
    colours = _dominant_colours(lab[inside], small[inside], weights[inside]) if inside.any() else []
    rest = 1.0 - weights
    # block means of L* over a 4x4 grid, outside blocks mostly covered by the region: is the
    # region brighter (darker) than every other part of the canvas?
    bh, bw = max(1, lab.shape[0] // 4), max(1, lab.shape[1] // 4)
    blocks = [(lab[i:i + bh, j:j + bw, 0], rest[i:i + bh, j:j + bw])
              for i in range(0, bh * 4, bh) for j in range(0, bw * 4, bw)]
    block_l = np.array([float(b.mean()) for b, r in blocks if r.size and r.mean() > 0.9])
    numbers, words = _light_words(lab, weights, weights, rest, block_l)
    return Cues(place=place, extent=extent, centroid=centroid, bbox=bbox,
                area_fraction=round(area, 4), size=_size_word(area), colours=colours,
                light_words=words, **numbers)
