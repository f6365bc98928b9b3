"""Segmentation and emotion-distribution metrics against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from emosem.emotions import EMOTION_TO_INDEX, NUM_EMOTIONS
from emosem.evaluation.metrics import (
    SegmentationMeter,
    correct_motif,
    distribution_metrics,
    dominant_emotion,
    emotion_counts,
    f_measure,
    intersection_union,
    mae,
    mask_iou,
    soft_to_shape,
)


def _box(h: int, w: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


# Sample A: 10x10 image, pred = 5x5 block (25 px) inside gt = 5x10 block (50 px).
A_PRED, A_GT = _box(10, 10, 0, 5, 0, 5), _box(10, 10, 0, 5, 0, 10)
# Sample B: 4x4 image, pred = 1 px inside gt = 2x2 block (4 px).
B_PRED, B_GT = _box(4, 4, 0, 1, 0, 1), _box(4, 4, 0, 2, 0, 2)


def test_intersection_union_and_iou():
    pred = _box(4, 4, 0, 2, 0, 2)  # 4 px
    gt = _box(4, 4, 0, 1, 0, 4)  # first row, 4 px; overlap = 2 px
    assert intersection_union(pred, gt) == (2, 6)
    assert mask_iou(pred, gt) == pytest.approx(2 / 6)
    assert mask_iou(A_PRED, A_GT) == pytest.approx(0.5)
    empty = np.zeros((3, 3), bool)
    assert mask_iou(empty, empty) == 1.0
    assert mask_iou(empty, _box(3, 3, 0, 1, 0, 1)) == 0.0
    assert mask_iou(pred.astype(np.uint8), gt.astype(np.float32)) == pytest.approx(1 / 3)


def test_one_iou_for_training_validation_and_report():
    """The loss's IoU target, validation's gIoU/cIoU and the report's meter are one definition."""
    import torch

    from emosem.iou import giou_ciou
    from emosem.iou import intersection_union as counts
    from emosem.modeling.losses import batch_iou

    preds = np.stack([A_PRED, np.zeros((10, 10), bool), _box(10, 10, 0, 1, 0, 1)])
    gts = np.stack([A_GT, np.zeros((10, 10), bool), _box(10, 10, 5, 6, 5, 6)])
    logits = torch.from_numpy(np.where(preds, 4.0, -4.0)).float()
    assert batch_iou(logits, torch.from_numpy(gts).float()).tolist() == [0.5, 1.0, 0.0]
    inter, union = counts(torch.from_numpy(preds), torch.from_numpy(gts))
    assert inter.tolist() == [25, 0, 0] and union.tolist() == [50, 0, 2]
    giou, ciou = giou_ciou(inter, union)
    assert giou == pytest.approx(0.5) and ciou == pytest.approx(25 / 52)
    meter = SegmentationMeter()
    for p, g in zip(preds, gts):
        meter.update(p, g, "awe")
    summary = meter.compute()
    assert (summary["gIoU"], summary["cIoU"]) == pytest.approx((giou, ciou))
    assert all(math.isnan(v) for v in giou_ciou(inter[:0], union[:0]))
    assert giou_ciou(inter[1:2], union[1:2]) == (1.0, 1.0)  # only empty masks: found all of nothing


def test_mask_input_errors():
    with pytest.raises(ValueError, match="original resolution"):
        mask_iou(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="soft"):
        mask_iou(np.full((2, 2), 0.7), np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="HxW"):
        mask_iou(np.zeros((1, 2, 2), bool), np.zeros((2, 2), bool))


def test_f_measure_hand_computed():
    # A: tp = 25, P = 25/25 = 1, R = 25/50 = 0.5 -> 1.3 * 0.5 / (0.3 + 0.5) = 0.8125
    assert f_measure(A_PRED, A_GT) == pytest.approx(0.8125)
    # P = R = 0.5 -> F = 0.5 for any beta
    pred, gt = _box(4, 4, 0, 2, 0, 2), _box(4, 4, 0, 1, 0, 4)
    assert f_measure(pred, gt) == pytest.approx(0.5)
    # beta2 = 1 is the usual F1: 2PR/(P+R) = 2*0.5/1.5
    assert f_measure(A_PRED, A_GT, beta2=1.0) == pytest.approx(2 / 3)
    empty = np.zeros((3, 3), bool)
    some = _box(3, 3, 0, 1, 0, 1)
    assert f_measure(empty, empty) == 1.0
    assert f_measure(empty, some) == 0.0
    assert f_measure(some, empty) == 0.0
    assert f_measure(some, _box(3, 3, 2, 3, 2, 3)) == 0.0


