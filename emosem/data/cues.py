"""Region cues: what a stimulus region really shows, measured from the image and its mask.

``extract_cues(image, mask)`` is a pure function used the same way in training (ground-truth
mask) and at inference (predicted soft mask). It measures

* **place**: the centroid on a 3×3 grid ("in the upper left" … "in the lower right") and, for
  regions that span most of a side, the extent ("across the top", "along the bottom edge",
  "down the left side", "across the whole canvas"); the share of the canvas it covers, with a
  size word (small < 5 % ≤ medium < 20 % ≤ large < 50 % ≤ very large);
* **colour**: k-means (k = 3, OpenCV) of the region's pixels in CIELAB; each cluster holding
  ≥ 15 % of the region is named from a published name set, the XKCD colour survey that
  matplotlib ships (``matplotlib.colors.XKCD_COLORS``): its basic term (Berlin & Kay's eleven)
  is that of the nearest of the ~560 survey colours named with one, and of most of the
  cluster's pixels; achromatic terms are named on the ISCC–NBS neutral scale by lightness;
  chromatic ones by the nearest of the survey's light/dark/pale variants of the term, or, for
  muted colours (chroma < 40) far (ΔE*76 > 20) from all of those, its other names of the term
  ("greyish blue", "dull green");
* **light**: mean lightness L*, chroma (saturation) and warmth (b*, yellow-blue, plus a*/2)
  of the region against the rest of the painting, and its lightness contrast (std of L*),
  in words when the difference is clear ("darker than its surroundings", "the brightest part
  of the canvas", "more muted", "warmer");
* **shape**: from the region's second moments, its connected parts and its largest part's
  outline (:func:`shape_measures`): elongation (1 − minor/major axis) and the major axis's
  orientation ("a horizontal band", "a tall vertical form", "a diagonal streak"), roundness
  (4πA/P², "a round shape"), fragmentation ("scattered in 5 patches" vs one mass), solidity
  (area / convex hull, "a jagged outline");
* **texture**: the Sobel gradient energy of L* inside against outside ("busy brushwork",
  "smooth") and, from the structure tensor (Bigün & Granlund 1987), strokes that are locally
  coherent while their orientations span every direction ("swirling strokes");
* **concepts**: added by the caller where the segmenter has a pretrained classifier head
  (:meth:`emosem.modeling.emosem.EmoSEM.region_concepts`);
* **object**: the one thing the region may be named as, with its provenance
  (``{"word", "source", "score"}``: a motif of the trained vocabulary, a licensed ImageNet
  concept), or None when no evidence licenses a name; set by the caller (:meth:`Cues.with_object`).

``Cues.text`` is the short phrase the language model reads (:meth:`Cues.phrase` gives each
version: 1 = place, size, colours, light, "shows: <concepts>"; 2 = those, the shape and
texture words and "object: <word or none>"); ``Cues.record()`` the JSON record.
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
# The achromatic names by lightness: the ISCC–NBS neutral categories (Kelly & Judd 1976, NBS
# Special Publication 440) end at Munsell values 2.5 (black), 4.5 (dark grey), 6.5 (grey) and
# 8.5 (light grey); above is white. In CIELAB via the Munsell renotation's value function
# (ASTM D1535): L* 25.3, 45.9, 66.3, 86.1 (:func:`neutral_bounds`).
NEUTRAL_NAMES = ("black", "dark grey", "grey", "light grey", "white")
NEUTRAL_VALUES = (2.5, 4.5, 6.5, 8.5)
ACHROMATIC = ("black", "grey", "white")
# A colour whose chroma is below one just-noticeable difference (ΔE*ab 2.3, Mahy et al. 1994) is
# neutral whatever survey colour is nearest (near white, the survey's nearest is "very light pink").
NEUTRAL_CHROMA = 2.3
SHADES = ("deep ", "dull ", "dusty ", "muted ", "greyish ", "grey ", "bright ", "dark grey ",
          "light grey ", "reddish ", "orangish ", "yellowish ", "greenish ", "bluish ", "purplish ",
          "pinkish ", "brownish ")
GRID_ROWS = ("upper", "", "lower")
GRID_COLS = ("left", "", "right")
SIZE_WORDS = ((0.05, "small"), (0.20, "medium"), (0.50, "large"), (1.01, "very large"))
MIN_COLOUR_SHARE = 0.15
# Differences (region − rest) that get words: CIELAB units.
LIGHT_DIFF, CHROMA_DIFF, WARM_DIFF = 8.0, 8.0, 6.0
# Shape words. A part is a connected component holding >= PART_SHARE of the region; a region is
# "scattered" in >= SCATTERED_PARTS parts when its largest holds < half of it. Elongation
# (1 - minor/major axis) >= ELONGATED (axes 2.5 : 1) is a band / vertical form / streak, by the
# major axis's orientation (within ORIENTATION_TOL degrees of horizontal or vertical).
PART_SHARE, SCATTERED_PARTS, ELONGATED, ORIENTATION_TOL = 0.05, 4, 0.6, 22.5
ROUND, JAGGED = 0.82, 0.6  # roundness 4πA/P² of the largest part; its solidity (area / hull)
# Texture: gradient energy inside / outside; swirl = local coherence >= SWIRL_LOCAL, orientations
# that vary smoothly (flow >= SWIRL_FLOW, see texture_measures) and whose resultant length
# (0 = every direction, 1 = parallel) is <= SWIRL_GLOBAL.
BUSY, SMOOTH, SWIRL_LOCAL, SWIRL_GLOBAL, SWIRL_FLOW = 1.35, 0.65, 0.45, 0.25, 0.6
# Texture needs this many interior pixels (at the working size) and, to swirl, strokes: a mean
# gradient magnitude of L* of at least SWIRL_ENERGY inside (a flat region has none).
MIN_TEXTURE_PIXELS, SWIRL_ENERGY = 16, 4.0
CUE_VERSIONS = (1, 2)


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
    shape: dict = field(default_factory=dict)  # numbers of shape_measures / texture_measures
    form: str = "shape"  # the shape noun: band, vertical form, streak, patches, round shape, mass, shape
    shape_words: list[str] = field(default_factory=list)
    object: dict | None = None  # {"word", "source", "score"}: the licensed name, or None
    cell: list[int] | None = None  # [row, column] of the 3×3 grid the place names (region_grid_cell)

    @property
    def colour_names(self) -> list[str]:
        return [c.name for c in self.colours]

    @property
    def text(self) -> str:
        """The phrase the language model reads (version 2 of :meth:`phrase`)."""
        return self.phrase(2)

    def phrase(self, version: int = 2) -> str:
        """The cue phrase of one version (see the module docstring), e.g. version 2: "along the
        bottom edge, medium (12% of the canvas); black, dark grey; darker than its surroundings;
        a horizontal band, busy brushwork; object: none"."""
        if version not in CUE_VERSIONS:
            raise ValueError(f"cue version must be one of {CUE_VERSIONS}, got {version!r}")
        if self.area_fraction == 0:
            return "no region"
        where = self.extent or self.place
        parts = [f"{where}, {self.size} ({round(100 * self.area_fraction)}% of the canvas)"]
        if self.colours:
            parts.append(", ".join(self.colour_names))
        if self.light_words:
            parts.append(", ".join(self.light_words))
        if version == 1:
            if self.concepts:
                parts.append("shows: " + ", ".join(c["name"] for c in self.concepts))
            return "; ".join(parts)
        if self.shape_words:
            parts.append(", ".join(self.shape_words))
        parts.append("object: " + (self.object["word"] if self.object else "none"))
        return "; ".join(parts)

    def record(self) -> dict:
        """JSON-ready record: the numbers and the words, and ``text``."""
        out = asdict(self)
        out["text"] = self.text
        return out

    def with_concepts(self, concepts: list[dict]) -> Cues:
        return Cues(**{**self.__dict__, "concepts": list(concepts)})

    def with_object(self, obj: dict | None) -> Cues:
        """A copy whose object slot is ``obj`` (``{"word", "source", "score"}`` or None)."""
        return Cues(**{**self.__dict__, "object": dict(obj) if obj else None})

    @property
    def appearance(self) -> str:
        """The region named by what is measured, with no object noun: "dark grey horizontal
        band", "scattered yellow patches" (first colour's name, the light word, the form)."""
        colour = self.colour_names[0] if self.colours else ""
        light = {"the brightest part of the canvas": "bright", "brighter than its surroundings": "bright",
                 "the darkest part of the canvas": "dark", "darker than its surroundings": "dark"}
        tone = next((light[w] for w in self.light_words if w in light), "")
        if tone and (colour.startswith(("dark", "light", "pale")) or (tone, colour) in
                     (("dark", "black"), ("bright", "white"))):  # not "dark black"
            tone = ""
        words = [w for w in (tone, colour) if w]
        form = self.form
        if form == "patches":
            return " ".join(["scattered", *words, "patches"])
        return " ".join([*words, form])


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


