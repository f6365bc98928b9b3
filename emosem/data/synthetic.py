"""Procedural ArtEmis-style data: painterly pictures with emotion-evoking motifs, exact masks,
and varied first-person utterances, written in exactly the real ArtEmis/COCO formats.

Each painting has a background (sky/ground landscape or abstract colour fields, with a palette per
art style), 1-4 motifs from :data:`MOTIFS` (each with a distinct shape and colour signature and
an emotion), and a brush-stroke pass that keeps every stroke inside the region it starts in, so
each motif's mask is exactly what is visible of it. 5-8 annotators per painting vote for the
emotion of one motif (bigger motifs get more votes; a few choose "something else") and write an
utterance that names the motif, its colour, position and size.

Everything is deterministic by ``seed``: painting ``i`` uses its own RNG seeded from
``(seed, i)``, so the output does not depend on the number of worker processes.

Output layout (``generate_synthetic_artemis``)::

    OUT/images/{art_style}/{painting}.jpg
    OUT/artemis_dataset_release_v0.csv     art_style,painting,emotion,utterance,repetition
    OUT/stimulus_masks.json                COCO; RLE segmentations (str counts) + "motif"
"""

from __future__ import annotations

import colorsys
import csv
import json
import logging
import math
import multiprocessing as mp
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_util

from emosem.emotions import ARTEMIS_EMOTIONS, EMOTION_TO_INDEX

logger = logging.getLogger(__name__)

CSV_NAME = "artemis_dataset_release_v0.csv"
MASKS_NAME = "stimulus_masks.json"
IMAGES_DIR = "images"
CSV_COLUMNS = ("art_style", "painting", "emotion", "utterance", "repetition")

Color = tuple[int, int, int]

# --------------------------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------------------------


def _hsv(rng: np.random.Generator, h: Sequence[float], s: Sequence[float], v: Sequence[float]) -> Color:
    """A random RGB colour with hue/saturation/value drawn from the given ranges (hue wraps)."""
    hh = rng.uniform(h[0], h[1]) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hh, rng.uniform(*s), rng.uniform(*v))
    return (int(r * 255 + 0.5), int(g * 255 + 0.5), int(b * 255 + 0.5))


def _shade(c: Color, f: float) -> Color:
    return tuple(int(min(255, max(0, round(x * f)))) for x in c)  # type: ignore[return-value]


def _mix(a: Color, b: Color, t: float) -> Color:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))  # type: ignore[return-value]