def test_mae():
    soft = np.array([[0.9, 0.1], [0.5, 0.0]])
    gt = np.array([[1, 0], [1, 0]], dtype=bool)
    assert mae(soft, gt) == pytest.approx((0.1 + 0.1 + 0.5 + 0.0) / 4)
    assert mae(A_PRED, A_GT) == pytest.approx(25 / 100)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mae(np.array([[2.0, -1.0]]), np.array([[1, 0]], bool))


def test_correct_motif():
    pred = _box(6, 6, 0, 2, 0, 3)  # 6 px: rows 0-1, cols 0-2
    t1 = _box(6, 6, 0, 2, 0, 1)  # overlap 2
    t2 = _box(6, 6, 0, 2, 1, 2)  # overlap 2
    other = _box(6, 6, 0, 2, 2, 6)  # overlap 2
    other3 = _box(6, 6, 0, 3, 2, 6)  # still overlap 2 (row 2 is outside pred)
    big_other = _box(6, 6, 0, 2, 1, 6)  # overlap 4
    # Union of the target motifs (4 px) beats every single other motif (2 px).
    assert correct_motif(pred, [t1, t2], [other, other3])
    # One target alone (2 px) only ties the other motif: not correct.
    assert not correct_motif(pred, [t1], [other])
    # Another motif overlaps more.
    assert not correct_motif(pred, [t1, t2], [big_other])
    # No overlap with the target at all, with or without other motifs.
    far = _box(6, 6, 4, 6, 4, 6)
    assert not correct_motif(pred, [far], [])
    assert not correct_motif(np.zeros((6, 6), bool), [t1], [])
    # No other motifs and some overlap.
    assert correct_motif(pred, [t1], [])
    assert not correct_motif(pred, [], [other])


def test_segmentation_meter_giou_vs_ciou():
    meter = SegmentationMeter()
    meter.update(A_PRED, A_GT, "awe", key="a")
    meter.update(B_PRED, B_GT, "Fear", key="b")
    res = meter.compute()
    # IoU_A = 25/50 = 0.5, IoU_B = 1/4 = 0.25
    assert res["gIoU"] == pytest.approx((0.5 + 0.25) / 2)
    # cumulative: (25 + 1) / (50 + 4)
    assert res["cIoU"] == pytest.approx(26 / 54)
    assert res["gIoU"] != pytest.approx(res["cIoU"])
    # F_A = 0.8125; F_B: P = 1, R = 0.25 -> 1.3 * 0.25 / (0.3 + 0.25)
    f_b = 1.3 * 0.25 / 0.55
    assert res["F_beta"] == pytest.approx((0.8125 + f_b) / 2)
    # binary MAE: A 25/100, B 3/16
    assert res["MAE"] == pytest.approx((0.25 + 3 / 16) / 2)
    assert res["n"] == 2
    assert list(res["per_emotion"]) == ["awe", "fear"]
    assert res["per_emotion"]["fear"]["gIoU"] == pytest.approx(0.25)
    assert res["per_emotion"]["fear"]["cIoU"] == pytest.approx(0.25)
    assert res["per_emotion"]["awe"]["n"] == 1
    assert all(type(res[k]) is float for k in ("gIoU", "cIoU", "F_beta", "MAE"))
    json.dumps(res)  # plain Python types only

    worst = min(meter.per_sample, key=lambda r: r["iou"])
    assert (worst["key"], worst["emotion"]) == ("b", "fear")
    best, worst_k = meter.best_worst(k=1)
    assert best[0]["key"] == "a" and worst_k[0]["key"] == "b"


def test_segmentation_meter_soft_mae_and_empty():
    meter = SegmentationMeter()
    soft = np.where(B_GT, 0.75, 0.25)
    meter.update(B_PRED, B_GT, "sadness", soft=soft)
    assert meter.compute()["MAE"] == pytest.approx(0.25)
    empty = SegmentationMeter().compute()
    assert empty["n"] == 0 and math.isnan(empty["gIoU"]) and empty["per_emotion"] == {}


def test_segmentation_meter_merge_rows():
    m0, m1 = SegmentationMeter(), SegmentationMeter()
    m0.update(A_PRED, A_GT, "awe", key="a")
    m1.update(B_PRED, B_GT, "fear", key="b")
    full = SegmentationMeter()
    full.update(A_PRED, A_GT, "awe", key="a")
    full.update(B_PRED, B_GT, "fear", key="b")
    # Rows survive a JSON round trip (what gather_object / files carry).
    rows = json.loads(json.dumps(m0.to_rows() + m1.to_rows()))
    assert SegmentationMeter.from_rows(rows).compute() == full.compute()
    # A padded duplicate from a distributed sampler is dropped on request.
    dup = rows + [rows[1]]
    assert SegmentationMeter.from_rows(dup).compute()["n"] == 3
    assert SegmentationMeter.from_rows(dup, deduplicate=True).compute() == full.compute()
    assert m0.merge(m1).compute() == full.compute()
    restored = SegmentationMeter()
    restored.load_state_dict(full.state_dict())
    assert restored.compute() == full.compute()


