"""tools/infer.py and EmoSEMPredictor on real files: sample paintings and odd image kinds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from emosem.emotions import emotion_file_stem
from emosem.inference.collection import RESULT_MARKER

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
        if rec["area"]:  # (an empty mask's box is all zeros; test_cli_options forces regions)
            ys, xs = np.nonzero(decoded)
            assert (x, y, bw, bh) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        else:
            assert (x, y, bw, bh) == (0, 0, 0, 0)
        assert 0.0 <= rec["confidence"] <= 1.0
        if figures:
            slug = emotion_file_stem(rec["emotion"])
            assert rec["files"]["mask"] == f"{slug}_mask.png"
            png = np.array(Image.open(folder / f"{slug}_mask.png"))
            assert png.shape == (h, w) and np.array_equal(png > 127, decoded)
            for kind in ("overlay", "heatmap", "panel"):
                assert (folder / f"{slug}_{kind}.png").stat().st_size > 1000
            assert Image.open(folder / f"{slug}_overlay.png").size == (w, h)
    # every file written is named in results.json; nothing else is in the folder but the result marker
    assert sorted(p.name for p in folder.iterdir() if p.name != RESULT_MARKER) == sorted(doc["files"])
    return doc


@pytest.mark.slow
def test_sample_paintings_all_outputs(tmp_path, tiny_checkpoint, sample_paintings):
    out = tmp_path / "out"
    proc = _infer(*sample_paintings[:2], "--emotion", "awe", "--emotion", "Something_Else",
                  "--emotion", "melancholy", "--checkpoint", tiny_checkpoint, "--out", out,
                  "--max-new-tokens", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for src in sample_paintings[:2]:
        doc = _check_image_outputs(out / src.name, src, ["awe", "something else", "melancholy"])
        assert [r["trained_emotion"] for r in doc["results"]] == [True, True, False]
        assert set(doc["emotion_distribution"]) >= {"awe", "fear", "something else"}
        assert abs(sum(doc["emotion_distribution"].values()) - 1) < 1e-3
        # no in-domain score: the head's distribution, no prior computed (its weight is 0), masks
        # as thresholded
        assert doc["prior_weight"] == 0 and doc["in_domain_score"] is None
        assert doc["emotion_distribution"] == doc["emotion_distribution_head"]
        assert doc["emotion_distribution_prior"] is None
        assert all(r["region"]["rule"] == "threshold" for r in doc["results"])
        assert (out / src.name / "grid.png").is_file()
    html = (out / "index.html").read_text()
    assert html.count("<img") >= 6 and "melancholy" in html
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images_done"] == 2 and summary["images_failed"] == 0
    assert summary["done"] == sorted(p.name for p in sample_paintings[:2])


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
    small = good.convert("RGB")
    frames = [small, small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(images / "moving.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(images / "pages.tif", save_all=True, append_images=frames[1:])
    (images / "readme.txt").write_text("about these pictures")
    out = tmp_path / "out"
    proc = _infer(images, "--emotion", "fear", "--checkpoint", tiny_checkpoint, "--out", out,
                  "--no-explain")
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    # every input is accounted for: done, failed or skipped, each failure and skip with a reason
    assert summary["images_total"] == len(odd) + 5
    assert summary["images_done"] == len(odd) + 1 and summary["images_failed"] == 2
    failed = {Path(f["image"]).name for f in summary["failed"]}
    assert failed == {"notes.jpg", "truncated.jpg"}
    assert "notes.jpg" in proc.stdout and "truncated.jpg" in proc.stdout
    skipped = {s["image"]: s["reason"] for s in summary["skipped"]}
    assert set(skipped) == {"moving.gif", "readme.txt"}
    assert "animated GIF (2 frames)" in skipped["moving.gif"] and ".txt" in skipped["readme.txt"]
    assert summary["notes"] == [{"image": "pages.tif", "note": "multi-page TIFF (2 pages): page 1 analysed"}]
    assert json.loads((out / "pages.tif" / "results.json").read_text())["note"].startswith("multi-page")
    for name, src in odd.items():
        doc = json.loads((out / src.name / "results.json").read_text())
        expected = (80, 120) if name == "exif" else (120, 80)  # EXIF orientation 6 swaps w/h
        assert (doc["width"], doc["height"]) == expected, name
        assert doc["results"][0]["explanation"] is None
    # the gallery has one error card per broken file, each naming it
    html = (out / "index.html").read_text()
    cards = re.findall(r'<article class="card error">(.*?)</article>', html, re.S)
    assert len(cards) == 2
    assert sorted(re.search(r"(notes|truncated)\.jpg", c).group(0) for c in cards) == ["notes.jpg", "truncated.jpg"]


def test_bad_arguments_fail_clearly(tmp_path, tiny_checkpoint):
    painting = REPO / "demo" / "assets" / "shipwreck.jpg"
    proc = _infer(painting, "--emotion", "  ", "--checkpoint", tiny_checkpoint, "--out", tmp_path)
    assert proc.returncode == 2 and "emotion is empty" in proc.stderr
    proc = _infer(painting, "--emotion", "sad " * 1250, "--checkpoint", tiny_checkpoint, "--out", tmp_path)
    assert proc.returncode == 2 and "at most 80 characters" in proc.stderr
    for value in ("0", "1", "1.5", "-0.2", "nan"):
        proc = _infer(painting, "--threshold", value, "--checkpoint", tiny_checkpoint, "--out", tmp_path)
        assert proc.returncode == 2 and "--threshold" in proc.stderr, value
    proc = _infer(painting, "--batch-size", "0", "--checkpoint", tiny_checkpoint, "--out", tmp_path)
    assert proc.returncode == 2 and "--batch-size must be at least 1" in proc.stderr
    proc = _infer(painting, "--checkpoint", tmp_path / "missing", "--out", tmp_path)
    assert proc.returncode == 1 and "does not exist" in proc.stderr  # cannot be loaded: 1
    proc = _infer(tmp_path / "nope.jpg", "--checkpoint", tiny_checkpoint, "--out", tmp_path / "o",
                  "--json-only", "--no-explain", "--emotion", "awe")
    assert proc.returncode == 1 and "no such file" in proc.stderr


def test_unusable_out_is_refused_before_the_model_loads(tmp_path):
    """--out naming a file, or on a read-only file system: a one-line error, exit 1, and no
    model load (the checkpoint given does not exist, which a load would report instead)."""
    painting = REPO / "demo" / "assets" / "shipwreck.jpg"
    a_file = tmp_path / "results.txt"
    a_file.write_text("my notes")
    targets = [(a_file, "is an existing file")]
    if not os.access("/sys", os.W_OK) or os.path.ismount("/sys"):
        targets.append((Path("/sys/emosem-out"), "is not writable"))
    for out, why in targets:
        proc = _infer(painting, "--checkpoint", tmp_path / "no-checkpoint", "--out", out, "--emotion", "awe")
        assert proc.returncode == 1, proc.stderr[-2000:]
        errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
        assert len(errors) == 1 and why in errors[0] and "Traceback" not in proc.stderr
        assert "checkpoint" not in proc.stderr.lower()
    assert a_file.read_text() == "my notes"


def test_folder_without_images_is_a_failure(tmp_path, tiny_checkpoint):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "list.csv").write_text("a,b\n")
    proc = _infer(empty, "--checkpoint", tiny_checkpoint, "--out", tmp_path / "out", "--emotion", "awe")
    assert proc.returncode == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["images_done"] == 0 and summary["images_failed"] == 1
    assert summary["failed"][0]["reason"].startswith("folder holds no images")
    assert [s["image"] for s in summary["skipped"]] == ["sub/list.csv"]
    assert summary["this_run"]["model_load_s"] == 0  # nothing to analyse: no model loaded


def _masks(folder: Path) -> dict[str, np.ndarray]:
    doc = json.loads((folder / "results.json").read_text())
    return {r["emotion"]: mask_utils.decode({"size": r["segmentation"]["size"],
                                             "counts": r["segmentation"]["counts"].encode()}).astype(bool)
            for r in doc["results"]}


def test_threshold_and_batch_size_are_used_and_recorded(tmp_path, tiny_checkpoint):
    painting = REPO / "demo" / "assets" / "shipwreck.jpg"
    emotions = ["awe", "fear", "anger", "sadness", "melancholy"]
    runs = {"t07_b2": ("0.7", "2"), "t07_b9": ("0.7", "9"), "t03_b9": ("0.3", "9")}
    for name, (threshold, batch) in runs.items():
        proc = _infer(painting, *[a for e in emotions for a in ("--emotion", e)], "--no-explain",
                      "--json-only", "--threshold", threshold, "--batch-size", batch,
                      "--checkpoint", tiny_checkpoint, "--out", tmp_path / name)
        assert proc.returncode == 0, proc.stderr[-2000:]
    docs = {n: json.loads((tmp_path / n / painting.name / "results.json").read_text()) for n in runs}
    assert docs["t07_b2"]["emotion_batches"] == [emotions[:2], emotions[2:4], emotions[4:]]
    assert docs["t07_b9"]["emotion_batches"] == [emotions]
    assert [docs[n]["mask_threshold"] for n in runs] == [0.7, 0.7, 0.3]
    masks = {n: _masks(tmp_path / n / painting.name) for n in runs}
    for e in emotions:
        # batching changes nothing; a lower threshold gives a superset of the mask
        assert np.array_equal(masks["t07_b2"][e], masks["t07_b9"][e]), e
        assert not (masks["t07_b9"][e] & ~masks["t03_b9"][e]).any(), e
    assert sum(m.sum() for m in masks["t03_b9"].values()) > sum(m.sum() for m in masks["t07_b9"].values())


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
    for bad in (0, 1, 5, float("nan")):  # checked in the library, not only by the CLIs
        with pytest.raises(ValueError, match="threshold must be a mask probability strictly between 0 and 1"):
            predictor.predict(["awe"], threshold=bad, explain=False)
    assert predictor.threshold() == predictor.model.config.mask_threshold