class _Layer:
    """An RGB layer and its exact mask, drawn together with OpenCV (no anti-aliasing)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rgb = np.zeros((size, size, 3), np.uint8)
        self.mask = np.zeros((size, size), np.uint8)

    @staticmethod
    def _pts(pts) -> np.ndarray:
        return np.round(np.asarray(pts, np.float64)).astype(np.int32).reshape(-1, 1, 2)

    @staticmethod
    def _pt(p) -> tuple[int, int]:
        return int(round(p[0])), int(round(p[1]))

    def poly(self, pts, color: Color, mask: bool = True) -> None:
        p = [self._pts(pts)]
        cv2.fillPoly(self.rgb, p, color)
        if mask:
            cv2.fillPoly(self.mask, p, 1)

    def circle(self, c, r: float, color: Color, mask: bool = True, thickness: int = -1) -> None:
        c, r = self._pt(c), max(1, int(round(r)))
        cv2.circle(self.rgb, c, r, color, thickness)
        if mask:
            cv2.circle(self.mask, c, r, 1, thickness)

    def ellipse(self, c, axes, angle: float, color: Color, mask: bool = True, start: float = 0,
                end: float = 360, thickness: int = -1) -> None:
        c = self._pt(c)
        ax = (max(1, int(round(axes[0]))), max(1, int(round(axes[1]))))
        cv2.ellipse(self.rgb, c, ax, angle, start, end, color, thickness)
        if mask:
            cv2.ellipse(self.mask, c, ax, angle, start, end, 1, thickness)

    def line(self, p1, p2, color: Color, thickness: float, mask: bool = True) -> None:
        t = max(1, int(round(thickness)))
        cv2.line(self.rgb, self._pt(p1), self._pt(p2), color, t)
        if mask:
            cv2.line(self.mask, self._pt(p1), self._pt(p2), 1, t)

    def polyline(self, pts, color: Color, thickness: float, mask: bool = True, closed: bool = False) -> None:
        t = max(1, int(round(thickness)))
        p = [self._pts(pts)]
        cv2.polylines(self.rgb, p, closed, color, t)
        if mask:
            cv2.polylines(self.mask, p, closed, 1, t)


def _bezier(p0, p1, p2, n: int = 10) -> list[tuple[float, float]]:
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)
    return [tuple(p) for p in pts]


BRIGHT = (
    (230, 40, 50), (250, 200, 30), (40, 110, 230), (60, 190, 80), (240, 110, 190),
    (250, 140, 20), (150, 60, 210), (30, 200, 210),
)


def _bright(rng: np.random.Generator, exclude: Sequence[Color] = ()) -> Color:
    choices = [c for c in BRIGHT if c not in exclude] or list(BRIGHT)
    base = choices[int(rng.integers(len(choices)))]
    return tuple(int(np.clip(x + rng.integers(-15, 16), 0, 255)) for x in base)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Motifs: each draw function paints into a _Layer around (cx, cy) with extent ~s pixels and
# returns its main colour (None: many colours).
# --------------------------------------------------------------------------------------------

DrawFn = Callable[[_Layer, np.random.Generator, float, float, float], "Color | None"]


def _draw_wave(L: _Layer, rng, cx, cy, s):
    w, h = s, s * rng.uniform(0.8, 0.95)
    d = 1 if rng.random() < 0.5 else -1

    def P(fx, fy):  # fx: 0 (back) .. 1 (front); fy: 0 (bottom) .. 1 (crest)
        return (cx + d * (fx - 0.5) * w, cy + (0.5 - fy) * h)

    body = _hsv(rng, (0.53, 0.63), (0.55, 0.85), (0.25, 0.45))
    pts = [P(0.55 * t, t**1.8) for t in np.linspace(0, 1, 12)]
    pts += [P(0.68, 0.98), P(0.8, 0.88), P(0.87, 0.72), P(0.8, 0.58), P(0.72, 0.66),
            P(0.65, 0.55), P(0.64, 0.36), P(0.72, 0.17), P(0.86, 0.05), P(1.0, 0.0)]
    L.poly(pts, body)
    L.poly([P(0.0, 0.0), P(0.3, 0.12), P(0.5, 0.55), P(0.55, 0.98), P(0.62, 0.6), P(0.6, 0.0)],
           _shade(body, 0.7), mask=False)
    L.poly([P(0.58, 0.0), P(0.62, 0.5), P(0.7, 0.62), P(0.66, 0.38), P(0.75, 0.12), P(0.9, 0.0)],
           _mix(body, (140, 215, 220), 0.35), mask=False)
    foam = _hsv(rng, (0.48, 0.56), (0.0, 0.12), (0.9, 1.0))
    t = max(2.0, 0.055 * s)
    L.polyline([P(0.42, 0.8), P(0.55, 1.0), P(0.68, 0.98), P(0.8, 0.88), P(0.87, 0.72), P(0.8, 0.6)], foam, t)
    for _ in range(int(rng.integers(4, 9))):
        L.circle(P(0.75 + rng.uniform(-0.15, 0.15), 0.95 + rng.uniform(-0.05, 0.1)),
                 max(1.5, s * rng.uniform(0.012, 0.028)), foam)
    L.ellipse(P(0.55, 0.02), (0.47 * w, max(2.0, 0.05 * h)), 0, foam)
    return body


def _draw_shadow_figure(L: _Layer, rng, cx, cy, s):
    h = s
    w = s * rng.uniform(0.42, 0.55)
    col = _hsv(rng, (0.7, 0.85), (0.25, 0.6), (0.05, 0.15))
    top, bot = cy - h / 2, cy + h / 2
    hr = 0.085 * h
    hx = cx + rng.uniform(-0.02, 0.02) * h
    L.circle((hx, top + hr), hr, col)
    neck = top + 1.8 * hr
    sh_y = neck + 0.07 * h
    sw, hw = 0.3 * w, 0.5 * w
    cloak = [(hx - 0.55 * hr, neck - 0.3 * hr), (hx + 0.55 * hr, neck - 0.3 * hr), (cx + sw, sh_y)]
    n = int(rng.integers(5, 9))
    for i in range(n + 1):
        x = cx + hw - 2 * hw * i / n
        cloak.append((x, bot - (0.07 * h if i % 2 else 0.0)))
    cloak.append((cx - sw, sh_y))
    L.poly(cloak, col)
    t = max(3.0, 0.045 * s)
    for side in (-1, 1):
        sx, sy = cx + side * sw * 0.9, sh_y + 0.03 * h
        hand = (cx + side * s * rng.uniform(0.32, 0.45), sy + h * rng.uniform(-0.15, 0.25))
        elbow = ((sx + hand[0]) / 2, (sy + hand[1]) / 2 - 0.05 * h)
        L.polyline([(sx, sy), elbow, hand], col, t)
        ang = math.atan2(hand[1] - elbow[1], hand[0] - elbow[0])
        for da in (-0.5, 0.0, 0.5):
            L.line(hand, (hand[0] + 0.07 * s * math.cos(ang + da), hand[1] + 0.07 * s * math.sin(ang + da)),
                   col, max(2.0, 0.02 * s))
    eye = _hsv(rng, (-0.02, 0.14), (0.8, 1.0), (0.85, 1.0))
    for side in (-1, 1):
        L.circle((hx + side * 0.38 * hr, top + 0.9 * hr), max(1.0, 0.18 * hr), eye, mask=False)
    return col


def _draw_sun(L: _Layer, rng, cx, cy, s):
    R = s / 2
    r = R * rng.uniform(0.42, 0.52)
    col = _hsv(rng, (0.1, 0.16), (0.75, 1.0), (0.95, 1.0))
    ray = _hsv(rng, (0.06, 0.12), (0.8, 1.0), (0.9, 1.0))
    n = int(rng.integers(12, 21))
    a0 = rng.uniform(0, 2 * math.pi)
    half = math.pi / n * rng.uniform(0.35, 0.5)
    for k in range(n):
        a = a0 + 2 * math.pi * k / n
        tip = R * (rng.uniform(0.88, 1.0) if k % 2 == 0 else rng.uniform(0.68, 0.85))
        L.poly([(cx + 0.95 * r * math.cos(a - half), cy + 0.95 * r * math.sin(a - half)),
                (cx + tip * math.cos(a), cy + tip * math.sin(a)),
                (cx + 0.95 * r * math.cos(a + half), cy + 0.95 * r * math.sin(a + half))], ray)
    L.circle((cx, cy), r, col)
    L.circle((cx, cy), 0.72 * r, _mix(col, (255, 250, 225), 0.4), mask=False)
    L.circle((cx, cy), 0.4 * r, _mix(col, (255, 255, 240), 0.7), mask=False)
    return col


def _draw_mountain(L: _Layer, rng, cx, cy, s):
    w = s * rng.uniform(1.0, 1.15)
    h = s * rng.uniform(0.6, 0.78)
    col = _hsv(rng, (0.55, 0.75), (0.12, 0.4), (0.35, 0.58))
    base, top = cy + h / 2, cy - h / 2
    px = cx + rng.uniform(-0.12, 0.12) * w
    lf, rf = (cx - w / 2, base), (cx + w / 2, base)
    ridge = [lf]
    if rng.random() < 0.7:
        ridge += [(cx - w * rng.uniform(0.25, 0.33), base - h * rng.uniform(0.4, 0.6)),
                  (cx - w * rng.uniform(0.14, 0.2), base - h * rng.uniform(0.3, 0.4))]
    ridge.append((px, top))
    if rng.random() < 0.7:
        ridge += [(cx + w * rng.uniform(0.14, 0.2), base - h * rng.uniform(0.4, 0.55)),
                  (cx + w * rng.uniform(0.26, 0.34), base - h * rng.uniform(0.45, 0.65))]
    ridge.append(rf)
    jag = []
    for a, b in zip(ridge[:-1], ridge[1:]):
        jag.append(a)
        for t in (0.33, 0.66):
            jag.append((a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t + rng.uniform(-0.035, 0.035) * h))
    jag.append(rf)
    L.poly(jag, col)
    L.poly([(px, top), (px + 0.06 * w, base), rf], _shade(col, 0.72), mask=False)
    cap = rng.uniform(0.22, 0.36) * h
    xl = px - (px - lf[0]) * cap / h
    xr = px + (rf[0] - px) * cap / h
    snow = [(px, top - 3), (xr + 3, top + cap)]
    n = 6
    for i in range(1, n):
        x = xr - (xr - xl) * i / n
        snow.append((x, top + cap * (0.7 if i % 2 else 1.0)))
    snow.append((xl - 3, top + cap))
    L.poly(snow, _hsv(rng, (0.55, 0.62), (0.0, 0.1), (0.92, 1.0)), mask=False)
    return col


def _draw_wilted_tree(L: _Layer, rng, cx, cy, s):
    h = s
    col = _hsv(rng, (0.04, 0.1), (0.3, 0.6), (0.2, 0.4))
    base = (cx + rng.uniform(-0.05, 0.05) * s, cy + h / 2)
    topp = (cx + rng.uniform(-0.12, 0.12) * s, cy - 0.12 * h)
    ctrl = ((base[0] + topp[0]) / 2 + rng.uniform(-0.1, 0.1) * s, (base[1] + topp[1]) / 2)
    center = _bezier(base, ctrl, topp, 9)
    tb, tt = max(4.0, 0.13 * s), max(2.0, 0.045 * s)
    left, right = [], []
    for i, (x, y) in enumerate(center):
        hw = (tb + (tt - tb) * i / (len(center) - 1)) / 2
        left.append((x - hw, y))
        right.append((x + hw, y))
    L.poly(left + right[::-1], col)
    L.ellipse((base[0], base[1] - 0.02 * s), (0.1 * s, 0.03 * s), 0, col)
    leaf = _hsv(rng, (0.08, 0.14), (0.5, 0.8), (0.45, 0.7))
    k = int(rng.integers(4, 7))
    for j in range(k):
        i0 = int(rng.integers(4, len(center)))
        p0 = center[i0]
        side = -1 if j % 2 == 0 else 1
        ln = s * rng.uniform(0.3, 0.45)
        p1 = (p0[0] + side * ln * 0.45, p0[1] - ln * rng.uniform(0.3, 0.5))
        p2 = (p0[0] + side * ln * 0.85, p0[1] - ln * rng.uniform(0.0, 0.2))
        p3 = (p0[0] + side * ln * 0.95, p0[1] + ln * rng.uniform(0.3, 0.6))
        pts = _bezier(p0, p1, p2, 6) + [p3]
        L.polyline(pts, col, max(2.0, 0.04 * s * (1.0 - 0.4 * i0 / len(center))))
        if rng.random() < 0.7:
            L.ellipse(p3, (max(1.5, 0.025 * s), max(1.5, 0.04 * s)), 0, leaf)
    return col


def _draw_weeping_figure(L: _Layer, rng, cx, cy, s):
    h = s
    d = 1 if rng.random() < 0.5 else -1
    col = _hsv(rng, (0.57, 0.68), (0.35, 0.7), (0.35, 0.6))

    def P(fx, fy):
        return (cx + d * fx * h, cy + fy * h)

    back = _bezier(P(-0.3, 0.45), P(-0.34, -0.05), P(-0.05, -0.17), 8)
    front = _bezier(P(0.1, -0.08), P(0.3, 0.0), P(0.34, 0.45), 8)
    L.poly(back + front, col)
    L.circle(P(0.13, -0.14), 0.11 * h, _shade(col, 0.85))
    skin = _hsv(rng, (0.05, 0.09), (0.2, 0.4), (0.8, 0.95))
    L.line(P(0.0, 0.05), P(0.2, -0.07), _shade(col, 0.9), max(3.0, 0.07 * h))
    L.ellipse(P(0.22, -0.09), (0.06 * h, 0.05 * h), 0, skin)
    tear = _hsv(rng, (0.52, 0.58), (0.3, 0.5), (0.9, 1.0))
    for i in range(int(rng.integers(2, 4))):
        L.circle(P(0.25 + 0.02 * i, -0.01 + 0.05 * i), max(1.5, 0.016 * h), tear)
    for fx in (-0.15, 0.0, 0.15):
        L.line(P(fx, 0.1), P(fx * 1.3, 0.44), _shade(col, 0.7), max(1.0, 0.012 * h), mask=False)
    return col


def _cloud(L: _Layer, rng, cx, y0, w, ch, col):
    n = int(rng.integers(4, 7))
    for i in range(n):
        x = cx - 0.4 * w + 0.8 * w * i / (n - 1) + rng.uniform(-0.04, 0.04) * w
        r = ch * rng.uniform(0.35, 0.55) * (1.0 - 0.35 * abs(i / (n - 1) - 0.5))
        L.circle((x, y0 + 0.12 * ch - r * 0.4), r, col)
    L.ellipse((cx, y0 + 0.22 * ch), (0.48 * w, 0.22 * ch), 0, col)
    L.ellipse((cx, y0 + 0.3 * ch), (0.42 * w, 0.12 * ch), 0, _shade(col, 0.75), mask=False)


def _draw_rain_cloud(L: _Layer, rng, cx, cy, s):
    w, ch = s, s * rng.uniform(0.34, 0.42)
    y0 = cy - s / 2 + ch / 2
    col = _hsv(rng, (0.55, 0.65), (0.0, 0.14), (0.38, 0.6))
    rain = _hsv(rng, (0.56, 0.62), (0.2, 0.4), (0.62, 0.8))
    slant = rng.uniform(-0.25, 0.25)
    for _ in range(int(rng.integers(9, 16))):
        x = cx + rng.uniform(-0.38, 0.38) * w
        ys = y0 + 0.3 * ch + rng.uniform(0, 0.1) * s
        ln = s * rng.uniform(0.3, 0.5)
        ye = min(ys + ln, cy + s / 2)
        L.line((x, ys), (x + slant * (ye - ys), ye), rain, max(2.0, 0.016 * s))
    _cloud(L, rng, cx, y0, w, ch, col)
    return col


def _draw_cottage(L: _Layer, rng, cx, cy, s):
    ww, wh, rh = s * rng.uniform(0.62, 0.8), s * rng.uniform(0.36, 0.45), s * rng.uniform(0.28, 0.36)
    bottom = cy + (wh + rh) / 2
    wall_top, roof_top = bottom - wh, bottom - wh - rh
    wall = _hsv(rng, (0.08, 0.15), (0.12, 0.4), (0.8, 0.95))
    if rng.random() < 0.65:
        roof = _hsv(rng, (-0.01, 0.04), (0.55, 0.8), (0.5, 0.75))
    else:
        roof = _hsv(rng, (0.09, 0.12), (0.5, 0.7), (0.55, 0.72))
    chx = cx + rng.choice([-1, 1]) * ww * rng.uniform(0.18, 0.28)
    L.poly([(chx - 0.04 * s, roof_top + 0.35 * rh), (chx - 0.04 * s, roof_top + 0.05 * rh),
            (chx + 0.04 * s, roof_top + 0.05 * rh), (chx + 0.04 * s, roof_top + 0.35 * rh)],
           _hsv(rng, (0.0, 0.05), (0.5, 0.7), (0.4, 0.55)))
    L.poly([(cx - ww / 2, wall_top), (cx + ww / 2, wall_top), (cx + ww / 2, bottom), (cx - ww / 2, bottom)], wall)
    ov = 0.08 * ww
    L.poly([(cx - ww / 2 - ov, wall_top + 2), (cx + ww / 2 + ov, wall_top + 2),
            (cx + rng.uniform(-0.05, 0.05) * ww, roof_top)], roof)
    dx = cx + rng.uniform(-0.25, 0.25) * ww
    dw, dh = 0.17 * ww, 0.55 * wh
    L.poly([(dx - dw / 2, bottom), (dx - dw / 2, bottom - dh), (dx + dw / 2, bottom - dh), (dx + dw / 2, bottom)],
           _hsv(rng, (0.05, 0.09), (0.5, 0.7), (0.2, 0.35)), mask=False)
    glow = _hsv(rng, (0.11, 0.15), (0.55, 0.8), (0.9, 1.0))
    for wx in (cx - 0.3 * ww, cx + 0.3 * ww):
        if abs(wx - dx) < 0.25 * ww:
            continue
        ws = 0.16 * ww
        wy = wall_top + 0.3 * wh
        L.poly([(wx - ws / 2, wy), (wx + ws / 2, wy), (wx + ws / 2, wy + ws), (wx - ws / 2, wy + ws)], glow, mask=False)
        L.line((wx, wy), (wx, wy + ws), _shade(wall, 0.5), max(1.0, 0.01 * s), mask=False)
        L.line((wx - ws / 2, wy + ws / 2), (wx + ws / 2, wy + ws / 2), _shade(wall, 0.5), max(1.0, 0.01 * s), mask=False)
    return roof


def _draw_pond(L: _Layer, rng, cx, cy, s):
    ax, ay = s / 2, s * rng.uniform(0.17, 0.26)
    col = _hsv(rng, (0.47, 0.57), (0.35, 0.65), (0.68, 0.9))
    for _ in range(int(rng.integers(0, 4))):
        x = cx + rng.choice([-1, 1]) * ax * rng.uniform(0.7, 0.9)
        L.line((x, cy), (x + rng.uniform(-0.03, 0.03) * s, cy - ay - 0.15 * s),
               _hsv(rng, (0.2, 0.3), (0.4, 0.7), (0.3, 0.5)), max(2.0, 0.015 * s))
    L.ellipse((cx, cy), (ax, ay), 0, col)
    L.ellipse((cx, cy), (ax, ay), 0, _shade(col, 0.8), mask=False, thickness=max(1, int(0.03 * s)))
    light = _mix(col, (255, 255, 255), 0.45)
    for _ in range(int(rng.integers(4, 8))):
        x, y = cx + rng.uniform(-0.6, 0.6) * ax, cy + rng.uniform(-0.6, 0.6) * ay
        L.line((x - 0.08 * s, y), (x + 0.08 * s, y), light, max(1.0, 0.01 * s), mask=False)
    for _ in range(int(rng.integers(2, 6))):
        x, y = cx + rng.uniform(-0.65, 0.65) * ax, cy + rng.uniform(-0.5, 0.5) * ay
        L.ellipse((x, y), (0.05 * s, 0.025 * s), 0, _hsv(rng, (0.25, 0.35), (0.45, 0.7), (0.4, 0.6)), mask=False)
        if rng.random() < 0.4:
            L.circle((x, y), max(1.0, 0.015 * s), (240, 150, 190), mask=False)
    return col


def _draw_clown(L: _Layer, rng, cx, cy, s):
    fr = s * rng.uniform(0.2, 0.24)
    fx, fy = cx, cy + 0.1 * s
    hair = _bright(rng)
    hat = _bright(rng, exclude=[hair])
    collar = _bright(rng, exclude=[hair, hat])
    for side in (-1, 1):
        L.circle((fx + side * fr * 0.95, fy - 0.2 * fr), fr * 0.5, hair)
        L.circle((fx + side * fr * 1.2, fy + 0.25 * fr), fr * 0.38, hair)
    L.ellipse((fx, fy + fr * 1.05), (fr * 1.05, fr * 0.33), 0, collar)
    for i in range(7):
        L.circle((fx - fr + 2 * fr * i / 6, fy + fr * 1.2), fr * 0.17, collar)
    L.circle((fx, fy), fr, _hsv(rng, (0.08, 0.12), (0.0, 0.1), (0.94, 1.0)))
    tilt = rng.uniform(-0.3, 0.3) * fr
    apex = (fx + tilt, fy - 0.75 * fr - 1.45 * fr)
    L.poly([(fx - 0.7 * fr, fy - 0.7 * fr), (fx + 0.7 * fr, fy - 0.7 * fr), apex], hat)
    L.circle(apex, fr * 0.17, (250, 250, 245))
    for t in (0.3, 0.6):
        L.circle((fx + tilt * t, fy - 0.75 * fr - 1.45 * fr * t), fr * 0.1, (250, 250, 245), mask=False)
    dark = (30, 30, 40)
    for side in (-1, 1):
        L.ellipse((fx + side * 0.38 * fr, fy - 0.25 * fr), (0.14 * fr, 0.2 * fr), 0, (60, 120, 220), mask=False)
        L.circle((fx + side * 0.38 * fr, fy - 0.25 * fr), max(1.0, 0.07 * fr), dark, mask=False)
        L.circle((fx + side * 0.6 * fr, fy + 0.2 * fr), 0.13 * fr, (245, 150, 160), mask=False)
    L.ellipse((fx, fy + 0.3 * fr), (0.5 * fr, 0.32 * fr), 0, (210, 30, 40), mask=False, start=0, end=180,
              thickness=max(2, int(0.1 * fr)))
    L.circle((fx, fy + 0.08 * fr), 0.19 * fr, (225, 25, 35), mask=False)
    return hair


def _draw_balloons(L: _Layer, rng, cx, cy, s):
    n = int(rng.integers(3, 7))
    knot = (cx + rng.uniform(-0.05, 0.05) * s, cy + 0.45 * s)
    br = s * rng.uniform(0.09, 0.12)
    cols = [BRIGHT[i] for i in rng.permutation(len(BRIGHT))[:n]]
    ctr = (cx, cy - 0.17 * s)
    pos = []
    for i in range(n):
        a = 2 * math.pi * i / n + rng.uniform(-0.3, 0.3)
        rr = 0.0 if (i == 0 and n > 4) else s * rng.uniform(0.1, 0.2)
        pos.append((ctr[0] + rr * math.cos(a), ctr[1] + rr * math.sin(a) * 0.9))
    string = (90, 90, 90)
    for x, y in pos:
        L.line((x, y + 1.2 * br), knot, string, max(1.0, 0.01 * s))
    for (x, y), c in sorted(zip(pos, cols), key=lambda t: t[0][1]):
        L.ellipse((x, y), (br, 1.22 * br), 0, c)
        L.poly([(x, y + 1.15 * br), (x - 0.18 * br, y + 1.4 * br), (x + 0.18 * br, y + 1.4 * br)], _shade(c, 0.8))
        L.ellipse((x - 0.35 * br, y - 0.45 * br), (0.18 * br, 0.3 * br), -30, _mix(c, (255, 255, 255), 0.6), mask=False)
    return None


def _draw_fireworks(L: _Layer, rng, cx, cy, s):
    nb = int(rng.integers(1, 4))
    first = None
    for b in range(nb):
        if b == 0:
            c, rb = (cx, cy), s * rng.uniform(0.3, 0.42)
        else:
            rb = s * rng.uniform(0.13, 0.2)
            a = rng.uniform(0, 2 * math.pi)
            c = (cx + math.cos(a) * (s / 2 - rb) * 0.9, cy + math.sin(a) * (s / 2 - rb) * 0.9)
        col = _bright(rng)
        first = first or col
        tip = _mix(col, (255, 255, 230), 0.5)
        nr = int(rng.integers(14, 26))
        a0 = rng.uniform(0, 2 * math.pi)
        for k in range(nr):
            a = a0 + 2 * math.pi * k / nr + rng.uniform(-0.08, 0.08)
            r1 = rb * rng.uniform(0.7, 1.0)
            p1 = (c[0] + 0.18 * rb * math.cos(a), c[1] + 0.18 * rb * math.sin(a))
            p2 = (c[0] + r1 * math.cos(a), c[1] + r1 * math.sin(a))
            L.line(p1, p2, col, max(2.0, 0.022 * s))
            L.circle(p2, max(1.5, 0.02 * s), tip)
        L.circle(c, max(2.0, 0.08 * rb), (255, 250, 230))
    return first


def _draw_horse(L: _Layer, rng, cx, cy, s):
    d = 1 if rng.random() < 0.5 else -1
    kind = int(rng.integers(4))
    col = [
        _hsv(rng, (0.03, 0.07), (0.55, 0.8), (0.45, 0.62)),
        _hsv(rng, (0.0, 0.1), (0.1, 0.3), (0.1, 0.18)),
        _hsv(rng, (0.08, 0.12), (0.0, 0.08), (0.82, 0.95)),
        _hsv(rng, (0.04, 0.07), (0.6, 0.8), (0.28, 0.4)),
    ][kind]
    mane = (35, 30, 30) if kind != 1 else (15, 12, 12)

    def P(fx, fy):
        return (cx + d * fx * s, cy + fy * s)

    t = max(3.0, 0.045 * s)
    L.polyline([P(-0.3, -0.08), P(-0.43, -0.16), P(-0.5, -0.05)], mane, max(3.0, 0.05 * s))
    for leg in ([P(-0.2, 0.05), P(-0.34, 0.17), P(-0.48, 0.22)], [P(-0.25, 0.08), P(-0.28, 0.22), P(-0.36, 0.32)],
                [P(0.16, 0.05), P(0.3, 0.12), P(0.43, 0.07)], [P(0.12, 0.06), P(0.2, 0.2), P(0.3, 0.3)]):
        L.polyline(leg, col, t)
        L.circle(leg[-1], t * 0.6, mane)
    L.ellipse(P(-0.04, -0.02), (0.27 * s, 0.12 * s), 0, col)
    L.poly([P(0.12, -0.1), P(0.28, -0.3), P(0.36, -0.28), P(0.26, 0.04)], col)
    L.ellipse(P(0.37, -0.25), (0.1 * s, 0.045 * s), d * 35, col)
    L.poly([P(0.28, -0.31), P(0.3, -0.38), P(0.33, -0.3)], col)
    L.polyline([P(0.14, -0.12), P(0.22, -0.24), P(0.29, -0.32)], mane, max(2.0, 0.03 * s))
    L.circle(P(0.36, -0.27), max(1.0, 0.012 * s), (10, 10, 10), mask=False)
    return col


def _draw_volcano(L: _Layer, rng, cx, cy, s):
    ch, bw, tw = s * rng.uniform(0.45, 0.55), s * rng.uniform(0.85, 1.0), s * rng.uniform(0.12, 0.2)
    base, top = cy + s / 2, cy + s / 2 - ch
    cone = _hsv(rng, (0.0, 0.08), (0.25, 0.55), (0.14, 0.28))
    lava = _hsv(rng, (-0.01, 0.06), (0.85, 1.0), (0.85, 1.0))
    smoke = _hsv(rng, (0.0, 0.1), (0.0, 0.1), (0.2, 0.32))
    for _ in range(int(rng.integers(4, 7))):
        a = rng.uniform(-2.4, -0.7)
        r = s * rng.uniform(0.2, 0.4)
        L.line((cx, top), (cx + r * math.cos(a), top + r * math.sin(a)), lava, max(2.0, 0.02 * s))
    for i in range(int(rng.integers(4, 7))):
        y = top - (0.06 + 0.07 * i) * s
        if y - 0.08 * s < cy - s / 2:
            break
        L.circle((cx + rng.uniform(-0.1, 0.1) * s, y), s * rng.uniform(0.07, 0.11), smoke)
    for i in range(int(rng.integers(4, 7))):
        y = top - (0.02 + 0.05 * i) * s
        c = _mix(lava, (255, 220, 60), min(1.0, 0.18 * i))
        L.circle((cx + rng.uniform(-0.05, 0.05) * s, y), s * rng.uniform(0.05, 0.08) * (1 - 0.08 * i), c)
    L.poly([(cx - bw / 2, base), (cx - tw / 2, top), (cx + tw / 2, top), (cx + bw / 2, base)], cone)
    for _ in range(int(rng.integers(2, 5))):
        x0 = cx + rng.uniform(-0.4, 0.4) * tw
        pts = [(x0, top)]
        for k in range(1, 5):
            y = top + ch * k / 4
            pts.append((x0 + (x0 - cx) * 2.5 * k / 4 + rng.uniform(-0.03, 0.03) * s, y))
        L.polyline(pts, lava, max(2.0, 0.022 * s), mask=False)
    return lava


def _draw_storm(L: _Layer, rng, cx, cy, s):
    w, ch = s, s * rng.uniform(0.34, 0.42)
    y0 = cy - s / 2 + ch / 2
    col = _hsv(rng, (-0.03, 0.02), (0.6, 0.9), (0.35, 0.58))
    bolt = _hsv(rng, (0.12, 0.16), (0.3, 0.75), (0.95, 1.0))
    x = cx + rng.uniform(-0.2, 0.2) * s
    y = y0 + 0.25 * ch
    pts = [(x, y)]
    n = int(rng.integers(4, 6))
    step = (cy + s / 2 - y) / n
    sgn = rng.choice([-1, 1])
    for i in range(n):
        y += step
        x += sgn * (1 if i % 2 == 0 else -0.6) * s * rng.uniform(0.08, 0.14)
        pts.append((x, y))
    L.polyline(pts, bolt, max(3.0, 0.045 * s))
    j = int(rng.integers(1, n))
    L.polyline([pts[j], (pts[j][0] - sgn * 0.12 * s, pts[j][1] + 0.12 * s)], bolt, max(2.0, 0.025 * s))
    _cloud(L, rng, cx, y0, w, ch, col)
    L.ellipse((cx, y0 - 0.1 * ch), (0.3 * w, 0.15 * ch), rng.uniform(-15, 15), _shade(col, 1.25), mask=False)
    return col


def _draw_rotting_fruit(L: _Layer, rng, cx, cy, s):
    r0 = s * rng.uniform(0.15, 0.18)
    base_y = cy + 0.3 * s
    spots = (60, 40, 20)
    centres = [(cx + k * 1.7 * r0, base_y) for k in (-1, 0, 1)]
    centres += [(cx + k * 0.9 * r0, base_y - 1.5 * r0) for k in ((-1, 1) if rng.random() < 0.6 else (0,))]
    first = None
    for x, y in centres:
        c = _hsv(rng, (0.1, 0.24), (0.45, 0.8), (0.3, 0.58))
        first = first or c
        r = r0 * rng.uniform(0.9, 1.1)
        L.ellipse((x, y), (r, r * rng.uniform(0.85, 1.0)), rng.uniform(0, 180), c)
        L.line((x, y - r), (x + 0.2 * r, y - 1.4 * r), (70, 50, 25), max(2.0, 0.02 * s))
        for _ in range(int(rng.integers(2, 5))):
            L.ellipse((x + rng.uniform(-0.5, 0.5) * r, y + rng.uniform(-0.5, 0.5) * r),
                      (0.25 * r, 0.18 * r), rng.uniform(0, 180), spots, mask=False)
        for _ in range(int(rng.integers(3, 7))):
            L.circle((x + rng.uniform(-0.6, 0.6) * r, y + rng.uniform(-0.6, 0.6) * r), max(1.0, 0.06 * r),
                     (200, 215, 170), mask=False)
    for _ in range(int(rng.integers(2, 5))):
        fx, fy = cx + rng.uniform(-0.35, 0.35) * s, cy + rng.uniform(-0.45, -0.1) * s
        L.ellipse((fx, fy), (max(2.0, 0.03 * s), max(1.0, 0.014 * s)), 0, (150, 150, 150))
        L.circle((fx, fy + 0.01 * s), max(1.5, 0.018 * s), (20, 20, 20))
    return first


def _draw_swamp(L: _Layer, rng, cx, cy, s):
    ax, ay = s / 2, s * rng.uniform(0.2, 0.28)
    col = _hsv(rng, (0.14, 0.24), (0.4, 0.75), (0.22, 0.4))
    dark = (35, 30, 20)
    for _ in range(int(rng.integers(2, 5))):
        x = cx + rng.uniform(-0.6, 0.6) * ax
        y0 = cy + rng.uniform(-0.2, 0.2) * ay
        top = (x + rng.uniform(-0.04, 0.04) * s, y0 - ay - s * rng.uniform(0.1, 0.22))
        L.line((x, y0), top, dark, max(2.0, 0.025 * s))
        L.line(((x + top[0]) / 2, (y0 + top[1]) / 2),
               ((x + top[0]) / 2 + rng.choice([-1, 1]) * 0.06 * s, (y0 + top[1]) / 2 - 0.05 * s),
               dark, max(2.0, 0.015 * s))
    ph = rng.uniform(0, 2 * math.pi, 2)
    pts = []
    for a in np.linspace(0, 2 * math.pi, 24, endpoint=False):
        f = 1 + 0.08 * math.sin(3 * a + ph[0]) + 0.06 * math.sin(5 * a + ph[1])
        pts.append((cx + ax * f * math.cos(a), cy + ay * f * math.sin(a)))
    L.poly(pts, col)
    scum = _mix(col, (190, 200, 80), 0.45)
    for _ in range(int(rng.integers(3, 6))):
        L.ellipse((cx + rng.uniform(-0.6, 0.6) * ax, cy + rng.uniform(-0.5, 0.5) * ay),
                  (0.08 * s, 0.03 * s), rng.uniform(-20, 20), scum, mask=False)
    for _ in range(int(rng.integers(4, 9))):
        L.circle((cx + rng.uniform(-0.7, 0.7) * ax, cy + rng.uniform(-0.6, 0.6) * ay),
                 max(1.5, s * rng.uniform(0.01, 0.025)), _mix(col, (220, 220, 180), 0.5), mask=False, thickness=1)
    return col


@dataclass(frozen=True)
class Motif:
    """A drawable emotion-evoking motif.

    ``phrases`` are ways to name it in an utterance (each contains one of ``keywords``);
    ``draw(layer, rng, cx, cy, extent)`` paints into a :class:`_Layer` (an RGB image and its
    exact mask, drawn together; see :meth:`render`) and returns the main colour;
    ``noun`` is the bare name; ``reasons`` are motif-specific clauses for utterances;
    ``zone`` is the range of its centre's y (fraction of the side), ``scale`` the range of its
    extent (fraction of the side); ``depth`` orders drawing (lower first).
    """

    name: str
    emotion: str
    phrases: tuple[str, ...]
    keywords: tuple[str, ...]
    draw: DrawFn = field(repr=False, compare=False)
    noun: str = ""
    reasons: tuple[str, ...] = ()
    zone: tuple[float, float] = (0.3, 0.7)
    scale: tuple[float, float] = (0.3, 0.45)
    depth: int = 1

    def render(self, rng: np.random.Generator, size: int, cx: float, cy: float, extent: float
               ) -> tuple[np.ndarray, np.ndarray, Color | None]:
        """Draw the motif alone, centred at ``(cx, cy)`` with extent ``extent`` pixels.

        Returns ``(rgb, mask, color)``: ``rgb`` ``[S, S, 3]`` uint8 (zero outside the mask),
        the exact ``[S, S]`` bool mask of what was drawn, and the main colour (``None``: many).
        """
        layer = _Layer(size)
        color = self.draw(layer, rng, cx, cy, extent)
        mask = layer.mask.astype(bool)
        layer.rgb[~mask] = 0  # details drawn past the outline are not part of the motif
        return layer.rgb, mask, color


MOTIFS: list[Motif] = [
    Motif("wave", "fear", ("towering wave", "crashing wave", "giant wave", "breaking wave", "stormy sea"),
          ("wave", "waves", "sea", "surf", "breaker", "breakers", "swell"), _draw_wave, "wave",
          ("it could swallow a boat in an instant", "it rises far above anything around it",
           "its foaming crest is about to crash down"), (0.5, 0.72), (0.38, 0.55), 1),
    Motif("shadow_figure", "fear", ("looming shadow figure", "looming phantom", "shadowy silhouette", "ghostly figure"),
          ("shadow", "shadowy", "phantom", "specter", "silhouette", "ghost", "ghostly", "wraith"),
          _draw_shadow_figure, "shadow figure",
          ("its long arms seem to reach out for me", "it seems to be watching me with glowing eyes",
           "I cannot tell what it wants"), (0.4, 0.62), (0.38, 0.55), 1),
    Motif("sun", "awe", ("radiant sun", "blazing sun", "glowing sunburst", "rising sun"),
          ("sun", "suns", "sunburst", "sunlight", "sunrise"), _draw_sun, "sun",
          ("its light seems to fill the whole sky", "its rays stretch out in every direction",
           "it shines with such overwhelming power"), (0.15, 0.35), (0.28, 0.42), 0),
    Motif("mountain", "awe", ("vast mountain", "snowy peak", "towering mountain", "majestic summit"),
          ("mountain", "mountains", "peak", "peaks", "summit", "mountainside"), _draw_mountain, "mountain",
          ("its snowy top rises so high above the land", "it has stood there for millions of years",
           "it makes everything else look small"), (0.35, 0.55), (0.42, 0.6), 0),
    Motif("wilted_tree", "sadness", ("wilted tree", "dying tree", "bare tree with drooping branches", "withered tree"),
          ("tree", "trees", "branches", "trunk"), _draw_wilted_tree, "tree",
          ("its drooping branches seem to have given up", "it has lost almost all of its leaves",
           "it stands alone and forgotten"), (0.4, 0.62), (0.38, 0.55), 1),
    Motif("weeping_figure", "sadness", ("weeping figure", "hunched mourner", "sobbing person", "crying figure"),
          ("weeping", "mourner", "sobbing", "crying", "weeps"), _draw_weeping_figure, "mourner",
          ("the person hides their face in their hands", "nobody is there to comfort them",
           "their bowed head shows such grief"), (0.5, 0.75), (0.3, 0.45), 1),
    Motif("rain_cloud", "sadness", ("heavy rain cloud", "cloud full of rain", "gloomy cloud pouring rain", "dreary rain cloud"),
          ("cloud", "clouds", "rain", "raincloud", "drizzle", "downpour"), _draw_rain_cloud, "rain cloud",
          ("the falling drops look like tears", "it blocks out all the light",
           "it makes the whole day feel dreary"), (0.17, 0.38), (0.36, 0.5), 0),
    Motif("cottage", "contentment", ("cozy cottage", "little cottage", "quiet farmhouse", "warm cabin"),
          ("cottage", "house", "cabin", "farmhouse", "hut"), _draw_cottage, "cottage",
          ("its glowing windows look so welcoming", "it looks like a safe place to rest",
           "I imagine a simple and happy life inside"), (0.52, 0.75), (0.3, 0.45), 1),
    Motif("pond", "contentment", ("calm pond", "still lake", "quiet pool of water", "peaceful pond with lilies"),
          ("pond", "lake", "pool", "water", "lilies"), _draw_pond, "pond",
          ("its smooth surface barely moves", "the lily pads float so gently",
           "it looks like a perfect spot for a quiet afternoon"), (0.68, 0.85), (0.38, 0.55), 0),
    Motif("clown", "amusement", ("laughing clown", "silly clown face", "grinning jester", "funny clown"),
          ("clown", "clowns", "jester"), _draw_clown, "clown",
          ("its red nose and big grin are just ridiculous", "its crazy hair and pointy hat are so silly",
           "it looks ready to tell a joke"), (0.4, 0.65), (0.32, 0.45), 1),
    Motif("balloons", "amusement", ("bunch of balloons", "colorful balloons", "floating balloons", "party balloons"),
          ("balloon", "balloons"), _draw_balloons, "balloons",
          ("they remind me of a birthday party", "they bob around so playfully",
           "they look like they might float away any second"), (0.3, 0.6), (0.35, 0.5), 1),
    Motif("fireworks", "excitement", ("bursting fireworks", "exploding fireworks", "dazzling firework display", "sparkling fireworks"),
          ("firework", "fireworks", "pyrotechnics"), _draw_fireworks, "fireworks",
          ("I can almost hear them bang and crackle", "they light up everything like a festival",
           "they explode in every direction at once"), (0.17, 0.4), (0.36, 0.5), 0),
    Motif("horse", "excitement", ("galloping horse", "wild stallion", "running horse", "charging steed"),
          ("horse", "horses", "stallion", "mare", "steed"), _draw_horse, "horse",
          ("its legs are stretched out in full gallop", "I can feel its speed and power",
           "it seems to race right out of the picture"), (0.52, 0.72), (0.4, 0.55), 1),
    Motif("volcano", "anger", ("erupting volcano", "volcano spewing lava", "fiery volcano", "exploding volcano"),
          ("volcano", "volcanoes", "lava", "eruption", "magma"), _draw_volcano, "volcano",
          ("it spits fire like it is furious", "its lava destroys everything in its path",
           "it seems to boil over with rage"), (0.42, 0.62), (0.42, 0.58), 0),
    Motif("storm", "anger", ("raging storm", "violent thunderstorm", "lightning bolt", "angry storm"),
          ("storm", "storms", "thunderstorm", "lightning", "thunder", "bolt"), _draw_storm, "storm",
          ("its lightning strikes down so violently", "the blood red sky looks furious",
           "it seems to lash out at the ground below"), (0.2, 0.42), (0.38, 0.52), 0),
    Motif("rotting_fruit", "disgust", ("rotting fruit", "moldy apples", "spoiled pears", "decaying fruit"),
          ("fruit", "fruits", "apple", "apples", "pear", "pears"), _draw_rotting_fruit, "fruit",
          ("the brown spots and flies make my stomach turn", "I can almost smell it going bad",
           "it is covered in mold and flies"), (0.55, 0.78), (0.3, 0.42), 1),
    Motif("swamp", "disgust", ("murky swamp", "stagnant bog", "slimy marsh", "foul swamp"),
          ("swamp", "swamps", "bog", "marsh", "mire", "sludge"), _draw_swamp, "swamp",
          ("its slimy surface bubbles with something foul", "I can almost smell the rot rising from it",
           "it looks thick, stagnant and filthy"), (0.68, 0.85), (0.4, 0.55), 0),
]

_MOTIF_INDEX = {m.name: m for m in MOTIFS}


def motif_by_name(name: str) -> Motif:
    """The :class:`Motif` called ``name`` (e.g. ``"wave"``)."""
    try:
        return _MOTIF_INDEX[name]
    except KeyError:
        raise KeyError(f"Unknown motif {name!r}; motifs: {', '.join(_MOTIF_INDEX)}") from None


@cache
def _keyword_re(motif_name: str) -> re.Pattern:
    kws = sorted(motif_by_name(motif_name).keywords, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(k) for k in kws) + r")\b", re.IGNORECASE)


def mentions_motif(text: str, motif_name: str) -> bool:
    """True if ``text`` names the motif by one of its keywords (whole words, any case)."""
    return bool(_keyword_re(motif_name).search(text or ""))


# --------------------------------------------------------------------------------------------
# Art styles and backgrounds
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Language
# --------------------------------------------------------------------------------------------

EMOTION_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "fear": {"adj": ("afraid", "scared", "frightened", "uneasy", "terrified", "anxious"),
             "noun": ("fear", "dread", "terror", "unease"),
             "reasons": ("I feel that something terrible is about to happen", "it seems so threatening and out of control",
                         "nothing could escape from it", "it looks ready to strike at any moment")},
    "awe": {"adj": ("in awe", "amazed", "humbled", "astonished", "awestruck"),
            "noun": ("awe", "wonder", "amazement", "reverence"),
            "reasons": ("it feels so much bigger than me", "it radiates a majestic power",
                        "nature looks grand and timeless here", "it makes me feel tiny in a good way")},
    "sadness": {"adj": ("sad", "melancholic", "gloomy", "heartbroken", "sorrowful", "lonely"),
                "noun": ("sadness", "sorrow", "melancholy", "grief"),
                "reasons": ("everything about it feels lonely and lost", "it reminds me of loss",
                            "it looks so tired and hopeless", "there is no joy left in it")},
    "contentment": {"adj": ("content", "calm", "peaceful", "at ease", "relaxed", "serene"),
                    "noun": ("peace", "calm", "contentment", "serenity"),
                    "reasons": ("life there seems simple and safe", "everything feels gentle and still",
                                "I would love to spend a slow afternoon there", "it feels so comforting and familiar")},
    "amusement": {"adj": ("amused", "cheerful", "playful", "giddy", "entertained"),
                  "noun": ("amusement", "delight", "fun", "laughter"),
                  "reasons": ("it looks so silly and playful", "I cannot help but smile at it",
                              "it reminds me of a fun day at the fair", "it is so goofy and bright")},
    "excitement": {"adj": ("excited", "thrilled", "energized", "exhilarated", "pumped"),
                   "noun": ("excitement", "thrill", "energy", "exhilaration"),
                   "reasons": ("it is full of movement and energy", "it feels like a celebration",
                               "I can almost feel the rush of the moment", "everything seems to be racing forward")},
    "anger": {"adj": ("angry", "furious", "irritated", "enraged", "tense"),
              "noun": ("anger", "rage", "fury", "tension"),
              "reasons": ("it looks violent and full of rage", "the harsh color feels aggressive",
                          "it seems to attack everything near it", "it destroys whatever gets close")},
    "disgust": {"adj": ("disgusted", "repulsed", "sickened", "grossed out", "queasy"),
                "noun": ("disgust", "revulsion", "nausea", "repulsion"),
                "reasons": ("it looks rotten and dirty", "I can almost smell the decay",
                            "it seems slimy and filthy", "it looks like it is crawling with germs")},
}

_FEEL3 = ("makes me feel {adj}", "fills me with {noun}", "gives me a sense of {noun}", "leaves me feeling {adj}",
          "stirs up {noun} in me", "makes me feel quite {adj}")

UTTERANCE_TEMPLATES: tuple[str, ...] = (
    "{NP} {pos} {feel3} because {reason}.",
    "I feel {adj} when I look at {np} {pos}, because {reason}.",
    "Looking at {np} {pos}, I feel {adj}; {reason}.",
    "{NP} {pos} fills me with {noun} since {reason}.",
    "My eyes go straight to {np} {pos}, and I feel {adj} because {reason}.",
    "There is {npa} {pos} and it {feel3} because {reason}.",
    "I notice {npa} {pos}; it {feel3}, as {reason}.",
    "What strikes me is {np} {pos}: {reason}, and that makes me feel {adj}.",
    "{NP} {pos} gives me a feeling of {noun} because {reason}.",
    "I can't stop looking at {np} {pos}; {reason}, so I feel {adj}.",
    "Seeing {np} {pos} makes me feel {adj} because {reason}.",
    "The artist painted {npa} {pos}, and it {feel3} since {reason}.",
    "I feel a sense of {noun} from {np} {pos} because {reason}.",
    "When I see {np} {pos} I think {reason}, and I feel {adj}.",
    "I get a feeling of {noun} from {np} {pos}; {reason}.",
    "{NP} {pos} catches my eye and {feel3}, since {reason}.",
    "My attention is drawn to {np} {pos}, which {feel3} because {reason}.",
    "I sense {noun} in {np} {pos}, because {reason}.",
    "Because {reason}, {np} {pos} makes me feel {adj}.",
    "Honestly, {np} {pos} {feel3}; {reason}.",
    "I look at {np} {pos} and feel {adj}, since {reason}.",
    "{NP} that sits {pos} {feel3} because {reason}.",
    "It is {np} {pos} that makes me feel {adj}, because {reason}.",
    "I find {np} {pos} very striking; it {feel3} as {reason}.",
    "Even at first glance, {np} {pos} {feel3} because {reason}.",
    "I keep coming back to {np} {pos}, which leaves me feeling {adj} since {reason}.",
    "For me, {np} {pos} brings a sense of {noun}; {reason}.",
    "I feel {adj} looking at this painting because of {np} {pos}; {reason}.",
    "The painter put {npa} {pos}, and I feel {adj} because {reason}.",
    "I am drawn to {np} {pos} and it {feel3}; {reason}.",
    "{NP} {pos} is what makes me feel {adj} here, because {reason}.",
    "In this painting I see {npa} {pos}, and I feel {adj} since {reason}.",
    "The sight of {np} {pos} {feel3}, because {reason}.",
    "I feel {adj}: {np} {pos} stands out and {reason}.",
)

SOMETHING_ELSE_TEMPLATES: tuple[str, ...] = (
    "I don't feel any strong emotion here; the {color} brushstrokes just look {qual} to me.",
    "I feel nothing in particular, although the {color} tones of the background are {qual}.",
    "The {color} colors remind me of {thing}, but I can't name what I feel.",
    "I am mostly curious about the technique, since the strokes look {qual} and {qual2}.",
    "I feel somewhat indifferent because the composition seems {qual} and a bit {qual2}.",
    "I'm not sure what I feel; the painting seems {qual} and unfinished to me.",
    "I feel a little confused by the {color} tones, which seem {qual} to me.",
    "It makes me think of {thing}, and I feel a strange mix of things.",
    "I feel neutral about this one; the {color} palette is {qual} but nothing more.",
    "To me the whole thing feels {qual}, like {thing}, and I don't react much.",
)
_QUAL = ("busy", "muted", "rough", "flat", "hazy", "restless", "unusual", "plain", "soft", "careless", "dense")
_THINGS = ("an old photograph", "a half-remembered dream", "a school art class", "a faded postcard",
           "a quiet museum corridor", "a dusty attic")

_COLOR_WORDS = ("colorful", "bright", "multicolored", "vivid")


def color_name(rgb: Sequence[int] | None) -> str:
    """A plain English colour word for an RGB colour (``None`` -> "colorful")."""
    if rgb is None:
        return "colorful"
    r, g, b = (float(x) / 255.0 for x in rgb[:3])
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    hd = h * 360.0
    if v < 0.2:
        return "black"
    if s < 0.16:
        if v > 0.85:
            return "white"
        if v > 0.62:
            return "light gray"
        return "gray" if v > 0.4 else "dark gray"
    if 15 <= hd < 50 and v < 0.62:
        return "dark brown" if v < 0.35 else "brown"
    if 50 <= hd < 80 and v < 0.6:
        return "olive"
    if hd < 15 or hd >= 345:
        name = "red"
    elif hd < 42:
        name = "orange"
    elif hd < 68:
        name = "yellow"
    elif hd < 160:
        name = "green"
    elif hd < 195:
        name = "turquoise"
    elif hd < 255:
        name = "blue"
    elif hd < 290:
        name = "purple"
    else:
        name = "pink"
    if v < 0.45:
        return "dark " + name
    if s < 0.4 and v > 0.75:
        return "pale " + name
    return name


_POSITIONS = {
    (0, 0): ("in the upper left", "in the top left corner", "at the upper left"),
    (0, 1): ("at the top", "near the top", "in the upper part"),
    (0, 2): ("in the upper right", "in the top right corner", "at the upper right"),
    (1, 0): ("on the left", "on the left side", "at the left"),
    (1, 1): ("in the center", "in the middle", "at the center"),
    (1, 2): ("on the right", "on the right side", "at the right"),
    (2, 0): ("in the lower left", "in the bottom left corner", "at the lower left"),
    (2, 1): ("at the bottom", "near the bottom", "in the lower part"),
    (2, 2): ("in the lower right", "in the bottom right corner", "at the lower right"),
}


def _grid_cell(mask: np.ndarray) -> tuple[int, int]:
    h, w = mask.shape
    total = mask.sum()
    if total == 0:
        return 1, 1
    cy = float((mask.sum(1) * np.arange(h)).sum()) / total
    cx = float((mask.sum(0) * np.arange(w)).sum()) / total
    return min(2, int(3 * cy / h)), min(2, int(3 * cx / w))


def position_phrase(mask: np.ndarray, rng: np.random.Generator | None = None) -> str:
    """Where a mask's centroid lies, e.g. ``"in the upper left"`` (3x3 grid)."""
    opts = _POSITIONS[_grid_cell(mask)]
    return opts[0] if rng is None else opts[int(rng.integers(len(opts)))]


