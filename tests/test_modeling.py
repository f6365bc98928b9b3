"""The EmoSEM model on the CPU: shapes, gradients, save/load, official SAM layout, overfitting."""

from __future__ import annotations

import pickle

import pytest
import torch

from emosem.config import LossConfig, ModelConfig, TrainConfig
from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.modeling.emosem import EmoSEM
from emosem.modeling.errors import CheckpointError
from emosem.modeling.segmenter import (
    SEGMENTERS,
    build_segmenter,
    load_sam_checkpoint,
    safe_torch_load,
)


def _batch(b: int = 3, size: int = 256) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(b, 3, size, size, generator=g),
        "mask": (torch.rand(b, size, size, generator=g) > 0.7).float(),
        "has_mask": [True, False, True][:b],
        "emotion": ["awe", "fear", "melancholy"][:b],
        "utterance": ["the radiant sun fills me with awe", "", "the grey rain cloud saddens me"][:b],
        "has_text": [True, False, True][:b],
        "emotion_dist": torch.softmax(torch.randn(b, 9, generator=g), -1),
        "has_dist": [True, True, False][:b],
    }


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request, tiny_llama_dir, tiny_gpt2_dir) -> EmoSEM:
    lm = tiny_llama_dir if request.param == "llama" else tiny_gpt2_dir
    torch.manual_seed(0)
    return EmoSEM.build(ModelConfig(lm=str(lm), prefix_length=4))


def test_shapes_through_every_module(model):
    b = 3
    batch = _batch(b)
    emb = model.encode(batch["image"])
    assert emb.shape == (b, 256, 16, 16)
    tokens = model.emotion_tokens(batch["emotion"])
    assert tokens.shape == (b, model.config.num_emotion_tokens, 256)
    logits, iou, mask_token = model.decode(emb, tokens)
    assert logits.shape == (b, 1, 64, 64) and iou.shape == (b,) and mask_token.shape == (b, 256)
    prefix = model.prefix(emb, logits.sigmoid(), mask_token, tokens)
    assert prefix.shape == (b, 4, model.lm.hidden_size)
    assert model.emotion_head(emb).shape == (b, len(ARTEMIS_EMOTIONS))
    out = model(batch, LossConfig())
    assert out.mask_logits.shape == (b, 1, 64, 64)
    assert set(out.losses) == {"focal", "dice", "iou", "lm", "emotion_dist"}
    assert torch.isfinite(out.loss)
    assert out.metrics["num_masks"] == 2 and out.metrics["num_texts"] == 2


