"""Drawing the motifs: colour helpers, :class:`Layer` (an RGB image and its exact mask, drawn
together) and one ``draw_*`` function per motif.

Each draw function paints into a :class:`Layer` around ``(cx, cy)`` with extent ~``s`` pixels and
returns its main colour (``None``: many colours). The order of the random draws in each function
is part of the generated data: changing it changes every painting.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

Color = tuple[int, int, int]


def _hsv(rng: np.random.Generator, h: Sequence[float], s: Sequence[float], v: Sequence[float]) -> Color:
    """A random RGB colour with hue/saturation/value drawn from the given ranges (hue wraps)."""
    hh = rng.uniform(h[0], h[1]) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hh, rng.uniform(*s), rng.uniform(*v))
    return (int(r * 255 + 0.5), int(g * 255 + 0.5), int(b * 255 + 0.5))


def _shade(c: Color, f: float) -> Color:
    return tuple(int(min(255, max(0, round(x * f)))) for x in c)  # type: ignore[return-value]


def _mix(a: Color, b: Color, t: float) -> Color:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))  # type: ignore[return-value]


class Layer:
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


DrawFn = Callable[[Layer, np.random.Generator, float, float, float], "Color | None"]


def draw_wave(L: Layer, rng, cx, cy, s):
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


def draw_shadow_figure(L: Layer, rng, cx, cy, s):
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


def draw_sun(L: Layer, rng, cx, cy, s):
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


def draw_mountain(L: Layer, rng, cx, cy, s):
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


def draw_wilted_tree(L: Layer, rng, cx, cy, s):
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


def draw_weeping_figure(L: Layer, rng, cx, cy, s):
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


def _cloud(L: Layer, rng, cx, y0, w, ch, col):
    n = int(rng.integers(4, 7))
    for i in range(n):
        x = cx - 0.4 * w + 0.8 * w * i / (n - 1) + rng.uniform(-0.04, 0.04) * w
        r = ch * rng.uniform(0.35, 0.55) * (1.0 - 0.35 * abs(i / (n - 1) - 0.5))
        L.circle((x, y0 + 0.12 * ch - r * 0.4), r, col)
    L.ellipse((cx, y0 + 0.22 * ch), (0.48 * w, 0.22 * ch), 0, col)
    L.ellipse((cx, y0 + 0.3 * ch), (0.42 * w, 0.12 * ch), 0, _shade(col, 0.75), mask=False)


def draw_rain_cloud(L: Layer, rng, cx, cy, s):
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


def draw_cottage(L: Layer, rng, cx, cy, s):
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


def draw_pond(L: Layer, rng, cx, cy, s):
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


def draw_clown(L: Layer, rng, cx, cy, s):
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


def draw_balloons(L: Layer, rng, cx, cy, s):
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


def draw_fireworks(L: Layer, rng, cx, cy, s):
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


def draw_horse(L: Layer, rng, cx, cy, s):
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


def draw_volcano(L: Layer, rng, cx, cy, s):
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


def draw_storm(L: Layer, rng, cx, cy, s):
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


def draw_rotting_fruit(L: Layer, rng, cx, cy, s):
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


def draw_swamp(L: Layer, rng, cx, cy, s):
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
