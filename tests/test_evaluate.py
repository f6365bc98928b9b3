"""``emosem evaluate``: baselines on hand-made cases, the report of a real run, its files."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.evaluation.baselines import (
    CentrePrior,
    NearestNeighbourRetrieval,
    RetrievalBaseline,
    majority_emotion,
    mean_distribution,
    painting_feature,
    tfidf_medoid,
)
from emosem.evaluation.metrics import SegmentationMeter, distribution_metrics

H, W = 40, 60  # hand-made paintings: 2400 pixels
FRAME = 2 * W + 2 * (H - 2)  # pixels of a 1-pixel border: 196


# ------------------------------------------------------------------------------ hand-made data


def _write_hand_made(root: Path) -> Path:
    """Two 40x60 paintings, A and B (ArtEmis CSV + COCO masks + PNGs).

    A: awe mask = a 20x30 box (area fraction 0.25); 3 awe + 2 fear utterances.
    B: awe mask = the whole image, fear mask = the 1-pixel border; 3 awe + 2 fear utterances.
    """
    from PIL import Image
    from pycocotools import mask as mask_util

    (root / "images" / "Style").mkdir(parents=True)
    rows = []
    words = {
        "awe": "the vast bright mountain fills me with awe",
        "fear": "the dark shadow figure scares me",
    }
    for name in ("a", "b"):
        rng = np.random.default_rng(ord(name))
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(
            root / "images" / "Style" / f"{name}.png"
        )
        for i, emotion in enumerate(["awe"] * 3 + ["fear"] * 2):
            rows.append(["Style", name, emotion, f"{words[emotion]} number {i}", 5])
    with open(root / "artemis_dataset_release_v0.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["art_style", "painting", "emotion", "utterance", "repetition"])
        w.writerows(rows)

    box = np.zeros((H, W), np.uint8)
    box[10:30, 15:45] = 1
    full = np.ones((H, W), np.uint8)
    frame = np.ones((H, W), np.uint8)
    frame[1:-1, 1:-1] = 0
    assert box.sum() == 600 and frame.sum() == FRAME

    def ann(i, image_id, m, emotion):
        rle = mask_util.encode(np.asfortranarray(m))
        return {
            "id": i,
            "image_id": image_id,
            "iscrowd": 0,
            "area": int(m.sum()),
            "category_id": ARTEMIS_EMOTIONS.index(emotion) + 1,
            "segmentation": {"size": [H, W], "counts": rle["counts"].decode()},
        }

    coco = {
        "images": [
            {"id": 1, "file_name": "Style/a.png", "height": H, "width": W},
            {"id": 2, "file_name": "Style/b.png", "height": H, "width": W},
        ],
        "annotations": [ann(1, 1, box, "awe"), ann(2, 2, full, "awe"), ann(3, 2, frame, "fear")],
        "categories": [{"id": i + 1, "name": e} for i, e in enumerate(ARTEMIS_EMOTIONS)],
    }
    (root / "stimulus_masks.json").write_text(json.dumps(coco))
    return root


@pytest.fixture()
def hand_made(tmp_path: Path):
    from emosem.data.artemis import load_artemis

    root = _write_hand_made(tmp_path / "hand")
    data = load_artemis(root)
    train = [s for s in data.samples if s.painting == "a"]
    test = [s for s in data.samples if s.painting == "b"]
    return root, data, train, test


# ------------------------------------------------------------------------------ centre prior


def test_centre_prior_masks_exact_area_and_centred():
    for f in (0.0, 0.1, 0.5, 0.9, 1.0):  # 0.9 > pi/4: clipped by the frame, still exact
        m = CentrePrior(f).mask(H, W)
        assert m.shape == (H, W) and m.dtype == bool
        assert m.sum() == round(f * H * W)
    m = CentrePrior(0.25).mask(H, W)
    ys, xs = np.nonzero(m)
    assert abs(ys.mean() - (H - 1) / 2) < 0.5 and abs(xs.mean() - (W - 1) / 2) < 0.5
    # an ellipse with the image's aspect ratio: as many rows per height as columns per width
    assert (ys.max() - ys.min() + 1) / H == pytest.approx((xs.max() - xs.min() + 1) / W, abs=0.05)
    with pytest.raises(ValueError, match="fraction"):
        CentrePrior(1.5)


def test_centre_prior_giou_hand_computed(hand_made):
    _, data, train, test = hand_made
    prior = CentrePrior.fit(train)  # only A's awe sample has a mask: 600 / 2400
    assert prior.fraction == 0.25 and prior.n_fit == 1
    meter = SegmentationMeter()
    for s in test:
        meter.update(prior.mask(s.height, s.width), data.decode_mask(s), s.emotion)
    res = meter.compute()
    # awe: GT = whole image -> IoU = 600 / 2400; fear: GT = border, prior is inside -> IoU = 0
    assert res["per_emotion"]["awe"]["gIoU"] == 0.25
    assert res["per_emotion"]["fear"]["gIoU"] == 0.0
    assert res["gIoU"] == 0.125
    assert res["cIoU"] == pytest.approx(600 / (2400 + FRAME + 600), abs=1e-12)
    with pytest.raises(ValueError, match="No training sample has a mask"):
        CentrePrior.fit([s for s in train if not s.has_mask])


# ------------------------------------------------------------------------------ retrieval


def test_retrieval_medoid_hand_computed():
    # idf is equal for storm/wave/boat (each in 2 of 3 documents), so TF-IDF cosines are the
    # count cosines: A=(1,1,0), B=(1,1,1), C=(0,0,1) -> cos(A,B)=2/sqrt(6), cos(B,C)=1/sqrt(3),
    # cos(A,C)=0; mean to the others: A 0.408, B 0.697, C 0.289 -> B.
    texts = ["Storm, wave.", "storm wave boat", "boat"]
    assert tfidf_medoid(texts) == 1
    # duplicates are the most typical, not the longest; ties go to the first
    assert tfidf_medoid(["dark wave", "dark wave", "a small boat at sea tonight"]) == 0

    samples = [
        SimpleNamespace(emotion="fear", utterances=texts),
        SimpleNamespace(emotion="amusement", utterances=["a cat"]),
    ]
    base = RetrievalBaseline.fit(samples)
    assert base.explain("fear") == "storm wave boat"
    assert base.explain("amusement") == "a cat"
    assert base.scores["fear"] == pytest.approx((2 / math.sqrt(6) + 1 / math.sqrt(3)) / 2)
    # no train utterance of that emotion: the medoid of the emotion with the most utterances
    assert base.explain("sadness") == base.fallback == "storm wave boat"
    # no emotion given: the medoid of all four utterances ("a cat" shares no word: mean cos 0)
    assert base.explain(None) == base.overall == "storm wave boat"
    other = RetrievalBaseline.fit([SimpleNamespace(emotion="awe", utterances=["a cat"]),
                                   SimpleNamespace(emotion="fear", utterances=["a dog", "a cat"])])
    assert other.explain("fear") == "a dog" and other.explain(None) == "a cat"
    with pytest.raises(ValueError, match="No training utterances"):
        RetrievalBaseline.fit([SimpleNamespace(emotion="awe", utterances=[])])


def test_nearest_neighbour_retrieval_hand_computed():
    # three train paintings on a circle of features; the query is nearest to P2, then P1, then P3
    feats = {"p1": np.array([1.0, 0.0]), "p2": np.array([0.6, 0.8]), "p3": np.array([-1.0, 0.0])}
    samples = [
        SimpleNamespace(key="p1", emotion="fear", utterances=["storm wave", "dark storm wave"]),
        SimpleNamespace(key="p2", emotion="awe", utterances=["a huge mountain"]),
        SimpleNamespace(key="p3", emotion="fear", utterances=["a black wave", "boat"]),
        SimpleNamespace(key="p4", emotion="fear", utterances=["no feature: left out"]),
    ]
    nn = NearestNeighbourRetrieval.fit(samples, feats, k=1)
    assert nn.keys == ["p1", "p2", "p3"]
    q = np.array([0.0, 1.0])  # cos: p2 0.8, p1 0.0, p3 0.0 (stable order: p1 before p3)
    assert nn.neighbours(q, "awe") == ["p2"] and nn.neighbours(q, "fear") == ["p1"]
    assert nn.explain(q, "awe") == "a huge mountain"
    # p1's two fear utterances tie on the mean cosine to each other: the first wins
    assert nn.explain(q, "fear") == "storm wave"
    # k=2: the candidates are p1's and p3's fear utterances; the consensus is the medoid of
    # those four under the IDF of all train utterances ("storm wave": no word of its own)
    nn2 = NearestNeighbourRetrieval.fit(samples, feats, k=2)
    assert nn2.neighbours(q, "fear") == ["p1", "p3"]
    cands = ["storm wave", "dark storm wave", "a black wave", "boat"]
    corpus = [u for s in samples[:3] for u in s.utterances]
    assert nn2.explain(q, "fear") == cands[tfidf_medoid(cands, corpus)] == "storm wave"
    # an emotion no train painting has, or none (ArtEmis' NN speaker): the nearest paintings'
    # utterances of any emotion
    assert nn.explain(q, "sadness") == nn.explain(q) == "a huge mountain"
    assert nn2.neighbours(q) == ["p2", "p1"]
    # candidates: p2's "a huge mountain" (no word shared: mean cosine 0) and p1's two fear
    # utterances, which tie: the first in neighbour order wins
    assert nn2.explain(q) == "storm wave"
    with pytest.raises(ValueError, match="No train painting"):
        NearestNeighbourRetrieval.fit(samples, {}, k=1)


def test_painting_feature_is_a_unit_mean_max_vector():
    import torch

    emb = torch.zeros(1, 2, 2, 2)
    emb[0, 0] = torch.tensor([[1.0, 3.0], [0.0, 0.0]])  # channel 0: mean 1, max 3
    emb[0, 1] = 2.0  # channel 1: mean 2, max 2
    v = painting_feature(emb)
    assert v.dtype == np.float32 and v.shape == (4,)
    np.testing.assert_allclose(v, np.array([1, 2, 3, 2]) / math.sqrt(18), rtol=1e-6)


# ------------------------------------------------------------------------------ emotion head


def _counts(**kw: int) -> np.ndarray:
    c = np.zeros(len(ARTEMIS_EMOTIONS))
    for k, v in kw.items():
        c[ARTEMIS_EMOTIONS.index(k)] = v
    return c


def test_emotion_recognition_baselines_hand_computed():
    train = [
        _counts(awe=3, fear=2),
        _counts(awe=4, sadness=1),
        _counts(fear=3, awe=2),
        _counts(awe=2, fear=2, sadness=1),
    ]  # dominants: awe, awe, fear, none
    assert majority_emotion(train) == ARTEMIS_EMOTIONS.index("awe")
    assert majority_emotion([_counts(fear=3), _counts(awe=3)]) == ARTEMIS_EMOTIONS.index("awe")
    assert majority_emotion([_counts(awe=1, fear=1)]) is None

    prior = mean_distribution(train)
    expect = np.zeros(len(ARTEMIS_EMOTIONS))
    for e, v in {
        "awe": (0.6 + 0.8 + 0.4 + 0.4) / 4,
        "fear": (0.4 + 0.6 + 0.4) / 4,
        "sadness": (0.2 + 0.2) / 4,
    }.items():
        expect[ARTEMIS_EMOTIONS.index(e)] = v
    np.testing.assert_allclose(prior, expect)

    test = np.stack([_counts(awe=5), _counts(fear=4, awe=1), _counts(awe=1, fear=1)])
    onehot = np.zeros((3, len(ARTEMIS_EMOTIONS)))
    onehot[:, ARTEMIS_EMOTIONS.index("awe")] = 1
    m = distribution_metrics(onehot, test)
    assert m["accuracy_dominant"] == 0.5 and m["n_dominant"] == 2  # awe right, fear wrong
    m = distribution_metrics(np.tile(prior, (3, 1)), test)
    ce = -np.mean(
        [
            math.log(0.55),
            0.8 * math.log(0.35) + 0.2 * math.log(0.55),
            0.5 * math.log(0.55) + 0.5 * math.log(0.35),
        ]
    )
    assert m["cross_entropy"] == pytest.approx(ce)


# ------------------------------------------------------------------------------ classifier cache


def test_classifier_trained_cached_and_refreshed(hand_made, tmp_path):
    from emosem.evaluation.classifier_cache import load_or_train_classifier

    _, _, train, test = hand_made
    ckpt, out, cache = tmp_path / "ckpt", tmp_path / "out", tmp_path / "cache"
    ckpt.mkdir()
    clf, info = load_or_train_classifier(None, ckpt, out, train, cache_dir=cache)
    assert info["source"] == "trained"
    folder = Path(info["path"])
    assert folder.parent == cache / "emotion_classifier"  # keyed by the fingerprint
    assert folder.name == clf.train_info["fingerprint"]
    assert (folder / "emotion_classifier.json").is_file()
    assert list(ckpt.iterdir()) == []  # never into the checkpoint
    clf2, info = load_or_train_classifier(None, ckpt, out, train, cache_dir=cache)
    assert info["source"] == "cache" and info["path"] == str(folder)
    probe = ["a dark shadow"]
    np.testing.assert_allclose(clf2.predict_proba(probe), clf.predict_proba(probe))
    _, info = load_or_train_classifier(None, ckpt, out, train + test, cache_dir=cache)
    assert info["source"] == "trained" and info["path"] != str(folder)  # other data: another key
    # one the checkpoint ships is reused (read only) when it was trained on the same data
    shutil.copytree(folder, ckpt / "emotion_classifier")
    _, info = load_or_train_classifier(None, ckpt, out, train, cache_dir=tmp_path / "empty")
    assert info["source"] == "cache" and info["path"] == str(ckpt / "emotion_classifier")
    assert not (tmp_path / "empty").exists()
    # a cache that cannot be written: the output folder instead
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    _, info = load_or_train_classifier(None, tmp_path / "other", out, train, cache_dir=blocked)
    assert info["source"] == "trained" and info["path"] == str(out / "emotion_classifier")
    _, info = load_or_train_classifier(None, tmp_path / "other", out, train, cache_dir=blocked)
    assert info["source"] == "cache" and info["path"] == str(out / "emotion_classifier")


def test_user_cache_dir_order(monkeypatch, tmp_path):
    from emosem.evaluation.classifier_cache import user_cache_dir
    from emosem.paths import user_cache

    monkeypatch.setenv("EMOSEM_CACHE", str(tmp_path / "one"))
    monkeypatch.setenv("EMOSEM_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir(tmp_path / "given") == tmp_path / "given"
    assert user_cache_dir() == user_cache() == tmp_path / "one"  # one cache for every derived file
    assert user_cache("onnx", "k") == tmp_path / "one" / "onnx" / "k"
    monkeypatch.delenv("EMOSEM_CACHE")
    assert user_cache_dir() == tmp_path / "env"  # the older name, still read
    monkeypatch.delenv("EMOSEM_CACHE_DIR")
    assert user_cache_dir() == tmp_path / "xdg" / "emosem"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert user_cache_dir() == Path.home() / ".cache" / "emosem"


# ------------------------------------------------------------------------------ evaluate()


def _own_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A private copy, so that a test that finds it changed blames this test's evaluation."""
    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "ckpt"))


