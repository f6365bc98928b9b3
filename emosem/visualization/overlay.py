"""Pixel-level pictures of a stimulus mask over a painting.

All images are RGB ``uint8`` arrays of shape ``(H, W, 3)``; masks are ``(H, W)`` arrays at the
painting's resolution. Nothing here touches matplotlib's global state (colormaps are looked up
in the ``matplotlib.colormaps`` registry), so the functions are safe to call from a web server.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

if TYPE_CHECKING:  # matplotlib is imported where a colormap is looked up (0.4 s at start-up)
    import matplotlib

logger = logging.getLogger(__name__)

PathLike = str | Path

_PIL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
# How the overlays, heat maps and figures are written (a collection run writes some 30 PNGs per
# painting): zlib level 1 with every row "sub"-filtered, through OpenCV's libpng. The same pixels
# as PIL's (level 1) at about the same size in less time: a 1024×640 painting 83 ms / 1.82 MB
# against 131 ms / 1.82 MB, a Starry Night panel 41 ms / 806 kB against 91 ms / 799 kB, a small
# painting's panel 14 ms / 119 kB against 65 ms / 99 kB. (zlib's run-length strategy is faster
# still on paintings but doubles to quadruples the figures' size.)
PNG_COMPRESS_LEVEL = 1
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESS_LEVEL,
               cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]


def to_rgb_uint8(image: np.ndarray | Image.Image) -> np.ndarray:
    """Return ``image`` as a C-contiguous ``(H, W, 3)`` uint8 RGB array.

    Accepts a PIL image, ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA (alpha dropped)
    arrays; float arrays are taken to be in ``[0, 1]``.
    """
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"Expected an RGB image of shape (H, W, 3), got shape {arr.shape}: "
            "load the painting with PIL and convert it to RGB first."
        )
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        pass
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        arr = np.round(np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _check_mask(mask: np.ndarray, shape: tuple[int, int], what: str = "mask") -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != shape:
        raise ValueError(
            f"The {what} has shape {mask.shape} but the image is {shape[0]}x{shape[1]} (HxW): "
            "resize the mask to the image's resolution first (e.g. cv2.resize)."
        )
    return mask


def _binary(mask: np.ndarray) -> np.ndarray:
    """Bool mask: floats are thresholded at 0.5, other dtypes at non-zero."""
    mask = np.asarray(mask)
    if np.issubdtype(mask.dtype, np.floating):
        return np.nan_to_num(mask) > 0.5
    return mask.astype(bool)


def default_contour_thickness(height: int, width: int) -> int:
    """Contour width in pixels that stays visible at any size: ``max(2, round(min(H, W)/200))``."""
    return max(2, int(round(min(height, width) / 200)))


def overlay_mask(
    image: np.ndarray,
    mask: np.ndarray,
    color: tuple[int, int, int] = (255, 0, 0),
    alpha: float = 0.45,
    contour: bool = True,
    contour_thickness: int | None = None,
) -> np.ndarray:
    """Tint the masked region of a painting and outline it.

    Args:
        image: ``(H, W, 3)`` uint8 RGB painting.
        mask: ``(H, W)`` bool mask (floats are thresholded at 0.5).
        color: RGB fill and contour colour, e.g. ``emotion_color("awe")``.
        alpha: opacity of the fill, in ``[0, 1]``.
        contour: draw the mask's boundary (outer edges and holes) at full opacity.
        contour_thickness: boundary width in pixels; default scales with the image size.

    Returns:
        ``(H, W, 3)`` uint8: a new array. Pixels outside the mask and off the contour are the
        painting's; an empty mask gives an unchanged copy.
    """
    img = to_rgb_uint8(image)
    m = _binary(_check_mask(mask, img.shape[:2]))
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    rgb = np.asarray(color, dtype=np.float32).reshape(3)
    out = img.copy()
    if not m.any():
        return out
    inside = out[m].astype(np.float32)
    out[m] = np.round(inside * (1.0 - alpha) + rgb * alpha).clip(0, 255).astype(np.uint8)
    if contour:
        h, w = m.shape
        thickness = contour_thickness or default_contour_thickness(h, w)
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        color_i = tuple(int(c) for c in rgb)
        cv2.drawContours(out, contours, -1, color_i, int(thickness), lineType=cv2.LINE_AA)
    return out


def heatmap_overlay(
    image: np.ndarray,
    soft_mask: np.ndarray,
    alpha: float = 0.55,
    cmap: str | matplotlib.colors.Colormap = "inferno",
) -> np.ndarray:
    """Blend a probability map over a painting through a colormap.

    The blend weight of each pixel is ``alpha * p``, so where the probability ``p`` is 0 the
    painting shows through unchanged and the colour only takes over where ``p`` is high.

    Args:
        image: ``(H, W, 3)`` uint8 RGB painting.
        soft_mask: ``(H, W)`` float probabilities in ``[0, 1]`` (clipped; NaN counts as 0).
        alpha: blend weight at ``p = 1``, in ``[0, 1]``.
        cmap: a matplotlib colormap name or object.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    img = to_rgb_uint8(image)
    p = _check_mask(soft_mask, img.shape[:2], what="soft mask").astype(np.float32)
    p = np.clip(np.nan_to_num(p, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    if isinstance(cmap, str):
        import matplotlib

        cmap = matplotlib.colormaps[cmap]
    colors = cmap(p)[..., :3].astype(np.float32) * 255.0
    a = (alpha * p)[..., None]
    out = img.astype(np.float32) * (1.0 - a) + colors * a
    return np.round(out).clip(0, 255).astype(np.uint8)


def mask_to_png(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` mask → ``(H, W)`` uint8 with 0 (background) and 255 (stimulus)."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"Expected a 2-D (H, W) mask, got shape {m.shape}.")
    return _binary(m).astype(np.uint8) * 255


def _encode_to(path: Path, bgr: np.ndarray) -> Path:
    ok, data = cv2.imencode(".png", bgr, _PNG_PARAMS)
    if not ok:
        raise ValueError(f"OpenCV could not encode a PNG of shape {bgr.shape}.")
    path.write_bytes(data.tobytes())
    return path


class BackgroundPNGs:
    """While active (``with BackgroundPNGs():``), :func:`write_png` hands the encoding to one
    background thread (OpenCV compresses without the GIL) and returns at once, so the next figure
    is drawn while the last one is compressed; leaving the block waits for every file and raises
    the first error. Blocks nest (the outermost one owns the thread); other threads and code
    outside the block write synchronously."""

    _active: ContextVar[BackgroundPNGs | None] = ContextVar("emosem_background_pngs", default=None)

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._token = None

    def __enter__(self) -> BackgroundPNGs:
        if self._active.get() is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="emosem-png")
            self._token = self._active.set(self)
        return self

    def submit(self, path: Path, bgr: np.ndarray) -> None:
        self._pending.append(self._pool.submit(_encode_to, path, bgr))

    def __exit__(self, *exc) -> None:
        if self._pool is None:
            return
        self._active.reset(self._token)
        try:
            errors = [f.exception() for f in self._pending]  # waits for each
        finally:
            self._pool.shutdown()
        first = next((e for e in errors if e is not None), None)
        if first is not None and exc[0] is None:
            raise first


def write_png(path: PathLike, array: np.ndarray) -> Path:
    """Write a uint8 ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA array as a PNG
    (:data:`_PNG_PARAMS`); returns the path. Inside :class:`BackgroundPNGs` the file is complete
    only when the block ends (the array is copied first, so the caller may reuse its buffer)."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"PNG arrays must be uint8, got {arr.dtype}.")
    if arr.ndim == 3:  # OpenCV writes BGR(A); the conversion is a new array
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    path = Path(path)
    writer = BackgroundPNGs._active.get()
    if writer is None:
        return _encode_to(path, np.ascontiguousarray(arr))
    writer.submit(path, arr if arr.ndim == 3 else arr.copy())  # the thread gets its own pixels
    return path


def save_image(path: PathLike, array: np.ndarray) -> Path:
    """Write an image, creating parent folders; the suffix picks PNG (:func:`write_png`) or
    JPEG (PIL, quality 95).

    ``array``: ``(H, W)`` (grey; bool masks become 0/255), ``(H, W, 3)`` RGB or ``(H, W, 4)``
    RGBA (alpha dropped for JPEG). Returns the path written.
    """
    path = Path(path)
    fmt = _PIL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"Cannot tell the image format of {str(path)!r}: use a .png, .jpg or .jpeg suffix."
        )
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = mask_to_png(arr) if arr.dtype == bool else to_rgb_uint8(arr)[..., 0]
        pil = Image.fromarray(np.ascontiguousarray(arr))
    elif arr.ndim == 3 and arr.shape[2] == 4 and fmt == "PNG":
        if arr.dtype != np.uint8:
            raise ValueError(f"RGBA images must be uint8, got {arr.dtype}.")
        pil = Image.fromarray(np.ascontiguousarray(arr))
    else:
        pil = Image.fromarray(to_rgb_uint8(arr))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "PNG":
        write_png(path, np.asarray(pil))
    else:
        pil.save(path, format=fmt, quality=95)
    logger.debug("wrote %s (%dx%d)", path, pil.width, pil.height)
    return path


def load_image(path: PathLike) -> np.ndarray:
    """Read a picture file as ``(H, W, 3)`` uint8 RGB (EXIF rotation applied)."""
    from PIL import ImageOps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {str(path)!r}: check the path.")
    with Image.open(path) as im:
        return to_rgb_uint8(ImageOps.exif_transpose(im).convert("RGB"))
