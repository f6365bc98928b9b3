"""Robust image loading: any path, PIL image or array to an ``HxWx3`` uint8 RGB array.

``load_image`` honours the EXIF orientation, converts every common PIL mode (grayscale, 16-bit,
32-bit int/float, RGBA/LA composited on white, CMYK, palette with transparency) to 8-bit RGB,
refuses decompression bombs *before* decoding (the pixel count is read from the header), forces a
full decode so a truncated file fails here rather than later, and can downscale huge images.
Every failure is an :class:`ImageLoadError` with a one-line message naming the file and the reason.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# PIL raises DecompressionBombError above 2 * Image.MAX_IMAGE_PIXELS (default 89_478_485).
DEFAULT_MAX_PIXELS = 178_956_970

ImageSource = str | os.PathLike | Image.Image | np.ndarray

_PIL_LIMIT_LOCK = threading.Lock()


class ImageLoadError(ValueError):
    """An image that cannot be loaded; the message names the file and the reason."""


def _fail(name: str, reason: str) -> ImageLoadError:
    return ImageLoadError(f"Cannot load image {name}: {reason}")


def _bomb_message(name: str, pixels: int, max_pixels: int) -> ImageLoadError:
    return _fail(
        name,
        f"{pixels:,} pixels exceeds the decompression-bomb limit of {max_pixels:,} pixels; "
        "if you trust this file, raise the limit (load_image(..., max_pixels=N) or max_pixels=None).",
    )


def _open_header(path: Path, name: str, max_pixels: int | None) -> Image.Image:
    """Open ``path`` lazily (header only), checking the pixel count before any decoding."""
    pil_error_limit = (
        2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS is not None else None
    )
    # PIL checks its own global limit while opening; lift it (briefly, under a lock) only when
    # the caller asked for a larger limit than PIL's, so that our own check below decides.
    lift = pil_error_limit is not None and (max_pixels is None or max_pixels > pil_error_limit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if lift:
                with _PIL_LIMIT_LOCK:
                    saved = Image.MAX_IMAGE_PIXELS
                    Image.MAX_IMAGE_PIXELS = None
                    try:
                        im = Image.open(path)
                    finally:
                        Image.MAX_IMAGE_PIXELS = saved
            else:
                im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise _fail(
            name,
            f"exceeds the decompression-bomb limit ({e}); if you trust this file, raise the "
            "limit with load_image(..., max_pixels=N)",
        ) from None
    except UnidentifiedImageError:
        raise _fail(name, "not a recognised image file (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise _fail(name, f"unreadable ({type(e).__name__}: {e})") from None
    return im


def _check_pixels(name: str, size: tuple[int, int], max_pixels: int | None) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise _fail(name, f"empty image ({w}x{h})")
    if max_pixels is not None and w * h > max_pixels:
        raise _bomb_message(name, w * h, max_pixels)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """``[H,W,4]`` uint8 RGBA -> ``[H,W,3]`` uint8 RGB over a white background."""
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgb * alpha + 255.0 * (1.0 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """Scale a 2-D/3-D array of any supported dtype to uint8."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise _fail(name, "float image contains NaN or infinite values")
        hi = float(arr.max()) if arr.size else 0.0
        scale = 255.0 if hi <= 1.0 else (255.0 / hi if hi > 255.0 else 1.0)
        return np.clip(arr.astype(np.float32) * scale + 0.5, 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        lo = int(arr.min()) if arr.size else 0
        hi = int(arr.max()) if arr.size else 0
        if lo < 0:
            raise _fail(name, f"integer image has negative values (min {lo})")
        if hi <= 255:
            return arr.astype(np.uint8)
        if hi <= 65535:
            return _to_uint8(arr.astype(np.uint16), name)
        return np.clip(arr.astype(np.float64) * (255.0 / hi) + 0.5, 0, 255).astype(np.uint8)
    raise _fail(name, f"unsupported array dtype {arr.dtype}")


def _array_to_rgb(arr: np.ndarray, name: str) -> np.ndarray:
    """``HxW``, ``HxWx1``, ``HxWx3`` or ``HxWx4`` array of any supported dtype -> ``HxWx3`` uint8."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        g = _to_uint8(arr, name)
        return np.repeat(g[..., None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return _to_uint8(arr, name)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return _composite_on_white(_to_uint8(arr, name))
    raise _fail(name, f"unsupported array shape {tuple(arr.shape)} (expected HxW, HxWx1, HxWx3 or HxWx4)")


def _pil_to_rgb(im: Image.Image, name: str) -> np.ndarray:
    """Convert a decoded PIL image of any common mode to ``HxWx3`` uint8 RGB."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if mode in ("1", "L"):
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _array_to_rgb(np.asarray(im), name)
    if mode == "P":
        if "transparency" in im.info:
            return _composite_on_white(np.asarray(im.convert("RGBA"), dtype=np.uint8))
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _composite_on_white(np.asarray(im.convert("RGBA"), dtype=np.uint8))
    if mode == "RGBX":
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    try:  # CMYK, YCbCr, LAB, HSV ...
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as e:
        raise _fail(name, f"unsupported image mode {mode!r} ({e})") from None


def _downscale(rgb: np.ndarray, max_side: int, name: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    logger.warning("Image %s is %dx%d; downscaling to %dx%d (max_side=%d)", name, w, h, new_w, new_h, max_side)
    out = Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(out, dtype=np.uint8)


def _exif_transpose(im: Image.Image, name: str) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except Exception as e:  # a broken EXIF block should not make the picture unusable
        logger.warning("Ignoring unreadable EXIF orientation of %s (%s)", name, e)
        return im


@dataclass
class DecodedImage:
    """An image decoded within a pixel budget.

    ``rgb`` is the ``[h, w, 3]`` uint8 picture (at most ``max_side`` on its longer side when one
    was given); ``original_size`` is ``(H, W)`` of the full picture after EXIF rotation, which is
    where masks are mapped back to. ``frames`` counts the frames of an animated file or the pages
    of a multi-page TIFF (only the first is decoded); ``format`` is PIL's name for the file type.
    """

    rgb: np.ndarray
    original_size: tuple[int, int]
    frames: int = 1
    format: str | None = None

    @property
    def scaled(self) -> bool:
        return tuple(self.rgb.shape[:2]) != tuple(self.original_size)


_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:
        return 1


def _reduce_for_budget(im: Image.Image, max_side: int) -> Image.Image:
    """Shrink a decoded image by PIL's integer ``reduce`` (box filter, cheap) towards ``max_side``.

    Modes ``reduce`` cannot handle (1-bit, palette, 16-bit) are first widened to one it can;
    the result's longer side stays >= ``max_side``, the last step is left to a proper resampler.
    """
    factor = max(im.size) // max_side
    if factor < 2:
        return im
    if im.mode == "1":
        return _reduce_bilevel(im, factor)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode.startswith("I;16"):
        im = im.convert("I")
    try:
        return im.reduce(factor)
    except ValueError:  # a mode reduce still refuses: keep the full decode
        return im


def _reduce_bilevel(im: Image.Image, factor: int) -> Image.Image:
    """PIL's ``reduce(factor)`` of a 1-bit image as an 8-bit ``L`` image (box means, partial
    boxes at the right and bottom included), computed from its packed bits a strip at a time:
    the widened 8-bit copy that ``reduce`` needs costs a byte per pixel (169 MB at 13,000²)."""
    w, h = im.size
    ow, oh = -(-w // factor), -(-h // factor)
    packed = np.frombuffer(im.tobytes("raw", "1"), np.uint8).reshape(h, -1)  # [h, ceil(w / 8)]
    box_w = np.minimum(factor, w - factor * np.arange(ow))  # pixels per box column
    out = np.empty((oh, ow), np.uint8)
    for r in range(oh):
        rows = packed[r * factor:(r + 1) * factor]
        bits = np.zeros((len(rows), ow * factor), np.uint8)
        bits[:, :w] = np.unpackbits(rows, axis=1, count=w)
        ones = bits.reshape(len(rows), ow, factor).sum(axis=(0, 2), dtype=np.int64)
        n = box_w * len(rows)
        out[r] = (ones * 255 + n // 2) // n
    return Image.fromarray(out, "L")


def decode_image(
    src: ImageSource,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
) -> DecodedImage:
    """Load an image within a pixel budget: see :class:`DecodedImage` and :func:`load_image`.

    With ``max_side``, a file is decoded at reduced size where the format allows it (JPEG's DCT
    scaling through ``draft``), otherwise reduced by an integer factor straight after decoding,
    before any RGB conversion, so memory follows ``max_side`` rather than the file's declared
    size (a 1-bit 13,000² PNG costs its 1-byte-per-pixel decode, not a 500 MB RGB array).
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive integer, got {max_side}")
    frames, fmt = 1, None
    if isinstance(src, np.ndarray):
        name = f"<array {tuple(src.shape)} {src.dtype}>"
        if src.ndim < 2:
            raise _fail(name, "an image array needs at least 2 dimensions")
        _check_pixels(name, (src.shape[1], src.shape[0]), max_pixels)
        rgb = _array_to_rgb(np.asarray(src), name)
        original = rgb.shape[:2]
    elif isinstance(src, Image.Image):
        name = f"<PIL image {src.mode} {src.size[0]}x{src.size[1]}>"
        _check_pixels(name, src.size, max_pixels)
        try:
            src.load()
        except Exception as e:
            raise _fail(name, f"corrupt or truncated image data ({e})") from None
        rgb = _pil_to_rgb(_exif_transpose(src, name), name)
        original = rgb.shape[:2]
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        name = str(path)
        if not path.exists():
            raise _fail(name, "file not found")
        if not path.is_file():
            raise _fail(name, "not a file")
        im = _open_header(path, name, max_pixels)
        try:
            _check_pixels(name, im.size, max_pixels)
            fmt = im.format
            frames = int(getattr(im, "n_frames", 1) or 1)
            orientation = _orientation(im)
            w, h = im.size
            original = (w, h) if orientation in (5, 6, 7, 8) else (h, w)
            if max_side is not None and im.format == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still exceeds max_side.
                scale = max_side / max(w, h)
                if scale < 1:
                    im.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
            try:
                im.load()
            except Exception as e:
                raise _fail(name, f"corrupt or truncated image data ({type(e).__name__}: {e})") from None
            small = _reduce_for_budget(im, max_side) if max_side is not None else im
            if orientation in _EXIF_TRANSPOSE:
                small = small.transpose(_EXIF_TRANSPOSE[orientation])
            rgb = _pil_to_rgb(small, name)
            del small
        finally:
            im.close()
    else:
        raise ImageLoadError(
            f"Cannot load image of type {type(src).__name__}: expected a path, PIL image or numpy array"
        )
    if max_side is not None:
        rgb = _downscale(rgb, max_side, name)
    return DecodedImage(np.ascontiguousarray(rgb), (int(original[0]), int(original[1])), frames, fmt)


def load_image(
    src: ImageSource,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
) -> np.ndarray:
    """Load an image as an ``[H, W, 3]`` uint8 RGB array.

    Args:
        src: a path (``str``/``Path``), a ``PIL.Image`` or a numpy array (``HxW``, ``HxWx1``,
            ``HxWx3``, ``HxWx4``; uint8, uint16, bool or float in ``[0, 1]``).
        max_pixels: refuse images with more pixels than this (checked from the header, before
            decoding); ``None`` disables the check.
        max_side: if given, downscale (keeping the aspect ratio) so the longer side is at most
            this many pixels, logging a warning; files are decoded at reduced size where
            possible (see :func:`decode_image`).

    Raises:
        ImageLoadError: missing file, not an image, truncated or corrupt data, unsupported
            mode, or more pixels than ``max_pixels``.
    """
    return decode_image(src, max_pixels=max_pixels, max_side=max_side).rgb


def image_size(path: str | os.PathLike, apply_exif: bool = True) -> tuple[int, int]:
    """``(height, width)`` of an image file from its header only (after EXIF rotation).

    Raises:
        ImageLoadError: missing file or not a recognised image.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise _fail(name, "file not found")
    im = _open_header(path, name, None)
    try:
        w, h = im.size
        if apply_exif:
            try:
                orientation = im.getexif().get(0x0112, 1)
            except Exception:
                orientation = 1
            if orientation in (5, 6, 7, 8):
                w, h = h, w
        return h, w
    finally:
        im.close()


def find_image(base: str | os.PathLike, extensions: tuple[str, ...] = (".jpg", ".jpeg", ".png")) -> Path | None:
    """First existing ``{base}{ext}`` over ``extensions`` (also upper-case), or ``None``."""
    base = str(base)
    for ext in extensions:
        for e in (ext, ext.upper()):
            p = Path(base + e)
            if p.is_file():
                return p
    return None