def test_dominant_emotion():
    def counts(**kw: int) -> np.ndarray:
        c = np.zeros(NUM_EMOTIONS, dtype=int)
        for name, v in kw.items():
            c[EMOTION_TO_INDEX[name.replace("_", " ")]] = v
        return c

    assert dominant_emotion(counts(fear=3, awe=2)) == EMOTION_TO_INDEX["fear"]  # 3/5 >= 1/2
    assert dominant_emotion(counts(sadness=2, awe=1, fear=1)) == EMOTION_TO_INDEX["sadness"]
    assert dominant_emotion(counts(fear=2, awe=1, anger=1, sadness=1)) is None  # 2/5 < 1/2
    assert dominant_emotion(counts(fear=2, awe=2)) is None  # tie for the max
    assert dominant_emotion(counts(fear=3, awe=3, anger=1)) is None  # tie
    assert dominant_emotion(counts(something_else=1)) == EMOTION_TO_INDEX["something else"]
    assert dominant_emotion(np.zeros(NUM_EMOTIONS)) is None
    # distributions work as well as counts
    assert dominant_emotion(counts(fear=1, awe=1, anger=2) / 4.0) == EMOTION_TO_INDEX["anger"]
    assert emotion_counts(["fear", "Fear", "awe", 7]).tolist() == [0, 1, 0, 0, 0, 0, 2, 1, 0]


def test_distribution_metrics_hand_computed():
    fear, sad = EMOTION_TO_INDEX["fear"], EMOTION_TO_INDEX["sadness"]
    t = np.zeros((3, NUM_EMOTIONS))
    p = np.zeros((3, NUM_EMOTIONS))
    # row 0: counts 3 amusement / 2 awe (dominant amusement); predicted 0.7 / 0.3 -> correct
    t[0, 0], t[0, 1] = 3, 2
    p[0, 0], p[0, 1] = 0.7, 0.3
    # row 1: all fear; predicted 0.1 amusement / 0.9 sadness -> wrong, p(fear) clipped at 1e-8
    t[1, fear] = 5
    p[1, 0], p[1, sad] = 0.1, 0.9
    # row 2: tie between amusement and awe -> no dominant emotion; uniform prediction
    t[2, 0], t[2, 1] = 1, 1
    p[2, :] = 1 / 9
    ce = [
        -(0.6 * math.log(0.7) + 0.4 * math.log(0.3)),
        -math.log(1e-8),
        math.log(9),
    ]
    kl = [
        0.6 * math.log(0.6 / 0.7) + 0.4 * math.log(0.4 / 0.3),
        math.log(1 / 1e-8),
        2 * 0.5 * math.log(0.5 * 9),
    ]
    res = distribution_metrics(p, t)
    assert res["n"] == 3 and res["n_dominant"] == 2
    assert res["accuracy_dominant"] == pytest.approx(0.5)
    assert res["cross_entropy"] == pytest.approx(sum(ce) / 3)
    assert res["kl"] == pytest.approx(sum(kl) / 3)
    # a perfect prediction has KL 0 and cross-entropy = entropy of the targets
    perfect = distribution_metrics(t / t.sum(1, keepdims=True), t)
    assert perfect["kl"] == pytest.approx(0.0, abs=1e-12)
    assert perfect["accuracy_dominant"] == 1.0


def test_distribution_metrics_rejects_logits():
    with pytest.raises(ValueError, match="softmax"):
        distribution_metrics(np.full((1, NUM_EMOTIONS), 0.5), np.ones((1, NUM_EMOTIONS)))
    with pytest.raises(ValueError, match="shape"):
        distribution_metrics(np.ones((2, 3)) / 3, np.ones((2, 3)))


def test_soft_to_shape_resizes_only_when_needed():
    soft = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    mask, same = soft_to_shape(soft, (2, 2), 0.5)
    assert same is soft and mask.tolist() == [[False, True], [False, True]]
    # bilinear with pixel centres: output columns sample x = -0.25, 0.25, 0.75, 1.25 (clamped)
    mask, up = soft_to_shape(soft, (2, 4), 0.5)
    assert up.shape == (2, 4)
    np.testing.assert_allclose(up, [[0.0, 0.25, 0.75, 1.0]] * 2, atol=1e-6)
    assert mask.tolist() == [[False, False, True, True]] * 2