def size_word(area_fraction: float, rng: np.random.Generator | None = None) -> str:
    """"small"/"large"-style word for a motif covering ``area_fraction`` of the image ("" if medium)."""
    if area_fraction < 0.04:
        opts = ("small", "tiny", "little")
    elif area_fraction < 0.09:
        opts = ("", "medium-sized", "")
    elif area_fraction < 0.2:
        opts = ("large", "big", "sizable")
    else:
        opts = ("huge", "enormous", "large")
    return opts[0] if rng is None else opts[int(rng.integers(len(opts)))]


def _words(text: str) -> int:
    return len(text.split())


def _article(np_: str) -> str:
    return ("an " if np_[:1].lower() in "aeiou" else "a ") + np_


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def make_utterance(rng: np.random.Generator, motif: Motif, color: str, position: str, size: str) -> str:
    """A first-person utterance (8-30 words) naming ``motif`` and its colour, position and size."""
    ew = EMOTION_WORDS[motif.emotion]
    for attempt in range(12):
        phrase = _pick(rng, motif.phrases)
        form = int(rng.integers(5)) if attempt < 8 else 4
        if form == 0 and size:
            core = f"{size} {color} {motif.noun}"
        elif form == 1 and color not in phrase:
            core = f"{color} {phrase}"
        elif form == 2 and size:
            core = f"{size} {phrase}"
        elif form == 3 and color not in motif.noun:
            core = f"{color} {motif.noun}"
        else:
            core = phrase
        reasons = motif.reasons if (motif.reasons and rng.random() < 0.6) else ew["reasons"]
        adj = _pick(rng, ew["adj"])
        slots = {
            "np": "the " + core,
            "NP": "The " + core,
            "npa": _article(core),
            "pos": position,
            "adj": adj,
            "noun": _pick(rng, ew["noun"]),
            "reason": _pick(rng, reasons),
        }
        slots["feel3"] = _pick(rng, _FEEL3).format(**slots)
        tpl = _pick(rng, UTTERANCE_TEMPLATES) if attempt < 10 else "{NP} {pos} {feel3}."
        text = " ".join(tpl.format(**slots).split())
        text = text[0].upper() + text[1:]
        if 8 <= _words(text) <= 30:
            return text
    return text


