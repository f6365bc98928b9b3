"""StimulusDataset items and collate_samples: shapes, determinism, bad items."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from emosem.data.artemis import encode_mask, load_artemis
from emosem.data.dataset import StimulusDataset, collate_samples
from emosem.data.synthetic import generate_synthetic_artemis
from emosem.emotions import EMOTION_TO_INDEX

S = 64


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    generate_synthetic_artemis(root, 6, size=96, seed=11, workers=1)
    return root


def test_item_shapes_and_types(synthetic):
    data = load_artemis(synthetic)
    ds = StimulusDataset(data.samples, data, image_size=S)
    assert len(ds) == len(data.samples)
    for i, s in enumerate(data.samples):
        it = ds[i]
        assert it["image"].shape == (3, S, S) and it["image"].dtype == torch.float32
        assert it["mask"].shape == (S, S) and it["mask"].dtype == torch.float32
        assert set(it["mask"].unique().tolist()) <= {0.0, 1.0}
        assert it["has_mask"] == s.has_mask and it["has_text"] == s.has_text
        if s.has_mask:
            assert it["mask"].sum() > 0
        else:
            assert it["mask"].sum() == 0
        assert it["emotion"] == s.emotion and it["emotion_index"] == EMOTION_TO_INDEX[s.emotion]
        assert it["utterance"] in s.utterances and it["utterances"] == s.utterances
        assert it["emotion_dist"].shape == (9,) and it["emotion_dist"].dtype == torch.float32
        assert it["has_dist"] and abs(float(it["emotion_dist"].sum()) - 1) < 1e-5
        assert it["input_size"].tolist() == [S, S] and it["input_size"].dtype == torch.long
        assert it["original_size"].tolist() == [96, 96]
        assert it["key"] == s.key and it["index"] == i


def test_utterance_choice_is_deterministic_by_index_and_epoch(synthetic):
    data = load_artemis(synthetic)
    a = StimulusDataset(data.samples, data, image_size=S)
    b = StimulusDataset(data.samples, data, image_size=S)
    multi = [i for i, s in enumerate(data.samples) if len(s.utterances) >= 2]
    assert multi
    picks = []
    for epoch in range(6):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        pa = [a.pick_utterance(i) for i in multi]
        assert pa == [b.pick_utterance(i) for i in multi]
        assert [a[i]["utterance"] for i in multi[:2]] == pa[:2]
        picks.append(tuple(pa))
    assert len(set(picks)) > 1  # the epoch changes which reference is returned


def _tiny_set(root, h=60, w=100):
    (root / "images/S").mkdir(parents=True)
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(root / "images/S/wide.jpg")
    Image.fromarray(np.full((32, 32, 3), 30, np.uint8)).save(root / "images/S/gone.jpg")
    Image.fromarray(np.full((32, 32, 3), 30, np.uint8)).save(root / "images/S/corrupt.jpg")
    with open(root / "artemis_dataset_release_v0.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["art_style", "painting", "emotion", "utterance", "repetition"])
        wr.writerow(["S", "wide", "fear", "The dark shape on the right frightens me", "2"])
        wr.writerow(["S", "wide", "something else", "I feel nothing in particular here", "2"])
        wr.writerow(["S", "gone", "awe", "I am amazed by it", "1"])
        wr.writerow(["S", "corrupt", "awe", "I am amazed by it", "1"])
    m = np.zeros((h, w), bool)
    m[10:50, 60:95] = True
    coco = {"images": [{"id": 1, "file_name": "S/wide.jpg", "height": h, "width": w}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": EMOTION_TO_INDEX["fear"] + 1,
                             "segmentation": encode_mask(m), "iscrowd": 0}],
            "categories": [{"id": i + 1, "name": e} for e, i in EMOTION_TO_INDEX.items()]}
    (root / "stimulus_masks.json").write_text(json.dumps(coco))
    return m


def test_non_square_image_and_failed_items(tmp_path, caplog):
    m = _tiny_set(tmp_path)
    data = load_artemis(tmp_path)
    ds = StimulusDataset(data.samples, data, image_size=S)
    keys = [(s.key, s.emotion) for s in data.samples]
    fear = ds[keys.index(("S/wide", "fear"))]
    assert fear["original_size"].tolist() == [60, 100] and fear["input_size"].tolist() == [38, 64]
    assert fear["has_mask"] and fear["mask"][38:].sum() == 0  # padding stays empty
    ys, xs = torch.nonzero(fear["mask"], as_tuple=True)
    assert xs.min() >= 37 and ys.max() <= 32
    assert fear["emotion_dist"][EMOTION_TO_INDEX["fear"]] == 0.5
    se = ds[keys.index(("S/wide", "something else"))]
    assert not se["has_mask"] and se["utterance"] == "I feel nothing in particular here"
    assert m.sum() > 0

    (tmp_path / "images/S/gone.jpg").unlink()  # vanished after loading
    (tmp_path / "images/S/corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with caplog.at_level(logging.WARNING):
        assert ds[keys.index(("S/gone", "awe"))] is None
        assert ds[keys.index(("S/corrupt", "awe"))] is None
    assert "gone.jpg" in caplog.text and "corrupt.jpg" in caplog.text

    batch = collate_samples([ds[i] for i in range(len(ds))])
    assert batch["batch_size"] == 2 and batch["num_skipped"] == 2
    assert batch["image"].shape == (2, 3, S, S) and batch["mask"].shape == (2, S, S)
    assert batch["has_mask"].dtype == torch.bool and batch["has_mask"].tolist() == [True, False]
    assert batch["emotion_index"].dtype == torch.long and batch["index"].dtype == torch.long
    assert batch["emotion_dist"].shape == (2, 9) and batch["original_size"].shape == (2, 2)
    assert batch["emotion"] == ["fear", "something else"] and isinstance(batch["utterances"][0], list)
    assert batch["key"] == ["S/wide", "S/wide"]


def test_collate_all_none_and_dataloader(synthetic):
    assert collate_samples([None, None]) == {"num_skipped": 2, "batch_size": 0}
    data = load_artemis(synthetic)
    ds = StimulusDataset(data.samples[:5], data, image_size=S)
    loader = DataLoader(ds, batch_size=2, collate_fn=collate_samples, num_workers=0)
    batches = list(loader)
    assert [b["batch_size"] for b in batches] == [2, 2, 1]
    assert all(b["num_skipped"] == 0 for b in batches)
    assert batches[0]["image"].shape == (2, 3, S, S)


def test_object_slot_targets(synthetic):
    """Language-stage object targets on motif samples: share 0 names the motif with the motif in
    the slot; share 1 of appearance gives slot none and a reference that names no object of the
    trained vocabulary but the region's measured look and place; share 1 of swaps puts a plain
    noun in the slot that the reference then names; the draw is deterministic per (seed, epoch,
    index) and the shares split the samples about as asked."""
    from emosem.data.cue_words import OBJECT_NOUNS, object_words
    from emosem.data.synthetic.motifs import motif_by_name

    data = load_artemis(synthetic)
    ds = StimulusDataset(data.samples, data, image_size=S)
    ds.with_cues = True
    rows = [i for i, s in enumerate(data.samples) if s.has_mask and s.has_text and ds.motif_of(i)]
    assert rows
    for i in rows:
        it = ds[i]
        motif = motif_by_name(ds.motif_of(i))
        assert it["cues"].object == {"word": motif.noun, "source": "motif", "score": 1.0}
        assert it["utterance"] in data.samples[i].utterances
        assert it["cues"].text.endswith(f"object: {motif.noun}")
    ds.appearance_share = 1.0
    for i in rows:
        it = ds[i]
        cues = it["cues"]
        assert cues.object is None and cues.text.endswith("object: none")
        assert not object_words(it["utterance"]) & OBJECT_NOUNS, it["utterance"]
        assert cues.appearance in it["utterance"] and (cues.extent or cues.place) in it["utterance"]
        assert ds[i]["utterance"] == it["utterance"]  # deterministic
    ds.appearance_share, ds.object_swap_share = 0.0, 1.0
    for i in rows:
        it = ds[i]
        word = it["cues"].object["word"]
        assert it["cues"].object["source"] == "given" and f" {word} " in it["utterance"]
        assert word not in OBJECT_NOUNS
    ds.appearance_share, ds.object_swap_share = 0.35, 0.15
    modes = [ds.object_target(i, ds[i]["cues"], "a reference")[2] for i in rows for ds.epoch in range(8)]
    share = {m: modes.count(m) / len(modes) for m in ("appearance", "swap", "motif")}
    assert abs(share["appearance"] - 0.35) < 0.12 and abs(share["swap"] - 0.15) < 0.1
