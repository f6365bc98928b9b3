"""Explanations decoded through ONNX Runtime (emosem.inference.fast_lm): the exported step against
the model, greedy tokens against Hugging Face generate (tiny Llama; SmolLM2 in a slow test), the
predictor's choice of runtime and its clean fallbacks."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from emosem.inference import fast_lm  # noqa: E402
from emosem.inference.fast_lm import FastDecoder, LlamaStep, fast_decoder  # noqa: E402

# Tolerance of the step's logits against the model's (float32, different operation order).
LOGIT_ATOL = 1e-4


def _llama(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def _batch(model, n: int = 7, pad: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A left-padded batch of two rows of token embeddings [2, n, D] and its mask [2, n]."""
    table = model.get_input_embeddings().weight.detach()
    ids = (torch.arange(2 * n).view(2, n) * 31 + 5) % table.shape[0]
    embeds = table[ids].clone()
    attn = torch.ones(2, n, dtype=torch.long)
    attn[1, :pad] = 0
    embeds[1, :pad] = table[0]
    return embeds, attn


def _hf_greedy(model, embeds, attn, n, pad_token_id=0, **kw):
    with torch.no_grad():
        return model.generate(inputs_embeds=embeds, attention_mask=attn, max_new_tokens=n, do_sample=False,
                              num_beams=1, temperature=None, top_p=None, top_k=None, pad_token_id=pad_token_id,
                              **kw)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOSEM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_step_matches_the_model_with_left_padding_and_a_cache(tiny_llama_dir):
    model = _llama(tiny_llama_dir)
    embeds, attn = _batch(model)
    step = LlamaStep(model).eval()
    with torch.no_grad():
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        want = model(inputs_embeds=embeds, attention_mask=attn, position_ids=pos).logits
        kv, hd = step.kv, step.head_dim
        empty = [torch.zeros(2, kv, 0, hd) for _ in range(2 * len(step.layers))]
        got, *present = step(embeds, attn, pos, *empty)
        assert (got - want[:, -1]).abs().max() < LOGIT_ATOL
        # the first 5 positions, then 2 more through the cache: the same last logits
        _, *cache = step(embeds[:, :5], attn[:, :5], pos[:, :5], *empty)
        got2, *_ = step(embeds[:, 5:], attn, pos[:, 5:], *cache)
        assert (got2 - want[:, -1]).abs().max() < LOGIT_ATOL
    assert present[0].shape == (2, kv, 7, hd)


def test_ort_greedy_tokens_equal_generate_with_processors(tiny_llama_dir, cache):
    """The same tokens as generate, every one, with min_new_tokens and a logits processor that
    bans tokens (as the grounding ban does), on a left-padded batch; the graph is exported once."""
    from transformers import LogitsProcessorList, NoBadWordsLogitsProcessor

    model = _llama(tiny_llama_dir)
    decoder, problem = fast_decoder(model, "ort")
    assert problem is None and decoder.path.is_file() and decoder.path.is_relative_to(tiny_llama_dir)
    embeds, attn = _batch(model)
    free = _hf_greedy(model, embeds, attn, 12, eos_token_id=None)
    banned = sorted(set(free[:, :3].flatten().tolist()))  # the tokens it would write first
    proc = LogitsProcessorList([NoBadWordsLogitsProcessor([[t] for t in banned], eos_token_id=2)])
    want = _hf_greedy(model, embeds, attn, 12, eos_token_id=2, min_new_tokens=4, logits_processor=proc)
    got = decoder.generate(embeds, attn, 12, 2, 0, proc, min_new_tokens=4)
    assert got.tolist() == want.tolist()
    assert not set(got.flatten().tolist()) & set(banned)
    assert decoder.generate(embeds, attn, 12, -1, 0).tolist() == free.tolist()
    mtime = decoder.path.stat().st_mtime_ns
    again, _ = fast_decoder(model, "ort")
    assert again.path == decoder.path and decoder.path.stat().st_mtime_ns == mtime  # reused, not re-exported
    assert json.loads(decoder.path.with_suffix(".check.json").read_text())["problem"] is None
    assert again.generate(embeds, attn, 12, -1, 0).tolist() == free.tolist()  # from the optimized copy


