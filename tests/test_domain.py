"""In-domain statistics (emosem.inference.domain): pooling, the calibrated Gaussian, storage, the
bundled checkpoint's scores on synthetic and real paintings, and where the scores are written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emosem.in_domain import IN_DOMAIN_THRESHOLD, domain_lines, domain_note, is_in_domain
from emosem.inference.domain import (
    DOMAIN_DIR,
    META_NAME,
    DomainModel,
    FeatureSet,
    fit_domain,
    load_domain,
    pooled_features,
    valid_weight,
)
from emosem.modeling.errors import CheckpointError
from emosem.paths import default_checkpoint


def test_pooled_features_are_the_weighted_mean_and_std_per_channel():
    # one 2-channel 2x2 map; the weight keeps the left column only
    m = torch.tensor([[[[1.0, 5.0], [3.0, 7.0]], [[2.0, 0.0], [2.0, 0.0]]]])
    w = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    f = pooled_features([m], w)
    assert f.shape == (1, 4)
    assert torch.allclose(f[0], torch.tensor([2.0, 2.0, 1.0, 0.0]))  # means (1,3)->2, (2,2)->2; stds 1, 0
    # a weight at a finer resolution is area-averaged onto the map
    fine = torch.zeros(1, 1, 4, 4)
    fine[..., :, :2] = 1.0
    assert torch.allclose(pooled_features([m], fine), f)


def test_valid_weight_covers_the_resized_image_not_the_padding():
    w = valid_weight((2, 3), 4)
    assert w.shape == (1, 1, 4, 4) and w.sum() == 6 and w[0, 0, :2, :3].all()


MIX = np.random.default_rng(42).normal(size=(10, 10))  # correlates the feature columns


def _features(rng: np.random.Generator, n: int, shift: float = 0.0) -> FeatureSet:
    """Two 'maps' (3 and 2 channels → 10 pooled columns) of correlated Gaussian features; the
    first half of the images stand in for regions."""
    x = torch.tensor(rng.normal(size=(n, 10)) @ MIX + shift, dtype=torch.float32)
    return FeatureSet(x, x[: n // 2].clone())


def test_calibrated_score_is_about_uniform_inside_and_zero_far_outside(tmp_path):
    rng = np.random.default_rng(0)
    fit, held, fresh = _features(rng, 400), _features(rng, 200), _features(rng, 200)
    far = _features(rng, 50, shift=30.0)
    domain = fit_domain(fit, held, channels=[3, 2], k=3)
    inside = domain.image.score(fresh.images)
    assert 0.35 < float(inside.median()) < 0.65  # the share of held-out samples farther
    assert float((inside < IN_DOMAIN_THRESHOLD).float().mean()) < 0.08
    assert float(domain.image.score(far.images).max()) == 0.0
    assert domain.region is not None  # enough regions: a region model too

    domain.save(tmp_path / DOMAIN_DIR)
    back = load_domain(tmp_path)
    # components are stored in float16: a score may move by a step of the 200 held-out samples
    assert float((back.image.score(fresh.images) - inside).abs().max()) <= 2 / 200
    assert back.region_scores(far.regions[:2]) == [0.0, 0.0]
    assert back.meta["maps"] == [3, 2] and back.meta["fit"]["images"] == 400


def test_a_checkpoint_without_statistics_scores_none_and_damaged_ones_fail_in_one_line(tmp_path):
    assert load_domain(tmp_path) is None
    rng = np.random.default_rng(1)
    fit_domain(_features(rng, 100), _features(rng, 40), [3, 2], k=3).save(tmp_path / DOMAIN_DIR)
    (tmp_path / DOMAIN_DIR / META_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="fit_domain.py"):
        DomainModel.load(tmp_path / DOMAIN_DIR)


def test_notes_and_lines_say_when_a_painting_is_unlike_the_training_ones():
    assert is_in_domain(None) is None and is_in_domain(0.5) and not is_in_domain(0.0)
    assert domain_note(0.5) is None and domain_note(None) is None
    assert domain_note(0.0).startswith("this painting is unlike the paintings the model learned from")
    assert domain_lines(None, None) == []
    assert domain_lines(0.54, 0.31) == ["in domain: painting 0.54, region 0.31"]
    lines = domain_lines(0.0, 0.3)
    assert lines[0] == "in domain: painting 0.00, region 0.30" and "unlike" in lines[1]


@pytest.fixture(scope="module")
def bundled_predictor():
    from emosem.inference.predictor import EmoSEMPredictor

    if load_domain(default_checkpoint()) is None:
        pytest.fail("the bundled checkpoint lacks its in-domain statistics: run tools/fit_domain.py")
    return EmoSEMPredictor.from_pretrained(device="cpu", explain=False)


@pytest.mark.slow
def test_bundled_checkpoint_scores_synthetic_paintings_in_and_real_ones_out(
        bundled_predictor, synthetic_dir, sample_paintings):
    p = bundled_predictor
    synthetic = sorted((synthetic_dir / "images").rglob("*.jpg"))[:5]  # seed 3: not trained on
    scores = []
    for path in synthetic:
        p.set_image(path)
        scores.append(p.domain_score)
    assert sum(s >= IN_DOMAIN_THRESHOLD for s in scores) >= 4, scores
    for path in sample_paintings:
        state = p.set_image(path)
        assert state.domain_score == p.domain_score < IN_DOMAIN_THRESHOLD, path.name
    results = p.predict(["awe", "fear"], explain=False)
    for r in results:
        assert (r.in_domain is None) == (r.area == 0)
        assert r.to_record()["in_domain"] == r.in_domain
        assert r.area == 0 or 0.0 <= r.in_domain < 0.5  # a region of a real painting is far too


def test_a_checkpoint_without_statistics_keeps_working(tiny_checkpoint, sample_paintings):
    from emosem.inference.predictor import EmoSEMPredictor

    p = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu", explain=False)
    assert p.domain is None and p.domain_score is None
    p.set_image(sample_paintings[0])
    assert p.domain_score is None
    assert all(r.in_domain is None for r in p.predict(["awe"], explain=False))


def test_results_json_csv_and_gallery_carry_the_scores_and_the_note(tmp_path):
    from emosem.data.cues import extract_cues
    from emosem.inference.merge import csv_rows
    from emosem.inference.outputs import write_image_results
    from emosem.inference.predictor import StimulusResult
    from emosem.visualization.gallery import _card

    image = np.full((40, 60, 3), 120, np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[10:30, 10:40] = True
    r = StimulusResult("awe", True, mask, mask.astype(np.float32), 0.9, "It is vast.",
                       cues=extract_cues(image, mask), in_domain=0.0)
    doc, entries = write_image_results(tmp_path / "out", "a.png", image, [r], figures=False,
                                       in_domain=0.0)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["in_domain"] == 0.0 and "unlike the paintings" in saved["in_domain_note"]
    assert saved["results"][0]["in_domain"] == 0.0
    row = next(iter(csv_rows("a", saved)))
    assert row["in_domain"] == "0.0000" and row["region_in_domain"] == "0.0000"
    assert "This painting is unlike the paintings the model learned from" in _card(entries[0], tmp_path)

    doc, entries = write_image_results(tmp_path / "none", "a.png", image,
                                       [StimulusResult("awe", True, mask, mask.astype(np.float32), 0.9, None)],
                                       figures=False)
    assert doc["in_domain"] is None and "in_domain_note" not in doc
    assert "in domain" not in _card(entries[0], tmp_path)


def test_statistics_are_carried_only_for_the_frozen_encoder_they_were_fitted_on(tmp_path, tiny_checkpoint):
    import subprocess
    import sys

    from emosem.inference.domain import encoder_identity, statistics_fit

    ckpt = {"model": {"segmenter": "sam_effnet_lite0"}, "image_encoder_weights": {"sha256": "abc"}}
    assert statistics_fit(encoder_identity(ckpt), ckpt)
    assert not statistics_fit({**encoder_identity(ckpt), "encoder_sha256": "other"}, ckpt)
    assert not statistics_fit({}, {"model": {"segmenter": "sam_tiny"}})  # no frozen encoder

    dst = tmp_path / "exported"  # the folder being replaced holds statistics of another encoder
    rng = np.random.default_rng(2)
    domain = fit_domain(_features(rng, 100), _features(rng, 40), [3, 2], k=3,
                        meta=encoder_identity(ckpt))
    domain.save(dst / DOMAIN_DIR)
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(repo / "tools" / "export_checkpoint.py"),
                           str(tiny_checkpoint), str(dst)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "not carried over" in proc.stderr and not (dst / DOMAIN_DIR).exists()
