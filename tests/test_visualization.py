"""Tests for emosem.visualization: overlays, heat maps, figures and the HTML gallery."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import AxesImage
from matplotlib.text import Text
from PIL import Image

from emosem.emotions import ARTEMIS_EMOTIONS, emotion_color
from emosem.visualization import (
    close_figure,
    default_contour_thickness,
    distribution_figure,
    grid_figure,
    heatmap_overlay,
    load_image,
    mask_to_png,
    overlay_mask,
    panel_figure,
    plot_distribution,
    save_image,
    write_gallery,
)
from emosem.visualization.overlay import BackgroundPNGs, write_png

RED = (255, 0, 0)


# ------------------------------------------------------------------------------- fixtures


def _painting(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A textured (H, W, 3) uint8 stand-in for a painting."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 200 // max(w, 1), yy * 200 // max(h, 1), np.full_like(xx, 90)], -1)
    return (base + rng.integers(0, 40, (h, w, 3))).astype(np.uint8)


def _box_mask(h: int, w: int, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[top:bottom, left:right] = True
    return m


DIST = {
    "amusement": 0.05,
    "awe": 0.4,
    "contentment": 0.15,
    "excitement": 0.1,
    "anger": 0.02,
    "disgust": 0.03,
    "fear": 0.1,
    "sadness": 0.1,
    "something_else": 0.05,  # input spelling variant
}


def _image_axes(fig):
    return [ax for ax in fig.axes if any(isinstance(a, AxesImage) for a in ax.get_children())]


def _drawn_texts(fig) -> list[Text]:
    """Texts that are drawn: figure texts, axes texts and titles, ticks of visible axes."""
    texts = list(fig.texts)
    for ax in fig.axes:
        texts += list(ax.texts) + [ax.title, ax._left_title, ax._right_title]
        if ax.axison:
            texts += ax.get_xticklabels() + ax.get_yticklabels()
            texts += [ax.xaxis.label, ax.yaxis.label]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def _all_text(fig) -> str:
    return "\n".join(t.get_text() for t in _drawn_texts(fig))


def _assert_undistorted(fig, image_shape) -> None:
    """Every image axes has the painting's aspect ratio (no stretching)."""
    h, w = image_shape[:2]
    fw, fh = fig.get_size_inches()
    axes = _image_axes(fig)
    assert axes
    for ax in axes:
        pos = ax.get_position()
        assert (pos.width * fw) / (pos.height * fh) == pytest.approx(w / h, rel=0.02)


def _assert_text_inside(fig) -> None:
    """No visible text sticks out of the figure."""
    renderer = fig.canvas.get_renderer()
    fig_box = fig.bbox
    for t in _drawn_texts(fig):
        box = t.get_window_extent(renderer)
        assert box.x0 >= fig_box.x0 - 1 and box.x1 <= fig_box.x1 + 1, t.get_text()[:40]
        assert box.y0 >= fig_box.y0 - 1 and box.y1 <= fig_box.y1 + 1, t.get_text()[:40]


# -------------------------------------------------------------------------------- overlay


def test_overlay_tints_inside_and_keeps_far_outside():
    img = np.full((120, 160, 3), 100, np.uint8)
    mask = _box_mask(120, 160, 30, 40, 90, 120)
    out = overlay_mask(img, mask, RED, alpha=0.45)
    assert out.shape == img.shape and out.dtype == np.uint8
    inside = out[60, 80].astype(int)
    assert inside[0] > 100 and inside[1] < 100 and inside[2] < 100  # moved toward red
    assert inside.tolist() == [round(100 * 0.55 + 255 * 0.45), 55, 55]
    t = default_contour_thickness(120, 160)
    far = np.ones((120, 160), bool)
    far[30 - 2 * t : 90 + 2 * t, 40 - 2 * t : 120 + 2 * t] = False
    assert np.array_equal(out[far], img[far])
    assert np.array_equal(img, np.full((120, 160, 3), 100, np.uint8))  # input untouched


