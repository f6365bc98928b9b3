"""Robust image loading (every odd kind of file) and SAM-style transforms."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from emosem.data.image_io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageLoadError,
    image_size,
    load_image,
)
from emosem.data.transforms import SamTransform


def _rgb(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_constants():
    assert DEFAULT_MAX_PIXELS == 178_956_970
    assert IMAGE_EXTENSIONS == (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def test_rgb_png_roundtrip_exact(tmp_path):
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out, arr)
    np.testing.assert_array_equal(load_image(str(tmp_path / "a.png")), arr)


def test_grayscale_png(tmp_path):
    g = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    Image.fromarray(g, mode="L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (20, 30, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent -> white
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.shape == (4, 4, 3)
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert all(abs(int(v) - 127) <= 1 for v in out[0, 2])


def test_la_mode(tmp_path):
    im = Image.new("LA", (3, 2), (10, 0))  # transparent dark -> white
    im.putpixel((0, 0), (10, 255))
    im.save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png")
    assert tuple(out[0, 0]) == (10, 10, 10)
    assert tuple(out[1, 2]) == (255, 255, 255)


def test_cmyk_jpeg(tmp_path):
    im = Image.new("CMYK", (16, 12), (0, 255, 255, 0))  # pure red in CMYK
    im.save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as check:
        assert check.mode == "CMYK"
    out = load_image(tmp_path / "c.jpg")
    assert out.shape == (12, 16, 3)
    r, g, b = out[6, 8].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_palette_png_with_transparency(tmp_path):
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 255] + [0, 255, 0] + [0, 0, 0] * 254)
    im.putpixel((1, 1), 1)
    im.info["transparency"] = 0  # index 0 (blue) is transparent
    im.save(tmp_path / "p.png", transparency=0)
    with Image.open(tmp_path / "p.png") as check:
        assert check.mode == "P" and "transparency" in check.info
    out = load_image(tmp_path / "p.png")
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[1, 1]) == (0, 255, 0)


def test_palette_png_without_transparency(tmp_path):
    im = Image.new("P", (2, 2), 1)
    im.putpalette([0, 0, 0] + [200, 100, 50] + [0, 0, 0] * 254)
    im.save(tmp_path / "p.png")
    assert tuple(load_image(tmp_path / "p.png")[0, 0]) == (200, 100, 50)


def test_16bit_grayscale_png(tmp_path):
    a = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as check:
        assert check.mode.startswith("I")
    out = load_image(tmp_path / "g16.png")
    assert out.shape == (1, 3, 3)
    assert [int(v) for v in out[0, :, 0]] == [0, 128, 255]


def test_exif_rotated_jpeg(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # landscape 40 wide x 20 high
    arr[:, :20] = (255, 0, 0)  # left half red
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    im.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (40, 20, 3)  # displayed as portrait
    assert image_size(tmp_path / "r.jpg") == (40, 20)
    # rotated 90 CW: the left (red) half ends up on top
    assert out[5, 10, 0] > 200 and out[35, 10, 0] < 60


def test_truncated_jpeg_raises(tmp_path):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="trunc.jpg.*(truncated|corrupt)"):
        load_image(tmp_path / "trunc.jpg")


def test_text_file_renamed_jpg_raises(tmp_path):
    p = tmp_path / "fake.jpg"
    p.write_text("this is not an image\n")
    with pytest.raises(ImageLoadError, match="fake.jpg.*not a recognised image") as exc:
        load_image(p)
    assert "\n" not in str(exc.value)


def test_missing_path_raises(tmp_path):
    with pytest.raises(ImageLoadError, match="nope.png.*not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="not a file"):
        load_image(tmp_path)


def test_bomb_limit_checked_before_decoding(tmp_path):
    Image.fromarray(_rgb(20, 30)).save(tmp_path / "big.png")
    with pytest.raises(ImageLoadError, match="600 pixels exceeds the decompression-bomb limit of 100") as exc:
        load_image(tmp_path / "big.png", max_pixels=100)
    assert "max_pixels" in str(exc.value)
    assert load_image(tmp_path / "big.png", max_pixels=600).shape == (20, 30, 3)
    assert load_image(tmp_path / "big.png", max_pixels=None).shape == (20, 30, 3)


def test_pil_bomb_error_never_escapes(tmp_path, monkeypatch):
    Image.fromarray(_rgb(20, 30)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # PIL itself refuses > 100 pixels
    with pytest.raises(ImageLoadError, match="decompression-bomb"):
        load_image(tmp_path / "big.png", max_pixels=80)
    # a caller limit above PIL's global one is honoured (PIL's check is lifted, ours decides)
    assert load_image(tmp_path / "big.png", max_pixels=1000).shape == (20, 30, 3)
    assert Image.MAX_IMAGE_PIXELS == 50


def test_max_side_downscales_with_warning(tmp_path, caplog):
    Image.fromarray(_rgb(50, 100)).save(tmp_path / "w.png")
    Image.fromarray(_rgb(50, 100)).save(tmp_path / "w.jpg")
    with caplog.at_level(logging.WARNING):
        out = load_image(tmp_path / "w.png", max_side=40)
    assert out.shape == (20, 40, 3)
    assert "downscaling" in caplog.text
    assert load_image(tmp_path / "w.jpg", max_side=40).shape == (20, 40, 3)
    assert load_image(tmp_path / "w.png", max_side=500).shape == (50, 100, 3)


@pytest.mark.parametrize(
    "arr,expected",
    [
        (np.full((3, 4), 7, np.uint8), 7),
        (np.full((3, 4, 1), 9, np.uint8), 9),
        (np.full((3, 4, 3), 0.5, np.float32), 128),
        (np.full((3, 4), 65535, np.uint16), 255),
        (np.ones((3, 4), bool), 255),
    ],
)
def test_numpy_inputs(arr, expected):
    out = load_image(arr)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert int(out[0, 0, 0]) == expected


def test_numpy_rgba_and_bad_shapes():
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert tuple(load_image(rgba)[0, 0]) == (255, 255, 255)
    with pytest.raises(ImageLoadError, match="unsupported array shape"):
        load_image(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ImageLoadError, match="NaN"):
        load_image(np.full((2, 2), np.nan, np.float32))
    with pytest.raises(ImageLoadError, match="expected a path"):
        load_image(12345)  # type: ignore[arg-type]


def test_pil_image_input():
    im = Image.new("RGBA", (5, 4), (0, 0, 255, 255))
    out = load_image(im)
    assert out.shape == (4, 5, 3) and tuple(out[0, 0]) == (0, 0, 255)


# --------------------------------------------------------------------------- SamTransform


def test_sam_transform_image_shapes_and_padding():
    t = SamTransform(64)
    img = np.full((100, 50, 3), 255, np.uint8)
    x, input_size = t.apply_image(img)
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert input_size == (64, 32)
    expected = (255 - torch.tensor([123.675, 116.28, 103.53])) / torch.tensor([58.395, 57.12, 57.375])
    torch.testing.assert_close(x[:, 10, 10], expected)
    assert torch.all(x[:, :, 32:] == 0)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        t.apply_image(np.zeros((10, 10), np.uint8))


def test_sam_transform_mask():
    t = SamTransform(64)
    m = np.zeros((100, 50), bool)
    m[20:60, 10:30] = True
    out = t.apply_mask(m)
    assert out.shape == (64, 64) and out.dtype == torch.float32
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert out[:, 32:].sum() == 0 and out[64:, :].sum() == 0
    ys, xs = torch.nonzero(out, as_tuple=True)
    assert ys.min() >= 12 and ys.max() <= 39 and xs.min() >= 6 and xs.max() <= 19


@pytest.mark.parametrize("h,w", [(128, 64), (90, 150), (37, 101)])
def test_postprocess_maps_mask_back_to_original_size(h, w):
    t = SamTransform(64)
    m = np.zeros((h, w), bool)
    m[h // 4 : 3 * h // 4, w // 5 : w // 2] = True
    input_size = t.get_preprocess_shape(h, w)
    logits = (t.apply_mask(m) * 40 - 20)[None, None]  # [1, 1, S, S]
    low = torch.nn.functional.interpolate(logits, (16, 16), mode="bilinear", align_corners=False)
    for masks in (logits, low):
        out = t.postprocess_masks(masks, input_size, (h, w))
        assert out.shape == (1, 1, h, w)
    back = (t.postprocess_masks(logits, input_size, (h, w))[0, 0] > 0).numpy()
    iou = (back & m).sum() / (back | m).sum()
    assert iou > 0.88
    if (h, w) == (128, 64):  # an exact factor of 2: the round trip is pixel-exact
        np.testing.assert_array_equal(back, m)


def test_postprocess_keeps_rank_and_batch():
    t = SamTransform(32)
    x = torch.randn(2, 3, 8, 8)
    assert t.postprocess_masks(x, (32, 20), (64, 40)).shape == (2, 3, 64, 40)
    assert t.postprocess_masks(x[0, 0], (32, 20), (64, 40)).shape == (64, 40)
    assert t.postprocess_masks(x[0], (32, 20), (64, 40)).shape == (3, 64, 40)


def test_apply_coords_matches_resize():
    t = SamTransform(64)
    pts = np.array([[50.0, 100.0]])
    np.testing.assert_allclose(t.apply_coords(pts, (200, 100)), [[16.0, 32.0]])


# ------------------------------------------------------------------ pixel budget at decode time


def test_decode_image_budget_reduces_while_decoding(tmp_path):
    """A 1-bit 6,000 × 4,000 PNG and a large JPEG decode straight to the working size, report
    their original size, and the picture survives (stripes stay where they were)."""
    from emosem.data.image_io import decode_image

    stripes = (np.arange(6000)[None, :] // 600 % 2 == 0) & np.ones((4000, 1), bool)
    Image.fromarray(stripes).convert("1").save(tmp_path / "bits.png")
    d = decode_image(tmp_path / "bits.png", max_side=500)
    assert d.original_size == (4000, 6000) and d.rgb.shape == (334, 500, 3) and d.scaled  # reduce(12) rounds up
    col = d.rgb[100, :, 0] > 127
    assert col[:40].all() and not col[60:90].any()  # 600 px stripes → 50 px at 1/12
    Image.fromarray(np.repeat(stripes[..., None], 3, 2).astype(np.uint8) * 255).save(tmp_path / "big.jpg")
    d = decode_image(tmp_path / "big.jpg", max_side=700)
    assert d.original_size == (4000, 6000) and max(d.rgb.shape[:2]) == 700 and d.format == "JPEG"
    full = decode_image(tmp_path / "big.jpg")
    assert full.rgb.shape == (4000, 6000, 3) and not full.scaled


def test_decode_image_budget_keeps_exif_orientation_and_counts_frames(tmp_path):
    from emosem.data.image_io import decode_image

    base = Image.new("RGB", (1600, 800), (200, 30, 30))
    base.paste((20, 20, 200), (0, 0, 400, 800))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise: blue on top
    base.save(tmp_path / "rot.jpg", exif=exif)
    d = decode_image(tmp_path / "rot.jpg", max_side=400)
    assert d.original_size == (1600, 800) and d.rgb.shape[:2] == (400, 200)
    assert d.rgb[20, 100, 2] > 150 and d.rgb[380, 100, 0] > 150
    base.save(tmp_path / "pages.tif", save_all=True, append_images=[base.rotate(90)])
    assert decode_image(tmp_path / "pages.tif", max_side=300).frames == 2
    assert decode_image(tmp_path / "rot.jpg").frames == 1


def test_bilevel_budget_reduction_equals_pil_reduce():
    """The strip-wise reduction of 1-bit images gives PIL's reduce (partial boxes included)
    within one grey level, without widening the whole image to 8 bits first."""
    from PIL import ImageDraw

    from emosem.data.image_io import _reduce_bilevel

    for w, h, f in [(1301, 997, 7), (600, 400, 12), (17, 9, 4)]:
        im = Image.new("1", (w, h), 0)
        draw = ImageDraw.Draw(im)
        draw.ellipse((w // 10, h // 10, w * 9 // 10, h * 7 // 10), fill=1)
        draw.rectangle((w - 3, 0, w - 1, h - 1), fill=1)  # the partial right-hand boxes
        ours, pil = np.asarray(_reduce_bilevel(im, f)), np.asarray(im.convert("L").reduce(f))
        assert ours.shape == pil.shape and np.abs(ours.astype(int) - pil).max() <= 1
