"""oneDNN-prepacked linears for CPU inference: same function, same text, reversible, unsaveable."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emosem.inference.packed_linear import (
    PackedLinear,
    pack_linears,
    packing_supported,
    unpack_linears,
)

pytestmark = pytest.mark.skipif(not packing_supported("cpu"), reason="no oneDNN linear on this build")


def _linear(bias: bool, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(48, 80, bias=bias).requires_grad_(False)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 48), (9, 48), (300, 48), (9, 7, 48)])
def test_packed_linear_is_the_same_function(bias, shape):
    lin = _linear(bias)
    x = torch.randn(*shape)
    torch.testing.assert_close(PackedLinear(lin)(x), lin(x), atol=1e-5, rtol=1e-5)
    strided = torch.randn(9, 5, 48)[:, -1]  # the last position of each row, as generation slices it
    assert not strided.is_contiguous()
    torch.testing.assert_close(PackedLinear(lin)(strided), lin(strided), atol=1e-5, rtol=1e-5)


def test_support_check_is_about_cpu_float32():
    assert packing_supported("cpu")
    assert not packing_supported("cpu", torch.bfloat16)
    assert not packing_supported("cuda")


def test_pack_and_unpack_round_trip():
    class Wrapped(nn.Linear):  # a subclass (like a LoRA or quantised layer) is not touched
        pass

    net = nn.Sequential(_linear(True), nn.ReLU(), nn.Sequential(nn.Linear(80, 8), Wrapped(8, 4)))
    net.requires_grad_(False)
    x = torch.randn(5, 48)
    before, weights = net(x), [m.weight.clone() for m in net.modules() if type(m) is nn.Linear]
    assert pack_linears(net) == 2 and pack_linears(net) == 0
    assert isinstance(net[0], PackedLinear) and isinstance(net[2][1], Wrapped)
    torch.testing.assert_close(net(x), before, atol=1e-5, rtol=1e-5)
    assert "packed=oneDNN" in repr(net[0])
    with pytest.raises(RuntimeError, match="unpack_linears"):
        net.state_dict()
    assert unpack_linears(net) == 2
    after = [m.weight for m in net.modules() if type(m) is nn.Linear]
    assert all(torch.equal(a, b) for a, b in zip(after, weights))  # exact: no rounding either way
    assert set(net.state_dict()) == {"0.weight", "0.bias", "2.0.weight", "2.0.bias", "2.1.weight",
                                     "2.1.bias"}


def test_packed_language_model_generates_the_same_text(tiny_llama_dir):
    """A real (tiny random Llama) LM with a tied head: same logits, same greedy tokens."""
    from emosem.modeling.language_model import load_causal_lm

    model, tok = load_causal_lm(str(tiny_llama_dir))
    model.eval()
    ids = torch.tensor([tok("the stormy sea and the small boat")["input_ids"]] * 3)
    ids[1, :2] = tok.pad_token_id  # padded rows, as a batch of explanations has
    attn = (ids != tok.pad_token_id).long()
    kw = dict(attention_mask=attn, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    embedding = model.get_input_embeddings().weight.clone()
    with torch.no_grad():
        logits, text = model(ids, attention_mask=attn).logits, model.generate(ids, **kw)
        assert pack_linears(model) == 2 * 7 + 1  # q k v o gate up down per layer + the head
        torch.testing.assert_close(model(ids, attention_mask=attn).logits, logits, atol=1e-4,
                                   rtol=1e-4)
        assert torch.equal(model.generate(ids, **kw), text)
    assert torch.equal(model.get_input_embeddings().weight, embedding)  # the tied table stays


def test_predictor_packs_only_what_it_only_runs(tiny_checkpoint, sample_paintings):
    """A float32 predictor packs its LM by default; the results equal those of an unpacked one."""
    from emosem.inference.predictor import EmoSEMPredictor

    packed = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu", lm_runtime="torch")
    plain = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu", pack_weights=False,
                                            lm_runtime="torch")
    assert packed.packed_layers == 2 * 7 + 1 and plain.packed_layers == 0  # LoRA unloaded first
    assert not any(isinstance(m, PackedLinear) for m in packed.model.sam.modules())
    emotions = ["awe", "fear", "melancholy"]
    a = packed(sample_paintings[0], emotions, max_new_tokens=6)
    b = plain(sample_paintings[0], emotions, max_new_tokens=6)
    for ra, rb in zip(a, b):
        assert (ra.mask == rb.mask).all() and ra.explanation == rb.explanation
