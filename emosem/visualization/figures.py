"""Matplotlib figures for analysts: a single-result panel, a grid of emotions, a distribution.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, never
through ``pyplot``: no global figure registry, no GUI backend, safe in a web server's threads.
Every function returns the figure; call :func:`close_figure` when done with it.

Layouts are computed in inches from the painting's aspect ratio, so paintings are never
stretched; text is wrapped and, when it would overflow its box, cut with an ellipsis, both by
measuring the rendered text rather than counting characters.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.transforms import offset_copy

from emosem.emotions import ARTEMIS_EMOTIONS, emotion_color, is_artemis_emotion, parse_emotion
from emosem.in_domain import domain_lines
from emosem.visualization.cues import CUES_TITLE, cue_lines, no_explanation_note
from emosem.visualization.overlay import to_rgb_uint8, write_png

logger = logging.getLogger(__name__)

PathLike = str | Path

FREE_TEXT_NOTE = "free text: outside the trained set\n(not one of the nine ArtEmis emotions)"
_INK = "#222222"
_MUTED = "#666666"
_NOTE = "#a15c00"
_LINESPACING = 1.3
_MAX_CHARS = 2000  # longer explanations are cut before layout (no figure can show more)
_BAR_IN = 0.24  # height per bar of a distribution chart, inches


# ----------------------------------------------------------------------------------- helpers


def close_figure(fig: Figure | None) -> None:
    """Release a figure made here (or by ``pyplot``): drop its axes (with their pictures) and
    texts, and any pyplot reference. (``Figure.clear`` would re-create every axes' ticks first:
    ~70 ms a figure.)"""
    if fig is None:
        return
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # only if someone else imported pyplot; never import it here
        pyplot.close(fig)
    for ax in list(fig.axes):
        fig.delaxes(ax)
    fig.texts.clear()


def _new_figure(width_in: float, height_in: float, dpi: float) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width_in, height_in), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    return fig, canvas.get_renderer()


def _save(fig: Figure, out_path: PathLike | None) -> None:
    if out_path is None:
        return
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.suffix.lower() == ".png":  # the canvas's pixels (opaque white ground) as RGB
        canvas = FigureCanvasAgg(fig) if not isinstance(fig.canvas, FigureCanvasAgg) else fig.canvas
        canvas.draw()
        write_png(out_path, np.asarray(canvas.buffer_rgba())[..., :3])
    else:
        fig.savefig(out_path, dpi=fig.dpi, facecolor="white")
    logger.debug("wrote %s", out_path)  # a run writes in a staging folder: its final paths are printed


class _Inches:
    """Place axes by inches from the figure's top-left corner."""

    def __init__(self, fig: Figure):
        self.fig = fig
        self.w, self.h = fig.get_size_inches()

    def axes(self, left: float, top: float, width: float, height: float, **kw: Any):
        rect = [left / self.w, 1.0 - (top + height) / self.h, width / self.w, height / self.h]
        return self.fig.add_axes(rect, **kw)

    def image_axes(self, left: float, top: float, width: float, height: float):
        """Axes for a picture: no ticks and no frame, so drawing them makes no tick artists
        (about 20 ms an axes otherwise)."""
        return self.axes(left, top, width, height, xticks=[], yticks=[], frameon=False)


def _figure_title(fig: Figure, title: str, x: float, y: float) -> None:
    """A bold figure title at figure coordinates (x, y), top-left anchored."""
    fig.text(x, y, title, fontsize=15, weight="bold", color=_INK, va="top", ha="left",
             parse_math=False)


def _rgb01(color: Sequence[int]) -> tuple[float, float, float]:
    return tuple(float(c) / 255.0 for c in color)  # type: ignore[return-value]


def _text_color(label: str) -> tuple[float, float, float]:
    """The emotion's colour, darkened when too light to read on white."""
    r, g, b = _rgb01(emotion_color(label))
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    k = min(1.0, 0.42 / lum) if lum > 0 else 1.0
    return (r * k, g * k, b * k)


def _display_name(emotion: str) -> tuple[str, bool]:
    """``(label as shown, trained?)``: ArtEmis labels canonicalised, free text kept."""
    text = " ".join(str(emotion).split()) or "?"
    if is_artemis_emotion(text):
        return parse_emotion(text), True
    return text, False