def make_something_else_utterance(rng: np.random.Generator, color: str) -> str:
    """A first-person "something else" utterance that names no motif."""
    tpl = _pick(rng, SOMETHING_ELSE_TEMPLATES)
    q = list(rng.permutation(len(_QUAL))[:2])
    return tpl.format(color=color, qual=_QUAL[q[0]], qual2=_QUAL[q[1]], thing=_pick(rng, _THINGS))


# --------------------------------------------------------------------------------------------
# Painting generation
# --------------------------------------------------------------------------------------------


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


def render_painting(index: int, seed: int = 0, size: int = 256) -> SyntheticPainting:
    """Render painting ``index`` of the set generated with ``seed`` at ``size`` x ``size``."""
    rng = painting_rng(seed, index)
    st = ART_STYLE_SPECS[int(rng.integers(len(ART_STYLE_SPECS)))]
    artist = _pick(rng, st.artists)
    title = f"{_pick(rng, _TITLES)}-{int(rng.integers(1, 30))}-{int(rng.integers(1820, 1971))}"
    painting = f"{artist}_{title}-{index:05d}"

    abstract = (not st.skies) or rng.random() < st.abstract_p
    bg = _abstract(rng, size, st) if abstract else _landscape(rng, size, st)
    canvas = np.clip(bg + 0.5, 0, 255).astype(np.uint8)
    bg_color = tuple(int(v) for v in canvas[: size // 3].reshape(-1, 3).mean(0))

    placed: list[tuple[Motif, np.ndarray, Color | None]] = []  # (motif, visible mask, colour)
    occupied = np.zeros((size, size), bool)
    min_area = 0.012 * size * size
    count = np.count_nonzero
    for motif in _choose_motifs(rng):
        for _ in range(12):
            s = rng.uniform(*motif.scale) * size
            cx = rng.uniform(max(0.08, 0.5 * s / size - 0.05), min(0.92, 1 - 0.5 * s / size + 0.05)) * size
            cy = rng.uniform(*motif.zone) * size
            layer = _Layer(size)
            color = motif.draw(layer, rng, cx, cy, s)
            m = layer.mask.view(bool)
            area = count(m)
            if area < min_area:
                continue
            # must stand out from what it covers (mean colour distance, L1 over RGB)
            if sum(abs(a - b) for a, b in zip(cv2.mean(layer.rgb, layer.mask)[:3], cv2.mean(canvas, layer.mask)[:3])) < 70:
                continue
            if placed:
                # little overlap with what is there, and earlier motifs stay >= 70% visible
                if count(m & occupied) > 0.15 * area:
                    continue
                if any(count(p[1]) - count(p[1] & m) < max(min_area, 0.7 * count(p[1])) for p in placed):
                    continue
            for i, (pm, pmask, pc) in enumerate(placed):
                placed[i] = (pm, pmask & ~m, pc)
            cv2.copyTo(layer.rgb, layer.mask, canvas)
            occupied |= m
            placed.append((motif, m, color))
            break
    if not placed:  # always at least one motif: draw one in its default place
        motif = MOTIFS[int(rng.integers(len(MOTIFS)))]
        layer = _Layer(size)
        color = motif.draw(layer, rng, size / 2, size * sum(motif.zone) / 2, motif.scale[1] * size)
        m = layer.mask.view(bool)
        cv2.copyTo(layer.rgb, layer.mask, canvas)
        placed.append((motif, m, color))

    labels = np.zeros((size, size), np.uint8)
    for k, (_, m, _) in enumerate(placed, start=1):
        labels[m] = k
    canvas = _brush_pass(rng, canvas, labels, st, size)
    if st.blur > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), st.blur * size / 256.0)
    grain = np.rint(_weave(size) + 3.0 * rng.standard_normal((size, size), dtype=np.float32)).astype(np.int16)
    image = np.clip(canvas.astype(np.int16) + grain[..., None], 0, 255).astype(np.uint8)

    motifs: list[PlacedMotif] = []
    for motif, m, color in placed:
        frac = float(m.sum()) / (size * size)
        motifs.append(PlacedMotif(motif.name, motif.emotion, m,
                                  color_name(color) if color is not None else _pick(rng, _COLOR_WORDS),
                                  "", "", frac))

    # Annotators: every motif gets one vote, the rest go by sqrt(area); some "something else".
    n_ann = int(rng.integers(5, 9))
    weights = np.sqrt(np.array([pm.area_fraction for pm in motifs]))
    weights = weights / weights.sum()
    votes = list(range(len(motifs)))
    while len(votes) < n_ann:
        votes.append(-1 if rng.random() < 0.1 else int(rng.choice(len(motifs), p=weights)))
    votes = [votes[i] for i in rng.permutation(len(votes))]
    rows: list[tuple[str, str]] = []
    bg_word = color_name(bg_color)
    cells = [_grid_cell(pm.mask) for pm in motifs]
    seen: set[tuple[str, str]] = set()
    for v in votes:
        for _ in range(20):  # annotators of one painting never write the very same sentence
            if v < 0:
                row = ("something else", make_something_else_utterance(rng, bg_word))
            else:
                pm = motifs[v]
                motif = motif_by_name(pm.name)
                opts = _POSITIONS[cells[v]]
                pos = opts[int(rng.integers(len(opts)))]
                row = (motif.emotion, make_utterance(rng, motif, pm.color, pos, size_word(pm.area_fraction, rng)))
            if row not in seen:
                break
        if row in seen:
            continue
        seen.add(row)
        rows.append(row)
    for pm, cell in zip(motifs, cells):
        pm.position = _POSITIONS[cell][0]
        pm.size = size_word(pm.area_fraction)
    return SyntheticPainting(index, st.name, painting, image, motifs, rows)


