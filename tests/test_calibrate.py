"""Mask threshold calibration: the sweep on a hand-computed case, and the checkpoint default."""

from types import SimpleNamespace

import numpy as np
import pytest

from emosem.evaluation.calibrate import threshold_sweep

SOFT = np.array([[0.9, 0.9, 0.45, 0.1],
                 [0.9, 0.9, 0.45, 0.1],
                 [0.1, 0.1, 0.10, 0.1],
                 [0.1, 0.1, 0.10, 0.1]], dtype=np.float32)
GT = SOFT >= 0.45  # six pixels; above 0.5 only four of them are predicted


class _Predictor:
    def encode(self, path):
        return path

    def predict(self, emotions, explain, state):
        return [SimpleNamespace(soft_mask=SOFT if e == "awe" else np.zeros_like(SOFT)) for e in emotions]


class _Data:
    def decode_mask(self, s):
        return GT if s.emotion == "awe" else np.zeros_like(GT)


def _sample(key, emotion, has_mask=True):
    return SimpleNamespace(key=key, emotion=emotion, image_path=key, has_mask=has_mask)


def test_sweep_matches_hand_computed_ious():
    samples = [_sample("a", "awe"), _sample("a", "fear"), _sample("b", "awe", has_mask=False)]
    r = threshold_sweep(_Predictor(), _Data(), samples, thresholds=(0.2, 0.3, 0.4, 0.5, 0.6))
    assert r["n"] == 2  # the maskless sample is not scored
    # awe: IoU 1 at t < 0.45, 4/6 above; fear: empty prediction and empty truth count as 1.
    assert r["gIoU"] == pytest.approx([1.0, 1.0, 1.0, (4 / 6 + 1) / 2, (4 / 6 + 1) / 2], abs=1e-4)
    assert r["cIoU"] == pytest.approx([1.0, 1.0, 1.0, 4 / 6, 4 / 6], abs=1e-4)
    assert r["best"] == 0.4  # ties go to the threshold nearest SAM's 0.5


def test_sweep_needs_masks():
    with pytest.raises(ValueError, match="No sample with a stimulus mask"):
        threshold_sweep(_Predictor(), _Data(), [_sample("a", "awe", has_mask=False)])


def test_predictor_uses_the_checkpoint_threshold(tiny_checkpoint, sample_paintings):
    from emosem.inference.predictor import EmoSEMPredictor

    p = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")
    state = p.encode(sample_paintings[0])
    soft = p.predict(["awe"], explain=False, state=state)[0].soft_mask
    for t in (0.3, 0.7):
        p.model.config.mask_threshold = t
        r = p.predict(["awe"], explain=False, state=state)[0]
        np.testing.assert_array_equal(r.mask, soft > t)
        np.testing.assert_array_equal(p.predict(["awe"], explain=False, threshold=0.5, state=state)[0].mask,
                                      soft > 0.5)