def test_evaluate_hand_made_report_numbers(hand_made, tiny_checkpoint, tmp_path):
    from emosem.evaluation.evaluate import evaluate

    root, data, _, _ = hand_made
    cfg = _hand_made_config(root, data)
    out = tmp_path / "out"
    report = evaluate(
        _own_checkpoint(tiny_checkpoint, tmp_path),
        cfg,
        split="test",
        out_dir=out,
        device="cpu",
        explain=False,
        progress=False,
    )
    assert report["n_samples"] == 2 and report["n_paintings"] == 1
    cp = report["baselines"]["centre_prior"]
    assert cp["fit"] == {"area_fraction": 0.25, "n_train_masks": 1}
    assert cp["segmentation"]["overall"]["gIoU"] == 0.125
    assert cp["segmentation"]["overall"]["cIoU"] == pytest.approx(600 / (2400 + FRAME + 600))
    c = cp["comparison"]["gIoU"]
    assert c["baseline"] == 0.125
    assert c["difference"] == pytest.approx(report["segmentation"]["overall"]["gIoU"] - 0.125)
    assert report["segmentation"]["correct_motif_rate"] is None  # no motif names in this set
    assert report["explanations"] is None
    # emotion head vs baselines: A and B both have awe 3 / fear 2 -> majority awe is right,
    # the train prior equals B's distribution (KL 0, cross-entropy = its entropy)
    er = report["emotion_recognition"]
    assert er["n"] == 1 and er["majority_baseline"] == {"emotion": "awe", "accuracy_dominant": 1.0}
    assert er["prior_baseline"]["kl"] == pytest.approx(0.0, abs=1e-9)
    entropy = -(0.6 * math.log(0.6) + 0.4 * math.log(0.4))
    assert er["prior_baseline"]["cross_entropy"] == pytest.approx(entropy)
    assert set(report["baselines"]["beats_baselines"]) == {
        "centre_prior",
        "emotion_agnostic",
        "majority_emotion",
        "train_prior_distribution",
    }
    assert json.loads((out / "report.json").read_text())["baselines"]["centre_prior"] == cp
    # the same machine description as the benchmark's (emosem.machine), plus the process count
    from emosem.machine import machine_info

    assert set(report["machine"]) == set(machine_info("cpu")) | {"num_processes"}
    assert report["machine"]["device"] == "cpu" and report["machine"]["num_processes"] == 1


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → its bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _hand_made_config(root: Path, data):
    """The hand-made data with painting b as the whole test split and a as the train split."""
    from emosem.config import DataConfig
    from emosem.data.artemis import split_by_painting

    ratios = [0.5, 0.0, 0.5]
    seed = next(
        s
        for s in range(100)
        if {x.painting for x in split_by_painting(data.samples, ratios, s)["test"]} == {"b"}
    )
    return DataConfig(root=str(root), split_ratios=ratios, split_seed=seed)