def test_an_export_removes_graph_folders_of_earlier_formats(tiny_llama_dir, cache):
    """Exporting a graph removes the sibling folders an earlier FORMAT wrote (never opened again),
    and keeps the current format's, folders it cannot read and other files."""
    model = _llama(tiny_llama_dir)
    parent = cache / "graphs"
    old, other, current = parent / "old", parent / "notes", parent / "current"
    for folder, fmt in ((old, fast_lm.FORMAT - 1), (current, fast_lm.FORMAT)):
        folder.mkdir(parents=True)
        (folder / "source.json").write_text(json.dumps({"format": fmt}))
        (folder / "step.onnx").write_bytes(b"x")
    other.mkdir()
    (other / "source.json").write_text("[1, 2]")
    fast_lm.export_once(model, parent / "new", "the tiny LM")
    assert sorted(p.name for p in parent.iterdir()) == ["current", "new", "notes"]


def test_sessions_open_from_an_optimized_copy_that_computes_the_same_numbers(tiny_llama_dir, cache, monkeypatch):
    """The first session of a graph writes its optimized copy, its weights in a file beside it
    (not inside the graph: sessions map them), where that copy's outputs equal the session's bit
    for bit, and removes an earlier kind of copy; later sessions open the copy (same outputs); a
    damaged copy is replaced (with new weights, the old file removed), and a copy that computes
    other numbers is not kept (nor its weights)."""
    import onnx

    model = _llama(tiny_llama_dir)
    path = fast_lm.export_step(model, cache / "step" / "step.onnx")
    copy = fast_lm.optimized_copy(path)
    stale = path.with_name("step.optimized-0.0.onnx")  # an earlier kind, weights inside
    stale.write_bytes(b"old")
    first = fast_lm.open_session(path, 1)
    assert copy.is_file() and not stale.exists()

    def weight_files() -> list[str]:
        return sorted(p.name for p in path.parent.glob(f"{copy.stem}.*.data"))

    kept = weight_files()
    assert len(kept) == 1
    graph = onnx.load(str(copy), load_external_data=False)
    big = [t for t in graph.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert big and {e.value for t in big for e in t.external_data if e.key == "location"} == set(kept)
    feeds = fast_lm._probe_feeds(first)
    want = first.run(None, feeds)
    for damaged in (False, True):
        if damaged:  # optimized again and replaced
            copy.write_bytes(b"not a graph")
        got = fast_lm.open_session(path, 1).run(None, feeds)
        assert all(np.array_equal(a, b) for a, b in zip(want, got))
    assert copy.stat().st_size > 1000 and len(weight_files()) == 1 and weight_files() != kept
    kept = weight_files()
    copy.unlink()
    monkeypatch.setattr(fast_lm.np, "array_equal", lambda a, b: False)
    fast_lm.open_session(path, 1)
    assert not copy.exists() and not list(copy.parent.glob(".*.tmp")) and weight_files() == kept


def test_sessions_stop_their_threads_spinning_when_a_run_returns(tiny_llama_dir, cache):
    """Every session the fast path opens (fresh, from its optimized copy, or writing it) asks ONNX
    Runtime to park its pool threads when Run() returns, so that torch's work right after gets
    the cores (docs/results/issue24_spinning_stop_ab.txt); and it still computes."""
    import onnxruntime as ort

    levels = ort.GraphOptimizationLevel
    for level in (levels.ORT_DISABLE_ALL, levels.ORT_ENABLE_EXTENDED):
        so = fast_lm._session_options(1, level)
        assert so.get_session_config_entry("session.force_spinning_stop") == "1"
    model = _llama(tiny_llama_dir)
    path = fast_lm.export_step(model, cache / "step" / "step.onnx")
    for _ in range(2):  # writes the optimized copy, then opens it
        session = fast_lm.open_session(path, 1)
        assert session.get_session_options().get_session_config_entry("session.force_spinning_stop") == "1"
        assert all(np.isfinite(o).all() for o in session.run(None, fast_lm._probe_feeds(session)))


def _snap_to_q41(w: torch.Tensor) -> torch.Tensor:
    """llama.cpp's Q4_1 round trip of a weight [out, in] along blocks of 32 inputs: d = range / 15
    and m = min as float16, q = round((w - m) / d) in 0..15, back as d * q + m (float32)."""
    v = w.detach().float().reshape(w.shape[0], -1, 32)
    lo, hi = v.amin(-1, keepdim=True), v.amax(-1, keepdim=True)
    d = ((hi - lo) / 15).half().float()
    m = lo.half().float()
    q = ((v - m) / d).round().clamp(0, 15)
    return (d * q + m).reshape(w.shape)


def _snap_to_q80(w: torch.Tensor) -> torch.Tensor:
    """llama.cpp's Q8_0 round trip along blocks of 32 inputs: d = max |w| / 127 (float16),
    q = round(w / d), back as d * q."""
    v = w.detach().float().reshape(w.shape[0], -1, 32)
    d = v.abs().amax(-1, keepdim=True) / 127
    return (d.half().float() * (v / d).round()).reshape(w.shape)


def test_q8_codes_recover_a_q80_weight_and_split_into_two_exact_4bit_parts():
    from emosem.inference.fast_lm import _grid_parts, q8_codes

    w = _snap_to_q80(torch.randn(40, 64) * 0.05)
    codes = q8_codes(w.T.contiguous().numpy())
    assert codes is not None
    q, d = codes
    assert np.array_equal((d[..., None] * q).reshape(40, 64), w.numpy())
    parts, offset = _grid_parts(w.T.contiguous().numpy(), 32)
    assert len(parts) == 2 and all(int(c.max()) <= 15 for c, _ in parts)
    rebuilt = sum(scale[..., None] * (c.astype(np.float32) - 8) for c, scale in parts) + offset[..., None]
    assert np.array_equal(rebuilt.reshape(40, 64), w.numpy())  # the same weights, bit for bit
    assert q8_codes((torch.randn(40, 64) * 0.05).T.contiguous().numpy()) is None


def test_grid_codes_recover_a_q41_weight_exactly_and_refuse_anything_off_it():
    from emosem.inference.fast_lm import grid_codes

    w = _snap_to_q41(torch.randn(48, 96) * 0.05)  # [out, in]: an ONNX MatMul holds its transpose
    codes = grid_codes(w.T.contiguous().numpy())
    assert codes is not None
    q, d, m = codes
    assert q.shape == (48, 3, 32) and q.dtype == np.uint8 and int(q.max()) <= 15 and d.shape == m.shape == (48, 3)
    assert np.array_equal((d[..., None] * q + m[..., None]).reshape(48, 96), w.numpy())  # bit for bit
    off = w.clone()
    off[5, 7] = torch.nextafter(off[5, 7], torch.tensor(1.0))  # one value one ulp off the grid
    assert grid_codes(off.T.contiguous().numpy()) is None
    assert grid_codes((torch.randn(48, 96) * 0.05).T.contiguous().numpy()) is None  # a float weight
    assert grid_codes(np.zeros((40, 8), np.float32)) is None  # inputs not a multiple of the block


def test_weights_on_a_4bit_grid_run_as_exact_4bit_codes(tiny_llama_dir, cache):
    """A tiny Llama whose linear layers are on a Q4_1 grid (as the de-quantized SmolLM2 GGUF is):
    the exported step stores those as MatMulNBits codes (the product holding the one moved off
    its grid, as a merged LoRA moves it, stays float32), its logits match the model's, and greedy
    decoding gives generate's tokens."""
    import onnx

    model = _llama(tiny_llama_dir)
    linears = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and name != "lm_head"]
    with torch.no_grad():
        for lin in linears:
            lin.weight.copy_(_snap_to_q41(lin.weight))
        linears[0].weight.add_(1e-3)  # one projection moved off its grid, as a merged LoRA moves it
        model.lm_head.weight.copy_(_snap_to_q80(model.lm_head.weight))  # the GGUF's Q8_0 embedding
    decoder, problem = fast_decoder(model, "ort")
    assert problem is None
    ops = [n.op_type for n in onnx.load(str(decoder.path)).graph.node]
    # per layer four products ([q; k; v], o, [gate; up], down); layer 0's [q; k; v] is off the
    # grid; the Q8_0 head is two 4-bit parts
    assert ops.count("MatMulNBits") == 4 * model.config.num_hidden_layers - 1 + 2
    embeds, attn = _batch(model)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        want = model(inputs_embeds=embeds, attention_mask=attn, position_ids=pos).logits[:, -1]
    feeds = {"x": embeds.numpy(), "attn": attn.numpy(), "pos": pos.numpy()}
    for i in range(decoder.layers):
        feeds[f"past_k_{i}"] = feeds[f"past_v_{i}"] = np.zeros((2, decoder.kv_heads, 0, decoder.head_dim), np.float32)
    got = decoder.session.run(None, feeds)[0]
    np.testing.assert_allclose(got, want.numpy(), atol=LOGIT_ATOL, rtol=0)
    assert decoder.generate(embeds, attn, 12, -1, 0).tolist() == _hf_greedy(model, embeds, attn, 12).tolist()


