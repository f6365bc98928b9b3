"""tools/infer.py and EmoSEMPredictor on real files: sample paintings and odd image kinds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

REPO = Path(__file__).resolve().parents[1]
INFER = [sys.executable, str(REPO / "tools" / "infer.py")]
RECORD_KEYS = {"emotion", "trained_emotion", "segmentation", "bbox", "area", "predicted_iou",
               "confidence", "explanation", "timing_s"}


def _infer(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*INFER, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO)


def _check_image_outputs(folder: Path, source: Path, emotions: list[str], figures: bool = True) -> dict:
    doc = json.loads((folder / "results.json").read_text())
    w, h = Image.open(source).size
    assert (doc["width"], doc["height"]) == (w, h)
    assert [r["emotion"] for r in doc["results"]] == emotions
    for rec in doc["results"]:
        assert RECORD_KEYS <= set(rec), set(rec) ^ RECORD_KEYS
        rle = dict(rec["segmentation"])
        assert rle["size"] == [h, w]
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)
        assert decoded.sum() == rec["area"]
        x, y, bw, bh = rec["bbox"]
        if rec["area"]:
            ys, xs = np.nonzero(decoded)
            assert (x, y, bw, bh) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        assert 0.0 <= rec["confidence"] <= 1.0
        if figures:
            slug = rec["emotion"].replace(" ", "_")
            png = np.array(Image.open(folder / f"{slug}_mask.png"))
            assert png.shape == (h, w) and np.array_equal(png > 127, decoded)
            for kind in ("overlay", "heatmap", "panel"):
                assert (folder / f"{slug}_{kind}.png").stat().st_size > 1000
            assert Image.open(folder / f"{slug}_overlay.png").size == (w, h)
    return doc


@pytest.mark.slow
def test_sample_paintings_all_outputs(tmp_path, tiny_checkpoint, sample_paintings):
    out = tmp_path / "out"
    proc = _infer(*sample_paintings[:2], "--emotion", "awe", "--emotion", "Something_Else",
                  "--emotion", "melancholy", "--checkpoint", tiny_checkpoint, "--out", out,
                  "--max-new-tokens", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for src in sample_paintings[:2]:
        doc = _check_image_outputs(out / src.stem, src, ["awe", "something else", "melancholy"])
        assert [r["trained_emotion"] for r in doc["results"]] == [True, True, False]
        assert set(doc["emotion_distribution"]) >= {"awe", "fear", "something else"}
        assert abs(sum(doc["emotion_distribution"].values()) - 1) < 1e-3
        assert (out / src.stem / "grid.png").is_file()
    html = (out / "index.html").read_text()
    assert html.count("<img") >= 6 and "melancholy" in html
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images_done"] == 2 and summary["images_failed"] == 0


def _odd_images(folder: Path) -> dict[str, Path]:
    """Grayscale, RGBA, CMYK, palette, 16-bit and EXIF-rotated versions of a painting."""
    base = Image.open(REPO / "demo" / "assets" / "shipwreck.jpg").convert("RGB").resize((120, 80))
    paths = {}
    paths["gray"] = folder / "gray.png"
    base.convert("L").save(paths["gray"])
    paths["rgba"] = folder / "rgba.png"
    base.convert("RGBA").save(paths["rgba"])
    paths["cmyk"] = folder / "cmyk.jpg"
    base.convert("CMYK").save(paths["cmyk"])
    paths["palette"] = folder / "palette.png"
    base.convert("P", palette=Image.Palette.ADAPTIVE).save(paths["palette"])
    paths["16bit"] = folder / "sixteen.png"
    Image.fromarray(np.array(base.convert("L")).astype(np.uint16) * 257).save(paths["16bit"])
    paths["exif"] = folder / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    base.save(paths["exif"], exif=exif)
    return paths


@pytest.mark.slow
def test_odd_images_and_bad_files_in_a_folder(tmp_path, tiny_checkpoint):
    images = tmp_path / "images"
    images.mkdir()
    odd = _odd_images(images)
    (images / "notes.jpg").write_text("not an image at all")
    good = Image.open(odd["rgba"])
    truncated = images / "truncated.jpg"
    good.convert("RGB").save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    out = tmp_path / "out"
    proc = _infer(images, "--emotion", "fear", "--checkpoint", tiny_checkpoint, "--out", out,
                  "--no-explain")
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images_done"] == len(odd) and summary["images_failed"] == 2
    failed = {Path(f["image"]).name for f in summary["failed"]}
    assert failed == {"notes.jpg", "truncated.jpg"}
    assert "notes.jpg" in proc.stdout and "truncated.jpg" in proc.stdout
    for name, src in odd.items():
        doc = json.loads((out / src.stem / "results.json").read_text())
        expected = (80, 120) if name == "exif" else (120, 80)  # EXIF orientation 6 swaps w/h
        assert (doc["width"], doc["height"]) == expected, name
        assert doc["results"][0]["explanation"] is None
    assert "error" in (out / "index.html").read_text().lower()


def test_bad_arguments_fail_clearly(tmp_path, tiny_checkpoint):
    proc = _infer(REPO / "demo" / "assets" / "shipwreck.jpg", "--emotion", "  ", "--checkpoint",
                  tiny_checkpoint, "--out", tmp_path)
    assert proc.returncode == 2 and "emotion is empty" in proc.stderr
    proc = _infer(REPO / "demo" / "assets" / "shipwreck.jpg", "--checkpoint", tmp_path / "missing",
                  "--out", tmp_path)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = _infer(tmp_path / "nope.jpg", "--checkpoint", tiny_checkpoint, "--out", tmp_path / "o",
                  "--json-only", "--no-explain", "--emotion", "awe")
    assert proc.returncode == 1 and "no such file" in proc.stderr


def test_predictor_api_caches_the_embedding(tiny_checkpoint, sample_paintings):
    from emosem.inference.predictor import EmoSEMPredictor

    predictor = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict(["awe"])
    state = predictor.set_image(Image.open(sample_paintings[0]))
    h, w = state.original_size
    calls = []
    encoder = predictor.model.sam.image_encoder
    handle = encoder.register_forward_hook(lambda *a: calls.append(1))
    first = predictor.predict(["awe", "fear"], explain=False)
    again = predictor.predict(["awe"], explain=False)
    handle.remove()
    assert calls == [], "predict must reuse the cached embedding"
    assert first[0].mask.shape == (h, w) and first[0].soft_mask.dtype == np.float32
    np.testing.assert_allclose(first[0].soft_mask, again[0].soft_mask, atol=1e-5)
    arr = np.array(Image.open(sample_paintings[1]).convert("RGB"))
    other = predictor(arr, "awe", explain=False)  # stateless call leaves the cache alone
    assert other[0].mask.shape == arr.shape[:2]
    assert predictor.predict(["awe"], explain=False)[0].mask.shape == (h, w)
    with pytest.raises(ValueError, match="empty"):
        predictor.predict([""])
