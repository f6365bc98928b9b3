"""Int8 LM linears in the predictor: same masks, near-identical explanations, clean fallback."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emosem.inference import quantize
from emosem.inference.predictor import EmoSEMPredictor


def test_self_check_and_layer_error():
    assert quantize.int8_supported("cpu", torch.float32)
    assert not quantize.int8_supported("cpu", torch.bfloat16)
    assert not quantize.int8_supported("meta", torch.float32)
    g = torch.Generator().manual_seed(1)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))
    x = torch.randn(5, 64, generator=g)
    with torch.no_grad():
        ref = model(x)
        assert quantize.quantize_linears(model) == 2
        out = model(x)
    assert not any(type(m) is nn.Linear for m in model.modules())
    # int8 weights and activations: within 5 % of the output scale on a random two-layer MLP
    assert float((out - ref).abs().max() / ref.abs().max()) < 0.05


def test_int8_predictor_same_masks_near_identical_logits(tiny_checkpoint, sample_paintings):
    """Masks do not pass through the LM: identical. Explanations: "near" means the first
    generated token's log-probabilities differ by < 0.1 nats at every position of the
    vocabulary's top 5, and the greedy texts are strings of the requested length or shorter."""
    fp32 = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu", lm_int8=False)
    int8 = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu", lm_int8=True)
    assert int8.int8_layers == 2 * 7 + 1 and int8.packed_layers == 0 and fp32.int8_layers == 0
    emotions = ["awe", "fear", "melancholy"]
    a = fp32(sample_paintings[0], emotions, max_new_tokens=6)
    b = int8(sample_paintings[0], emotions, max_new_tokens=6)
    tok = int8.model.lm.tokenizer
    for ra, rb in zip(a, b):
        assert (ra.mask == rb.mask).all() and ra.predicted_iou == rb.predicted_iou
        for text in (ra.explanation, rb.explanation):  # at most the 6 tokens asked for
            assert isinstance(text, str) and len(tok(text, add_special_tokens=False).input_ids) <= 6
    # next-token distributions given the same prefix and instruction
    st = fp32.encode(sample_paintings[0])
    with torch.no_grad():
        outs = []
        for p in (fp32, int8):
            tokens = p.model.emotion_tokens(["fear"])
            logits, _, mtok = p.model.decode(st.embedding, tokens)
            prefix = p.model.prefix(st.embedding, logits.sigmoid(), mtok, tokens)
            ids = p.model.lm._ids(p.model.lm.instructions(["fear"]))[0]
            emb = torch.cat([prefix, p.model.lm.embed_ids(torch.tensor([ids]))], 1)
            outs.append(p.model.lm.model(inputs_embeds=emb).logits[0, -1].log_softmax(-1))
    top = outs[0].topk(5).indices
    assert float((outs[0][top] - outs[1][top]).abs().max()) < 0.1


def test_int8_without_working_kernels_is_a_clear_error_not_a_fallback(tiny_checkpoint, monkeypatch):
    """Float32 (packed) is the default; kernels that compute something else than float32 fail
    the self-check, and an int8 request is then a clear error, not a silent fallback."""
    from torch.ao import quantization

    p = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")
    assert p.int8_layers == 0 and p.packed_layers > 0

    def wrong_kernels(model, *args, **kwargs):  # int8 "linears" that return zeros
        class Zero(nn.Module):
            def forward(self, x):
                return torch.zeros(*x.shape[:-1], 512)
        return Zero()

    quantize._kernels_work.cache_clear()
    monkeypatch.setattr(quantization, "quantize_dynamic", wrong_kernels)
    try:
        assert quantize._kernels_work() is False  # the self-check sees the wrong outputs
        with pytest.raises(ValueError, match="int8 LM weights need a CPU"):
            EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu", lm_int8=True)
    finally:
        quantize._kernels_work.cache_clear()