@lru_cache(maxsize=1)
def survey_terms() -> tuple[np.ndarray, np.ndarray]:
    """Every XKCD survey colour whose name ends in a basic term ("dark grey blue", "slate grey",
    "very dark brown"; "gray" read "grey"), about 560: (CIELAB float32 [N, 3], that term [N] str).

    The survey's respondents named these colours; the term of the nearest one is the basic term
    of a colour (:func:`basic_terms`). The plain names of :func:`colour_lexicon` alone are the
    survey's *typical* light, dark and pale colours, which are saturated: a dark, muted blue
    (RGB 61, 97, 113) is nearer their "dark grey" than their "dark blue", while among all the
    survey's colours its neighbours are "dark grey blue" and "slate blue"."""
    from matplotlib.colors import XKCD_COLORS, to_rgb

    terms, rgbs = [], []
    for key, hexa in XKCD_COLORS.items():
        head = key.removeprefix("xkcd:").split()[-1].replace("gray", "grey")
        if head in BASIC_TERMS:
            terms.append(head)
            rgbs.append([round(255 * c) for c in to_rgb(hexa)])
    return rgb_to_lab(np.asarray(rgbs, dtype=np.uint8)), np.asarray(terms)


@lru_cache(maxsize=1)
def neutral_bounds() -> np.ndarray:
    """CIELAB L* [4] of the Munsell values :data:`NEUTRAL_VALUES`: luminance factor Y by ASTM
    D1535's fifth-order polynomial (Y of value 10 is white), then L* = 116 (Y/Yn)^(1/3) − 16."""
    v = np.asarray(NEUTRAL_VALUES, np.float64)
    y = 1.1914 * v - 0.22533 * v**2 + 0.23352 * v**3 - 0.020484 * v**4 + 0.00081939 * v**5
    white = 1.1914 * 10 - 0.22533 * 100 + 0.23352 * 1e3 - 0.020484 * 1e4 + 0.00081939 * 1e5
    return 116 * np.cbrt(y / white) - 16