def test_overlay_draws_contour_on_the_boundary():
    img = np.full((200, 200, 3), 100, np.uint8)
    mask = _box_mask(200, 200, 50, 50, 150, 150)
    with_contour = overlay_mask(img, mask, RED, alpha=0.3)
    no_contour = overlay_mask(img, mask, RED, alpha=0.3, contour=False)
    # the mask's edge pixels take the full colour; the fill alone does not reach it
    edge = with_contour[50, 60:140]
    assert (edge == RED).all(axis=-1).mean() > 0.9
    assert not (no_contour[50, 60:140] == RED).all(axis=-1).any()
    assert np.array_equal(with_contour[100, 100], no_contour[100, 100])  # centre: fill only
    thick = overlay_mask(img, mask, RED, contour_thickness=9)
    assert (thick == RED).all(-1).sum() > (with_contour == RED).all(-1).sum()


def test_overlay_empty_mask_returns_unchanged_copy():
    img = _painting(64, 80)
    out = overlay_mask(img, np.zeros((64, 80), bool), RED)
    assert np.array_equal(out, img) and out is not img


def test_overlay_rejects_wrong_mask_shape():
    with pytest.raises(ValueError, match="resize the mask"):
        overlay_mask(_painting(64, 80), np.zeros((32, 40), bool), RED)


def test_contour_thickness_scales_with_size():
    assert default_contour_thickness(100, 100) == 2
    assert default_contour_thickness(3000, 4000) == 15


def test_heatmap_changes_high_probability_pixels_more():
    img = _painting(60, 100)
    soft = np.zeros((60, 100), np.float32)
    soft[:, 50:] = 1.0
    soft[0, 0] = np.nan  # treated as 0
    out = heatmap_overlay(img, soft)
    assert out.shape == (60, 100, 3) and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - img.astype(int)).sum(-1)
    assert (diff[:, :50] == 0).all()
    assert diff[:, 50:].mean() > 30
    mid = heatmap_overlay(img, np.full((60, 100), 0.3, np.float32))
    mid_diff = np.abs(mid.astype(int) - img.astype(int)).sum(-1)
    assert 0 < mid_diff.mean() < diff[:, 50:].mean()


def test_mask_to_png_and_save_image_roundtrip(tmp_path):
    mask = _box_mask(40, 50, 10, 10, 30, 40)
    png = mask_to_png(mask)
    assert png.dtype == np.uint8 and set(np.unique(png)) == {0, 255}
    assert set(np.unique(mask_to_png(mask.astype(np.float32) * 0.9))) == {0, 255}
    p = save_image(tmp_path / "a" / "b" / "mask.png", png)
    assert np.array_equal(np.asarray(Image.open(p)), png)
    img = _painting(40, 50)
    save_image(tmp_path / "x.png", img)
    assert np.array_equal(load_image(tmp_path / "x.png"), img)
    save_image(tmp_path / "x.jpg", img)
    with Image.open(tmp_path / "x.jpg") as im:
        assert im.format == "JPEG" and im.size == (50, 40)
    with pytest.raises(ValueError, match="suffix"):
        save_image(tmp_path / "x.tiffy", img)


def test_write_png_keeps_every_pixel_and_channel_order(tmp_path):
    """OpenCV writes BGR: the PNG read back by PIL has the array's own RGB(A) and grey values."""
    rng = np.random.default_rng(0)
    for shape, mode in (((30, 41, 3), "RGB"), ((30, 41, 4), "RGBA"), ((30, 41), "L")):
        arr = rng.integers(0, 256, shape, dtype=np.uint8)
        with Image.open(write_png(tmp_path / f"{mode}.png", arr)) as im:
            assert im.format == "PNG" and im.mode == mode
            assert np.array_equal(np.asarray(im), arr)
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "f.png", np.zeros((4, 4, 3), np.float32))


