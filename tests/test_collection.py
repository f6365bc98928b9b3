"""Collection runs of tools/infer.py on real files: result paths, --out policy, lock, pixel budget,
sharding over two `accelerate launch` CPU processes, SIGKILL + resume, W3C annotations / IIIF,
results.csv."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_runs import ASSETS, ENV, INFER, REPO
from cli_runs import run_infer as _infer
from PIL import Image
from pycocotools import mask as mask_utils

from emosem.emotions import emotion_file_stem
from emosem.inference.annotations import rasterize_svg_selector, validate_annotation_page
from emosem.inference.collection import RESULT_MARKER
from emosem.inference.merge import CSV_COLUMNS, _flat, csv_rows

ART = REPO.parent / "shared" / "art"
LAUNCH2 = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


def _decode(rec: dict) -> np.ndarray:
    seg = rec["segmentation"]
    return mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}).astype(bool)


def _boundary_distance(mask: np.ndarray) -> np.ndarray:
    """Per pixel, the distance (px) to the nearest boundary between ``mask`` and its outside; the
    image's edge is a boundary too (the traced outline runs along it), hence the padding."""
    padded = np.pad(mask, 1)
    inside = cv2.distanceTransform(padded.astype(np.uint8), cv2.DIST_L2, 5)
    outside = cv2.distanceTransform((~padded).astype(np.uint8), cv2.DIST_L2, 5)
    return np.maximum(inside, outside)[1:-1, 1:-1]


def _perimeter(mask: np.ndarray) -> float:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    return float(sum(cv2.arcLength(c, True) for c in contours))


def _painting(name: str, size: tuple[int, int]) -> Image.Image:
    return Image.open(ASSETS / name).convert("RGB").resize(size)


def _without_run(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("this_run", "cold_start_to_first_result_s")}