def test_a_lora_adapter_stays_factored_so_its_base_weights_keep_their_4bit_codes(tiny_llama_dir, cache):
    """A peft LoRA (trained: non-zero factors) on a tiny Llama whose base is on a Q4_1 grid: the
    step computes x·W + (x·A)·B as peft does unmerged, so every base product is stored as 4-bit
    codes (none is moved off its grid by a merge); logits within the tolerance of the peft model,
    greedy tokens equal to its generate."""
    import onnx
    from peft import LoraConfig, get_peft_model

    model = _llama(tiny_llama_dir)
    with torch.no_grad():
        for name, lin in model.named_modules():
            if isinstance(lin, torch.nn.Linear) and name != "lm_head":
                lin.weight.copy_(_snap_to_q41(lin.weight))
        model.lm_head.weight.copy_(_snap_to_q80(model.lm_head.weight))
    torch.manual_seed(0)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj"]  # the MLP too (lora_target_modules)
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # peft starts B at zero; a trained adapter is not
    lora.eval()
    assert fast_lm.supported(lora) is None
    decoder, problem = fast_decoder(lora, "ort")
    assert problem is None
    ops = [n.op_type for n in onnx.load(str(decoder.path)).graph.node]
    assert ops.count("MatMulNBits") == 4 * model.config.num_hidden_layers + 2
    embeds, attn = _batch(lora)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    assert decoder.generate(embeds, attn, 12, -1, 0).tolist() == _hf_greedy(lora, embeds, attn, 12).tolist()
    with torch.no_grad():
        want = lora(inputs_embeds=embeds, attention_mask=attn, position_ids=pos).logits[:, -1]
        merged_gap = (want - lora.merge_and_unload()(inputs_embeds=embeds, attention_mask=attn,
                                                       position_ids=pos).logits[:, -1]).abs().max()
    feeds = {"x": embeds.numpy(), "attn": attn.numpy(), "pos": pos.numpy()}
    for i in range(decoder.layers):
        feeds[f"past_k_{i}"] = feeds[f"past_v_{i}"] = np.zeros((2, decoder.kv_heads, 0, decoder.head_dim), np.float32)
    np.testing.assert_allclose(decoder.session.run(None, feeds)[0], want.numpy(), atol=LOGIT_ATOL, rtol=0)
    assert float(merged_gap) <= LOGIT_ATOL  # the merged model computes the same function


