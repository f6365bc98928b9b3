"""The synthetic ArtEmis-style generator: motif library, determinism, format validity, CLI."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from emosem.data.artemis import load_artemis
from emosem.data.synthetic import (
    ART_STYLES,
    CSV_COLUMNS,
    MOTIFS,
    generate_synthetic_artemis,
    mentions_motif,
    motif_by_name,
    render_painting,
)
from emosem.emotions import ARTEMIS_EMOTIONS, EMOTION_TO_INDEX

REPO = Path(__file__).resolve().parents[1]
N, SIZE, SEED = 16, 128, 3
FIRST_PERSON = re.compile(r"\b(I|me|my|I'm)\b")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    a = tmp_path_factory.mktemp("syn_a")
    b = tmp_path_factory.mktemp("syn_b")
    generate_synthetic_artemis(a, N, size=SIZE, seed=SEED, workers=1)
    generate_synthetic_artemis(b, N, size=SIZE, seed=SEED, workers=2)
    return a, b


# --------------------------------------------------------------------------- motif library


def test_every_emotion_has_two_distinct_motifs():
    by_emotion = defaultdict(list)
    for m in MOTIFS:
        assert m.emotion in ARTEMIS_EMOTIONS and m.emotion != "something else"
        by_emotion[m.emotion].append(m.name)
    assert set(by_emotion) == set(ARTEMIS_EMOTIONS) - {"something else"}
    assert all(len(v) >= 2 for v in by_emotion.values()), by_emotion
    assert len({m.name for m in MOTIFS}) == len(MOTIFS)
    for m in MOTIFS:
        assert 0.15 <= m.scale[0] < m.scale[1] <= 0.6


def test_phrases_and_reasons_name_their_own_motif_only():
    all_kw = Counter(k.lower() for m in MOTIFS for k in m.keywords)
    assert [k for k, c in all_kw.items() if c > 1] == []  # keywords are unique to one motif
    for m in MOTIFS:
        assert m.phrases and m.keywords
        for text in (*m.phrases, m.noun):
            assert mentions_motif(text, m.name), (m.name, text)
        for text in (*m.phrases, *m.reasons, m.noun):
            others = [o.name for o in MOTIFS if o.name != m.name and mentions_motif(text, o.name)]
            assert not others, (m.name, text, others)


def test_motif_render_gives_exact_mask():
    rng = np.random.default_rng(0)
    for m in MOTIFS:
        rgb, mask, color = m.render(rng, 128, 64, 64, 60)
        assert rgb.shape == (128, 128, 3) and mask.dtype == bool and mask.sum() > 100, m.name
        assert not rgb[~mask].any(), m.name  # nothing is painted outside the mask
        assert color is None or len(color) == 3


def test_mentions_motif_word_boundaries():
    assert mentions_motif("The towering WAVE scares me", "wave")
    assert mentions_motif("those waves!", "wave")
    assert not mentions_motif("a short wavelength", "wave")
    assert not mentions_motif("", "wave")
    assert mentions_motif("a bunch of Balloons", "balloons")
    assert motif_by_name("sun").emotion == "awe"
    with pytest.raises(KeyError, match="Unknown motif 'unicorn'.*wave"):
        motif_by_name("unicorn")


def test_render_painting_is_deterministic_with_exact_masks():
    a = render_painting(5, seed=1, size=96)
    b = render_painting(5, seed=1, size=96)
    c = render_painting(5, seed=2, size=96)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.rows == b.rows and a.painting == b.painting
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == (96, 96, 3) and a.image.dtype == np.uint8
    assert a.art_style in ART_STYLES
    for i in range(12):
        p = render_painting(i, seed=0, size=96)
        assert 1 <= len(p.motifs) <= 4
        union = np.zeros((96, 96), int)
        for m in p.motifs:
            assert m.mask.shape == (96, 96) and m.mask.dtype == bool
            assert m.mask.sum() >= 0.01 * 96 * 96  # clearly visible
            union += m.mask
        assert union.max() <= 1  # visible regions do not overlap (occlusion applied)


# --------------------------------------------------------------------------- generated set


def test_same_seed_gives_identical_files_regardless_of_workers(generated):
    a, b = generated
    for name in ("artemis_dataset_release_v0.csv", "stimulus_masks.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    imgs_a = sorted(p.relative_to(a) for p in (a / "images").rglob("*.jpg"))
    imgs_b = sorted(p.relative_to(b) for p in (b / "images").rglob("*.jpg"))
    assert imgs_a == imgs_b and len(imgs_a) == N
    for rel in imgs_a:
        np.testing.assert_array_equal(np.asarray(Image.open(a / rel)), np.asarray(Image.open(b / rel)))


@pytest.mark.filterwarnings("ignore:.*copy keyword:DeprecationWarning")
def test_generated_formats_load_with_nothing_skipped(generated):
    root, _ = generated
    with open(root / "artemis_dataset_release_v0.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    per_painting = Counter((r["art_style"], r["painting"]) for r in rows)
    assert len(per_painting) == N and min(per_painting.values()) >= 5
    for r in rows:
        assert int(r["repetition"]) == per_painting[(r["art_style"], r["painting"])]
        assert r["emotion"] in ARTEMIS_EMOTIONS

    coco_json = json.loads((root / "stimulus_masks.json").read_text())
    assert [c["name"] for c in coco_json["categories"]] == list(ARTEMIS_EMOTIONS)
    coco = COCO(str(root / "stimulus_masks.json"))
    for ann in coco.dataset["annotations"]:
        assert isinstance(ann["segmentation"]["counts"], str) and ann["motif"]
        assert motif_by_name(ann["motif"]).emotion == ARTEMIS_EMOTIONS[ann["category_id"] - 1]
        assert ann["area"] > 0 and coco.annToMask(ann).sum() == ann["area"]
    for im in coco.dataset["images"]:
        style, name = im["file_name"].split("/")
        assert style in ART_STYLES and (root / "images" / im["file_name"]).is_file()
        assert (im["height"], im["width"]) == (SIZE, SIZE)

    data = load_artemis(root)
    rep = data.report
    assert rep.skipped == {} and rep.usable and rep.csv_rows == len(rows)
    assert rep.paintings == N and rep.annotations == len(coco.dataset["annotations"])
    assert rep.with_mask_and_text > 0 and rep.mask_only == 0


def test_utterances_are_first_person_and_name_the_motif(generated):
    root, _ = generated
    data = load_artemis(root)
    all_utts = []
    emotions_with_masks = 0
    for s in data.samples:
        anns = data.annotations(s.key)
        motifs = [a["motif"] for a in anns if a["emotion"] == s.emotion]
        for u in s.utterances:
            all_utts.append(u)
            assert 8 <= len(u.split()) <= 30, u
            assert FIRST_PERSON.search(u), u
            if s.emotion == "something else":
                assert not any(mentions_motif(u, m.name) for m in MOTIFS), u
            else:
                assert any(mentions_motif(u, m) for m in motifs), (u, motifs)
        if s.emotion != "something else":
            assert s.has_mask and data.decode_mask(s).any()
            emotions_with_masks += 1
    assert emotions_with_masks > 0
    assert len(set(all_utts)) / len(all_utts) > 0.95  # rarely two identical rows
    # several paintings hold motifs of different emotions
    multi = [k for k in data.paintings() if len({a["emotion"] for a in data.annotations(k)}) > 1]
    assert len(multi) >= 3


def test_votes_follow_the_motifs(generated):
    root, _ = generated
    data = load_artemis(root)
    for key in data.paintings():
        ann_emotions = {a["emotion"] for a in data.annotations(key)}
        counts = data.emotion_counts(key)
        for e in ann_emotions:
            assert counts[EMOTION_TO_INDEX[e]] >= 1  # every motif's emotion gets a vote
        voted = {ARTEMIS_EMOTIONS[i] for i in np.nonzero(counts)[0]}
        assert voted <= ann_emotions | {"something else"}


def test_cli_tool_runs(tmp_path):
    out = tmp_path / "cli"
    r = subprocess.run(
        [sys.executable, str(REPO / "tools/make_synthetic_artemis.py"), "--out", str(out),
         "--paintings", "4", "--size", "96", "--seed", "1", "--workers", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "peak memory" in r.stderr and "ms/painting" in r.stderr
    assert (out / "artemis_dataset_release_v0.csv").is_file() and (out / "stimulus_masks.json").is_file()
    assert len(list((out / "images").rglob("*.jpg"))) == 4
    bad = subprocess.run([sys.executable, str(REPO / "tools/make_synthetic_artemis.py"), "--out", str(out),
                          "--paintings", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--paintings" in bad.stderr