def _show(ax, image: np.ndarray, title: str | None = None, color=_INK, size: float = 11) -> None:
    """Draw a picture on image axes (:meth:`_Inches.image_axes`), titled.

    A picture larger than the axes is first brought to the axes' size in pixels with OpenCV's
    area filter (the right filter for shrinking) and drawn 1:1 with ``nearest``; matplotlib's own
    antialiased resampling, kept for pictures smaller than their axes, costs ~50 ms a picture.
    """
    img = to_rgb_uint8(image)
    h, w = img.shape[:2]
    box = ax.get_position()  # figure fraction
    fig_w, fig_h = ax.figure.get_size_inches() * ax.figure.dpi
    size_px = (max(1, round(box.width * fig_w)), max(1, round(box.height * fig_h)))
    if size_px[0] < w and size_px[1] < h:
        img = cv2.resize(img, size_px, interpolation=cv2.INTER_AREA)
        ax.imshow(img, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="antialiased")
    ax.set_axis_off()
    if title:
        ax.set_title(title, color=color, fontsize=size, pad=6, parse_math=False)


_WIDTHS: dict[tuple[str, int, float], float] = {}  # (text, font, dpi) → width in pixels
_MAX_WIDTHS = 50_000


def _measure(renderer, s: str, prop: FontProperties) -> float:
    """Rendered width of ``s`` in pixels, kept per (text, font properties, dpi) across figures:
    a collection run lays out the same words in every panel (layout measured ~1.5 s of its
    figures' 3 s per painting before the cache)."""
    if not s:
        return 0.0
    key = (s, hash(prop), float(renderer.dpi))
    w = _WIDTHS.get(key)
    if w is None:
        if len(_WIDTHS) >= _MAX_WIDTHS:
            _WIDTHS.clear()
        w = _WIDTHS[key] = renderer.get_text_width_height_descent(s, prop, ismath=False)[0]
    return w


def _wrap(text: str, prop: FontProperties, max_px: float, renderer) -> list[str]:
    """Greedy word wrap of ``text`` (paragraphs on ``\\n``) to lines at most ``max_px`` wide.

    Word widths are measured with the renderer (:func:`_measure`, once per distinct word) and
    summed with the width of a space; a word longer than a line is split.
    """

    def width(s: str) -> float:
        return _measure(renderer, s, prop)

    limit = max_px * 0.98  # headroom for kerning/rounding across the summed words
    space = _measure(renderer, "a a", prop) - 2 * width("a")
    lines: list[str] = []
    for para in str(text).split("\n"):
        line, line_w = "", 0.0
        for word in para.split():
            w = width(word)
            if line and line_w + space + w <= limit:
                line, line_w = f"{line} {word}", line_w + space + w
                continue
            if line:
                lines.append(line)
            while w > limit and len(word) > 1:
                lo, hi = 1, len(word) - 1  # longest prefix that fits: binary search
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    if _measure(renderer, word[:mid], prop) <= limit:
                        lo = mid
                    else:
                        hi = mid - 1
                lines.append(word[:lo])
                word = word[lo:]
                w = width(word)
            line, line_w = word, w
        lines.append(line)
    return lines


def _ellipsize(line: str, prop: FontProperties, max_px: float, renderer) -> str:
    words = line.rstrip().split(" ")
    while words:
        cand = " ".join(words).rstrip(" ,;:.-") + "…"
        if _measure(renderer, cand, prop) <= max_px:
            return cand
        words.pop()
    return "…"