def neutral_name(lightness: np.ndarray) -> np.ndarray:
    """The ISCC–NBS neutral name (:data:`NEUTRAL_NAMES`) of achromatic colours by their L* [N]."""
    return np.asarray(NEUTRAL_NAMES)[np.searchsorted(neutral_bounds(), np.asarray(lightness), side="right")]


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 [..., 3] → CIELAB float32 [..., 3] (L* 0..100; D65), via OpenCV."""
    import cv2

    flat = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).reshape(np.shape(rgb))


def name_colour(lab: np.ndarray) -> str:
    """The name of one CIELAB colour [3]. Its basic term is that of :func:`basic_terms`; an
    achromatic one is named on the ISCC–NBS neutral scale (:func:`neutral_name`: black, dark
    grey, grey, light grey, white); a chromatic one by the nearest plain name of its term
    (Euclidean ΔE*76), or for a muted colour far from all of them (see BASIC_MATCH) the nearest
    shade name of the term with no second basic term in it, when that is nearer ("greyish
    blue", never "grey blue", whose "grey" would be a second claim)."""
    lab = np.asarray(lab, np.float32)
    term = str(basic_terms(lab[None])[0])
    if term in ACHROMATIC:
        return str(neutral_name(lab[:1])[0])
    names, _, lex = colour_lexicon()
    of_term = np.array([n.split()[-1] == term for n in names])
    dist = np.where(of_term, np.sqrt(((lex - lab) ** 2).sum(1)), np.inf)
    best = names[int(np.argmin(dist))]
    if dist.min() <= BASIC_MATCH or float(np.hypot(lab[1], lab[2])) >= MUTED_CHROMA:
        return best
    shade_names, _, shade_lex = colour_lexicon(shades=True)
    # one basic term a name ("greyish blue", not "grey blue"): each colour word it says is a claim
    ok = np.array([n.split()[-1] == term and not any(w in BASIC_TERMS for w in n.split()[:-1])
                   for n in shade_names])
    shade = np.where(ok, np.sqrt(((shade_lex - lab) ** 2).sum(1)), np.inf)
    return shade_names[int(np.argmin(shade))] if shade.min() < dist.min() else best


def region_grid_cell(weights: np.ndarray) -> tuple[int, int]:
    """The 3×3 grid cell (row, column) where a [H, W] weight map has the most of its mass: the
    third of the height holding the most, and the third of the width (a region in two parts, or
    bent round a corner, is placed where most of it is, not at its centroid between the parts).
    Ties go to the centre third."""
    h, w = weights.shape
    rows = np.array([weights[round(i * h / 3):round((i + 1) * h / 3)].sum() for i in range(3)])
    cols = np.array([weights[:, round(j * w / 3):round((j + 1) * w / 3)].sum() for j in range(3)])
    pick = lambda m: 1 if m[1] >= m.max() - 1e-9 else int(np.argmax(m))  # noqa: E731
    return pick(rows), pick(cols)


def basic_terms(lab: np.ndarray) -> np.ndarray:
    """Per colour (CIELAB [N, 3]), the basic term of the nearest colour the XKCD survey named
    with one (:func:`survey_terms`); black, grey or white by lightness (:func:`neutral_name`)
    where that term is achromatic or the chroma is below :data:`NEUTRAL_CHROMA` → [N] str."""
    lex, terms = survey_terms()
    lab = np.asarray(lab, np.float32)
    out = np.empty(len(lab), dtype=terms.dtype)
    # squared distances per channel plane, summed (dL² + da²) + db²: bit for bit what summing the
    # last axis of [chunk, ~560, 3] gives, at a twelfth of the time (no length-3 inner reductions)
    planes = [np.ascontiguousarray(lex[:, k]) for k in range(3)]
    for i in range(0, len(lab), 2048):  # [chunk, ~560] distances at a time
        chunk = lab[i:i + 2048]
        d = None
        for k, plane in enumerate(planes):
            diff = chunk[:, k, None] - plane
            diff *= diff
            d = diff if d is None else np.add(d, diff, out=d)
        out[i:i + 2048] = terms[d.argmin(1)]
    neutral = np.isin(out, ACHROMATIC) | (np.hypot(lab[:, 1], lab[:, 2]) < NEUTRAL_CHROMA)
    # black, grey or white by lightness (ISCC–NBS)
    names, index = np.unique(neutral_name(lab[neutral, 0]), return_inverse=True)
    out[neutral] = np.array([n.split()[-1] for n in names], dtype=out.dtype)[index]
    return out


def place_words(weights: np.ndarray) -> tuple[str, str | None, list[float], list[float], list[int]]:
    """Place phrase, extent phrase (or None), centroid and bbox fractions of a [H, W] weight map,
    and the grid cell [row, column] the phrase names (:func:`region_grid_cell`; the centre for
    an empty map)."""
    h, w = weights.shape
    total = float(weights.sum())
    ys, xs = np.nonzero(weights > 0.5 * weights.max()) if total > 0 else ([], [])
    if total <= 0 or len(xs) == 0:
        return "in the center", None, [0.5, 0.5], [0.0, 0.0, 0.0, 0.0], [1, 1]
    cy = float((weights.sum(1) * (np.arange(h) + 0.5)).sum()) / total / h
    cx = float((weights.sum(0) * (np.arange(w) + 0.5)).sum()) / total / w
    row, col = region_grid_cell(weights)
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
    return (place, extent, [round(cx, 4), round(cy, 4)], [round(float(v), 4) for v in (x0, y0, x1, y1)],
            [row, col])


def _size_word(fraction: float) -> str:
    return next(word for limit, word in SIZE_WORDS if fraction < limit)


def _dominant_colours(lab: np.ndarray, rgb: np.ndarray, weights: np.ndarray, k: int = 3,
                      max_pixels: int = 4096, terms: np.ndarray | None = None) -> list[Colour]:
    """k-means of the region's pixels in CIELAB (weighted shares), named; ≥ 15 % only.
    ``terms``: the pixels' basic colour terms when already named (:meth:`CueImage.pixel_terms`)."""
    import cv2

    if len(lab) > max_pixels:  # an even, deterministic subsample
        idx = np.linspace(0, len(lab) - 1, max_pixels).astype(int)
        lab, rgb, weights = lab[idx], rgb[idx], weights[idx]
        terms = None if terms is None else terms[idx]
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
    pixel_terms = basic_terms(lab) if terms is None else terms
    for j in range(k):
        share = float(weights[labels == j].sum() / weights.sum())
        if share <= 0:
            continue
        name = name_colour(centres[j])
        # a cluster's mean can be a colour few of its pixels have (dark browns and blacks average
        # to "dark grey"): a name whose basic term is not the one most of the cluster's pixels
        # have gives way to the name of the mean of those pixels
        terms, counts = np.unique(pixel_terms[labels == j], return_counts=True)
        major = str(terms[int(np.argmax(counts))])
        if name.split()[-1] != major:
            name = name_colour(lab[(labels == j) & (pixel_terms == major)].mean(0))
            if name.split()[-1] != major:  # the mean of those pixels still reads otherwise
                name = major
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


def shape_measures(inside: np.ndarray) -> dict:
    """Shape of a [H, W] bool region: ``parts`` (components >= PART_SHARE of it),
    ``largest_share``, ``elongation`` (1 − minor/major axis of its second moments, 0 = as wide as
    tall), ``orientation`` (the major axis in degrees: 0 horizontal, 90 vertical, 45 rising to the
    right, 135 falling), ``roundness`` (4πA/P² of the largest part; a disc ≈ 0.9) and
    ``solidity`` (largest part / its convex hull)."""
    import cv2

    region = inside.astype(np.uint8)
    total = int(region.sum())
    out = {"parts": 0, "largest_share": 0.0, "elongation": 0.0, "orientation": 0.0,
           "roundness": 0.0, "solidity": 0.0}
    if total == 0:
        return out
    n, labels, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = 1 + int(np.argmax(areas))
    out["parts"] = int((areas >= PART_SHARE * total).sum()) or 1
    out["largest_share"] = round(float(areas.max() / total), 4)
    ys, xs = np.nonzero(region)
    cov = np.cov(np.stack([xs, -ys]).astype(np.float64)) if total > 1 else np.zeros((2, 2))
    evals, evecs = np.linalg.eigh(cov)
    if evals[1] > 1e-9:
        out["elongation"] = round(float(1.0 - np.sqrt(max(evals[0], 0.0) / evals[1])), 4)
        vx, vy = evecs[:, 1]
        out["orientation"] = round(float(np.degrees(np.arctan2(vy, vx)) % 180.0), 2)
    contours, _ = cv2.findContours((labels == largest).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    c = max(contours, key=cv2.contourArea)
    # the traced outline runs through pixel centres: area and perimeter of the pixels' own squares
    area, perim = float(areas.max()), cv2.arcLength(c, True) + np.pi
    out["roundness"] = round(float(min(1.0, 4 * np.pi * area / perim ** 2)), 4)
    hull = cv2.convexHull(c)
    hull_pixels = cv2.contourArea(hull) + cv2.arcLength(hull, True) / 2 + 1.0  # Pick: the pixels it covers
    out["solidity"] = round(float(min(1.0, area / hull_pixels)), 4)
    return out


@dataclass(frozen=True)
class TextureMaps:
    """The image side of :func:`texture_measures`, measured once per lightness map L* [H, W]:
    Sobel gradient magnitude, structure-tensor trace and local coherence (smoothed over ~3 px),
    the doubled-orientation field ``z`` and its magnitude, and the magnitude of the unit
    orientation field averaged over ~4 px (``flow``)."""

    magnitude: np.ndarray
    trace: np.ndarray
    coherence: np.ndarray
    z: np.ndarray
    z_abs: np.ndarray
    wide_abs: np.ndarray


def texture_maps(lightness: np.ndarray) -> TextureMaps:
    """:class:`TextureMaps` of a lightness map L* [H, W] (what every region's texture reads)."""
    import cv2

    L = lightness.astype(np.float32)
    gx = cv2.Sobel(L, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(L, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = (cv2.GaussianBlur(a, (0, 0), 1.5) for a in (gx * gx, gy * gy, gx * gy))
    trace = jxx + jyy
    coh = np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / np.maximum(trace, 1e-6)
    z = (jxx - jyy) + 2j * jxy  # doubled orientation, magnitude = anisotropic energy
    z_abs = np.abs(z)
    # flow: do the orientations vary smoothly over ~4 px (a swirl, a wave's curve) or at random
    # from stroke to stroke (short dabs)? The mean length of the unit orientation field averaged
    # over a wider window: near 1 for continuous curves, low for random dabs.
    unit = z / np.maximum(z_abs, 1e-6)
    wide = cv2.GaussianBlur(unit.real.astype(np.float32), (0, 0), 4.0) \
        + 1j * cv2.GaussianBlur(unit.imag.astype(np.float32), (0, 0), 4.0)
    return TextureMaps(np.hypot(gx, gy), trace, coh, z, z_abs, np.abs(wide))


def texture_measures(lightness: np.ndarray, weights: np.ndarray,
                     maps: TextureMaps | None = None) -> dict:
    """Texture of a region (weights [H, W] in [0, 1]) in a lightness map L* [H, W]:
    ``edge_energy`` / ``edge_energy_rest`` (mean Sobel gradient magnitude inside / outside) and,
    from the structure tensor smoothed over ~3 px, ``coherence`` (mean local coherence
    (λ1 − λ2)/(λ1 + λ2) inside, weighted by gradient energy) and ``spread`` (resultant length of
    the doubled local orientations: 1 = all strokes parallel, 0 = every direction).
    ``maps``: the lightness map's :func:`texture_maps`, when several regions share it."""
    t = maps if maps is not None else texture_maps(lightness)
    mag = t.magnitude
    w_in, w_out = weights, 1.0 - weights
    inside = float((mag * w_in).sum() / max(w_in.sum(), 1e-6))
    outside = float((mag * w_out).sum() / max(w_out.sum(), 1e-6)) if w_out.sum() > 1e-6 else inside
    energy = t.trace * w_in
    if energy.sum() <= 1e-6:
        return {"edge_energy": round(inside, 3), "edge_energy_rest": round(outside, 3),
                "coherence": 0.0, "spread": 1.0}
    spread = float(abs((t.z * w_in).sum()) / max(float((t.z_abs * w_in).sum()), 1e-6))
    flow = float((t.wide_abs * energy).sum() / energy.sum())
    return {"edge_energy": round(inside, 3), "edge_energy_rest": round(outside, 3),
            "coherence": round(float((t.coherence * energy).sum() / energy.sum()), 4),
            "spread": round(spread, 4), "flow": round(flow, 4)}


LINE_DIRECTIONS = ("horizontal", "vertical", "oblique")
# The shares of the three directions when edges run every way (each bin spans ±22.5° around
# level, ±22.5° around upright, and the rest): a direction dominates at LINE_MARGIN times its share.
LINE_UNIFORM = {"horizontal": 0.25, "vertical": 0.25, "oblique": 0.5}
LINE_MARGIN = 1.25


def line_directions(maps: TextureMaps, weights: np.ndarray | None = None) -> dict[str, float]:
    """Shares of the oriented edge energy that run horizontal, vertical and oblique (the
    "dynamics" of Machajdik, J., & Hanbury, A. (2010). Affective image classification using
    features inspired by psychology and art theory. *ACM Multimedia 2010*, 83–92, §3.3: level and
    upright lines read as static, slanted ones as dynamic).

    Each pixel's line runs across its structure-tensor gradient; its weight is the anisotropic
    energy ``|z|`` (gradient energy × coherence), times ``weights`` [H, W] where given. The
    doubled gradient angle arg z is 0 for a vertical line and ±180° for a horizontal one, so
    the bins are ±45° of arg z around those. Edges in every direction give :data:`LINE_UNIFORM`."""
    energy = maps.z_abs if weights is None else maps.z_abs * weights
    total = float(energy.sum())
    if total <= 1e-6:
        return dict(LINE_UNIFORM)
    angle = np.abs(np.angle(maps.z, deg=True))  # [0, 180]
    vertical = float(energy[angle < 45.0].sum()) / total
    horizontal = float(energy[angle > 135.0].sum()) / total
    return {"horizontal": round(horizontal, 4), "vertical": round(vertical, 4),
            "oblique": round(1.0 - horizontal - vertical, 4)}


def dominant_line_direction(shares: dict[str, float]) -> str | None:
    """The direction of :func:`line_directions` that holds at least :data:`LINE_MARGIN` times its
    share under edges in every direction (the most so, where several do), else None."""
    ratio = {d: shares[d] / LINE_UNIFORM[d] for d in LINE_DIRECTIONS}
    best = max(LINE_DIRECTIONS, key=ratio.__getitem__)
    return best if ratio[best] >= LINE_MARGIN else None


def shape_words(shape: dict) -> tuple[str, list[str]]:
    """(form noun, words) of :func:`shape_measures` + :func:`texture_measures` numbers: e.g.
    ("band", ["a horizontal band", "busy brushwork"])."""
    words: list[str] = []
    if shape.get("parts", 0) == 0:
        return "shape", words
    if shape["parts"] >= SCATTERED_PARTS and shape["largest_share"] < 0.5:
        form = "patches"
        words.append(f"scattered in {shape['parts']} patches")
    elif shape["elongation"] >= ELONGATED:
        angle = shape["orientation"]
        if min(angle, 180 - angle) <= ORIENTATION_TOL:
            form, phrase = "band", "a horizontal band"
        elif abs(angle - 90) <= ORIENTATION_TOL:
            form, phrase = "vertical form", "a tall vertical form"
        else:
            form, phrase = "streak", "a diagonal streak"
        words.append(phrase)
    elif shape["roundness"] >= ROUND:
        form = "round shape"
        words.append("a round shape")
    else:
        form = "mass" if shape["solidity"] >= 0.8 else "shape"
        words.append("one compact mass" if form == "mass" else "an irregular shape")
    if form not in ("patches", "round shape", "mass") and shape["solidity"] < JAGGED:
        words.append("a jagged outline")
    rest = max(shape.get("edge_energy_rest", 0.0), 1e-6)
    ratio = shape.get("edge_energy", 0.0) / rest
    if (shape.get("coherence", 0.0) >= SWIRL_LOCAL and shape.get("flow", 0.0) >= SWIRL_FLOW
            and shape.get("spread", 1.0) <= SWIRL_GLOBAL and shape.get("edge_energy", 0.0) >= SWIRL_ENERGY):
        words.append("swirling strokes")
    elif ratio >= BUSY:
        words.append("busy brushwork")
    elif ratio <= SMOOTH:
        words.append("smooth")
    return form, words


@dataclass(frozen=True)
class CueImage:
    """The image side of :func:`extract_cues`, measured once per painting and shared by all its
    regions: the original size (H, W), the working size (w, h) and whether it is a resize, the
    painting at the working size in RGB and CIELAB, its texture maps and the 4×4 grid of L*
    block means (with each block's slices) that the light words compare against."""

    original: tuple[int, int]
    size: tuple[int, int]
    scaled: bool
    small: np.ndarray
    lab: np.ndarray
    texture: TextureMaps
    blocks: tuple[tuple[float, tuple[slice, slice]], ...]
    _terms: dict = field(default_factory=dict, compare=False, repr=False)  # the pixel terms, once

    def pixel_terms(self) -> np.ndarray:
        """[h, w] the basic colour term of every pixel at the working size (:func:`basic_terms`),
        named on first use and shared by every region of the painting."""
        if "terms" not in self._terms:
            self._terms["terms"] = basic_terms(self.lab.reshape(-1, 3)).reshape(self.lab.shape[:2])
        return self._terms["terms"]


def cue_image(image: np.ndarray, work_side: int = 128) -> CueImage:
    """:class:`CueImage` of ``image`` (HxWx3 uint8 RGB), resized to at most ``work_side`` on the
    long side (area averaging)."""
    import cv2

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {image.shape} must be HxWx3")
    h, w = image.shape[:2]
    scale = min(1.0, work_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    lab = rgb_to_lab(small)
    # block means of L* over a 4x4 grid: is a region brighter (darker) than every other part?
    bh, bw = max(1, lab.shape[0] // 4), max(1, lab.shape[1] // 4)
    cells = [(slice(i, i + bh), slice(j, j + bw))
             for i in range(0, bh * 4, bh) for j in range(0, bw * 4, bw)]
    blocks = tuple((float(lab[c][..., 0].mean()) if lab[c].size else 0.0, c) for c in cells)
    return CueImage((h, w), size, scale < 1, small, lab, texture_maps(lab[..., 0]), blocks)


def extract_cues(image: np.ndarray, mask: np.ndarray, work_side: int = 128,
                 prepared: CueImage | None = None) -> Cues:
    """Cues of the region ``mask`` (HxW bool or soft [0, 1]) in ``image`` (HxWx3 uint8 RGB).

    Both are resized to at most ``work_side`` on the long side first (area averaging), so the
    cost does not grow with the painting; fractions are of the canvas. ``prepared``: the image's
    :func:`cue_image` (at ``work_side``), when several regions of one painting are measured.
    """
    import cv2

    mask = np.asarray(mask, dtype=np.float32)
    if prepared is None:
        prepared = cue_image(image, work_side)
    if prepared.original != mask.shape:
        raise ValueError(f"image {(*prepared.original, 3)} and mask {mask.shape} must be HxWx3 and HxW")
    small, lab, size = prepared.small, prepared.lab, prepared.size
    weights = cv2.resize(mask, size, interpolation=cv2.INTER_AREA) if prepared.scaled else mask
    weights = np.clip(weights, 0.0, 1.0)
    area = float(weights.mean())
    place, extent, centroid, bbox, cell = place_words(weights)
    inside = weights > 0.5
    colours = _dominant_colours(lab[inside], small[inside], weights[inside],
                                terms=prepared.pixel_terms()[inside]) if inside.any() else []
    rest = 1.0 - weights
    # the grid's blocks outside the region (mostly not covered by it)
    block_l = np.array([mean for mean, cell in prepared.blocks
                        if rest[cell].size and rest[cell].mean() > 0.9])
    numbers, words = _light_words(lab, weights, weights, rest, block_l)
    # texture is measured inside the region, away from its outline (an outline's edges would read
    # as strokes): the region eroded by two pixels, where anything is left of it
    interior = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(np.float32)
    texture = texture_measures(lab[..., 0], interior, prepared.texture) \
        if interior.sum() >= MIN_TEXTURE_PIXELS else {}
    shape = {**shape_measures(inside), **texture} if inside.any() else {}
    form, shapes = shape_words(shape) if shape else ("shape", [])
    return Cues(place=place, extent=extent, centroid=centroid, bbox=bbox, cell=cell,
                area_fraction=round(area, 4), size=_size_word(area), colours=colours,
                light_words=words, shape=shape, form=form, shape_words=shapes, **numbers)