#: The report's metrics where less is better (errors and divergences); every other is a score.
LOWER_IS_BETTER = {"MAE", "cross_entropy", "kl", "alignment_cross_entropy"}


def test_comparison_by_hand_with_lower_is_better_metrics():
    """model - baseline and "better" by hand, for scores and for errors (MAE, cross-entropy): a
    direction flipped for a lower-is-better metric makes a worse model look better."""
    from emosem.evaluation.sections.compare import beats, compare

    model = {"gIoU": 0.5, "MAE": 0.10, "cross_entropy": 2.0, "kl": 0.3, "CIDEr": float("nan")}
    base = {"gIoU": 0.4, "MAE": 0.25, "cross_entropy": 1.5, "kl": 0.3, "CIDEr": 0.7}
    c = compare(model, base, [("gIoU", True), ("MAE", False), ("cross_entropy", False),
                              ("kl", False), ("CIDEr", True), ("BLEU-4", True)])
    assert set(c) == {"gIoU", "MAE", "cross_entropy", "kl"}  # NaN and missing are not compared
    assert c["MAE"] == {"model": 0.10, "baseline": 0.25, "difference": pytest.approx(-0.15),
                        "higher_is_better": False, "model_better": True}
    assert c["cross_entropy"]["model_better"] is False and c["cross_entropy"]["difference"] == 0.5
    assert c["gIoU"]["model_better"] is True and c["kl"]["model_better"] is False  # a tie: not better
    assert beats(c) is False and beats({k: c[k] for k in ("gIoU", "MAE")}) is True
    assert beats({}) is None