def test_background_pngs_finish_by_the_end_of_the_block(tmp_path):
    """Inside BackgroundPNGs the files are written on another thread, from copies: every file
    is complete, with the pixels the array had when written, once the block ends; a failed
    write raises there; nested blocks share the outer thread."""
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, (64, 80, 3), dtype=np.uint8) for _ in range(6)]
    kept = [a.copy() for a in arrays]
    with BackgroundPNGs() as outer:
        with BackgroundPNGs() as inner:
            for i, a in enumerate(arrays):
                write_png(tmp_path / f"{i}.png", a)
                a[:] = 0  # the caller reuses its buffer at once
        assert inner._pool is None and outer._pool is not None
    for i, a in enumerate(kept):
        with Image.open(tmp_path / f"{i}.png") as im:
            assert np.array_equal(np.asarray(im), a)
    with pytest.raises(OSError):
        with BackgroundPNGs():
            write_png(tmp_path / "missing" / "x.png", kept[0])  # no such folder
    write_png(tmp_path / "after.png", kept[0])  # synchronous again outside the block
    assert (tmp_path / "after.png").is_file()


def test_figure_png_is_the_canvas_pixels(tmp_path):
    """A figure's PNG holds exactly what the Agg canvas drew (opaque, RGB)."""
    img = _painting(90, 200)
    fig = panel_figure(img, img, "awe", "I feel small.", 0.5, out_path=tmp_path / "p.png")
    drawn = np.asarray(fig.canvas.buffer_rgba())
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "RGB" and im.size == (drawn.shape[1], drawn.shape[0])
        assert np.array_equal(np.asarray(im), drawn[..., :3])
    assert (drawn[..., 3] == 255).all()
    close_figure(fig)
    assert not fig.axes and not fig.texts


# -------------------------------------------------------------------------------- figures


@pytest.mark.parametrize("shape", [(90, 200), (240, 110)], ids=["wide", "tall"])
def test_panel_figure_saves_wide_png_without_distortion(tmp_path, shape):
    img = _painting(*shape)
    ov = overlay_mask(img, _box_mask(*shape, 10, 10, 50, 60), emotion_color("awe"))
    out = tmp_path / "panel" / "p.png"
    fig = panel_figure(
        img, ov, "Awe", "The vast sky makes me feel small.", 0.87, DIST, "A title", out_path=out
    )
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > im.height
    _assert_undistorted(fig, shape)
    _assert_text_inside(fig)
    text = _all_text(fig)
    assert "awe" in text and "0.87" in text and "The vast sky" in text
    assert "outside the trained set" not in text
    assert "emotion distribution" in text
    close_figure(fig)


def test_panel_figure_free_text_emotion_and_no_explanation(tmp_path):
    img = _painting(240, 110)
    out = tmp_path / "free.png"
    fig = panel_figure(img, img, "melancholy", None, None, out_path=out)
    with Image.open(out) as im:
        assert im.width > im.height
    text = _all_text(fig)
    assert "melancholy" in text and "outside the trained set" in text
    assert "no explanation" in text
    assert "confidence" not in text
    _assert_undistorted(fig, img.shape)
    close_figure(fig)
    # an empty region says why it has no text
    empty = {"area_fraction": 0.0, "place": "in the center", "size": "small", "colours": []}
    fig = panel_figure(img, img, "awe", None, 0.3, out_path=tmp_path / "empty.png", cues=empty)
    assert "no region found, so nothing to explain" in _all_text(fig)
    close_figure(fig)


def test_panel_figure_long_or_odd_text_stays_in_its_column(tmp_path):
    img = _painting(100, 300)
    long_text = "The price was $5 and $6 for a $x^2$ view. " + "It goes on and on. " * 200
    fig = panel_figure(img, img, "fear", long_text, 0.5, DIST, out_path=tmp_path / "l.png", dpi=60)
    _assert_text_inside(fig)
    text = _all_text(fig)
    assert "$5 and $6" in text  # literal, not mathtext
    assert "…" in text  # cut with an ellipsis
    renderer = fig.canvas.get_renderer()
    bars = [ax for ax in fig.axes if ax.patches]
    assert len(bars) == 1
    bars_top = bars[0].get_window_extent(renderer).y1
    expl = [t for t in _drawn_texts(fig) if "It goes on" in t.get_text()][0]
    assert expl.get_window_extent(renderer).y0 > bars_top  # no overlap with the chart
    close_figure(fig)