def test_one_embedding_serves_many_emotions(model):
    """Nine emotions decode in one call from one image embedding; rows differ by emotion."""
    emb = model.encode(_batch(1)["image"])
    tokens = model.emotion_tokens(list(ARTEMIS_EMOTIONS))
    logits, iou, mask_token = model.decode(emb.expand(9, -1, -1, -1), tokens)
    assert logits.shape == (9, 1, 64, 64) and iou.shape == (9,)
    single, _, _ = model.decode(emb, tokens[1:2])
    torch.testing.assert_close(single[0], logits[1], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(logits[0], logits[6]), "the emotion must condition the decoder"
    texts = model.explain(emb.expand(2, -1, -1, -1), logits[:2], mask_token[:2], tokens[:2],
                          ["amusement", "awe"], max_new_tokens=5)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_gradients_reach_exactly_the_trainable_parts(model):
    for stage in ("all", "segmenter", "language"):
        model.zero_grad(set_to_none=True)
        model.set_stage(stage)
        out = model(_batch(), LossConfig())
        out.loss.backward()
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
        assert with_grad == trainable, (stage, sorted(trainable ^ with_grad)[:5])
        assert not any(n.startswith("lm.") and "lora_" not in n for n in trainable)
        if stage == "segmenter":
            assert not any(n.startswith(("adapter.", "lm.")) for n in trainable)
        if stage == "language":
            assert all(n.startswith(("adapter.", "lm.")) for n in trainable)
    model.zero_grad(set_to_none=True)
    model.set_stage("all")
    groups = model.param_groups(TrainConfig(lr=1.0, lr_encoder=2.0, lr_lora=3.0))
    assert {g["name"]: g["lr"] for g in groups} == {"encoder": 2.0, "lora": 3.0, "rest": 1.0}


def test_merged_lora_is_the_same_function(model):
    """The predictor folds LoRA into the LM weights: same loss and same greedy text."""
    model.eval()
    batch = _batch(3)
    with torch.no_grad():
        prefix = torch.randn(2, 4, model.lm.hidden_size, generator=torch.Generator().manual_seed(1))
        for p in (n_p[1] for n_p in model.named_parameters() if "lora_B" in n_p[0]):
            p.normal_(0, 0.05)  # fresh LoRA B is zero: give the adapters something to merge
        args = (prefix, ["awe", "fear"], [batch["utterance"][0], batch["utterance"][2]])
        before = model.lm.loss(*args)
        text = model.lm.generate(prefix, ["awe", "fear"], max_new_tokens=6)
        assert model.lm.merge_lora() and not model.lm.merge_lora()  # merges once
        try:
            torch.testing.assert_close(model.lm.loss(*args), before, atol=1e-4, rtol=1e-4)
            assert model.lm.generate(prefix, ["awe", "fear"], max_new_tokens=6) == text
        finally:
            model.lm.unmerge_lora()
            assert not model.lm.merged
            for p in (n_p[1] for n_p in model.named_parameters() if "lora_B" in n_p[0]):
                p.zero_()


def test_save_load_round_trip_is_exact(model, tmp_path):
    model.eval()
    batch = _batch(2)
    with torch.no_grad():
        emb = model.encode(batch["image"])
        tok = model.emotion_tokens(["awe", "something else"])
        before = model.decode(emb, tok)
        text_before = model.explain(emb, before[0], before[2], tok, ["awe", "something else"],
                                    max_new_tokens=6)
    model.save_pretrained(tmp_path / "ckpt")
    files = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert {"config.json", "model.safetensors", "lm_adapter"} <= files
    adapter_files = {p.name for p in (tmp_path / "ckpt" / "lm_adapter").iterdir()}
    assert "adapter_config.json" in adapter_files and "adapter_model.safetensors" in adapter_files
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    assert not any(k.startswith("lm.") for k in saved), "the base LM must never be re-saved"
    loaded = EmoSEM.from_pretrained(tmp_path / "ckpt")
    with torch.no_grad():
        emb2 = loaded.encode(batch["image"])
        after = loaded.decode(emb2, loaded.emotion_tokens(["awe", "something else"]))
        text_after = loaded.explain(emb2, after[0], after[2], tok, ["awe", "something else"],
                                    max_new_tokens=6)
    for a, b in zip(before, after):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert text_before == text_after
    model.train()


def test_bad_checkpoints_give_clear_errors(tmp_path, model):
    with pytest.raises(CheckpointError, match="does not exist"):
        EmoSEM.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not an EmoSEM checkpoint"):
        EmoSEM.from_pretrained(tmp_path / "empty")
    ck = model.save_pretrained(tmp_path / "old")
    cfg = (ck / "config.json").read_text().replace('"format_version": 1', '"format_version": 99')
    (ck / "config.json").write_text(cfg)
    with pytest.raises(CheckpointError, match="incompatible version"):
        EmoSEM.from_pretrained(ck)


class _Evil:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_pickle_checkpoint_is_refused_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pth"
    with open(bad, "wb") as f:
        pickle.dump({"w": _Evil()}, f)
    with pytest.raises(CheckpointError, match="Refusing to load"):
        safe_torch_load(bad)
    assert not (tmp_path / "PWNED").exists()


def test_registry_and_unknown_name():
    assert set(SEGMENTERS) == {"sam_vit_b", "sam_vit_l", "sam_vit_h", "sam_tiny",
                               "sam_effnet_lite0", "sam_effnet_lite2"}
    with pytest.raises(ValueError, match="sam_vit_b, sam_vit_l, sam_vit_h, sam_tiny, sam_effnet"):
        build_segmenter("sam_vit_x")


@pytest.mark.slow
def test_official_vit_b_layout_loads_with_zero_missing_keys(tmp_path):
    """The state dict of segment_anything's own ``sam_model_registry["vit_b"]`` (what the official
    ``sam_vit_b_01ec64.pth`` holds) has exactly our sam_vit_b's keys and loads completely."""
    from emosem.modeling.sam_modules import register_package_without_init

    register_package_without_init()  # segment_anything without its __init__ (which needs torchvision)
    from segment_anything.build_sam import sam_model_registry

    torch.manual_seed(0)
    official = sam_model_registry["vit_b"]().state_dict()
    # a few keys of the published file, named independently of any builder
    for key in ("image_encoder.pos_embed", "image_encoder.blocks.11.attn.rel_pos_h",
                "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
                "mask_decoder.iou_prediction_head.layers.2.weight", "mask_decoder.output_upscaling.0.weight"):
        assert key in official, key
    assert not any(k.startswith("image_encoder.blocks.12.") for k in official)  # ViT-B: 12 blocks
    ours = build_segmenter("sam_vit_b")
    assert sorted(ours.state_dict()) == sorted(official)
    assert all(ours.state_dict()[k].shape == v.shape for k, v in official.items())
    path = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(official, path)  # official files: a plain state dict of the whole Sam
    missing, unexpected = load_sam_checkpoint(ours, path)
    assert missing == [] and unexpected == []
    for key, value in official.items():
        assert torch.equal(ours.state_dict()[key], value), key
    assert ours.image_encoder.img_size == 1024
    with pytest.raises(CheckpointError, match="does not fit sam_tiny"):
        build_segmenter("sam_tiny", path)


def test_sam_loader_formats_and_refusals(tmp_path):
    """safetensors files, {"model": state} wrappers, and clear refusals of non-dicts and of
    files that lack keys."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = build_segmenter("sam_tiny").state_dict()
    key = "mask_decoder.iou_token.weight"

    def loaded(path):
        return build_segmenter("sam_tiny", path).state_dict()[key]

    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "sam.safetensors"))
    assert torch.equal(loaded(tmp_path / "sam.safetensors"), state[key])
    torch.save({"model": state, "epoch": 3}, tmp_path / "wrapped.pth")
    assert torch.equal(loaded(tmp_path / "wrapped.pth"), state[key])
    torch.save([state[key]], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        build_segmenter("sam_tiny", tmp_path / "list.pth")
    torch.save({k: v for k, v in state.items() if k != key}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=f"1 missing keys, e.g. \\['{key}'\\]"):
        build_segmenter("sam_tiny", tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="not found"):
        build_segmenter("sam_tiny", tmp_path / "nowhere.pth")
    data = (tmp_path / "sam.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "header.safetensors").write_bytes(b"\xff" * 8 + data[8:])
    for bad in ("cut", "header"):  # SafetensorError inside: one line naming the file
        with pytest.raises(CheckpointError, match=f"{bad}.safetensors is damaged"):
            build_segmenter("sam_tiny", tmp_path / f"{bad}.safetensors")


def test_frozen_official_encoder_is_referenced_not_saved(tmp_path, tiny_llama_dir):
    """With official weights the encoder is frozen and the checkpoint references the file."""
    torch.manual_seed(0)
    sam = build_segmenter("sam_tiny")
    path = tmp_path / "sam_tiny_official_layout.pth"
    torch.save(sam.state_dict(), path)
    model = EmoSEM.build(ModelConfig(lm=str(tiny_llama_dir), sam_checkpoint=str(path)))
    assert model.freeze_encoder
    assert not any(p.requires_grad for p in model.sam.image_encoder.parameters())
    model.save_pretrained(tmp_path / "ck")
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "ck" / "model.safetensors"))
    assert not any(k.startswith("sam.image_encoder.") for k in saved)
    loaded = EmoSEM.from_pretrained(tmp_path / "ck")
    torch.testing.assert_close(loaded.sam.image_encoder.patch_embed.proj.weight,
                               sam.image_encoder.patch_embed.proj.weight)


def _overfit_samples(synthetic_dir, n: int = 8):
    """n samples with masks and text, including two emotions of one multi-emotion painting."""
    from emosem.data.artemis import load_artemis
    from emosem.data.dataset import StimulusDataset

    data = load_artemis(synthetic_dir)
    by_key: dict[str, list] = {}
    for s in data.samples:
        if s.has_mask and s.has_text:
            by_key.setdefault(s.key, []).append(s)
    pair = next(v[:2] for v in by_key.values() if len(v) >= 2)
    rest = [v[0] for k, v in by_key.items() if k != pair[0].key]
    return StimulusDataset(pair + rest[: n - 2], data, image_size=256), pair


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_overfit_eight_samples(synthetic_dir, tiny_llama_dir):
    """At most 250 CPU steps on 8 samples: mask IoU > 0.9, the LM loss falls by over half,
    and the two emotions of one painting decode to different regions."""
    from emosem.data.dataset import collate_samples

    torch.manual_seed(0)
    ds, pair = _overfit_samples(synthetic_dir)
    batch = collate_samples([ds[i] for i in range(len(ds))])
    # A random 64-wide LM needs LoRA on its MLPs too to memorise eight utterances quickly.
    lora = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = EmoSEM.build(ModelConfig(lm=str(tiny_llama_dir), prefix_length=4, lora_dropout=0.0,
                                     lora_r=16, lora_target_modules=lora))
    opt = torch.optim.AdamW(model.param_groups(TrainConfig(lr=1e-3, lr_encoder=1e-3, lr_lora=1e-2)),
                            weight_decay=0.0)
    loss_cfg = LossConfig()
    first_lm = None
    for _ in range(250):
        out = model(batch, loss_cfg)
        first_lm = first_lm if first_lm is not None else out.losses["lm"].item()
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if out.metrics["mask_iou"] > 0.93 and out.losses["lm"].item() < 0.5 * first_lm:
            break
    model.eval()
    with torch.no_grad():
        out = model(batch, loss_cfg)
    assert out.metrics["mask_iou"] > 0.9, out.metrics
    assert out.losses["lm"].item() < 0.5 * first_lm, (first_lm, out.losses["lm"].item())
    a, b = (out.mask_logits[0, 0] > 0), (out.mask_logits[1, 0] > 0)
    overlap = (a & b).sum().item() / max(1, (a | b).sum().item())
    assert pair[0].emotion != pair[1].emotion and overlap < 0.2, overlap


@pytest.mark.slow
def test_real_smollm2_end_to_end(smollm2_dir):
    """SmolLM2-135M with LoRA: forward, backward into LoRA + adapter only, a short generation."""
    torch.manual_seed(0)
    model = EmoSEM.build(ModelConfig(lm=str(smollm2_dir), prefix_length=4))
    assert model.lm.hidden_size == 576 and model.lm.is_lora
    model.set_stage("language")
    batch = _batch(2)
    out = model(batch, LossConfig(), max_text_tokens=16)
    # bounded against the same LM reading the same instruction and texts without the prefix:
    # the pretrained LM predicts the text far better than uniform (ln 49152 = 10.8), and a fresh
    # prefix adapter (LoRA still a no-op) must not turn that into noise
    with torch.no_grad():
        bare = model.lm.loss(torch.zeros(1, 0, 576), ["awe"], [batch["utterance"][0]], max_tokens=16).item()
    lm = out.losses["lm"].item()
    assert 0 < bare < 8.5 and 0 < lm < bare + 2.5, (lm, bare)  # measured: 6.6 and 6.0
    out.loss.backward()
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    assert lora and all(p.grad is not None for p in lora)
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("lm.") and "lora_" not in n)
    # a fresh prefix may cost a little (above), but it must be able to help: a few steps on the
    # prefix adapter alone (LoRA frozen, so nothing else can) bring the loss on these texts below
    # the same LM's without the image prefix. A prefix that does not reach the LM, or reaches it
    # as noise the adapter cannot shape, fails here.
    adapter = [p for n, p in model.named_parameters() if n.startswith("adapter.") and p.requires_grad]
    assert adapter
    opt = torch.optim.Adam(adapter, lr=3e-3)
    for _ in range(6):
        opt.zero_grad()
        step = model(batch, LossConfig(), max_text_tokens=16).losses["lm"]
        step.backward()
        for p in lora:
            p.grad = None
        opt.step()
    with torch.no_grad():
        trained = model(batch, LossConfig(), max_text_tokens=16).losses["lm"].item()
    assert trained < bare, (trained, bare, lm)
    model.eval()
    with torch.no_grad():
        emb = model.encode(batch["image"][:1])
        tok = model.emotion_tokens(["awe"])
        logits, _, mtok = model.decode(emb, tok)
        text = model.explain(emb, logits, mtok, tok, ["awe"], max_new_tokens=8)
    assert len(text) == 1 and isinstance(text[0], str) and text[0].strip()


def test_object_tags_enter_only_licensed_prefixes(tiny_llama_dir):
    """With object tags marked (set_object_vocabulary), a row whose object slot licenses no motif
    gets the best non-object tags in its prefix even when object tags score highest; a licensed
    row keeps them."""
    torch.manual_seed(0)
    model = EmoSEM.build(ModelConfig(lm=str(tiny_llama_dir), prefix_length=4, tag_k=2)).eval()
    tok = model.lm.tokenizer
    words = [" wave", " volcano", " red", " left", " bright"]
    ids = [tok.encode(w, add_special_tokens=False)[0] for w in words]
    texts = [tok.decode([i]).strip().lower() for i in ids]
    model.add_tag_head(torch.tensor(ids))
    n_obj = model.set_object_vocabulary({"wave", "volcano"})
    assert n_obj == sum(t in {"wave", "volcano"} for t in texts) >= 1
    b = 2
    emb = model.encode(torch.randn(b, 3, model.image_size, model.image_size))
    logits, _, mtok, tokens = model.segment(emb, ["fear", "fear"])
    tag_logits = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]] * b)  # object tags first
    with torch.no_grad():
        prefix = model.prefix(emb, logits.sigmoid(), mtok, tokens, tag_logits,
                              licensed=EmoSEM.licensed_rows([None, {"word": "wave", "source": "motif"}]))
    tags = prefix[:, model.config.prefix_length:]
    table = model.lm.embed_ids(torch.tensor(ids)).to(tags.dtype)
    chosen = [[int((table - t).abs().sum(-1).argmin()) for t in row] for row in tags]
    is_obj = model.object_tags.tolist()
    assert not any(is_obj[j] for j in chosen[0])  # unlicensed: no object tag
    assert chosen[1] == [0, 1]  # licensed: the two highest, object tags included
    assert EmoSEM.licensed_rows([{"word": "ship", "source": "imagenet"}, None]) == [False, False]


def test_emotion_projector_masks_padding_as_multihead_attention_does():
    """The projector's padding, given as the additive attention mask, gives MultiheadAttention's
    own key_padding_mask result bit for bit, and padded tokens do not change the prompt tokens."""
    from emosem.modeling.emotion_prompt import EmotionProjector

    torch.manual_seed(0)
    proj = EmotionProjector(64, 256, num_tokens=4, num_heads=8).eval()
    x = torch.randn(3, 7, 64)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 1:] = 0
    with torch.no_grad():
        got = proj(x, mask)
        h = proj.mlp(x)
        q = proj.queries.unsqueeze(0).expand(3, -1, -1)
        want = proj.out(proj.pool(q, h, h, key_padding_mask=mask == 0, need_weights=False)[0] + q)
        noisy = x.clone()
        noisy[mask == 0] = 100.0
        again = proj(noisy, mask)
    assert got.shape == (3, 4, 256)
    assert torch.equal(got, want)
    torch.testing.assert_close(again, got, rtol=0, atol=1e-6)


def test_focal_loss_is_lin_et_al_and_torchvisions():
    """The sigmoid focal loss by hand on four pixels (FL = −α_t (1 − p_t)^γ log p_t), and equal to
    torchvision's ``sigmoid_focal_loss`` where torchvision is installed (it is not a dependency)."""
    import math

    from emosem.modeling.losses import focal_loss

    logits = torch.tensor([[[2.0, -1.0], [0.0, 3.0]]])
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])

    def by_hand(x: float, t: float, alpha: float = 0.25, gamma: float = 2.0) -> float:
        p = 1 / (1 + math.exp(-x))
        p_t = p if t else 1 - p
        return -(alpha if t else 1 - alpha) * (1 - p_t) ** gamma * math.log(p_t)

    expected = sum(by_hand(x, t) for x, t in zip(logits.flatten().tolist(), target.flatten().tolist())) / 4
    assert focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    unweighted = sum(by_hand(x, t, alpha=0.5) for x, t in zip(logits.flatten().tolist(),
                                                              target.flatten().tolist())) / 2
    assert focal_loss(logits, target, alpha=-1).item() == pytest.approx(unweighted, rel=1e-6)
    try:
        from torchvision.ops import sigmoid_focal_loss
    except Exception:  # not installed, or installed against another torch build
        return
    x, t = torch.randn(3, 8, 8), (torch.rand(3, 8, 8) > 0.7).float()
    torch.testing.assert_close(focal_loss(x, t), sigmoid_focal_loss(x, t, reduction="none").mean((1, 2)))
