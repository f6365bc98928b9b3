"""The colour prior over the nine emotions, its blend with the emotion head by the in-domain
score, and the region rule for paintings out of domain (issue 27)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.inference.affect_prior import (
    blend_distribution,
    colour_emotion_prior,
    painting_prior,
    prior_weight,
)
from emosem.inference.region import (
    MAX_PARTS,
    MIN_FRACTION,
    RULE_LARGEST_PARTS,
    RULE_THRESHOLD,
    choose_region,
    count_parts,
)


def _rank(prior: dict[str, float], emotion: str) -> int:
    return sorted(prior, key=prior.get, reverse=True).index(emotion)


def test_dark_cold_muted_painting_ranks_sadness_and_fear_above_amusement():
    # a hand-made whole-painting record: dark (L* 22), muted (C* 9)
    prior = colour_emotion_prior(lightness=22.0, chroma=9.0)
    assert abs(sum(prior.values()) - 1) < 1e-6 and set(prior) == set(ARTEMIS_EMOTIONS)
    assert prior["sadness"] > prior["amusement"] and prior["fear"] > prior["amusement"]
    assert _rank(prior, "sadness") == 0


def test_bright_warm_saturated_painting_ranks_amusement_above_sadness_and_fear():
    prior = colour_emotion_prior(lightness=78.0, chroma=72.0)
    assert prior["amusement"] > prior["sadness"] and prior["amusement"] > prior["fear"]
    assert _rank(prior, "sadness") == len(ARTEMIS_EMOTIONS) - 1


def test_prior_of_painted_pixels_follows_their_colours():
    dark = np.zeros((60, 80, 3), np.uint8)
    dark[...] = (38, 44, 58)  # dark, cold, muted
    bright = np.zeros((60, 80, 3), np.uint8)
    bright[...] = (250, 170, 40)  # bright, warm, saturated
    p_dark, p_bright = painting_prior(dark), painting_prior(bright)
    assert p_dark["sadness"] > p_dark["amusement"]
    assert p_bright["amusement"] > p_bright["sadness"]
    with pytest.raises(ValueError, match="lightness"):
        colour_emotion_prior(float("nan"), 10.0)


def test_blend_moves_from_head_to_prior_as_the_in_domain_score_falls():
    head = dict(zip(ARTEMIS_EMOTIONS, np.eye(len(ARTEMIS_EMOTIONS))[0]))  # all amusement
    prior = colour_emotion_prior(lightness=22.0, chroma=9.0)
    for score in (None, 1.0, 0.5, 0.02):  # no score, or in domain: the head alone
        blended, w = blend_distribution(head, prior, score)
        assert w == 0.0 and blended == pytest.approx(head)
    blended, w = blend_distribution(head, prior, 0.0)  # beyond every training painting
    assert w == 1.0 and blended == pytest.approx(prior)
    weights = [prior_weight(s) for s in (0.02, 0.015, 0.01, 0.005, 0.0)]
    assert weights == sorted(weights) and weights[2] == pytest.approx(0.5)
    half, _ = blend_distribution(head, prior, 0.01)
    assert half["amusement"] == pytest.approx(0.5 + 0.5 * prior["amusement"])
    assert sum(half.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="in-domain score"):
        prior_weight(1.5)


def _scattered_low_map(seed: int = 0, side: int = 300) -> np.ndarray:
    """A real painting's kind of map: low everywhere, specks above the threshold scattered in a
    broad area of somewhat higher probability."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side] / side
    broad = 0.3 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.6) ** 2) / 0.02)
    return np.clip(broad + 0.25 * rng.random((side, side)) ** 4, 0, 1).astype(np.float32)


def test_region_rule_out_of_domain_gives_a_region_to_point_at():
    soft = _scattered_low_map()
    thresholded = soft > 0.35
    assert count_parts(thresholded)[0] > MAX_PARTS  # the speckled mask the rule replaces
    region = choose_region(soft, 0.35, out_of_domain=True)
    assert region.rule == RULE_LARGEST_PARTS
    assert region.area_fraction >= MIN_FRACTION and region.parts <= MAX_PARTS
    ys, xs = np.nonzero(region.mask)  # where the map is highest: around (0.3, 0.6)
    assert abs(xs.mean() / 300 - 0.3) < 0.1 and abs(ys.mean() / 300 - 0.6) < 0.1
    again = choose_region(soft.copy(), 0.35, out_of_domain=True)  # deterministic
    assert np.array_equal(region.mask, again.mask)
    assert json.loads(json.dumps(region.record()))["rule"] == RULE_LARGEST_PARTS


def test_region_rule_leaves_in_domain_and_pointable_masks_unchanged():
    soft = _scattered_low_map()
    in_domain = choose_region(soft, 0.35, out_of_domain=False)
    assert in_domain.rule == RULE_THRESHOLD and np.array_equal(in_domain.mask, soft > 0.35)
    blob = np.zeros((200, 200), np.float32)  # a confident motif of 9% of the canvas
    blob[40:100, 60:120] = 0.95
    region = choose_region(blob, 0.35, out_of_domain=True)
    assert region.rule == RULE_THRESHOLD and np.array_equal(region.mask, blob > 0.35)


@pytest.mark.slow
def test_bundled_checkpoint_keeps_synthetic_masks(synthetic_dir):
    """On an in-domain synthetic painting (no in-domain score, or a high one) the predictor's
    masks are the thresholded decoder masks and its distribution is the head's."""
    from emosem.inference.predictor import EmoSEMPredictor

    predictor = EmoSEMPredictor.from_pretrained(device="cpu", explain=False)
    painting = sorted((synthetic_dir / "images").rglob("*.jpg"))[0]
    state = predictor.encode(painting)
    for score in ("auto", 0.5):
        estimate = predictor.predict_emotions(state, in_domain=score)
        assert estimate.prior_weight == 0 and estimate.distribution == estimate.head
        emotions = estimate.ranked()[:3]
        results = predictor.predict(emotions, explain=False, state=state, in_domain=score)
        t = predictor.threshold()
        for r in results:
            assert r.region.rule == RULE_THRESHOLD and np.array_equal(r.mask, r.soft_mask > t)