def test_result_paths_never_collide_and_every_file_is_recorded(tmp_path, tiny_checkpoint):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    made = {
        "x.jpg": _painting("shipwreck.jpg", (96, 64)), "x.png": _painting("starry_night.jpg", (80, 50)),
        "x_2.jpg": _painting("the_scream.jpg", (60, 76)), "sub/x.jpg": _painting("starry_night.jpg", (64, 40)),
    }
    for key, im in made.items():
        im.save(src / key)
    out = tmp_path / "out"
    proc = _infer(src, "--emotion", "грусть", "--emotion", "радость", "--emotion", "awe", "--no-explain",
                  "--checkpoint", tiny_checkpoint, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stems = [emotion_file_stem(e) for e in ("грусть", "радость", "awe")]
    assert len(set(stems)) == 3 and stems[2] == "awe"
    for key, im in made.items():
        folder = out / key
        doc = json.loads((folder / "results.json").read_text())
        assert doc["source"] == str(src / key) and (doc["width"], doc["height"]) == im.size
        assert [r["files"]["mask"] for r in doc["results"]] == [f"{s}_mask.png" for s in stems]
        assert sorted(p.name for p in folder.iterdir() if p.name != RESULT_MARKER) == sorted(doc["files"])
        for rec in doc["results"]:  # each emotion's PNG is its own mask
            png = np.asarray(Image.open(folder / rec["files"]["mask"])) > 127
            assert np.array_equal(png, _decode(rec)), (key, rec["emotion"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["done"] == ["x.jpg", "x.png", "x_2.jpg", "sub/x.jpg"]  # walk order: files, then folders
    html = (out / "index.html").read_text()
    for key in made:
        for stem in stems:
            assert f'href="{key}/{stem}_overlay.png"' in html


def test_out_policy_lock_and_resume(tmp_path, tiny_checkpoint):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _painting("shipwreck.jpg", (96, 64)).save(a / "portrait.jpg")
    _painting("the_scream.jpg", (60, 76)).save(b / "portrait.jpg")
    out = tmp_path / "out"
    common = ["--emotion", "fear", "--emotion", "awe", "--no-explain", "--checkpoint", tiny_checkpoint, "--out", out]
    assert _infer(a / "portrait.jpg", *common).returncode == 0
    first = json.loads((out / "portrait.jpg" / "results.json").read_text())
    # another painting with the same file name: refused, the first run's results untouched
    proc = _infer(b / "portrait.jpg", *common)
    assert proc.returncode == 1 and "--overwrite" in proc.stdout
    assert json.loads((out / "portrait.jpg" / "results.json").read_text()) == first
    # a second writer on the same --out is refused while the first holds it
    fd = os.open(out / ".emosem" / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        proc = _infer(b / "portrait.jpg", *common, "--overwrite")
    finally:
        os.close(fd)
    assert proc.returncode == 1 and "in use by another infer run" in proc.stderr
    # --overwrite replaces the folder whole: the second painting's files only
    proc = _infer(b / "portrait.jpg", *common[:-2], "--emotion", "sadness", "--out", out, "--overwrite")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "portrait.jpg" / "results.json").read_text())
    assert doc["source"] == str(b / "portrait.jpg") and (doc["width"], doc["height"]) == (60, 76)
    assert sorted(p.name for p in (out / "portrait.jpg").iterdir()) == sorted([*doc["files"], RESULT_MARKER])
    # the same file and settings again: reused, no model loaded
    proc = _infer(b / "portrait.jpg", *common[:-2], "--emotion", "sadness", "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    assert proc.returncode == 0 and summary["this_run"]["reused"] == 1
    assert summary["this_run"]["processed"] == 0 and summary["this_run"]["model_load_s"] == 0
    assert summary["this_run"]["images_per_s_after_first"] is None  # no new image: no rate
    assert not list((out / ".emosem").glob("tmp/*"))


def test_pixel_budget_keeps_masks_at_the_original_size(tmp_path, tiny_checkpoint):
    """A 1-bit 3,000 × 2,000 PNG analysed at --max-side 256: RLE, bbox, area and mask PNG are at
    3,000 × 2,000, the figures at the working size, and the annotations trace the full-size mask."""
    big = Image.fromarray(np.indices((2000, 3000)).sum(0) // 200 % 2 == 0).convert("1")
    big.save(tmp_path / "lines.png")
    out = tmp_path / "out"
    # a low threshold: the random checkpoint's mask is never empty, so the geometry is checked
    proc = _infer(tmp_path / "lines.png", "--emotion", "awe", "--no-explain", "--max-side", "256",
                  "--threshold", "0.02", "--checkpoint", tiny_checkpoint, "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = out / "lines.png"
    doc = json.loads((folder / "results.json").read_text())
    assert (doc["width"], doc["height"]) == (3000, 2000) and doc["working_size"] == [171, 256]
    rec = doc["results"][0]
    mask = _decode(rec)
    assert mask.shape == (2000, 3000) and mask.sum() == rec["area"] > 0
    ys, xs = np.nonzero(mask)
    bbox = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
    assert rec["bbox"] == bbox
    assert np.array_equal(np.asarray(Image.open(folder / rec["files"]["mask"])) > 127, mask)
    assert Image.open(folder / rec["files"]["overlay"]).size == (256, 171)
    page = json.loads((folder / "annotations.json").read_text())
    assert validate_annotation_page(page) == []
    (anno,) = page["items"]  # the full-size box, not the working size's
    (frag,) = [s for s in anno["target"]["selector"] if s["type"] == "FragmentSelector"]
    assert frag["value"] == "xywh=" + ",".join(map(str, bbox))


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """Ten small real paintings in two folders (two share a file name)."""
    root = tmp_path_factory.mktemp("collection") / "paintings"
    names = ["shipwreck.jpg", "starry_night.jpg", "the_scream.jpg"]
    for i in range(10):
        folder = root / ("north" if i % 2 else "south")
        folder.mkdir(parents=True, exist_ok=True)
        w = 120 + 8 * i
        _painting(names[i % 3], (w, w * 3 // 4)).save(folder / f"p{i // 2}.jpg")
    return root


@pytest.fixture(scope="module")
def one_process(collection, tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "out"
    proc = _infer(collection, "--emotion", "awe", "--emotion", "fear", "--no-explain", "--device", "cpu",
                  "--checkpoint", tiny_checkpoint, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _same_run(a: Path, b: Path) -> None:
    sa, sb = (json.loads((p / "summary.json").read_text()) for p in (a, b))
    assert _without_run(sa) == _without_run(sb)
    assert (a / "results.csv").read_text() == (b / "results.csv").read_text()
    for key in sa["done"]:
        ra, rb = ([{k: v for k, v in r.items() if k != "timing_s"} for r in
                   json.loads((p / key / "results.json").read_text())["results"]] for p in (a, b))
        assert ra == rb, key


@pytest.mark.slow
def test_two_accelerate_processes_give_the_one_process_run(collection, one_process, tiny_checkpoint, tmp_path):
    out = tmp_path / "two"
    proc = _infer(collection, "--emotion", "awe", "--emotion", "fear", "--no-explain", "--device", "cpu",
                  "--checkpoint", tiny_checkpoint, "--out", out, launch=LAUNCH2)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("Done:") == 1, "only rank 0 reports"
    _same_run(one_process, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["this_run"]["processes"] == 2 and summary["images_done"] == 10
    owners = {k: json.loads((out / k / "results.json").read_text())["process_index"] for k in summary["done"]}
    assert set(owners.values()) == {0, 1}  # both processes wrote images, each image once
    assert {"north/p0.jpg", "south/p0.jpg"} <= set(owners)


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(collection, one_process, tiny_checkpoint, tmp_path):
    out = tmp_path / "killed"
    args = [sys.executable, INFER, collection, "--emotion", "awe", "--emotion", "fear", "--no-explain",
            "--device", "cpu", "--checkpoint", tiny_checkpoint, "--out", out]
    proc = subprocess.Popen(list(map(str, args)), env=ENV, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("*/*/results.json"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    written = len(list(out.glob("*/*/results.json")))
    assert 3 <= written < 10, "the run should be killed halfway"
    assert not (out / "summary.json").exists()
    resumed = _infer(collection, "--emotion", "awe", "--emotion", "fear", "--no-explain", "--device", "cpu",
                     "--checkpoint", tiny_checkpoint, "--out", out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["this_run"]["reused"] == written and summary["this_run"]["processed"] == 10 - written
    _same_run(one_process, out)
    assert not list((out / ".emosem").glob("tmp/*")), "half-written folders are cleaned up"


def test_results_csv_schema(one_process):
    with open(one_process / "results.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == CSV_COLUMNS
        rows = list(reader)
    summary = json.loads((one_process / "summary.json").read_text())
    assert len(rows) == summary["csv_rows"] == 2 * len(summary["done"])
    for row in rows:
        doc = json.loads((one_process / row["image"] / "results.json").read_text())
        rec = next(r for r in doc["results"] if r["emotion"] == row["emotion"])
        assert int(row["area"]) == rec["area"]
        assert float(row["area_share"]) == pytest.approx(rec["area"] / (doc["width"] * doc["height"]), abs=1e-6)
        assert [int(row[k]) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h")] == rec["bbox"]
        assert float(row["confidence"]) == rec["confidence"] and float(row["predicted_iou"]) == rec["predicted_iou"]
        assert row["mask_file"] == f"{row['image']}/{rec['files']['mask']}"
        # the columns carry whatever concepts / cues the records hold (none: empty)
        assert row["concepts"] == _flat(rec.get("concepts")) and row["cues"] == _flat(rec.get("cues"))
    # records that carry concepts and cues fill those columns
    doc = {"width": 10, "height": 10, "source": "s.jpg", "results": [{
        "emotion": "awe", "trained_emotion": True, "area": 25, "bbox": [0, 0, 5, 5], "confidence": 0.5,
        "predicted_iou": 0.6, "explanation": "big sky", "files": {"mask": "awe_mask.png"},
        "concepts": [{"name": "sky", "score": 0.91}, {"name": "cloud", "score": 0.05}],
        "cues": {"position": "upper half", "colour": "blue"}}]}
    [row] = list(csv_rows("s.jpg", doc))
    assert row["concepts"] == "sky (0.910); cloud (0.050)"
    assert row["cues"] == "position=upper half; colour=blue" and row["area_share"] == "0.250000"


def _manifest(tmp_path: Path, canvases: dict[str, tuple[int, int]]) -> Path:
    items = []
    for i, (name, (w, h)) in enumerate(canvases.items()):
        cid = f"https://example.org/iiif/art/canvas/{i}"
        items.append({"id": cid, "type": "Canvas", "width": w, "height": h, "items": [{
            "id": f"{cid}/page", "type": "AnnotationPage", "items": [{
                "id": f"{cid}/page/a", "type": "Annotation", "motivation": "painting", "target": cid,
                "body": {"id": f"https://example.org/images/{name}", "type": "Image", "format": "image/jpeg",
                         "width": w, "height": h}}]}]})
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"@context": "http://iiif.io/api/presentation/3/context.json",
                                "id": "https://example.org/iiif/art/manifest", "type": "Manifest",
                                "label": {"en": ["Three paintings"]}, "items": items}))
    return path


@pytest.mark.slow
@pytest.mark.skipif(not ART.is_dir(), reason="../shared/art is not here")
def test_annotations_round_trip_and_iiif_targets_on_real_paintings(tmp_path):
    """The bundled checkpoint on the real paintings of ../shared/art, all nine emotions: every
    annotation validates, its SVG polygon rasterizes back to the mask with IoU >= 0.95, and with a
    IIIF manifest the targets are the canvases, scaled to canvas units."""
    paintings = sorted(ART.glob("*.jpg"))
    sizes = {p.name: Image.open(p).size for p in paintings}
    scale = {paintings[0].name: 2.0, paintings[1].name: 0.5}  # the third painting has no canvas
    manifest = _manifest(tmp_path, {n: (round(sizes[n][0] * s), round(sizes[n][1] * s)) for n, s in scale.items()})
    out = tmp_path / "out"
    proc = _infer(*paintings, "--emotion", "all", "--no-explain", "--json-only", "--iiif-manifest", manifest,
                  "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    canvases = {c["id"]: c for c in json.loads(manifest.read_text())["items"]}
    annotated = json.loads((out / "manifest.json").read_text())
    ious = []
    for p in paintings:
        doc = json.loads((out / p.name / "results.json").read_text())
        page = json.loads((out / p.name / "annotations.json").read_text())
        assert validate_annotation_page(page) == [], p.name
        assert len(page["items"]) == sum(1 for r in doc["results"] if r["area"])
        for anno, rec in zip(page["items"], [r for r in doc["results"] if r["area"]]):
            bodies = {b["purpose"]: b["value"] for b in anno["body"]}
            assert bodies["tagging"] == rec["emotion"] and f"{rec['confidence']:.4f}" in bodies["assessing"]
            svg, frag = anno["target"]["selector"]
            source = anno["target"]["source"]
            s = scale.get(p.name)
            if s is None:
                assert source["type"] == "Image" and source["id"] == p.resolve().as_uri()
                assert doc["annotation_note"].startswith("no canvas")
                size = (doc["height"], doc["width"])
                mask = _decode(rec)
            else:
                canvas = canvases[source["id"]]
                assert source["type"] == "Canvas" and canvas["items"][0]["items"][0]["body"]["id"].endswith(p.name)
                # the canvas is round(side * s) units, so the true scale of each axis is canvas / image
                # (an odd side at s = 0.5 is not exactly 0.5)
                sx, sy = canvas["width"] / doc["width"], canvas["height"] / doc["height"]
                x, y, w, h = rec["bbox"]
                assert frag["value"] == f"xywh={round(x * sx)},{round(y * sy)},{max(1, round(w * sx))},{max(1, round(h * sy))}"
                # a viewer at full zoom: canvas units back to image pixels
                assert f'width="{canvas["width"]}" height="{canvas["height"]}"' in svg["value"]
                size, mask = (doc["height"], doc["width"]), _decode(rec)
            back = rasterize_svg_selector(svg["value"], size, scale=(1 / sx, 1 / sy) if s else 1.0)
            iou = (back & mask).sum() / (back | mask).sum()
            # Douglas-Peucker keeps the polygon within the tolerance of the traced boundary: every
            # pixel that differs lies within tolerance (1 unit of the target: 1 / s image pixels)
            # plus a pixel of rasterisation from the mask's boundary. This holds for any shape;
            # IoU alone does not (thin, fragmented masks lose a large share to a 1 px tolerance).
            limit = 1.0 / min(sx, sy) + 1.5 if s else 2.5
            assert _boundary_distance(mask)[back ^ mask].max(initial=0) <= limit, (p.name, rec["emotion"])
            if mask.sum() >= 1000 and mask.sum() >= 10 * _perimeter(mask):  # compact: IoU is meaningful
                ious.append((iou, p.name, rec["emotion"]))
            elif mask.sum() < 1000:  # specks of a few pixels: a one-pixel rasterisation error is a large share
                assert (back & mask).sum() >= 0.75 * mask.sum(), (iou, rec["emotion"])
    assert min(ious)[0] >= 0.95, min(ious)
    assert len(ious) >= 3
    pages = {c["id"]: c.get("annotations", []) for c in annotated["items"]}
    assert all(len(v) == 1 and v[0]["type"] == "AnnotationPage" and v[0]["items"] for v in pages.values())


def test_malformed_manifest_is_a_one_line_error(tmp_path, tiny_checkpoint):
    bad = tmp_path / "manifest.json"
    for content, why in (("{not json", "not JSON"), ('{"type": "Collection"}', "not a IIIF Presentation 3 Manifest"),
                         ('{"type": "Manifest", "items": [{"type": "Canvas", "id": "https://x/c", "width": 0, '
                          '"height": 5}]}', "needs positive width and height")):
        bad.write_text(content)
        proc = _infer(ASSETS / "shipwreck.jpg", "--iiif-manifest", bad, "--checkpoint", tiny_checkpoint,
                      "--out", tmp_path / "out")
        errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
        assert proc.returncode == 1 and len(errors) == 1 and why in errors[0], proc.stderr[-2000:]