def _stack_text(
    fig: Figure, renderer, box: tuple[float, float, float, float], items: list[dict]
) -> float:
    """Write text blocks top-down in a box of the figure; return the height used, in points.

    ``box``: ``(left, top, width, height)`` in inches from the figure's top-left corner.
    Each item: ``text``, ``size`` (pt), optional ``color``, ``weight``, ``style``, ``gap`` (pt
    after), ``shrink`` (cut with an ellipsis to fit the box's height).
    """
    left, top, width, height = box
    fig_w, fig_h = fig.get_size_inches()
    width_px = width * fig.dpi
    px_per_pt = fig.dpi / 72.0
    avail_pt = height * 72.0
    y_pt = 0.0
    for it in items:
        prop = FontProperties(
            size=it["size"], weight=it.get("weight", "normal"), style=it.get("style", "normal")
        )
        lines = _wrap(it["text"], prop, width_px, renderer)
        trans = offset_copy(fig.transFigure, fig=fig, x=0, y=-y_pt, units="points")
        t = fig.text(
            left / fig_w,
            1.0 - top / fig_h,
            "\n".join(lines),
            transform=trans,
            va="top",
            ha="left",
            fontproperties=prop,
            color=it.get("color", _INK),
            linespacing=_LINESPACING,
            parse_math=False,
        )
        h_pt = t.get_window_extent(renderer).height / px_per_pt
        if it.get("shrink") and y_pt + h_pt > avail_pt and len(lines) > 1:
            line_pt = h_pt / len(lines)
            keep = max(1, int((avail_pt - y_pt) // line_pt))
            while True:
                shown = lines[:keep]
                if keep < len(lines):
                    shown[-1] = _ellipsize(shown[-1], prop, width_px, renderer)
                t.set_text("\n".join(shown))
                h_pt = t.get_window_extent(renderer).height / px_per_pt
                if y_pt + h_pt <= avail_pt or keep == 1:
                    break
                keep -= 1
        y_pt += h_pt + it.get("gap", 0.0)
    return y_pt


def _stack_height(items: list[dict], width_in: float, dpi: float) -> float:
    """Height in inches that :func:`_stack_text` needs for ``items`` in a box ``width_in`` wide."""
    fig, renderer = _new_figure(width_in, 20.0, dpi)
    try:
        box = (0.0, 0.0, width_in, 20.0)
        return _stack_text(fig, renderer, box, [dict(it, shrink=False) for it in items]) / 72.0
    finally:
        fig.clear()


def _normalize_distribution(distribution: Mapping[str, float]) -> list[tuple[str, float]]:
    """``[(label, prob)]``: ArtEmis emotions first in ArtEmis order, then any other keys."""
    known: dict[str, float] = {}
    other: list[tuple[str, float]] = []
    for key, value in distribution.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"Distribution value for {key!r} is not a number: {value!r}."
            ) from None
        v = 0.0 if not math.isfinite(v) else v
        name, trained = _display_name(key)
        if trained:
            known[name] = v
        else:
            other.append((name, v))
    return [(e, known[e]) for e in ARTEMIS_EMOTIONS if e in known] + other


def _cue_items(cues: Mapping | None, scale: float = 1.0) -> list[dict]:
    """The "what the region shows" block of a panel: a title and :func:`cue_lines`."""
    lines = cue_lines(cues)
    if not lines:
        return []
    items = [dict(text=CUES_TITLE, size=10 * scale, weight="bold", color=_MUTED,
                  gap=2 * scale)]
    items += [dict(text=line, size=9.5 * scale, color=_MUTED, gap=1 * scale, shrink=True)
              for line in lines]
    return items


def _domain_items(lines: Sequence[str], scale: float = 1.0) -> list[dict]:
    """The in-domain block of a panel (:func:`~emosem.in_domain.domain_lines`): the scores, then
    the note about a painting unlike the training ones, in the note colour."""
    return [dict(text=line, size=9.5 * scale, color=_MUTED if i == 0 else _NOTE,
                 style="normal" if i == 0 else "italic", gap=1 * scale, shrink=True)
            for i, line in enumerate(lines)]


def _emotion_items(
    emotion: str,
    confidence: float | None,
    explanation: str | None,
    scale: float = 1.0,
    title: bool = True,
    cues: Mapping | None = None,
    cue_block: bool = True,
    domain: Sequence[str] = (),
) -> list[dict]:
    """Text blocks for one result: name, confidence, free-text note, explanation, and (with
    ``cue_block``) the cues, then the ``domain`` lines (:func:`~emosem.in_domain.domain_lines`);
    ``cues`` also say why there is no explanation for an empty region."""
    name, trained = _display_name(emotion)
    items: list[dict] = []
    if title:
        items.append(
            dict(text=name, size=20 * scale, weight="bold", color=_text_color(name), gap=3 * scale)
        )
        if confidence is not None:
            items.append(
                dict(
                    text=f"confidence {float(confidence):.2f}",
                    size=11 * scale,
                    color=_MUTED,
                    gap=2 * scale,
                )
            )
    if not trained:
        items.append(
            dict(text=FREE_TEXT_NOTE, size=9.5 * scale, style="italic", color=_NOTE, gap=2 * scale)
        )
    if items:
        items[-1]["gap"] = items[-1].get("gap", 0.0) + 8 * scale
    if explanation is not None and str(explanation).strip():
        text = " ".join(str(explanation).split())
        if len(text) > _MAX_CHARS:
            text = text[:_MAX_CHARS].rsplit(" ", 1)[0] + " …"
        text = "“" + text + "”"
        items.append(dict(text=text, size=12 * scale, color=_INK, shrink=True))
    else:
        items.append(
            dict(
                text=f"({no_explanation_note(cues)})", size=11 * scale, style="italic", color=_MUTED,
                shrink=True,
            )
        )
    block = _cue_items(cues, scale) if cue_block else []
    if block:
        items[-1]["gap"] = items[-1].get("gap", 0.0) + 10 * scale
    items += block
    if domain:
        items[-1]["gap"] = items[-1].get("gap", 0.0) + 8 * scale
        items += _domain_items(domain, scale)
    return items


# ------------------------------------------------------------------------------ distribution


def plot_distribution(
    ax, distribution: Mapping[str, float], highlight: str | None = None, fontsize: float = 9
):
    """Horizontal bars of an emotion distribution on ``ax`` (ArtEmis order, top to bottom).

    Bars take each emotion's colour; ``highlight`` (any spelling) is drawn opaque with a dark
    edge and a bold label, the others lighter. Returns ``ax``.
    """
    rows = _normalize_distribution(distribution)
    if not rows:
        ax.set_axis_off()
        ax.text(
            0.5,
            0.5,
            "no distribution",
            ha="center",
            va="center",
            color=_MUTED,
            transform=ax.transAxes,
        )
        return ax
    hl = _display_name(highlight)[0] if highlight else None
    labels = [name for name, _ in rows]
    values = np.array([v for _, v in rows], dtype=float)
    y = np.arange(len(rows))
    for i, (name, v) in enumerate(rows):
        on = hl is None or name == hl
        ax.barh(
            i,
            v,
            height=0.72,
            color=_rgb01(emotion_color(name)),
            alpha=1.0 if on else 0.45,
            edgecolor=_INK if (hl is not None and name == hl) else "none",
            linewidth=1.4,
        )
    vmax = float(values.max()) if values.size and values.max() > 0 else 1.0
    ax.set_xlim(0, vmax * 1.25)
    for i, v in enumerate(values):
        ax.text(
            v + vmax * 0.02,
            i,
            f"{v:.2f}",
            va="center",
            ha="left",
            fontsize=fontsize - 1,
            color=_MUTED,
        )
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=fontsize)
    for tick, name in zip(ax.get_yticklabels(), labels):
        if hl is not None and name == hl:
            tick.set_fontweight("bold")
            tick.set_color(_text_color(name))
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.tick_params(axis="x", labelsize=fontsize - 1.5, colors=_MUTED)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#bbbbbb")
    ax.set_xlabel("probability", fontsize=fontsize - 1, color=_MUTED)
    return ax


