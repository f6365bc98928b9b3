"""ArtEmis CSV + COCO stimulus masks: joins, RLE/polygon round trips, bad data, splits, validate_data."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from emosem.data.artemis import (
    ArtEmisFormatError,
    StimulusSample,
    decode_rle,
    encode_mask,
    load_artemis,
    split_by_painting,
)
from emosem.emotions import EMOTION_TO_INDEX

REPO = Path(__file__).resolve().parents[1]
HEADER = ["art_style", "painting", "emotion", "utterance", "repetition"]


def _img(path: Path, h: int, w: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=90)


def _write_csv(path: Path, rows, header=HEADER) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def _ann(aid, image_id, emotion, seg, motif=None):
    a = {"id": aid, "image_id": image_id, "category_id": EMOTION_TO_INDEX[emotion] + 1,
         "segmentation": seg, "iscrowd": 0}
    if motif:
        a["motif"] = motif
    return a


def _categories():
    return [{"id": i + 1, "name": e} for e, i in EMOTION_TO_INDEX.items()]


POLY_A = [10.0, 40.0, 30.0, 40.0, 30.0, 55.0, 10.0, 55.0]  # x,y pairs: a rectangle-ish polygon
POLY_C = [5.0, 5.0, 60.0, 5.0, 30.0, 35.0]


@pytest.fixture()
def good_set(tmp_path):
    """Three paintings: a (JPEG 60x80), b (PNG 50x50), c (JPEG 40x70, masks only)."""
    root = tmp_path / "data"
    _img(root / "images/Impressionism/monet_a.jpg", 60, 80, 1)
    _img(root / "images/Impressionism/monet_b.png", 50, 50, 2)
    _img(root / "images/Realism/courbet_c-1850.jpg", 40, 70, 3)
    rows = [
        ["Impressionism", "monet_a", "awe", "I feel awe at the huge sun in the sky", "4", "x"],
        ["Impressionism", "monet_a", "AWE", "The sun makes me feel tiny and amazed", "4", "x"],
        ["Impressionism", "monet_a", "Fear", "The dark wave scares me", "4", "x"],
        ["Impressionism", "monet_a", "something_else", "I feel nothing much", "4", "x"],
        ["Impressionism", "monet_b", "contentment", "A calm pond makes me feel at peace", "3", ""],
        ["Impressionism", "monet_b", "contentment", "So quiet, I am content", "3", ""],
        ["Impressionism", "monet_b", "contentment", "  Peaceful   and   still  ", "3", ""],
    ]
    with open(root / "artemis_dataset_release_v0.csv", "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(HEADER + ["notes"])  # extra column, BOM: both must be handled
        w.writerows(rows)
    m1 = _rect(60, 80, 5, 20, 50, 70)
    m3 = _rect(60, 80, 30, 58, 40, 79)
    md = _rect(50, 50, 10, 40, 10, 20)
    coco = {
        "images": [
            {"id": 1, "file_name": "Impressionism/monet_a.jpg", "height": 60, "width": 80},
            {"id": 2, "file_name": "Impressionism/monet_b.jpg", "height": 50, "width": 50},
            {"id": 3, "file_name": "Realism/courbet_c-1850.jpg", "height": 40, "width": 70},
        ],
        "annotations": [
            _ann(1, 1, "awe", encode_mask(m1), motif="sun"),
            _ann(2, 1, "awe", [POLY_A], motif="mountain"),
            _ann(3, 1, "fear", encode_mask(m3), motif="wave"),
            _ann(4, 2, "disgust", encode_mask(md)),
            _ann(5, 3, "sadness", [POLY_C], motif="rain_cloud"),
        ],
        "categories": _categories(),
    }
    (root / "stimulus_masks.json").write_text(json.dumps(coco))
    return root, {"m1": m1, "m3": m3, "md": md}


def _poly_mask(poly, h, w):
    return decode_rle(mask_util.merge(mask_util.frPyObjects([poly], h, w)))


def test_csv_and_coco_round_trip(good_set):
    root, masks = good_set
    data = load_artemis(root)
    rep = data.report
    assert rep.skipped == {} and rep.usable
    assert rep.csv_rows == 7 and rep.annotations == 5
    assert rep.paintings == 3 and rep.samples == 6
    assert (rep.with_mask_and_text, rep.mask_only, rep.text_only) == (2, 2, 2)
    assert data.paintings() == ["Impressionism/monet_a", "Impressionism/monet_b", "Realism/courbet_c-1850"]

    by = {(s.key, s.emotion): s for s in data.samples}
    awe = by[("Impressionism/monet_a", "awe")]
    assert awe.has_mask and awe.has_text and awe.utterances == [
        "I feel awe at the huge sun in the sky", "The sun makes me feel tiny and amazed"]
    assert (awe.height, awe.width) == (60, 80)
    assert awe.image_path.name == "monet_a.jpg"
    assert isinstance(awe.mask_rle["counts"], str)
    # union of an RLE and a polygon annotation of the same emotion
    np.testing.assert_array_equal(data.decode_mask(awe), masks["m1"] | _poly_mask(POLY_A, 60, 80))
    np.testing.assert_array_equal(data.decode_mask(by[("Impressionism/monet_a", "fear")]), masks["m3"])
    se = by[("Impressionism/monet_a", "something else")]
    assert se.has_text and not se.has_mask
    with pytest.raises(ValueError, match="no mask"):
        data.decode_mask(se)

    b_cont = by[("Impressionism/monet_b", "contentment")]
    assert b_cont.image_path.suffix == ".png"  # COCO says .jpg, the file is a PNG: found anyway
    assert b_cont.utterances[2] == "Peaceful and still" and not b_cont.has_mask
    b_dis = by[("Impressionism/monet_b", "disgust")]
    assert b_dis.has_mask and not b_dis.has_text
    np.testing.assert_array_equal(data.decode_mask(b_dis), masks["md"])
    c = by[("Realism/courbet_c-1850", "sadness")]
    assert c.painting == "courbet_c-1850" and c.has_mask and not c.has_text
    poly = _poly_mask(POLY_C, 40, 70)
    np.testing.assert_array_equal(data.decode_mask(c), poly)
    drawn = np.zeros((40, 70), np.uint8)
    cv2.fillPoly(drawn, [np.array(POLY_C).reshape(-1, 2).astype(np.int32)], 1)
    assert (poly & drawn.astype(bool)).sum() / (poly | drawn.astype(bool)).sum() > 0.85


def test_per_painting_lookups(good_set):
    root, _ = good_set
    data = load_artemis(root)
    key = "Impressionism/monet_a"
    counts = data.emotion_counts(key)
    assert counts.shape == (9,) and counts[EMOTION_TO_INDEX["awe"]] == 2
    assert counts[EMOTION_TO_INDEX["fear"]] == 1 and counts[EMOTION_TO_INDEX["something else"]] == 1
    dist = data.emotion_distribution(key)
    assert dist.dtype == np.float32 and abs(dist.sum() - 1) < 1e-6 and dist[EMOTION_TO_INDEX["awe"]] == 0.5
    assert data.emotion_distribution("Realism/courbet_c-1850").sum() == 0  # masks only, no votes
    anns = data.annotations(key)
    assert sorted((a["emotion"], a["motif"]) for a in anns) == [("awe", "mountain"), ("awe", "sun"), ("fear", "wave")]
    assert all(isinstance(a["rle"]["counts"], str) and a["rle"]["size"] == [60, 80] for a in anns)
    assert data.annotations("Impressionism/monet_b")[0]["motif"] is None
    assert data.sample(key, "Something_Else").emotion == "something else"
    assert data.sample(key, "anger") is None
    assert [s.emotion for s in data.samples_of(key)] == ["awe", "fear", "something else"]
    with pytest.raises(KeyError, match="Unknown painting"):
        data.emotion_counts("Nope/nothing")
    d = data.report.to_dict()
    json.dumps(d)
    assert d["samples"] == 6 and "nothing skipped" in data.report.summary()


def test_text_only_when_masks_missing_or_none(good_set, tmp_path):
    root, _ = good_set
    data = load_artemis(root, masks=None)
    assert all(not s.has_mask for s in data.samples) and data.report.samples == 4
    data = load_artemis(root, masks="does_not_exist.json")
    assert all(not s.has_mask for s in data.samples)
    assert any("not found" in n for n in data.report.notes)
    # absolute paths work too; csv=None gives a mask-only set
    data = load_artemis(tmp_path, csv=None, masks=root / "stimulus_masks.json", image_root=root / "images")
    assert data.report.samples == 4 and all(s.has_mask and not s.has_text for s in data.samples)


def test_uncompressed_rle_annotation(tmp_path):
    root = tmp_path / "d"
    _img(root / "images/S/p.jpg", 10, 12)
    m = _rect(10, 12, 2, 6, 3, 9)
    # uncompressed RLE: column-major run lengths starting with zeros
    flat = m.flatten(order="F").astype(int)
    runs, cur, n = [], 0, 0
    for v in flat:
        if v == cur:
            n += 1
        else:
            runs.append(n)
            cur, n = v, 1
    runs.append(n)
    coco = {"images": [{"id": 7, "file_name": "S/p.jpg", "height": 10, "width": 12}],
            "annotations": [_ann(1, 7, "anger", {"size": [10, 12], "counts": runs})], "categories": _categories()}
    (root / "stimulus_masks.json").write_text(json.dumps(coco))
    _write_csv(root / "artemis_dataset_release_v0.csv", [["S", "p", "anger", "it makes me angry", "1"]])
    data = load_artemis(root)
    assert data.report.with_mask_and_text == 1
    np.testing.assert_array_equal(data.decode_mask(data.samples[0]), m)
    np.testing.assert_array_equal(decode_rle(encode_mask(m)), m)


@pytest.fixture()
def bad_set(tmp_path):
    root = tmp_path / "bad"
    _img(root / "images/S/good.jpg", 30, 40, 1)
    _img(root / "images/S/sized.jpg", 30, 40, 2)
    (root / "images/S").mkdir(parents=True, exist_ok=True)
    (root / "images/S/broken.jpg").write_text("not really a jpeg")
    rows = [
        ["S", "good", "awe", "I feel awe", "5"],
        ["S", "good", "awe", "I feel awe", "5"],  # duplicate_row
        ["S", "good", "joyful", "I feel joy", "5"],  # unknown_emotion
        ["S", "good", "fear", "   ", "5"],  # empty_utterance
        ["S", "good", "sadness", "It is sad", "5"],
        ["S", "ghost", "fear", "no image for me", "5"],  # missing_image
        ["S", "broken", "anger", "corrupt image", "5"],  # unreadable_image
        ["S", "sized", "disgust", "gross", "5"],  # its mask has the wrong size
        ["S", "short"],  # malformed_row
    ]
    _write_csv(root / "artemis_dataset_release_v0.csv", rows)
    coco = {
        "images": [
            {"id": 1, "file_name": "S/good.jpg", "height": 30, "width": 40},
            {"id": 2, "file_name": "S/sized.jpg", "height": 10, "width": 10},  # wrong size
            {"id": 3, "file_name": "S/nameless.jpg"},  # bad_image_entry (no size)
        ],
        "annotations": [
            _ann(1, 1, "awe", encode_mask(_rect(30, 40, 1, 9, 1, 9))),
            _ann(2, 2, "disgust", encode_mask(_rect(10, 10, 1, 5, 1, 5))),
            _ann(3, 1, "sadness", encode_mask(_rect(10, 10, 1, 5, 1, 5))),  # RLE size != image size
            _ann(4, 1, "fear", [[1.0, 2.0]]),  # bad_annotation (degenerate polygon)
            _ann(5, 99, "fear", [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]]),  # bad_annotation (unknown image)
            {"id": 6, "image_id": 1, "category_id": 42, "segmentation": [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]]},
        ],
        "categories": _categories(),
    }
    (root / "stimulus_masks.json").write_text(json.dumps(coco))
    return root


def test_bad_rows_are_counted_not_fatal(bad_set):
    data = load_artemis(bad_set)
    rep = data.report
    assert rep.skipped == {
        "duplicate_row": 1,
        "unknown_emotion": 1,
        "empty_utterance": 1,
        "malformed_row": 1,
        "missing_image": 1,
        "unreadable_image": 1,
        "mask_size_mismatch": 2,
        "bad_annotation": 2,
        "unknown_category": 1,
        "bad_image_entry": 1,
    }
    assert "joyful" in rep.examples["unknown_emotion"][0]
    assert "S/ghost" in rep.examples["missing_image"][0]
    assert "broken.jpg" in rep.examples["unreadable_image"][0]
    assert rep.usable
    got = sorted((s.key, s.emotion, s.has_mask, s.has_text) for s in data.samples)
    assert got == [
        ("S/good", "awe", True, True),
        ("S/good", "sadness", False, True),  # its RLE had the wrong size: text kept, mask dropped
        ("S/sized", "disgust", False, True),  # image 30x40 vs COCO 10x10: mask dropped
    ]
    summary = rep.summary()
    for reason in rep.skipped:
        assert reason in summary
    assert "e.g." in summary and "usable: yes" in summary


def test_check_images_full_decode_finds_truncated_jpeg(tmp_path):
    root = tmp_path / "t"
    _img(root / "images/S/a.jpg", 64, 64, 1)
    _img(root / "images/S/b.jpg", 64, 64, 2)
    data = (root / "images/S/b.jpg").read_bytes()
    (root / "images/S/b.jpg").write_bytes(data[: len(data) // 2])
    _write_csv(root / "artemis_dataset_release_v0.csv",
               [["S", "a", "awe", "I feel awe", "1"], ["S", "b", "awe", "I feel awe", "1"]])
    assert load_artemis(root).report.samples == 2  # the header alone looks fine
    full = load_artemis(root, check_images="full")
    assert full.report.samples == 1 and full.report.skipped == {"unreadable_image": 1}
    lazy = load_artemis(root, check_images=False)  # no checks: a missing image is not noticed
    (root / "images/S/a.jpg").unlink()
    assert load_artemis(root, check_images=False).report.samples == 2
    assert lazy.samples[0].image_path == root / "images/S/a.jpg"


def test_missing_column_is_a_clear_error(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    _write_csv(root / "artemis_dataset_release_v0.csv", [["S", "p", "I feel awe"]],
               header=["art_style", "painting", "utterance"])
    with pytest.raises(ArtEmisFormatError, match="lacks required column.*emotion") as exc:
        load_artemis(root)
    assert exc.value.report.skipped == {"missing_column": 1}
    assert not exc.value.report.usable
    with pytest.raises(FileNotFoundError, match="not found"):
        load_artemis(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="CSV"):
        load_artemis(root, csv="other.csv")
    (root / "stimulus_masks.json").write_text("{not json")
    _write_csv(root / "artemis_dataset_release_v0.csv", [["S", "p", "awe", "x", "1"]])
    with pytest.raises(ArtEmisFormatError, match="not valid JSON"):
        load_artemis(root)


# --------------------------------------------------------------------------- splits


def _fake_samples(n_paintings: int, per: int = 2) -> list[StimulusSample]:
    out = []
    emotions = ["awe", "fear", "sadness"]
    for i in range(n_paintings):
        for j in range(per):
            out.append(StimulusSample(f"Style{i % 3}", f"p{i:04d}", emotions[j % 3], Path(f"/x/{i}.jpg"), ["u"]))
    return out


def test_split_by_painting_no_leakage_and_deterministic():
    samples = _fake_samples(200, per=3)
    a = split_by_painting(samples, seed=2021)
    b = split_by_painting(samples, seed=2021)
    c = split_by_painting(samples, seed=7)
    keys = {k: {s.key for s in v} for k, v in a.items()}
    assert not (keys["train"] & keys["val"]) and not (keys["train"] & keys["test"]) and not (keys["val"] & keys["test"])
    assert sum(len(v) for v in a.values()) == len(samples)
    assert {k: [s.key for s in v] for k, v in a.items()} == {k: [s.key for s in v] for k, v in b.items()}
    assert keys != {k: {s.key for s in v} for k, v in c.items()}
    assert (len(keys["train"]), len(keys["val"]), len(keys["test"])) == (170, 10, 20)
    # every sample of one painting lands in the same split
    for split, ss in a.items():
        for s in ss:
            assert s.key in keys[split]


def test_split_small_sets():
    s3 = split_by_painting(_fake_samples(3), seed=1)
    assert [len({s.key for s in s3[k]}) for k in ("train", "val", "test")] == [1, 1, 1]
    s1 = split_by_painting(_fake_samples(1), seed=1)
    assert len(s1["train"]) == 2 and not s1["val"] and not s1["test"]
    s10 = split_by_painting(_fake_samples(10), ratios=(0.8, 0.0, 0.2))
    assert len({s.key for s in s10["test"]}) == 2 and not s10["val"]
    with pytest.raises(ValueError, match="ratios"):
        split_by_painting(_fake_samples(3), ratios=(0.5, 0.5))


# --------------------------------------------------------------------------- tools/validate_data.py


def _validate(*args):
    return subprocess.run([sys.executable, str(REPO / "tools/validate_data.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_validate_data_exit_codes(good_set, bad_set, tmp_path):
    root, _ = good_set
    r = _validate(root)
    assert r.returncode == 0, r.stderr
    assert "usable: yes" in r.stdout and "6 samples" in r.stdout

    out = tmp_path / "report.json"
    r = _validate(bad_set, "--json", out)
    assert r.returncode == 0, r.stderr  # bad rows, but still usable
    for reason in ("missing_image", "unknown_emotion", "empty_utterance", "mask_size_mismatch",
                   "duplicate_row", "unreadable_image"):
        assert reason in r.stdout
    rep = json.loads(out.read_text())
    assert rep["usable"] and rep["skipped"]["duplicate_row"] == 1

    # nothing usable: every row points at a missing image
    empty = tmp_path / "empty"
    empty.mkdir()
    _write_csv(empty / "artemis_dataset_release_v0.csv", [["S", "gone", "awe", "I feel awe", "1"]])
    r = _validate(empty, "--masks", "none")
    assert r.returncode == 1 and "usable: NO" in r.stdout and "missing_image" in r.stdout

    # a missing required column
    _write_csv(empty / "artemis_dataset_release_v0.csv", [["S", "gone", "1"]],
               header=["art_style", "painting", "repetition"])
    r = _validate(empty, "--json", out)
    assert r.returncode == 1
    assert "emotion" in r.stderr and "missing_column" in r.stdout
    assert json.loads(out.read_text())["usable"] is False

    r = _validate(tmp_path / "nowhere")
    assert r.returncode == 1 and "not found" in r.stderr