def test_int8_graph_is_block_quantized(tiny_llama_dir, cache):
    import onnx

    model = _llama(tiny_llama_dir)
    decoder, problem = fast_decoder(model, "ort-int8")
    assert problem is None and decoder.runtime == "ort-int8" and decoder.path.name == "step_int8_b32.onnx"
    ops = {n.op_type for n in onnx.load(str(decoder.path)).graph.node}
    assert "MatMulNBits" in ops
    embeds, attn = _batch(model)
    assert decoder.generate(embeds, attn, 5, -1, 0).shape == (2, 5)


def test_predictor_decodes_the_same_explanations_through_ort(tiny_checkpoint, sample_paintings):
    from emosem.inference.predictor import EmoSEMPredictor

    _forget_graph(tiny_checkpoint)  # the first load of these weights: export, check, release
    fast = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")
    slow = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu", lm_runtime="torch")
    assert (fast.lm_runtime, slow.lm_runtime) == ("ort", "torch")
    assert fast.model.lm.fast_decoder is not None and slow.model.lm.fast_decoder is None
    # beside ONNX Runtime's copy of the weights no packed one (beams run on plain linears), and
    # torch's own freed but for the input embeddings (the head is tied to them)
    assert fast.packed_layers == 0 and slow.packed_layers == 2 * 7 + 1
    lm = fast.model.lm.model
    assert fast.model.lm.released and fast.released_mb > 0 and slow.released_mb == 0
    assert sum(p.numel() for p in lm.parameters()) == lm.get_input_embeddings().weight.numel()
    emotions = ["awe", "fear", "melancholy"]
    a = fast(sample_paintings[0], emotions, max_new_tokens=8, in_domain=None)
    b = slow(sample_paintings[0], emotions, max_new_tokens=8, in_domain=None)
    assert [r.explanation for r in a] == [r.explanation for r in b]
    assert any(r.explanation for r in a)
    # beams stay on torch: the same text either way
    a = fast(sample_paintings[0], ["awe"], max_new_tokens=6, num_beams=2, in_domain=None)
    b = slow(sample_paintings[0], ["awe"], max_new_tokens=6, num_beams=2, in_domain=None)
    assert a[0].explanation == b[0].explanation
    assert not fast.model.lm.released  # the beams loaded torch's weights back: the merged LM's
    plain = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu", lm_runtime="torch", pack_weights=False)
    want = plain.model.lm.model.state_dict()
    got = lm.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def _forget_graph(checkpoint) -> None:
    """Remove the exported step of ``checkpoint``'s merged LM (kept beside its base LM)."""
    import shutil

    from emosem.modeling.emosem import EmoSEM
    from emosem.modeling.lm_weights import resolve_lm_path

    lm_dir = resolve_lm_path(EmoSEM.read_config(checkpoint)["model"]["lm"])
    shutil.rmtree(fast_lm.cache_folder(lm_dir, fast_lm.checkpoint_key(checkpoint / "lm_adapter", lm_dir)),
                  ignore_errors=True)