def _column_title(ax, text: str, left_in: float, size: float = 10) -> None:
    """A title above ``ax`` starting ``left_in`` inches left of it (over the tick labels)."""
    trans = offset_copy(ax.transAxes, fig=ax.figure, x=-left_in * 72, y=8, units="points")
    ax.text(
        0,
        1,
        text,
        transform=trans,
        fontsize=size,
        color=_INK,
        weight="bold",
        va="bottom",
        ha="left",
        parse_math=False,
    )


def distribution_figure(
    distribution: Mapping[str, float],
    highlight: str | None = None,
    out_path: PathLike | None = None,
    dpi: float = 110,
) -> Figure:
    """A small figure with only the distribution bar chart; saved to ``out_path`` if given."""
    n = max(1, len(distribution))
    bars_h = _BAR_IN * n
    width, left, top, bottom = 5.6, 1.35, 0.45, 0.55
    fig, _ = _new_figure(width, top + bars_h + bottom, dpi)
    ax = _Inches(fig).axes(left, top, width - left - 0.35, bars_h)
    plot_distribution(ax, distribution, highlight=highlight)
    ax.set_title("emotion distribution", fontsize=11, color=_INK, loc="left", pad=8)
    _save(fig, out_path)
    return fig


# ------------------------------------------------------------------------------------ panel