# --------------------------------------------------------------------------------------------
# Writing a data set
# --------------------------------------------------------------------------------------------


def _encode(mask: np.ndarray) -> tuple[dict, float, list[float]]:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    area = float(mask_util.area(rle))
    bbox = [float(x) for x in mask_util.toBbox(rle)]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}, area, bbox


def _work(args: tuple[int, int, int, str, int]) -> dict:
    index, seed, size, out, quality = args
    t0 = time.process_time()
    p = render_painting(index, seed, size)
    path = Path(out) / IMAGES_DIR / p.art_style / f"{p.painting}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(p.image).save(path, format="JPEG", quality=quality)
    anns = []
    for pm in p.motifs:
        rle, area, bbox = _encode(pm.mask)
        anns.append({"motif": pm.name, "emotion": pm.emotion, "rle": rle, "area": area, "bbox": bbox})
    return {"index": index, "art_style": p.art_style, "painting": p.painting, "height": size, "width": size,
            "annotations": anns, "rows": p.rows, "peak_rss_kb": _peak_rss_kb(),
            "cpu_seconds": time.process_time() - t0}


def _peak_rss_kb() -> int:
    try:
        import resource

        v = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(v // 1024) if sys.platform == "darwin" else int(v)
    except (ImportError, OSError):  # pragma: no cover - non-POSIX
        return 0


def _init_worker() -> None:
    cv2.setNumThreads(1)


def generate_synthetic_artemis(
    out: str | Path,
    num_paintings: int = 1000,
    size: int = 256,
    seed: int = 0,
    workers: int | None = None,
    jpeg_quality: int = 92,
    progress: bool | None = None,
) -> dict:
    """Write a synthetic ArtEmis-style data set to ``out`` (see the module docstring).

    Args:
        workers: processes (default ``min(2, cpu count)``); results do not depend on it.
        progress: show a tqdm bar (default: only when stderr is a terminal).

    Returns:
        A summary dict: paths, ``paintings``, ``rows``, ``annotations``, ``seconds``.
    """
    if num_paintings < 1:
        raise ValueError(f"num_paintings must be >= 1, got {num_paintings}")
    if size < 64:
        raise ValueError(f"size must be at least 64 pixels, got {size}")
    out = Path(out)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    workers = min(2, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    t0 = time.perf_counter()
    jobs = [(i, int(seed), int(size), str(out), int(jpeg_quality)) for i in range(num_paintings)]
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    if workers > 1 and num_paintings > 1:
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        with ctx.Pool(workers, initializer=_init_worker) as pool:
            chunk = max(1, min(16, num_paintings // (workers * 8) or 1))
            results = list(tqdm(pool.imap(_work, jobs, chunksize=chunk), total=len(jobs),
                                disable=not show, desc="paintings"))
    else:
        results = [_work(j) for j in tqdm(jobs, disable=not show, desc="paintings")]

    coco: dict = {
        "info": {"description": "EmoSEM synthetic ArtEmis-style emotion stimulus masks",
                 "version": "1.0", "seed": int(seed), "image_size": int(size)},
        "licenses": [],
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": e, "supercategory": "emotion"} for i, e in enumerate(ARTEMIS_EMOTIONS)],
    }
    n_rows = 0
    ann_id = 1
    with open(out / CSV_NAME, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for r in results:
            image_id = r["index"] + 1
            coco["images"].append({"id": image_id, "file_name": f"{r['art_style']}/{r['painting']}.jpg",
                                   "height": r["height"], "width": r["width"]})
            for a in r["annotations"]:
                coco["annotations"].append({
                    "id": ann_id, "image_id": image_id, "category_id": EMOTION_TO_INDEX[a["emotion"]] + 1,
                    "segmentation": a["rle"], "area": a["area"], "bbox": a["bbox"], "iscrowd": 0,
                    "motif": a["motif"],
                })
                ann_id += 1
            for emotion, utt in r["rows"]:
                w.writerow((r["art_style"], r["painting"], emotion, utt, len(r["rows"])))
                n_rows += 1
    with open(out / MASKS_NAME, "w", encoding="utf-8") as f:
        json.dump(coco, f)
    seconds = time.perf_counter() - t0
    logger.info("Wrote %d paintings, %d rows, %d masks to %s in %.1f s",
                num_paintings, n_rows, ann_id - 1, out, seconds)
    return {"out": str(out), "csv": str(out / CSV_NAME), "masks": str(out / MASKS_NAME),
            "images": str(out / IMAGES_DIR), "paintings": num_paintings, "rows": n_rows,
            "annotations": ann_id - 1, "seconds": seconds, "workers": workers,
            "peak_worker_rss_mb": max(r["peak_rss_kb"] for r in results) / 1024.0,
            "cpu_seconds": sum(r["cpu_seconds"] for r in results)}


def make_contact_sheet(root: str | Path, out: str | Path, n: int = 12, cols: int = 4, tile: int = 256) -> Path:
    """Save a preview of ``n`` paintings (spread over the set) with every mask outlined in its emotion colour.

    Reads the set through :func:`emosem.data.artemis.load_artemis` (so it previews exactly what
    training sees) and labels each outline with its motif name (or emotion).
    """
    from emosem.data.artemis import decode_rle, load_artemis
    from emosem.data.image_io import load_image
    from emosem.emotions import emotion_color

    data = load_artemis(root, check_images=False)
    every = data.paintings()
    keys = [every[int(i)] for i in np.unique(np.linspace(0, len(every) - 1, min(n, len(every))).round())]
    tiles = []
    for key in keys:
        sample = data.samples_of(key)[0]
        img = load_image(sample.image_path)
        scale = tile / max(img.shape[:2])
        img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        canvas = np.full((tile + 18, tile, 3), 255, np.uint8)
        canvas[: img.shape[0], : img.shape[1]] = img
        for a in data.annotations(key):
            m = cv2.resize(decode_rle(a["rle"]).astype(np.uint8), (img.shape[1], img.shape[0]),
                           interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            color = emotion_color(a["emotion"])
            cv2.drawContours(canvas, contours, -1, (255, 255, 255), 3)
            cv2.drawContours(canvas, contours, -1, color, 1)
            ys, xs = np.nonzero(m)
            if len(xs):
                x, y = int(xs.min()), max(10, int(ys.min()) - 3)
                label = a["motif"] or a["emotion"]
                cv2.putText(canvas, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 2, cv2.LINE_AA)
                cv2.putText(canvas, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1, cv2.LINE_AA)
        cv2.putText(canvas, key.split("/")[0], (3, tile + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(canvas)
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(out)
    return out