def test_a_checked_graph_explains_without_building_the_torch_lm(tiny_checkpoint, sample_paintings):
    """A later load of a checkpoint whose graph an earlier load exported and checked builds no
    torch LM: the same greedy explanations (word grounding on), the torch LM built on the first
    beam call only (then the same beams), and in a new process transformers, peft and the LM's
    weights are never loaded."""
    import subprocess
    import sys

    from emosem.inference.predictor import EmoSEMPredictor

    _forget_graph(tiny_checkpoint)
    first = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")  # exports and checks
    assert first.model.lm.model is not None
    later = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")
    assert later.lm_runtime == "ort" and later.model.lm.model is None and later.model.lm.released
    assert later.model.lm.fast_decoder.path == first.model.lm.fast_decoder.path
    emotions = ["awe", "fear", "melancholy"]
    a = first(sample_paintings[0], emotions, max_new_tokens=8, in_domain=None)
    b = later(sample_paintings[0], emotions, max_new_tokens=8, in_domain=None)
    texts = [r.explanation for r in a]
    assert [r.explanation for r in b] == texts and any(texts)
    a = first(sample_paintings[0], ["awe"], max_new_tokens=6, num_beams=2, in_domain=None)
    b = later(sample_paintings[0], ["awe"], max_new_tokens=6, num_beams=2, in_domain=None)
    assert a[0].explanation == b[0].explanation and later.model.lm.model is not None

    code = ("import json, sys; from emosem.inference.predictor import EmoSEMPredictor; "
            f"p = EmoSEMPredictor.from_pretrained({str(tiny_checkpoint)!r}, device='cpu'); "
            f"r = p({str(sample_paintings[0])!r}, {emotions!r}, max_new_tokens=8, in_domain=None); "
            "print(json.dumps([p.lm_runtime, [m for m in ('transformers', 'peft') if m in sys.modules], "
            "p.model.lm.model is None, [x.explanation for x in r]]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runtime, imported, weightless, got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (runtime, imported, weightless) == ("ort", [], True)
    assert got == texts


def test_a_failed_or_missing_check_record_loads_the_lm_as_before(tiny_checkpoint):
    """No record of a passed self-check (none, one for another ONNX Runtime, or a failed one):
    the LM is built, and the check decides as it always did."""
    from emosem.inference.predictor import EmoSEMPredictor

    _forget_graph(tiny_checkpoint)
    EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")  # export + check
    graph = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu").model.lm.fast_decoder.path
    record = graph.with_suffix(".check.json")
    saved = json.loads(record.read_text())
    for bad in ({**saved, "onnxruntime": "0.0"}, {**saved, "problem": "differs (test)"}, None):
        record.unlink(missing_ok=True)
        if bad is not None:
            record.write_text(json.dumps(bad))
        p = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")
        assert p.model.lm.fast_decoder is None or p.model.lm.model is not None
        if bad is not None and bad["problem"]:  # the recorded failure stands: torch decodes
            assert p.lm_runtime == "torch"
        else:  # checked again (and recorded): ONNX Runtime decodes
            assert p.lm_runtime == "ort" and json.loads(record.read_text())["problem"] is None


def test_plain_tokenizer_is_the_hugging_face_tokenizer(tiny_llama_dir, smollm2_dir):
    """:class:`PlainTokenizer` (tokenizers alone) gives AutoTokenizer's ids, texts of every id
    and special tokens, on the tiny Llama's tokenizer and on SmolLM2's."""
    from transformers import AutoTokenizer

    from emosem.modeling.language_model import PlainTokenizer

    texts = ["The region: in the upper left, small (4% of the canvas); dark blue. Explain why",
             " I feel awe", "naïve café — 12:30, \"quoted\"", "", "  two  spaces\nline"]
    for folder in (tiny_llama_dir, smollm2_dir):
        hf, ours = AutoTokenizer.from_pretrained(folder), PlainTokenizer(folder)
        if hf.pad_token_id is None:
            hf.pad_token = hf.eos_token  # as load_causal_lm does
        assert ours(texts)["input_ids"] == hf(texts, add_special_tokens=False)["input_ids"]
        assert ours.encode(texts[0]) == hf.encode(texts[0], add_special_tokens=False)
        assert len(ours) == len(hf)
        assert (ours.pad_token_id, ours.eos_token_id) == (hf.pad_token_id, hf.eos_token_id)
        assert set(ours.all_special_ids) == set(hf.all_special_ids)
        every = [[i] for i in range(len(hf))]
        for skip in (False, True):
            assert ours.batch_decode(every, skip_special_tokens=skip) == \
                hf.batch_decode(every, skip_special_tokens=skip)
        ids = torch.tensor(hf(texts[:2], add_special_tokens=False, padding=True)["input_ids"])
        assert ours.batch_decode(ids, skip_special_tokens=True) == hf.batch_decode(ids, skip_special_tokens=True)


def test_fallbacks_are_clean(tiny_llama_dir, tiny_gpt2_dir, cache, monkeypatch, caplog):
    """No onnxruntime, an unsupported model, a failing export or a failing self-check: no decoder
    and the reason; the predictor then decodes with torch (a warning when ort was asked for)."""
    model = _llama(tiny_llama_dir)
    assert fast_decoder(_llama(tiny_gpt2_dir), "ort") == (None, fast_lm.supported(_llama(tiny_gpt2_dir)))
    assert "gpt2" in fast_lm.supported(_llama(tiny_gpt2_dir))

    with monkeypatch.context() as mp:
        import sys

        mp.setitem(sys.modules, "onnxruntime", None)  # import fails
        decoder, why = fast_decoder(model, "ort")
        assert decoder is None and "onnxruntime is not installed" in why

    with monkeypatch.context() as mp:
        mp.setattr(fast_lm, "export_step", lambda *a: (_ for _ in ()).throw(RuntimeError("exporter broke")))
        mp.setattr(fast_lm, "cache_folder", lambda lm_dir, key: cache / "other" / key)
        decoder, why = fast_decoder(model, "ort")
        assert decoder is None and "RuntimeError: exporter broke" in why

    with monkeypatch.context() as mp:
        mp.setattr(FastDecoder, "checked", lambda self, m: "greedy tokens differ from torch (test)")
        decoder, why = fast_decoder(model, "ort")
        assert decoder is None and "self-check failed" in why


def test_predictor_falls_back_to_torch(tiny_checkpoint, monkeypatch, caplog):
    import sys

    from emosem.inference.predictor import EmoSEMPredictor

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with caplog.at_level(logging.INFO, logger="emosem.inference.predictor"):
        auto = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")
        asked = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu", lm_runtime="ort")
    assert auto.lm_runtime == asked.lm_runtime == "torch"
    levels = [r.levelname for r in caplog.records if "explanations decode with torch" in r.getMessage()]
    assert levels == ["INFO", "WARNING"]
    assert "onnxruntime is not installed" in caplog.records[-1].getMessage()
    with pytest.raises(ValueError, match="lm_runtime must be one of"):
        EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu", lm_runtime="tensorrt")


@pytest.mark.slow
def test_smollm2_ort_greedy_equals_generate(cache):
    """SmolLM2-135M-Instruct: a chat prompt, 20 greedy tokens, identical to generate, with its
    linear weights (the de-quantized Q4_1 GGUF) run as exact 4-bit codes."""
    from transformers import AutoTokenizer

    from emosem.modeling.errors import LMWeightsNotFoundError
    from emosem.modeling.lm_weights.resolve import resolve_lm_path
    from emosem.paths import DEFAULT_LM_NAME

    try:
        path = resolve_lm_path(DEFAULT_LM_NAME)
    except LMWeightsNotFoundError as e:
        pytest.skip(f"SmolLM2 is not prepared (make weights): {e}")
    if not os.path.isdir(path):
        pytest.skip("SmolLM2 is not a local folder")
    model = _llama(path)
    tok = AutoTokenizer.from_pretrained(path)
    prompts = ["Why does a stormy sea at night make a viewer afraid?",
               "Describe a bright yellow wheat field under a blue sky in one sentence."]
    enc = tok([tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
               for p in prompts], return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    embeds = model.get_input_embeddings()(enc.input_ids).detach()
    decoder, problem = fast_decoder(model, "ort")
    assert problem is None
    import onnx

    ops = [n.op_type for n in onnx.load(str(decoder.path)).graph.node]
    # per layer [q; k; v], o, [gate; up], down (Q4_1); the tied head (Q8_0) as two 4-bit parts
    assert ops.count("MatMulNBits") == 4 * model.config.num_hidden_layers + 2
    want = _hf_greedy(model, embeds, enc.attention_mask, 20, tok.pad_token_id, eos_token_id=tok.eos_token_id)
    got = decoder.generate(embeds, enc.attention_mask, 20, tok.eos_token_id, tok.pad_token_id)
    assert got.tolist() == want.tolist()


# ------------------------------------------------------------------ the emotion prior's scores
PRIOR_CONTEXTS = ["A painting.", "A painting in dark blue and black. It is dark and muted, with cool tones.",
                  "Picture a bright, vivid canvas dominated by yellow and orange, in warm hues."]


def test_prior_scores_in_onnx_runtime_equal_torch_and_need_no_transformers(tiny_llama_dir, cache):
    """The knowledge prior's adjective scores through the base LM's exported step equal torch's
    within the check's tolerance (multi-token adjectives included: the tiny tokenizer splits
    them); the first scorer exports and checks once, a new process then scores without
    importing transformers and gets the same numbers."""
    import subprocess
    import sys

    from emosem.inference.lm_prior import CHECK_TOLERANCE, LMPrior

    torch_side = LMPrior(tiny_llama_dir, runtime="torch")
    want = torch_side.word_scores(PRIOR_CONTEXTS)
    assert torch_side.scoring_runtime == "torch"
    fast = LMPrior(tiny_llama_dir, runtime="auto")
    assert fast.scoring_runtime == "ort"
    tok = fast._fast[1]
    assert max(len(tok.encode(w, add_special_tokens=False).ids) for w in fast.words) > 1
    got = fast.word_scores(PRIOR_CONTEXTS)
    assert got.shape == want.shape == (3, len(fast.words))
    assert np.abs(got - want).max() <= 1e-4 <= CHECK_TOLERANCE
    graph = fast._fast[0].path
    record = json.loads(graph.with_name("prior.check.json").read_text())
    assert record["problem"] is None and graph.is_relative_to(tiny_llama_dir)

    code = (f"import json, sys; from emosem.inference.lm_prior import LMPrior; "
            f"p = LMPrior({str(tiny_llama_dir)!r}); s = p.word_scores({PRIOR_CONTEXTS!r}); "
            f"print(json.dumps([p.scoring_runtime, 'transformers' in sys.modules, s.tolist()]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runtime, imported, scores = json.loads(proc.stdout.strip().splitlines()[-1])
    assert runtime == "ort" and not imported
    assert np.array_equal(np.array(scores), got)
    graph.with_name("prior.check.json").write_text("{")  # half written: checked again, no fallback
    assert LMPrior(tiny_llama_dir).scoring_runtime == "ort"
    assert json.loads(graph.with_name("prior.check.json").read_text())["problem"] is None


def test_prior_falls_back_to_torch_where_the_check_fails_or_onnxruntime_is_missing(
        tiny_llama_dir, cache, monkeypatch, caplog):
    import sys

    from emosem.inference import lm_prior

    want = lm_prior.LMPrior(tiny_llama_dir, runtime="torch").word_scores(PRIOR_CONTEXTS[:1])
    monkeypatch.setattr(lm_prior, "CHECK_TOLERANCE", -1.0)  # no difference passes: the check fails
    with caplog.at_level(logging.WARNING):
        failed = lm_prior.LMPrior(tiny_llama_dir, runtime="ort")
        assert failed.scoring_runtime == "torch"
    assert "self-check failed" in caplog.text
    assert np.array_equal(failed.word_scores(PRIOR_CONTEXTS[:1]), want)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    missing = lm_prior.LMPrior(tiny_llama_dir)
    assert missing.scoring_runtime == "torch"
    assert np.array_equal(missing.word_scores(PRIOR_CONTEXTS[:1]), want)
    with pytest.raises(ValueError):
        lm_prior.LMPrior(tiny_llama_dir, runtime="int8")


@pytest.mark.slow
def test_smollm2_prior_in_onnx_runtime_gives_torchs_scores(smollm2_dir, cache):
    """SmolLM2's adjective scores after a described painting (its three paraphrases): every one
    within 1e-3 nats of torch's (the check's tolerance), the adjectives in the same order."""
    from emosem.inference.lm_prior import Description, LMPrior

    texts = Description("dark blue, black and light grey", "dark", "muted", "cool").texts()
    fast = LMPrior(smollm2_dir, runtime="ort")
    assert fast.scoring_runtime == "ort"
    got, want = fast.word_scores(texts), LMPrior(smollm2_dir, runtime="torch").word_scores(texts)
    assert np.abs(got - want).max() <= 1e-3
    assert np.argsort(got.mean(0)).tolist() == np.argsort(want.mean(0)).tolist()