def panel_figure(
    image: np.ndarray,
    overlay: np.ndarray,
    emotion: str,
    explanation: str | None,
    confidence: float | None,
    distribution: Mapping[str, float] | None = None,
    title: str | None = None,
    out_path: PathLike | None = None,
    dpi: float = 110,
    cues: Mapping | None = None,
    in_domain: float | None = None,
    region_in_domain: float | None = None,
) -> Figure:
    """One result as a wide figure: painting | overlay | text (and distribution bars).

    Args:
        image: ``(H, W, 3)`` uint8 painting.
        overlay: ``(H', W', 3)`` uint8 overlay (normally the same size as ``image``).
        emotion: the prompted emotion; free text gets an "outside the trained set" note.
        explanation: the first-person explanation, or ``None``.
        confidence: e.g. the predicted IoU, or ``None``.
        distribution: optional ``{emotion: probability}`` over the nine ArtEmis emotions.
        title: optional figure title (e.g. the painting's name).
        out_path: PNG to write, parent folders created.
        cues: the region's measured cues record (shown as "what the region shows").
        in_domain, region_in_domain: the painting's and the region's in-domain scores
            (:mod:`emosem.inference.domain`; None: not measured), with a note where they are low.
    """
    img = to_rgb_uint8(image)
    ovl = to_rgb_uint8(overlay)
    h, w = img.shape[:2]
    r = w / h
    n_dist = len(distribution) if distribution else 0
    name, _ = _display_name(emotion)
    items = _emotion_items(emotion, confidence, explanation, cues=cues,
                           domain=domain_lines(in_domain, region_in_domain))

    # Sizes in inches: images keep the painting's aspect; the text column's height is measured.
    margin, gap, text_w, max_img_w = 0.3, 0.3, 4.8, 6.2
    top = 0.4 + (0.5 if title else 0.0)
    bottom = 0.3
    dist_gap, dist_block = (0.3, 0.3 + _BAR_IN * n_dist + 0.45) if n_dist else (0.0, 0.0)
    text_need = min(_stack_height(items, text_w, dpi) + 0.05, 6.0)
    column_need = text_need + dist_gap + dist_block
    preferred = 4.6 if r >= 0.75 else min(6.4, 3.45 / r)
    img_h = min(preferred, max_img_w / r)
    content_h = max(img_h, column_need)
    img_h = min(content_h, max_img_w / r, max(preferred, 6.4))
    img_w = img_h * r

    fig_w = margin + 2 * (img_w + gap) + text_w + margin
    fig_h = top + content_h + bottom
    fig, renderer = _new_figure(fig_w, fig_h, dpi)
    place = _Inches(fig)
    if title:
        _figure_title(fig, title, margin / fig_w, 1 - 0.2 / fig_h)
    _show(
        place.image_axes(margin, top, img_w, img_h),
        img,
        "painting",
        _MUTED,
    )
    _show(
        place.image_axes(margin + img_w + gap, top, img_w, img_h),
        ovl,
        f"regions evoking “{name}”",
        _text_color(name),
    )

    text_left = margin + 2 * (img_w + gap)
    _stack_text(fig, renderer, (text_left, top, text_w, content_h - dist_gap - dist_block), items)
    if n_dist:
        label_w = 1.3
        dist_ax = place.axes(
            text_left + label_w,
            top + content_h - dist_block + 0.3,
            text_w - label_w - 0.1,
            _BAR_IN * n_dist,
        )
        plot_distribution(dist_ax, distribution, highlight=name)
        _column_title(dist_ax, "emotion distribution", label_w)
    _save(fig, out_path)
    return fig


# ------------------------------------------------------------------------------------- grid