@pytest.mark.parametrize("n", [9, 3])
def test_grid_figure_tiles(tmp_path, n):
    img = _painting(80, 120)
    results = []
    for i, emo in enumerate(ARTEMIS_EMOTIONS[:n]):
        mask = _box_mask(80, 120, 5 + i * 5, 5, 40 + i * 4, 60)
        results.append(
            {
                "emotion": emo,
                "overlay": overlay_mask(img, mask, emotion_color(emo)),
                "explanation": None if i == 1 else f"The {emo} region speaks to me <b>{i}</b>.",
                "confidence": None if i == 2 else 0.1 * i,
            }
        )
    out = tmp_path / f"grid{n}.png"
    fig = grid_figure(img, results, DIST if n == 9 else None, out_path=out, dpi=60)
    with Image.open(out) as im:
        assert im.format == "PNG"
    assert len(_image_axes(fig)) == n + 1  # one tile per result + the painting
    _assert_undistorted(fig, img.shape)
    _assert_text_inside(fig)
    titles = [ax.get_title() for ax in _image_axes(fig)]
    for emo in ARTEMIS_EMOTIONS[:n]:
        assert any(t.startswith(emo) for t in titles)
    assert ("emotion distribution" in _all_text(fig)) == (n == 9)
    close_figure(fig)


def test_grid_figure_tall_painting_free_text_and_too_many(tmp_path):
    img = _painting(200, 90)
    results = [
        {"emotion": "nostalgia", "overlay": img, "explanation": None, "confidence": None}
    ] * 11
    fig = grid_figure(img, results, title="t", out_path=tmp_path / "g.png", dpi=60)
    assert len(_image_axes(fig)) == 10  # capped at nine tiles
    assert "outside the trained set" in _all_text(fig)
    _assert_undistorted(fig, img.shape)
    close_figure(fig)


def test_distribution_figure_and_plot(tmp_path):
    out = tmp_path / "d.png"
    fig = distribution_figure(DIST, highlight="awe", out_path=out)
    with Image.open(out) as im:
        assert im.format == "PNG"
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == 9
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(ARTEMIS_EMOTIONS)  # canonical names, ArtEmis order
    awe = bars[ARTEMIS_EMOTIONS.index("awe")]
    fear = bars[ARTEMIS_EMOTIONS.index("fear")]
    assert awe.get_linewidth() > 0 and awe.get_edgecolor()[3] > 0  # highlighted
    assert fear.get_alpha() < awe.get_alpha()
    expected = tuple(c / 255 for c in emotion_color("awe"))
    assert awe.get_facecolor()[:3] == pytest.approx(expected)
    close_figure(fig)


def test_plot_distribution_on_own_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plot_distribution(ax, {"fear": 0.7, "Sadness": 0.3}) is ax
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fear", "sadness"]
    with pytest.raises(ValueError, match="not a number"):
        plot_distribution(fig.add_subplot(), {"fear": "high"})