def test_a_scoring_error_stops_the_evaluation_unless_failures_are_skipped(
        hand_made, tiny_checkpoint, tmp_path, monkeypatch):
    """Issue 23: a ValueError anywhere in the per-painting scorer was a "failed painting" and the
    metrics were computed on the rest. Now a scorer fault stops the run; skip_failures counts
    it in the report."""
    from emosem.evaluation import predict
    from emosem.evaluation.evaluate import evaluate

    root, data, _, _ = hand_made
    real = predict.PaintingScorer._score_masks

    def broken_on_b(self, row, *args):  # a bug that shows on one painting only
        if row.key.endswith("b"):
            raise ValueError("operands could not be broadcast together")
        return real(self, row, *args)

    monkeypatch.setattr(predict.PaintingScorer, "_score_masks", broken_on_b)
    ckpt = _own_checkpoint(tiny_checkpoint, tmp_path)
    kwargs = dict(split="all", device="cpu", explain=False, progress=False, num_overlays=0)
    with pytest.raises(predict.ScoringError, match=r"painting \S*b failed: ValueError") as err:
        evaluate(ckpt, root, out_dir=tmp_path / "stopped", **kwargs)
    assert isinstance(err.value.__cause__, ValueError)
    assert not (tmp_path / "stopped" / "report.json").exists()

    report = evaluate(ckpt, root, out_dir=tmp_path / "skipped", skip_failures=True, **kwargs)
    assert report["settings"]["skip_failures"] is True
    assert report["n_failed"] == 1 and report["n_paintings"] == 1 and report["n_samples"] == 2
    (failed,) = report["failed"]
    assert failed["painting"].endswith("b") and failed["kind"] == "error"
    assert failed["reason"] == "ValueError: operands could not be broadcast together"


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5"])
def test_a_bad_world_size_is_an_error_not_one_process(monkeypatch, value):
    from emosem.evaluation.peers import peers, world_size

    monkeypatch.setenv("WORLD_SIZE", value)
    with pytest.raises(ValueError, match=f"WORLD_SIZE must be a positive integer .*got '{value}'"):
        peers("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert world_size() == 1 and peers("cpu").num_processes == 1
    monkeypatch.delenv("WORLD_SIZE")
    assert world_size() == 1


def test_evaluate_never_writes_into_the_checkpoint(hand_made, tiny_checkpoint, tmp_path,
                                                   monkeypatch):
    """Issue 20 (5): the classifier fitted on other data went into <checkpoint>/emotion_classifier/."""
    from emosem.evaluation.evaluate import evaluate

    root, data, _, _ = hand_made
    ckpt = _own_checkpoint(tiny_checkpoint, tmp_path)
    before = _folder_bytes(ckpt)
    cache = tmp_path / "cache"
    monkeypatch.setenv("EMOSEM_CACHE_DIR", str(cache))
    kwargs = dict(split="test", device="cpu", meteor=False, max_new_tokens=4, num_overlays=0,
                  progress=False)
    report = evaluate(ckpt, _hand_made_config(root, data), out_dir=tmp_path / "out", **kwargs)
    assert _folder_bytes(ckpt) == before
    info = report["explanations"]["emotional_alignment"]["classifier"]
    assert info["source"] == "trained" and Path(info["path"]).parent == cache / "emotion_classifier"
    again = evaluate(ckpt, _hand_made_config(root, data), out_dir=tmp_path / "out2", **kwargs)
    assert _folder_bytes(ckpt) == before
    assert again["explanations"]["emotional_alignment"]["classifier"]["source"] == "cache"
    assert again["explanations"]["BLEU-4"] == report["explanations"]["BLEU-4"]


@pytest.mark.parametrize(
    "kwargs, name, words",
    [
        ({"threshold": 5.0}, "threshold", "strictly between 0 and 1, got 5.0"),
        ({"threshold": 0.0}, "threshold", "strictly between 0 and 1"),
        ({"threshold": 1.0}, "threshold", "strictly between 0 and 1"),
        ({"device": "gpu"}, "device", "must be one of auto, cpu, cuda, mps"),
        ({"device": "cpu:1"}, "device", "must be one of"),
        ({"max_samples": 0}, "max_samples", "at least 1, got 0"),
        ({"num_beams": 0}, "num_beams", "at least 1"),
        ({"retrieval_k": 0}, "retrieval_k", "at least 1"),
        ({"split": "dev"}, "split", "must be one of train, val, test, all"),
    ],
)
def test_evaluate_checks_its_arguments_first(kwargs, name, words, tmp_path):
    from emosem.evaluation.evaluate import EvaluationArgumentError, evaluate

    # the checkpoint and data do not exist: the argument is refused before they are looked at
    with pytest.raises(EvaluationArgumentError, match=words) as err:
        evaluate(tmp_path / "no-checkpoint", tmp_path / "no-data", **kwargs)
    assert err.value.name == name and "--" not in str(err.value)


def test_evaluate_cuda_without_a_gpu_is_refused(tmp_path):
    import torch

    from emosem.evaluation.evaluate import EvaluationArgumentError, evaluate

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(EvaluationArgumentError, match="no CUDA GPU is available") as err:
        evaluate(tmp_path / "no-checkpoint", device="cuda")
    assert err.value.name == "device"


def test_evaluate_cli_names_the_flag(tmp_path, caplog):
    from emosem.cli import main

    code = main(["evaluate", "--checkpoint", str(tmp_path), "--threshold", "5", "--out",
                 str(tmp_path / "out")])
    assert code == 2
    assert "--threshold must be a mask probability strictly between 0 and 1, got 5.0" in caplog.text
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_evaluate_cli_report_schema_and_files(tiny_checkpoint, synthetic_dir, tmp_path, repo_root):
    ckpt = _own_checkpoint(tiny_checkpoint, tmp_path)
    out = tmp_path / "eval"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "EMOSEM_CACHE_DIR": str(tmp_path / "cache")}
    before = _folder_bytes(ckpt)
    proc = subprocess.run(
        [
            sys.executable,
            str(repo_root / "tools" / "evaluate.py"),
            "--checkpoint",
            str(ckpt),
            "--data",
            str(synthetic_dir),
            "--split",
            "all",
            "--max-samples",
            "12",
            "--no-meteor",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--num-overlays",
            "1",
            "--num-beams",
            "2",
            "--retrieval-k",
            "3",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gIoU" in proc.stdout and "beats baselines" in proc.stdout

    names = {p.name for p in out.iterdir()}
    for f in ("report.json", "report.md", "samples.jsonl", "per_emotion_iou.png", "iou_hist.png"):
        assert f in names
    assert any(n.startswith("best_") for n in names) and any(n.startswith("worst_") for n in names)
    assert _folder_bytes(ckpt) == before  # evaluation never writes into the checkpoint
    assert list((tmp_path / "cache" / "emotion_classifier").glob("*/emotion_classifier.safetensors"))
    md = (out / "report.md").read_text()
    assert "| gIoU |" in md and "retrieval" in md and "centre_prior" in md

    r = json.loads((out / "report.json").read_text())
    for key in (
        "checkpoint",
        "data",
        "split",
        "n_samples",
        "n_paintings",
        "segmentation",
        "explanations",
        "emotion_recognition",
        "baselines",
        "seconds",
        "machine",
    ):
        assert key in r, key
    assert r["split"] == "all" and r["n_samples"] == 12 and 1 <= r["n_paintings"] <= 12
    assert r["n_failed"] == 0 and r["seconds"] > 0 and r["machine"]["device"] == "cpu"
    assert r["settings"]["num_beams"] == 2 and r["settings"]["decoding"] == "beam search, 2 beams"
    assert "beam search, 2 beams decoding" in md
    assert len((out / "samples.jsonl").read_text().splitlines()) == 12
    # faithfulness recomputed from samples.jsonl: each explanation against its region's cues
    from emosem.evaluation.faithfulness import faithfulness

    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all(row.get("cues") for row in rows if row.get("explanation") is not None)
    again = faithfulness([(row["explanation"], row["cues"]) for row in rows
                          if row.get("explanation") is not None])
    fa = r["explanations"]["faithfulness"]
    assert {k: fa[k] for k in again} == again
    assert "colour leak check" in proc.stdout and "leak check: colour words" in md
    # the independent oracle against the generator's truth, recomputed from samples.jsonl
    checked = [row["oracle"] for row in rows if row.get("oracle")]
    oracle = r["explanations"]["faithfulness_oracle"]
    assert checked and oracle["n"] == len(checked)
    assert oracle["colour_words"] == sum(len(o["colours"]) for o in checked)
    assert oracle["names_absent_thing"] == sum(not all(o["things"].values()) for o in checked) / len(checked)
    # one record per painting: the grounded explanation, the baselines' and the judge's labels
    recs = [json.loads(line) for line in (out / "paintings.jsonl").read_text().splitlines()]
    assert len(recs) == r["n_paintings"]
    for rec in recs:
        assert rec["emotion"] in ARTEMIS_EMOTIONS and isinstance(rec["explanation"], str)
        assert isinstance(rec["retrieval"], str) and isinstance(rec["typical_utterance"], str)
        assert set(rec["judged"]) == {"model", "retrieval", "typical_utterance"}
    assert "paintings.jsonl" in r["files"]
    # the alignment accuracy is the judge's label against the dominant annotator emotion
    from emosem.data.artemis import load_artemis
    from emosem.evaluation.metrics import dominant_emotion

    data = load_artemis(synthetic_dir)
    dom = {rec["key"]: dominant_emotion(data.emotion_counts(rec["key"])) for rec in recs}
    hits = {who: [ARTEMIS_EMOTIONS.index(rec["judged"][who]) == dom[rec["key"]]
                  for rec in recs if dom[rec["key"]] is not None]
            for who in ("model", "retrieval", "typical_utterance")}

    seg = r["segmentation"]
    assert set(seg) >= {
        "overall",
        "per_emotion",
        "correct_motif_rate",
        "correct_motif_rate_multi_emotion",
    }
    for m in ("gIoU", "cIoU", "F_beta", "MAE"):
        assert 0.0 <= seg["overall"][m] <= 1.0
    assert 0 < seg["overall"]["n"] <= 12
    assert set(seg["per_emotion"]) <= set(ARTEMIS_EMOTIONS)
    assert sum(v["n"] for v in seg["per_emotion"].values()) == seg["overall"]["n"]
    assert 0.0 <= seg["correct_motif_rate"] <= 1.0  # the synthetic set names its motifs

    ex = r["explanations"]
    for k in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L"):
        assert 0.0 <= ex[k] <= 1.0
    assert ex["CIDEr"] >= 0.0 and ex["METEOR"] is None and "METEOR" in ex["skipped"]
    assert ex["tokenizer"] in ("ptb", "simple")
    assert 0.0 <= ex["names_motif_rate"] <= 1.0
    # per emotion: sentence-level means; CIDEr and ROUGE-L are the means of their sentence scores,
    # so the n-weighted mean over emotions is the overall score, and samples.jsonl carries them
    pe = ex["per_emotion"]
    assert set(pe) <= set(ARTEMIS_EMOTIONS) and sum(v["n"] for v in pe.values()) == ex["n"]
    for m in ("CIDEr", "ROUGE-L"):
        assert sum(v["n"] * v[m] for v in pe.values()) / ex["n"] == pytest.approx(ex[m])
    assert all(v["METEOR"] is None for v in pe.values())  # --no-meteor
    rows_out = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    cider = [x["caption_scores"]["CIDEr"] for x in rows_out if "caption_scores" in x]
    assert len(cider) == ex["n"] and np.mean(cider) == pytest.approx(ex["CIDEr"])
    assert "Per emotion (mean sentence-level METEOR / CIDEr)" in md
    al = ex["emotional_alignment"]
    # ArtEmis protocol: one explanation per painting, grounded on the emotion head's top emotion
    assert al["grounding"] == "the emotion head's top emotion"
    assert al["n"] == r["n_paintings"] and al["n_dominant"] == len(hits["model"])
    assert hits["model"], "the test data should have paintings with a dominant emotion"
    assert al["accuracy_dominant"] == pytest.approx(np.mean(hits["model"]))
    assert 0.0 <= al["accuracy_dominant"] <= 1.0 and al["cross_entropy"] >= 0.0
    assert 0.0 <= al["accuracy_asked"] <= 1.0 and al["n_asked"] == 12

    er = r["emotion_recognition"]
    assert 0.0 <= er["accuracy_dominant"] <= 1.0 and er["kl"] >= -1e-9
    assert er["majority_baseline"]["emotion"] in ARTEMIS_EMOTIONS

    bl = r["baselines"]
    assert set(bl["beats_baselines"]) == {
        "centre_prior",
        "emotion_agnostic",
        "retrieval",
        "typical_utterance",
        "majority_emotion",
        "train_prior_distribution",
    }
    for name in ("centre_prior", "emotion_agnostic"):
        assert bl[name]["segmentation"]["overall"]["n"] == seg["overall"]["n"]
        assert set(bl[name]["comparison"]) >= {"gIoU", "cIoU", "correct_motif_rate"}
    for name in ("retrieval", "typical_utterance"):
        assert set(bl[name]["comparison"]) >= {
            "BLEU-4",
            "ROUGE-L",
            "CIDEr",
            "alignment_accuracy_dominant",
        }
        assert bl[name]["comparison"]["CIDEr"]["model"] == ex["CIDEr"]
    # --split all on the synthetic set: the train split of the same data, 3 nearest paintings
    assert bl["retrieval"]["fit"]["k"] == 3 and bl["retrieval"]["fit"]["n_train_paintings"] > 5
    assert set(bl["typical_utterance"]["texts"]) <= set(ARTEMIS_EMOTIONS)
    assert isinstance(bl["typical_utterance"]["overall"], str)
    for name in ("retrieval", "typical_utterance"):  # the same paintings as the model
        assert set(bl[name]["explanations"]["per_emotion"]) == set(pe)
        b_al = bl[name]["explanations"]["emotional_alignment"]
        assert b_al["n"] == al["n"] and b_al["grounding"] == "none (no emotion given)"
        assert b_al["accuracy_dominant"] == pytest.approx(np.mean(hits[name]))
        assert "accuracy_asked" not in bl[name]["comparison"]
    for name, entry in bl.items():
        if name == "beats_baselines":
            continue
        for metric, c in entry["comparison"].items():
            assert c["difference"] == pytest.approx(c["model"] - c["baseline"])
            # the direction of each metric, from what it measures (not from the code)
            assert c["higher_is_better"] is (metric not in LOWER_IS_BETTER), (name, metric)
            assert c["model_better"] is ((c["model"] > c["baseline"]) is c["higher_is_better"]
                                         and c["model"] != c["baseline"]), (name, metric)
        assert bl["beats_baselines"][name] == all(
            c["model_better"] for c in entry["comparison"].values()
        )
    assert bl["centre_prior"]["comparison"]["gIoU"]["model"] == seg["overall"]["gIoU"]


@pytest.mark.slow
def test_evaluate_two_processes_matches_one(tiny_checkpoint, synthetic_dir, tmp_path, repo_root):
    """`accelerate launch` with two CPU processes (gloo): the paintings and the retrieval
    baseline's train paintings are sharded, the rows gathered, and rank 0 alone writes a report
    with the same numbers as a single process."""
    ckpt = _own_checkpoint(tiny_checkpoint, tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    args = [str(repo_root / "tools" / "evaluate.py"), "--checkpoint", str(ckpt), "--data",
            str(synthetic_dir), "--split", "all", "--max-samples", "8", "--no-meteor",
            "--device", "cpu", "--num-overlays", "1", "--quiet"]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
              "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no"]
    reports = {}
    for name, cmd in (("one", [sys.executable]), ("two", launch)):
        out = tmp_path / name
        proc = subprocess.run(cmd + args + ["--out", str(out)], capture_output=True, text=True,
                              timeout=900, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-4000:]
        reports[name] = json.loads((out / "report.json").read_text())
        assert proc.stdout.count("beats baselines") == 1, "only rank 0 reports"
    one, two = reports["one"], reports["two"]
    assert two["machine"]["num_processes"] == 2 and one["machine"]["num_processes"] == 1
    assert (two["n_samples"], two["n_paintings"]) == (one["n_samples"], one["n_paintings"]) == (
        8, one["n_paintings"])
    for m in ("gIoU", "cIoU", "F_beta", "MAE"):
        assert two["segmentation"]["overall"][m] == pytest.approx(one["segmentation"]["overall"][m])
    for k in ("BLEU-4", "ROUGE-L", "CIDEr"):
        assert two["explanations"][k] == pytest.approx(one["explanations"][k])
    for k in ("accuracy_dominant", "cross_entropy", "n", "accuracy_asked"):
        assert two["explanations"]["emotional_alignment"][k] == pytest.approx(
            one["explanations"]["emotional_alignment"][k])
    assert two["emotion_recognition"]["kl"] == pytest.approx(one["emotion_recognition"]["kl"])
    b1, b2 = one["baselines"], two["baselines"]
    assert b2["retrieval"]["fit"]["n_train_paintings"] == b1["retrieval"]["fit"]["n_train_paintings"]
    for name in ("centre_prior", "emotion_agnostic", "retrieval", "typical_utterance"):
        c1, c2 = b1[name]["comparison"], b2[name]["comparison"]
        assert set(c1) == set(c2)
        for k in c1:
            assert c2[k]["baseline"] == pytest.approx(c1[k]["baseline"]), (name, k)
    assert b2["beats_baselines"] == b1["beats_baselines"]

    def said(name: str) -> list:
        lines = (tmp_path / name / "samples.jsonl").read_text().splitlines()
        return sorted((r["key"], r["emotion"], r["explanation"]) for r in map(json.loads, lines))

    assert said("two") == said("one")