def grid_figure(
    image: np.ndarray,
    results: Sequence[Mapping[str, Any]],
    distribution: Mapping[str, float] | None = None,
    title: str | None = None,
    out_path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Up to nine results in a grid of at most 3x3 tiles, plus the painting and distribution.

    Args:
        image: ``(H, W, 3)`` uint8 painting, shown in the right-hand column (and used for a
            result whose ``overlay`` is missing).
        results: dicts with ``emotion`` (str), ``overlay`` (``(H, W, 3)`` uint8),
            ``explanation`` (str or None), ``confidence`` (float or None) and optionally
            ``cues`` (a cues record: an empty region's tile says so). Beyond nine,
            the rest are dropped with a warning.
        distribution: optional ``{emotion: probability}``, drawn under the painting.
        title: optional figure title.
        out_path: PNG to write, parent folders created.
        cues: the region's measured cues record (shown as "what the region shows").
    """
    img = to_rgb_uint8(image)
    results = list(results)
    if len(results) > 9:
        logger.warning("grid_figure shows at most 9 results; dropping %d", len(results) - 9)
        results = results[:9]
    h, w = img.shape[:2]
    r = w / h

    n = max(1, len(results))
    ncols = min(3, n)
    nrows = math.ceil(n / 3)
    tile_w, col_gap, row_gap, margin = 3.5, 0.3, 0.25, 0.3
    head_h = 0.4
    img_h = min(tile_w / r, 4.2)
    img_w = img_h * r
    tile_items = [
        _emotion_items(
            res.get("emotion", "?"), None, res.get("explanation"), scale=0.78, title=False,
            cues=res.get("cues"), cue_block=False,
        )
        for res in results
    ]
    need = [_stack_height(it, tile_w, dpi) + 0.15 for it in tile_items]
    text_h = [min(2.2, max([0.3] + need[i : i + 3])) for i in range(0, len(need) or 1, 3)]
    row_top = [0.0]
    for th in text_h:
        row_top.append(row_top[-1] + head_h + img_h + th + row_gap)
    side_w = 3.6
    side_img_h = min(side_w / r, 4.0)
    side_img_w = side_img_h * r
    dist_h = _BAR_IN * len(distribution) if distribution else 0.0
    side_h = head_h + side_img_h + (0.55 + dist_h + 0.5 if distribution else 0.0)

    top = margin + (0.5 if title else 0.0)
    grid_h = row_top[nrows] - row_gap
    fig_w = margin + ncols * tile_w + (ncols - 1) * col_gap + 0.5 + side_w + margin
    fig_h = top + max(grid_h, side_h) + margin
    fig, renderer = _new_figure(fig_w, fig_h, dpi)
    place = _Inches(fig)
    if title:
        _figure_title(fig, title, margin / fig_w, 1 - 0.25 / fig_h)

    for k, res in enumerate(results):
        row, col = divmod(k, 3)
        x0 = margin + col * (tile_w + col_gap)
        y0 = top + row_top[row]
        name, _ = _display_name(res.get("emotion", "?"))
        conf = res.get("confidence")
        label = name if conf is None else f"{name}  ·  {float(conf):.2f}"
        overlay = res.get("overlay")
        shown = img if overlay is None else overlay
        ax = place.image_axes(x0 + (tile_w - img_w) / 2, y0 + head_h, img_w, img_h)
        _show(ax, shown, label, _text_color(name), size=12)
        ax.title.set_fontweight("bold")
        text_box = (x0, y0 + head_h + img_h + 0.08, tile_w, text_h[row] - 0.12)
        _stack_text(fig, renderer, text_box, tile_items[k])

    side_x = fig_w - margin - side_w
    ax = place.image_axes(side_x + (side_w - side_img_w) / 2, top + head_h, side_img_w, side_img_h)
    _show(ax, img, "painting", _MUTED, size=12)
    if distribution:
        label_w = 1.2
        dist_ax = place.axes(
            side_x + label_w, top + head_h + side_img_h + 0.55, side_w - label_w - 0.1, dist_h
        )
        plot_distribution(dist_ax, distribution, fontsize=8.5)
        _column_title(dist_ax, "emotion distribution", label_w)
    _save(fig, out_path)
    return fig