def test_importing_does_not_touch_pyplot():
    code = (
        "import sys, numpy as np, emosem.visualization as v;"
        "f = v.panel_figure(np.zeros((20, 30, 3), np.uint8), np.zeros((20, 30, 3), np.uint8),"
        " 'awe', 'x', 0.5); v.close_figure(f);"
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# -------------------------------------------------------------------------------- gallery


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs: list[dict] = []
        self.links: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        for key in ("src", "href"):
            if key in a:
                self.urls.append(a[key])


def _gallery_entries(root: Path) -> list[dict]:
    img = _painting(600, 900)
    mask = _box_mask(600, 900, 100, 100, 400, 500)
    soft = mask.astype(np.float32) * 0.9
    entries = []
    for emo, expl in [
        ("awe", "The sky <script>alert('x')</script> & its stars amaze me."),
        ("melancholy", None),
    ]:
        stem = emo.replace(" ", "_")
        overlay = save_image(root / "overlays" / f"p1_{stem}.png", overlay_mask(img, mask, RED))
        heat = save_image(root / "heat" / f"p1_{stem}.jpg", heatmap_overlay(img, soft))
        m = save_image(root / "masks" / f"p1_{stem}.png", mask_to_png(mask))
        entries.append(
            {
                "image": "p1.jpg",
                "emotion": emo,
                "overlay_path": overlay,
                "heatmap_path": heat if emo == "awe" else None,
                "explanation": expl,
                "confidence": 0.8 if emo == "awe" else None,
                "trained": emo == "awe",
                "mask_path": m,
            }
        )
    entries.append({"image": "broken <1>.jpg", "error": "cannot identify image file"})
    return entries


def test_a_large_gallery_is_split_into_linked_self_contained_pages(tmp_path):
    """Five paintings at two a page: index.html, index-2.html, index-3.html, each painting on
    exactly one page in order, every page self-contained (embedded thumbnails, relative links)
    and linked to the others; written again with fewer pages, the extra pages go (a page of
    another name is left alone); one page has no page links."""
    import re

    base = _gallery_entries(tmp_path / "results")
    entries = []
    for i in range(5):
        entries += [{**e, "image": f"painting {i}.jpg"} for e in base if not e.get("error")]
    out = write_gallery(tmp_path / "results" / "index.html", entries, per_page=2)
    root = tmp_path / "results"
    pages = [root / "index.html", root / "index-2.html", root / "index-3.html"]
    assert out == pages[0] and all(p.is_file() for p in pages) and not (root / "index-4.html").exists()
    seen = []
    for k, page in enumerate(pages):
        text = page.read_text(encoding="utf-8")
        seen += re.findall(r"<h2>(painting \d\.jpg) ", text)
        parser = _Collector()
        parser.feed(text)
        assert parser.imgs and all(i["src"].startswith("data:image/") for i in parser.imgs)
        assert {p.name for p in pages} - {page.name} <= set(parser.links)  # links to every other page
        assert f"page {k + 1} of 3" in text and "5 paintings · 10 results" in text
    assert seen == [f"painting {i}.jpg" for i in range(5)]
    (root / "index-notes.html").write_text("mine")
    write_gallery(root / "index.html", entries[:4], per_page=2)  # two paintings of 2 results each
    assert pages[0].is_file() and not pages[1].exists() and not pages[2].exists()
    assert (root / "index-notes.html").read_text() == "mine"
    assert 'class="pages"' not in pages[0].read_text(encoding="utf-8")


def test_a_gallery_written_again_encodes_only_new_or_changed_pictures(tmp_path, monkeypatch):
    """With a thumbnail folder, writing the same gallery again encodes no thumbnail and embeds
    the same ones; a picture rewritten is encoded again, and the entries no longer used are
    removed from the folder."""
    import emosem.visualization.gallery as gallery

    entries = [e for e in _gallery_entries(tmp_path / "results") if not e.get("error")]
    thumbs = tmp_path / "results" / ".emosem" / "thumbs"
    encoded = []
    real = gallery._thumbnail_uri
    monkeypatch.setattr(gallery, "_thumbnail_uri", lambda path, *a: encoded.append(Path(path).name) or real(path, *a))
    out = write_gallery(tmp_path / "results", entries, thumbs=thumbs)
    first = out.read_text(encoding="utf-8")
    assert len(encoded) == 3 and len(list(thumbs.glob("*.uri"))) == 3
    encoded.clear()
    write_gallery(tmp_path / "results", entries, thumbs=thumbs)
    assert encoded == []
    strip = lambda page: page.split("<footer>")[0]  # noqa: E731  (the footer carries the time)
    assert strip(out.read_text(encoding="utf-8")) == strip(first)
    changed = Path(entries[0]["overlay_path"])
    save_image(changed, np.zeros((60, 90, 3), np.uint8))
    write_gallery(tmp_path / "results", entries, thumbs=thumbs)
    assert encoded == [changed.name] and len(list(thumbs.glob("*.uri"))) == 3  # the old one pruned
    assert strip(out.read_text(encoding="utf-8")) != strip(first)


def test_gallery_is_self_contained_and_escaped(tmp_path):
    entries = _gallery_entries(tmp_path / "results")
    out = write_gallery(tmp_path / "results" / "index.html", entries, title="Run <1>")
    assert out == tmp_path / "results" / "index.html"
    page = out.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(page)
    # overlay + heat map for awe, overlay for melancholy
    assert len(parser.imgs) == 3
    assert all(i["src"].startswith("data:image/") for i in parser.imgs)
    assert not any(u.startswith(("http://", "https://", "//")) for u in parser.urls)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page
    # text escaped
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; its stars" in page
    assert "Run &lt;1&gt;" in page and "broken &lt;1&gt;.jpg" in page
    # error card and free-text tag
    assert 'class="card error"' in page and "cannot identify image file" in page
    assert "outside the trained set" in page and "No explanation" in page
    # relative links to the full-resolution files
    assert "overlays/p1_awe.png" in parser.links
    assert "masks/p1_awe.png" in parser.links and "heat/p1_awe.jpg" in parser.links
    for href in parser.links:
        assert (out.parent / href).is_file()
    # thumbnails are downscaled
    for i in parser.imgs:
        raw = base64.b64decode(i["src"].split(",", 1)[1])
        with Image.open(io.BytesIO(raw)) as im:
            assert max(im.size) <= 480
    assert len(page) < 400_000


def test_gallery_groups_by_image_and_handles_missing_files(tmp_path):
    entries = _gallery_entries(tmp_path)
    entries.insert(1, dict(entries[0], image="p2.jpg", overlay_path=tmp_path / "gone.png"))
    out = write_gallery(tmp_path / "site", entries)  # a folder gets index.html
    assert out.name == "index.html" and out.parent == tmp_path / "site"
    page = out.read_text(encoding="utf-8")
    assert page.index("p1.jpg") < page.index("p2.jpg") < page.index("broken")
    assert page.count('<section class="painting">') == 3
    assert "overlay unavailable" in page
    assert "../overlays/p1_awe.png" in page


def test_cues_block_in_gallery_and_panel(tmp_path):
    """The measured cues appear as "what the region shows" in the gallery and the panel."""
    import numpy as np

    from emosem.data.cues import extract_cues
    from emosem.visualization.cues import cue_lines
    from emosem.visualization.figures import panel_figure
    from emosem.visualization.gallery import write_gallery

    img = np.zeros((60, 90, 3), np.uint8)
    img[:, :] = (229, 0, 0)  # the survey's own "red" (#e50000)
    mask = np.zeros((60, 90), bool)
    mask[:20, :30] = True
    cues = extract_cues(img, mask).with_concepts([{"name": "wreck", "score": 0.4}])
    rec = cues.record()
    lines = cue_lines(rec)
    assert lines[0] == "in the upper left, medium (11% of the canvas)"
    assert lines[1] == "colours: red 100%" and lines[-1] == "object: none licensed"
    assert not any("wreck" in line for line in lines)  # pooled concepts are not an object licence
    named = cue_lines(cues.with_object({"word": "ship", "source": "imagenet", "score": 0.77,
                                        "concept": "schooner"}).record())
    assert named[-1] == "object: ship (ImageNet schooner, 0.77)"
    old = {k: v for k, v in rec.items() if k != "object"}  # a record made before the object slot
    assert cue_lines(old)[-1] == "shows: wreck 0.40"
    assert cue_lines({"area_fraction": 0}) == [] and cue_lines(None) == []
    page = write_gallery(tmp_path / "index.html", [{"image": "x.png", "emotion": "fear",
                                                     "explanation": "a red sky", "cues": rec}])
    text = page.read_text()
    assert "what the region shows" in text and "colours: red 100%" in text
    fig = panel_figure(img, img, "fear", "a red sky", 0.5, cues=rec, out_path=tmp_path / "p.png")
    texts = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
    assert "what the region shows" in texts and "object: none licensed" in texts


def test_grid_tile_of_an_empty_region_says_why_it_has_no_text(tmp_path):
    img = _painting(240, 110)
    empty = {"area_fraction": 0.0, "place": "in the center", "size": "small", "colours": []}
    fig = grid_figure(img, [{"emotion": "awe", "overlay": img, "explanation": "I feel awe.",
                             "confidence": 0.5},
                            {"emotion": "fear", "overlay": img, "explanation": None, "confidence": 0.2,
                             "cues": empty}], out_path=tmp_path / "grid.png")
    text = _all_text(fig)
    assert "no region found, so nothing to explain" in text and "what the region shows" not in text
    close_figure(fig)
