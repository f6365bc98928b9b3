"""The explanation language model's greedy decoding through ONNX Runtime on CPU (issue 24, item 1).

Hugging Face ``generate`` pays Python overhead on every token of a 135 M-parameter model; the same
arithmetic as one ONNX graph per step runs faster in ONNX Runtime, token for token the same. The
step (:class:`LlamaStep`: inputs_embeds [B, T, D], attention mask [B, P+T], position ids [B, T]
and the key/value cache of P earlier positions → the last position's logits [B, V] and the new
cache) is written in plain torch from the model's own modules, exported once per model weights
(LoRA merged) and kept beside the converted base LM (``<LM>/onnx/<key>/``, else
``$EMOSEM_CACHE/onnx/<key>/``). Optionally its matrix products are stored as block-quantized int8
(``MatMulNBits``, block 32, int8 activations per block: ``accuracy_level`` 4), which quantizes
per block of 32, not per tensor (per-tensor int8 changed the first token of SmolLM2's answers).

**Exact 4-bit weights.** The converted SmolLM2 is the de-quantized Q4_1 GGUF
(:mod:`emosem.modeling.lm_weights.convert`): each of its linear weights, per output and block of
32 inputs, takes the values ``d·q + m`` (q in 0..15, d and m float16). As float32 the step reads
4 bytes per weight on every token; :func:`pack_grid_weights` finds the matrix products whose
constant weights lie on such a grid *exactly* (every value reproduced bit for bit) and stores them
as 4-bit codes (``MatMulNBits``, block 32, float32 arithmetic: ``accuracy_level`` 0) plus the
block offsets as a small float32 product with the input's block sums,
``y = Σ_b d_b Σ_{k∈b} (q_k − 8) x_k + Σ_b (m_b + 8 d_b) Σ_{k∈b} x_k``: the same weights and the
same arithmetic up to summation order, in about a fifth of the bytes. The GGUF's embedding (the
tied head) is Q8_0 (``d·q``, q in −127..127): its code splits exactly into two 4-bit parts,
q + 128 = 16·hi + lo. A weight on neither grid (the LoRA-merged attention projections) stays a
float32 ``MatMul``.

:class:`FastDecoder` runs greedy decoding with the caller's logits processors (the grounding ban,
``min_new_tokens``) as ``generate`` does, and is used only where it was checked: on load it
decodes a fixed input both ways and must give the same tokens (:meth:`FastDecoder.self_check`),
else the torch path stays. Beam search and sampling stay on torch.

Only Llama-architecture models (SmolLM2) with the default rotary embedding are supported;
:func:`supported` says why another is not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emosem.paths import user_cache

logger = logging.getLogger(__name__)

RUNTIMES = ("torch", "ort", "ort-int8")
FORMAT = 5  # bump when the exported graph changes
GRID_BLOCK = 32  # inputs per block of a Q4_1 weight grid (GGUF's QK4_1)


def _unwrapped(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft model (LoRA layers left in place), or ``model``."""
    return model.get_base_model() if hasattr(model, "peft_config") and hasattr(model, "get_base_model") else model


def _lora_parts(linear: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(weight [out, in], LoRA down [r, in], LoRA up × scaling [out, r]) of a linear layer: for a
    peft LoRA layer with one active plain adapter, not merged, its frozen base weight and the
    adapter's two factors (the layer computes x·Wᵀ + (x·Aᵀ)·Bᵀ); else the weight and None, None."""
    base = getattr(linear, "base_layer", None)
    if base is None:
        return linear.weight, None, None
    name = _plain_adapter(linear)
    if name is None:
        raise NotImplementedError("a LoRA layer that is merged, disabled, has several active "
                                  "adapters or a LoRA variant")
    return base.weight, linear.lora_A[name].weight, linear.lora_B[name].weight * linear.scaling[name]


def _plain_adapter(linear: nn.Module) -> str | None:
    """The one active plain LoRA adapter of an unmerged peft layer, or None."""
    active = list(getattr(linear, "active_adapters", []) or [])
    if len(active) != 1 or getattr(linear, "merged", False) or getattr(linear, "disable_adapters", False):
        return None
    name = active[0]
    if name not in linear.lora_A or getattr(linear, "lora_variant", {}).get(name) is not None:
        return None
    if getattr(linear, "use_dora", {}).get(name, False) or getattr(linear, "lora_bias", {}).get(name, False):
        return None
    return name


def supported(model: nn.Module) -> str | None:
    """None when :class:`LlamaStep` reproduces ``model`` (a ``LlamaForCausalLM``, merged or with
    unmerged plain LoRA adapters through peft); else why not."""
    wrapped = hasattr(model, "peft_config")
    model = _unwrapped(model)
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "llama":
        return f"model type {getattr(cfg, 'model_type', None)!r} (only llama is exported)"
    rope = getattr(cfg, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        return f"rope type {rope.get('rope_type')!r}"
    if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
        return "biased attention or MLP"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"activation {cfg.hidden_act!r}"
    if type(model).__name__ != "LlamaForCausalLM":
        return f"{type(model).__name__} (a LlamaForCausalLM is exported)"
    for name, module in model.named_modules():
        if hasattr(module, "base_layer") and _plain_adapter(module) is None:
            return f"{name}: a LoRA layer other than one unmerged plain adapter"
    if not wrapped and any(hasattr(m, "base_layer") for m in model.modules()):
        return "LoRA layers outside a peft model"
    return None


class LlamaStep(nn.Module):
    """One decoding step of a ``LlamaForCausalLM`` on embeddings with an explicit cache.

    forward(x [B, T, D], attn [B, P+T] int64 (1: attend), pos [B, T] int64, *past (2L tensors
    [B, KV, P, HD], keys and values per layer)) → (logits [B, V] of the last position, *present
    (2L tensors [B, KV, P+T, HD])).

    A peft model's LoRA adapters stay factored, as peft computes them unmerged: each adapted
    product is x·W + (x·A)·B with the frozen base W, so W keeps the base LM's 4-bit grid and is
    stored as its codes (:func:`pack_grid_weights`), the rank-r factors as float32.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        model = _unwrapped(model)
        cfg = model.config
        self.layers = model.model.layers
        # The products that share an input as one product each ([q; k; v] and [gate; up] stacked
        # along the outputs, stored [in, out]): fewer, larger nodes in the graph.
        for i, layer in enumerate(self.layers):
            a, m = layer.self_attn, layer.mlp
            self._product(f"qkv_{i}", [a.q_proj, a.k_proj, a.v_proj])
            self._product(f"o_{i}", [a.o_proj])
            self._product(f"gate_up_{i}", [m.gate_proj, m.up_proj])
            self._product(f"down_{i}", [m.down_proj])
        self.norm = model.model.norm
        self.head = model.lm_head
        self.heads, self.kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        rope = getattr(cfg, "rope_parameters", None) or {}
        theta = rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
        hd = self.head_dim
        self.register_buffer("inv_freq", 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)),
                             persistent=False)
        half = hd // 2
        turn = torch.zeros(hd, hd)  # t @ turn = cat(-t[half:], t[:half])
        turn[torch.arange(half, hd), torch.arange(half)] = -1.0
        turn[torch.arange(half), torch.arange(half, hd)] = 1.0
        self.register_buffer("half_turn", turn, persistent=False)

    def _product(self, name: str, linears: list[nn.Module]) -> None:
        """Buffers of the product of ``linears`` (one input, outputs stacked): ``name`` [in, out]
        and, where any is LoRA-adapted, ``name_down`` [in, Σr] and ``name_up`` [Σr, out] (the
        up factors block-diagonal, scaling folded in)."""
        parts = [_lora_parts(lin) for lin in linears]
        weight = torch.cat([w for w, _, _ in parts]).detach().T.contiguous()
        self.register_buffer(name, weight, persistent=False)
        if all(down is None for _, down, _ in parts):
            return
        downs = [d if d is not None else w.new_zeros(0, w.shape[1]) for w, d, _ in parts]
        ups = [u if u is not None else w.new_zeros(w.shape[0], 0) for w, _, u in parts]
        self.register_buffer(f"{name}_down", torch.cat(downs).detach().T.contiguous(), persistent=False)
        self.register_buffer(f"{name}_up", torch.block_diag(*ups).detach().T.contiguous(), persistent=False)

    def _apply(self, name: str, h: torch.Tensor) -> torch.Tensor:
        """h [..., in] through the product ``name`` (and its LoRA factors) → [..., out]."""
        out = h @ getattr(self, name)
        down = getattr(self, f"{name}_down", None)
        return out if down is None else out + (h @ down) @ getattr(self, f"{name}_up")

    def _rotate(self, t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotary embedding: t·cos + rotate_half(t)·sin, rotate_half as one product with the
        signed permutation :attr:`half_turn` (exact: one ±1 per column)."""
        return t * cos + (t @ self.half_turn) * sin

    def forward(self, x: torch.Tensor, attn: torch.Tensor, pos: torch.Tensor, *past: torch.Tensor):
        b, t, _ = x.shape
        p = past[0].shape[2]
        freqs = pos.float()[..., None] * self.inv_freq  # [B, T, HD/2]
        emb = torch.cat([freqs, freqs], -1)[:, None]  # [B, 1, T, HD]
        cos, sin = emb.cos(), emb.sin()
        key_pos = torch.arange(p + t, device=x.device)[None, :]
        query_pos = torch.arange(t, device=x.device)[:, None] + p
        allowed = (key_pos <= query_pos)[None, None] & (attn[:, None, None, :] > 0)  # [B, 1, T, P+T]
        bias = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)
        hd, rep = self.head_dim, self.heads // self.kv
        # Grouped-query attention without repeating the cache: the `rep` query heads that share a
        # key/value head are stacked along the query axis ([B, KV, rep·T, HD]).
        bias = bias.repeat(1, 1, rep, 1)  # [B, 1, rep·T, P+T]
        present = []
        for i, layer in enumerate(self.layers):
            h = layer.input_layernorm(x)
            q, k, v = self._apply(f"qkv_{i}", h).split([self.heads * hd, self.kv * hd, self.kv * hd], -1)
            q = q.reshape(b, t, self.kv, rep, hd).permute(0, 2, 3, 1, 4)  # [B, KV, rep, T, HD]
            k = k.reshape(b, t, self.kv, hd).transpose(1, 2)
            v = v.reshape(b, t, self.kv, hd).transpose(1, 2)
            q = self._rotate(q, cos[:, None], sin[:, None]).reshape(b, self.kv, rep * t, hd)
            k = self._rotate(k, cos, sin)
            k = torch.cat([past[2 * i], k], 2)
            v = torch.cat([past[2 * i + 1], v], 2)
            present += [k, v]
            scores = q @ k.transpose(-1, -2) * hd ** -0.5 + bias  # [B, KV, rep·T, P+T]
            o = (scores.softmax(-1) @ v).view(b, self.kv, rep, t, hd).permute(0, 3, 1, 2, 4).reshape(b, t, self.heads * hd)
            x = x + self._apply(f"o_{i}", o)
            h = layer.post_attention_layernorm(x)
            gate, up = self._apply(f"gate_up_{i}", h).chunk(2, -1)
            x = x + self._apply(f"down_{i}", F.silu(gate) * up)
        return (self.head(self.norm(x[:, -1])), *present)


def weights_key(model: nn.Module) -> str:
    """A key of the model's weights as they are now (a LoRA merged in or its factors): SHA-1 over every
    parameter's name, shape and bytes, and :data:`FORMAT`."""
    h = hashlib.sha1(f"emosem-fast-lm-{FORMAT}".encode())
    for name, p in model.state_dict().items():
        h.update(f"{name}{tuple(p.shape)}{p.dtype}".encode())
        h.update(p.detach().float().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def checkpoint_key(adapter_dir: str | Path | None, lm_dir: str | Path) -> str:
    """A cheaper key for a checkpoint's merged LM: SHA-1 over the adapter folder's files (names
    and bytes: a few MB; None: the base LM alone), the base LM folder's path and its weight
    files' names, sizes and modification times, and :data:`FORMAT`."""
    h = hashlib.sha1(f"emosem-fast-lm-{FORMAT}".encode())
    for f in sorted(Path(adapter_dir).rglob("*")) if adapter_dir is not None else []:
        if f.is_file():
            h.update(f.relative_to(adapter_dir).as_posix().encode())
            h.update(f.read_bytes())
    lm = Path(lm_dir).resolve()
    h.update(str(lm).encode())
    for f in sorted(lm.glob("*.safetensors")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cache_folder(lm_dir: str | Path | None, key: str) -> Path:
    """``<lm_dir>/onnx/<key>`` when that folder can be written, else ``$EMOSEM_CACHE``
    (default ``~/.cache/emosem``) ``/onnx/<key>``."""
    if lm_dir is not None and Path(lm_dir).is_dir() and os.access(lm_dir, os.W_OK):
        return Path(lm_dir) / "onnx" / key
    return user_cache("onnx", key)


def base_folder(lm_dir: str | Path) -> Path:
    """Where the base LM's step (no adapter) is kept: :func:`cache_folder` of its
    :func:`checkpoint_key` without adapter."""
    return cache_folder(lm_dir, checkpoint_key(None, lm_dir))


def export_once(model: nn.Module, folder: Path, what: str, **source: Any) -> Path:
    """``folder/step.onnx``, exported from ``model`` (:func:`export_step`) where it is not there
    yet, with ``source.json`` (:data:`FORMAT` and ``source``) beside it; ``what`` names the
    model in the log."""
    path = folder / "step.onnx"
    if not path.is_file():
        logger.info("exporting %s's decoding step to %s (once per model weights)", what, path)
        export_step(model, path)
        (folder / "source.json").write_text(json.dumps({"format": FORMAT, **source}), encoding="utf-8")
        prune_older_formats(folder.parent)
    return path


def prune_older_formats(parent: Path) -> list[Path]:
    """Remove the graph folders in ``parent`` that an earlier :data:`FORMAT` wrote (their
    ``source.json`` says so; this version never opens them, its keys include the format):
    a few hundred MB each. Returns the removed folders; one that cannot be removed is left."""
    import shutil

    removed = []
    for folder in sorted(parent.iterdir()) if parent.is_dir() else []:
        try:
            fmt = json.loads((folder / "source.json").read_text(encoding="utf-8")).get("format")
        except (OSError, ValueError, AttributeError):
            continue  # not a graph folder of ours
        if isinstance(fmt, int) and fmt < FORMAT:
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder)
    if removed:
        logger.info("removed %d graph folder(s) of an earlier format from %s", len(removed), parent)
    return removed


def export_step(model: nn.Module, path: Path, pack: bool = True) -> Path:
    """Export :class:`LlamaStep` of ``model`` to ``path`` (ONNX, opset 17, dynamic batch, length
    and cache length; weights inside the file), written atomically; with ``pack`` the weights that
    lie on a 4-bit grid as exact 4-bit codes (:func:`pack_grid_weights`)."""
    step = LlamaStep(model).eval()
    cfg = model.config
    n = len(step.layers)
    d = cfg.hidden_size
    past = [torch.zeros(2, step.kv, 3, step.head_dim) for _ in range(2 * n)]
    names = [f"past_{kv}_{i}" for i in range(n) for kv in ("k", "v")]
    outs = [f"present_{kv}_{i}" for i in range(n) for kv in ("k", "v")]
    dynamic = {"x": {0: "B", 1: "T"}, "attn": {0: "B", 1: "S"}, "pos": {0: "B", 1: "T"}, "logits": {0: "B"},
               **{k: {0: "B", 2: "P"} for k in names}, **{k: {0: "B", 2: "S"} for k in outs}}
    args = (torch.zeros(2, 2, d), torch.ones(2, 5, dtype=torch.long), torch.tensor([[3, 4], [3, 4]]), *past)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with torch.no_grad():
            torch.onnx.export(step, args, str(tmp), input_names=["x", "attn", "pos", *names],
                              output_names=["logits", *outs], dynamic_axes=dynamic, opset_version=17,
                              dynamo=False)
        if pack:
            import onnx

            graph = onnx.load(str(tmp))
            packed, total = pack_grid_weights(graph)
            logger.info("%d of %d weight matrices lie on a 4-bit grid: kept as exact 4-bit codes", packed, total)
            onnx.save(graph, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _blocks(weight: np.ndarray, block: int) -> np.ndarray | None:
    """A float32 MatMul weight [K, N] as its outputs' blocks of inputs [N, K/block, block]; None
    for any other array."""
    if weight.ndim != 2 or weight.dtype != np.float32 or weight.shape[0] % block:
        return None
    k, n = weight.shape
    return np.ascontiguousarray(weight.T).reshape(n, k // block, block)


def grid_codes(weight: np.ndarray, block: int = GRID_BLOCK) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The Q4_1 codes of a float32 weight [K, N] (an ONNX ``MatMul``'s constant right operand: K
    inputs, N outputs) whose every block of ``block`` inputs of every output is ``d·q + m``
    exactly: (q [N, K/block, block] uint8 in 0..15, d [N, K/block] float32 holding a float16
    value, m [N, K/block]); None where any value is off such a grid. d is the block's range / 15
    rounded to float16 (llama.cpp's quantizer maps a block's minimum to q = 0, its maximum to 15)."""
    v = _blocks(weight, block)
    if v is None:
        return None
    m = v.min(-1)
    d = ((v.max(-1) - m) / 15).astype(np.float16).astype(np.float32)
    if not (np.isfinite(d).all() and np.isfinite(m).all()):
        return None
    q = np.rint((v - m[..., None]) / np.where(d > 0, d, 1.0)[..., None])
    if q.min() < 0 or q.max() > 15:
        return None
    if not np.array_equal(d[..., None] * q.astype(np.float32) + m[..., None], v):
        return None
    return q.astype(np.uint8), d, m


def q8_codes(weight: np.ndarray, block: int = GRID_BLOCK) -> tuple[np.ndarray, np.ndarray] | None:
    """The Q8_0 codes of a float32 weight [K, N] (as :func:`grid_codes`) whose every block is
    ``d·q`` exactly (q in −127..127, d a float16 value: llama.cpp maps a block's largest magnitude
    to ±127): (q [N, K/block, block] int16, d [N, K/block]); None where any value is off such a grid."""
    v = _blocks(weight, block)
    if v is None:
        return None
    d = (np.abs(v).max(-1) / 127).astype(np.float16).astype(np.float32)
    if not np.isfinite(d).all():
        return None
    q = np.rint(v / np.where(d > 0, d, 1.0)[..., None])
    if np.abs(q).max() > 127 or not np.array_equal(d[..., None] * q.astype(np.float32), v):
        return None
    return q.astype(np.int16), d


def _grid_parts(weight: np.ndarray, block: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray] | None:
    """A weight [K, N] on a Q4_1 or Q8_0 grid as 4-bit parts: ([(codes [N, K/b, b] in 0..15,
    scale [N, K/b])], offset [N, K/b]) with, per block, w = Σ scale·(code − 8) + offset
    exactly; None where it is on neither grid. Q8_0's code q + 128 = 16·hi + lo gives two parts,
    (hi, 16d) and (lo, d), and the offset 8d."""
    codes = grid_codes(weight, block)
    if codes is not None:
        q, d, m = codes
        return [(q, d)], m + 8 * d
    codes8 = q8_codes(weight, block)
    if codes8 is None:
        return None
    q, d = codes8
    u = (q + 128).astype(np.uint8)
    return [(u >> 4, 16 * d), (u & 15, d)], 8 * d


def pack_grid_weights(model: Any, block: int = GRID_BLOCK) -> tuple[int, int]:
    """Rewrite, in place, every ``MatMul`` of the ONNX ``model`` whose constant right operand lies
    on a Q4_1 grid (:func:`grid_codes`; the linear layers of a Q4_1 GGUF) or a Q8_0 grid
    (:func:`q8_codes`; its embedding, which is the tied head) as ``MatMulNBits`` (4 bits,
    ``block``, float32 arithmetic, zero point 8) of its 4-bit parts (:func:`_grid_parts`: one
    for Q4_1, two for Q8_0) plus ``(x · E) · M`` (E [K, K/block] sums the input's blocks, once per
    input; M [K/block, N] holds the offsets) → (matrices packed, constant matrices seen)."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    weights = {n.input[1] for n in g.node if n.op_type == "MatMul"}
    for node in list(g.node):  # constant weights written as Constant nodes become initializers
        if node.op_type == "Constant" and node.output[0] in weights and node.attribute[0].name == "value":
            tensor = node.attribute[0].t
            tensor.name = node.output[0]
            g.initializer.append(tensor)
            inits[tensor.name] = g.initializer[-1]
            g.node.remove(node)
    nodes, sums, packed, total = [], {}, 0, 0
    for node in g.node:
        grid = None
        if node.op_type == "MatMul" and node.input[1] in inits:
            total += 1
            grid = _grid_parts(numpy_helper.to_array(inits[node.input[1]]), block)
        if grid is None:
            nodes.append(node)
            continue
        parts, offset = grid
        n, blocks = offset.shape
        k, w, x, y = blocks * block, node.input[1], node.input[0], node.output[0]
        g.initializer.remove(inits.pop(w))
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(offset.T), f"{w}_offset"))
        terms = []
        for j, (q, scale) in enumerate(parts):
            g.initializer.extend([
                numpy_helper.from_array(q[..., 0::2] | (q[..., 1::2] << 4), f"{w}_q4_{j}"),  # [N, K/b, b/2]
                numpy_helper.from_array(scale.reshape(-1), f"{w}_scale_{j}")])
            terms.append(f"{y}_codes_{j}")
            nodes.append(helper.make_node("MatMulNBits", [x, f"{w}_q4_{j}", f"{w}_scale_{j}"], [terms[-1]],
                                          domain="com.microsoft", K=k, N=n, bits=4, block_size=block,
                                          accuracy_level=0))
        if (x, k) not in sums:
            e = f"grid_block_sum_{k}"
            if e not in inits:
                inits[e] = numpy_helper.from_array(np.repeat(np.eye(blocks, dtype=np.float32), block, 0), e)
                g.initializer.append(inits[e])
            sums[x, k] = f"{x}_block_sums_{k}"
            nodes.append(helper.make_node("MatMul", [x, e], [sums[x, k]]))
        nodes += [helper.make_node("MatMul", [sums[x, k], f"{w}_offset"], [f"{y}_offsets"]),
                  helper.make_node("Sum", [*terms, f"{y}_offsets"], [y])]
        packed += 1
    del g.node[:]
    g.node.extend(nodes)
    if packed and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return packed, total


def quantize_int8(src: Path, dst: Path, block: int = 32) -> Path:
    """``src``'s matrix products with block-quantized int8 weights (``MatMulNBits``: ``block``
    weights per scale, symmetric, int8 activations per block: ``accuracy_level`` 4) → ``dst``."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    q = MatMulNBitsQuantizer(onnx.load(str(src)), bits=8, block_size=block, is_symmetric=True, accuracy_level=4)
    q.process()
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        q.model.save_model_to_file(str(tmp), use_external_data_format=False)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


class FastDecoder:
    """Greedy decoding of an exported step (:func:`export_step`) in ONNX Runtime.

    ``embed`` is the model's input-embedding table [V, D] (float32); ``layers``, ``kv_heads`` and
    ``head_dim`` shape the empty cache.
    """

    def __init__(self, path: Path, embed: torch.Tensor, layers: int, kv_heads: int, head_dim: int,
                 threads: int | None = None, runtime: str = "ort") -> None:
        self.session = open_session(Path(path), threads or torch.get_num_threads())
        self.embed = embed.detach().float().cpu()
        self.layers, self.kv_heads, self.head_dim = layers, kv_heads, head_dim
        self.runtime = runtime
        self.path = Path(path)

    @classmethod
    def for_model(cls, model: nn.Module, lm_dir: str | Path | None = None, runtime: str = "ort",
                  threads: int | None = None, key: str | None = None) -> FastDecoder:
        """Export (or reuse) the step of ``model`` (float32, on the CPU; a LoRA merged or unmerged) and open it;
        ``runtime`` "ort" (float32, weights on a 4-bit grid as exact codes) or "ort-int8"
        (block-quantized weights and activations). ``key`` names the
        weights (:func:`checkpoint_key`); None hashes them (:func:`weights_key`)."""
        if runtime not in ("ort", "ort-int8"):
            raise ValueError(f"runtime must be 'ort' or 'ort-int8', got {runtime!r}")
        why = supported(model)
        if why:
            raise NotImplementedError(f"no fast decoder for this language model: {why}")
        folder = cache_folder(lm_dir, key or weights_key(model))
        if runtime == "ort-int8":  # quantized from the float32 graph, not from the packed one
            path = folder / "step_int8_b32.onnx"
            if not path.is_file():
                plain = export_step(model, folder / f".step_float.{os.getpid()}.onnx", pack=False)
                try:
                    quantize_int8(plain, path)
                finally:
                    plain.unlink(missing_ok=True)
        else:
            path = export_once(model, folder, "the explanation LM", lm=str(lm_dir))
        cfg = model.config  # the cache's shape (building a LlamaStep would copy the weights)
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return cls(path, model.get_input_embeddings().weight, cfg.num_hidden_layers, cfg.num_key_value_heads,
                   head_dim, threads, runtime)

    @classmethod
    def _open(cls, path: Path, lm_dir: Path, embed: torch.Tensor | None, threads: int | None) -> FastDecoder | None:
        """The graph ``path`` of an LM like the one in ``lm_dir``, opened without transformers:
        the cache's shape from ``config.json``, the input embeddings ``embed`` or, for None,
        the folder's (:func:`~emosem.modeling.language_model.input_embeddings`; None where it
        has none)."""
        from emosem.modeling.language_model import input_embeddings

        cfg = json.loads((lm_dir / "config.json").read_text(encoding="utf-8"))
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        if embed is None:
            try:
                embed = input_embeddings(lm_dir)
            except ValueError:
                return None
        return cls(path, embed, cfg["num_hidden_layers"], cfg["num_key_value_heads"], head_dim, threads)

    @classmethod
    def open_base(cls, lm_dir: str | Path, threads: int | None = None) -> FastDecoder | None:
        """The step of the base LM in ``lm_dir`` (a converted Hugging Face folder) where it was
        exported before (:func:`export_step`, keyed by :func:`checkpoint_key` without adapter),
        opened without transformers. None where there is no graph yet."""
        path = base_folder(lm_dir) / "step.onnx"
        return cls._open(path, Path(lm_dir), None, threads) if path.is_file() else None

    @classmethod
    def open_checked(cls, lm_dir: str | Path, key: str, embed: torch.Tensor,
                     threads: int | None = None) -> FastDecoder | None:
        """The "ort" step of a merged LM (weights ``key``, :func:`checkpoint_key`; base LM in
        ``lm_dir``, input embeddings ``embed`` [V, D]) where an earlier load exported it and its
        self-check, under this ONNX Runtime and :data:`FORMAT`, gave torch's tokens (the record
        of :meth:`checked`): opened without building the torch LM or importing transformers.
        None otherwise: the caller builds the LM, and :func:`fast_decoder` exports and checks."""
        path = cache_folder(lm_dir, key) / "step.onnx"
        found, problem = _saved_check(path)
        if not (path.is_file() and found and problem is None):
            return None
        return cls._open(path, Path(lm_dir), embed, threads)

    @classmethod
    def export_base(cls, model: nn.Module, lm_dir: str | Path, threads: int | None = None) -> FastDecoder:
        """Export the step of ``model``, the base LM loaded from ``lm_dir``, where
        :meth:`open_base` finds it, and open it."""
        why = supported(model)
        if why:
            raise NotImplementedError(f"no fast path for this language model: {why}")
        export_once(model, base_folder(lm_dir), "the base LM", lm=str(lm_dir), base=True)
        return cls.open_base(lm_dir, threads)

    def continuation_scores(self, context: list[int], continuations: list[list[int]]) -> np.ndarray:
        """[len(continuations)] summed log-probabilities (float64) of each token sequence after
        the ``context`` tokens: one pass over the context, then the continuations in one batch
        continuing its key/value cache, one token per step (a row that has ended is fed its last
        token again and its scores are not read)."""
        t = len(context)
        feeds: dict[str, np.ndarray] = {"x": self.embed[torch.tensor([context])].numpy(),
                                        "attn": np.ones((1, t), np.int64), "pos": np.arange(t)[None]}
        empty = np.zeros((1, self.kv_heads, 0, self.head_dim), np.float32)
        for i in range(self.layers):
            feeds[f"past_k_{i}"] = feeds[f"past_v_{i}"] = empty
        out = self.session.run(None, feeds)
        logp = torch.from_numpy(out[0]).float().log_softmax(-1)  # [1, V]
        scores = np.array([float(logp[0, ids[0]]) for ids in continuations])
        n, width = len(continuations), max(len(ids) for ids in continuations)
        for j in range(1, width):
            fed = torch.tensor([ids[min(j, len(ids)) - 1] for ids in continuations])
            feeds = {"x": self.embed[fed][:, None].numpy(), "attn": np.ones((n, t + j), np.int64),
                     "pos": np.full((n, 1), t + j - 1, np.int64)}
            for i in range(self.layers):
                k, v = out[1 + 2 * i], out[2 + 2 * i]
                feeds[f"past_k_{i}"] = np.repeat(k, n, 0) if j == 1 else k
                feeds[f"past_v_{i}"] = np.repeat(v, n, 0) if j == 1 else v
            out = self.session.run(None, feeds)
            logp = torch.from_numpy(out[0]).float().log_softmax(-1)  # [n, V]
            for r, ids in enumerate(continuations):
                if j < len(ids):
                    scores[r] += float(logp[r, ids[j]])
        return scores

    def checked(self, model: nn.Module) -> str | None:
        """:meth:`self_check`, its answer kept beside the graph (``<graph>.check.json``, with the
        ONNX Runtime version) so that a later load of the same file reuses it."""
        import onnxruntime as ort

        found, problem = _saved_check(self.path)
        if found:
            return problem
        problem = self.self_check(model)
        try:
            record = {"onnxruntime": ort.__version__, "format": FORMAT, "problem": problem}
            self.path.with_suffix(".check.json").write_text(json.dumps(record), encoding="utf-8")
        except OSError:
            pass
        return problem

    def generate(self, embeds: torch.Tensor, attn: torch.Tensor, max_new_tokens: int, eos_token_id: int,
                 pad_token_id: int, logits_processor: Any = None, min_new_tokens: int = 0) -> torch.Tensor:
        """Greedy tokens [B, n ≤ max_new_tokens] after left-padded ``embeds`` [B, T, D] with ``attn``
        [B, T]; a row that ended (``eos_token_id``) is filled with ``pad_token_id``, decoding stops
        when every row has ended. ``logits_processor`` (``(ids [B, t], scores [B, V]) → scores``,
        or a list of them applied in turn) and ``min_new_tokens`` act as in ``generate``."""
        b = embeds.shape[0]
        processors = [] if logits_processor is None else \
            list(logits_processor) if isinstance(logits_processor, (list, tuple)) else [logits_processor]
        attn_np = attn.detach().cpu().numpy().astype(np.int64)
        pos = np.maximum(attn_np.cumsum(-1) - 1, 0)
        feeds: dict[str, np.ndarray] = {"x": embeds.detach().float().cpu().numpy(), "attn": attn_np, "pos": pos}
        empty = np.zeros((b, self.kv_heads, 0, self.head_dim), np.float32)
        for i in range(self.layers):
            feeds[f"past_k_{i}"] = feeds[f"past_v_{i}"] = empty
        ids = torch.empty((b, 0), dtype=torch.long)
        done = torch.zeros(b, dtype=torch.bool)
        for step in range(max_new_tokens):
            out = self.session.run(None, feeds)
            scores = torch.from_numpy(out[0])
            if step < min_new_tokens:
                scores[:, eos_token_id] = -float("inf")
            for proc in processors:
                scores = proc(ids, scores)
            nxt = torch.where(done, torch.tensor(pad_token_id), scores.argmax(-1))
            ids = torch.cat([ids, nxt[:, None]], 1)
            done |= nxt == eos_token_id
            if bool(done.all()):
                break
            feeds["x"] = self.embed[nxt][:, None].numpy()
            feeds["attn"] = np.concatenate([feeds["attn"], np.ones((b, 1), np.int64)], 1)
            feeds["pos"] = feeds["pos"][:, -1:] + 1
            for i in range(self.layers):
                feeds[f"past_k_{i}"], feeds[f"past_v_{i}"] = out[1 + 2 * i], out[2 + 2 * i]
        return ids

    def self_check(self, model: nn.Module, tokens: int = 12) -> str | None:
        """Decode a fixed left-padded batch of two inputs greedily here and with ``model.generate``;
        None when the tokens agree, else what differs."""
        ids = (torch.arange(12).view(2, 6) * 37 + 11) % self.embed.shape[0]  # fixed tokens
        embeds = self.embed[ids]
        embeds[1, :2] = self.embed[0]  # the second row is left-padded by two positions
        attn = torch.ones(2, 6, dtype=torch.long)
        attn[1, :2] = 0
        eos = -1  # no end: every token is compared
        with torch.no_grad():
            ref = model.generate(inputs_embeds=embeds, attention_mask=attn, max_new_tokens=tokens,
                                 min_new_tokens=tokens, do_sample=False, num_beams=1, temperature=None,
                                 top_p=None, top_k=None, pad_token_id=0, eos_token_id=None)
        got = self.generate(embeds, attn, tokens, eos, 0)
        if ref.shape == got.shape and bool((ref == got).all()):
            return None
        return f"greedy tokens differ from torch ({got[:, :8].tolist()} vs {ref[:, :8].tolist()})"


# ONNX Runtime's pool threads spin-wait for work while a Run() is under way and, by default, for
# a while after it returns; here torch works right after (the masks after the prior's scores, the
# next painting's encoder after an explanation), and the spinning threads take its two cores: a
# one-emotion decode right after an explanation took ~50 ms instead of ~17 ms, at the same
# explanation speed (docs/results/issue24_spinning_stop_ab.txt). Stopped when each Run() returns.
STOP_SPINNING = True


def _session_options(threads: int, level: Any, save: Path | None = None, weights: str | None = None) -> Any:
    """Session options; ``save``: write the optimized model there, its initializers of 1 kB and
    more in the file ``weights`` beside it (a name, relative to ``save``'s folder)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.graph_optimization_level = level
    so.add_session_config_entry("session.force_spinning_stop", "1" if STOP_SPINNING else "0")
    if save is not None:
        so.optimized_model_filepath = str(save)
        if weights is not None:
            so.add_session_config_entry("session.optimized_model_external_initializers_file_name", weights)
            so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    return so


def _probe_feeds(session: Any) -> dict[str, np.ndarray]:
    """A fixed small input of an exported step: batch 1, three new tokens, an empty cache."""
    rng = np.random.default_rng(0)
    feeds = {}
    for i in session.get_inputs():
        shape = [{"B": 1, "T": 3, "S": 3, "P": 0}.get(d, d) if isinstance(d, str) else d for d in i.shape]
        feeds[i.name] = (np.arange(3)[None] if i.name == "pos" else np.ones(shape, np.int64)) \
            if "int64" in i.type else rng.standard_normal(shape).astype(np.float32)
    return feeds


def optimized_copy(path: Path) -> Path:
    """Where the optimized copy of the exported step ``path`` is kept: beside it, named for the
    ONNX Runtime that wrote it (its weights in a ``<copy stem>.<pid>-<token>.data`` file beside it)."""
    import onnxruntime as ort

    return path.with_name(f"{path.stem}.optimized-{ort.__version__}.mapped.onnx")


def open_session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session of the exported step ``path``, opened from its optimized copy
    (:func:`optimized_copy`) where there is one: graph optimization is most of a session's
    start (0.45 → 0.25 s for SmolLM2's step on 2 cores). The copy is written by the first
    session (level "extended": no hardware-specific layouts), its weights in a file of their
    own that later sessions map rather than read and copy (SmolLM2's base step: session peak
    241 → 171 MB, opened in 0.2 s), and kept only where its outputs on a fixed input equal that
    session's bit for bit; a folder that cannot be written keeps none. Keeping a copy removes
    the copies (and weight files) of earlier kinds and runtimes beside it."""
    import onnxruntime as ort

    levels, providers = ort.GraphOptimizationLevel, ["CPUExecutionProvider"]
    optimized = optimized_copy(path)
    if optimized.is_file():
        try:
            return ort.InferenceSession(str(optimized), _session_options(threads, levels.ORT_DISABLE_ALL),
                                        providers=providers)
        except Exception as e:  # a damaged copy: optimize again (and replace it)
            logger.info("cannot open %s (%s): optimizing %s again", optimized.name, e, path.name)
    tmp = optimized.with_name(f".{optimized.name}.{os.getpid()}.tmp")
    # the weights' file keeps its name (the copy refers to it), new for every copy written: an
    # open session may map the one it replaces
    weights = optimized.with_name(f"{optimized.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.data")
    if not os.access(path.parent, os.W_OK):
        return ort.InferenceSession(str(path), _session_options(threads, levels.ORT_ENABLE_EXTENDED),
                                    providers=providers)
    kept = False
    try:
        session = ort.InferenceSession(
            str(path), _session_options(threads, levels.ORT_ENABLE_EXTENDED, tmp, weights.name), providers=providers)
        if tmp.is_file():
            copy = ort.InferenceSession(str(tmp), _session_options(threads, levels.ORT_DISABLE_ALL),
                                        providers=providers)
            feeds = _probe_feeds(session)
            if all(np.array_equal(a, b) for a, b in zip(session.run(None, feeds), copy.run(None, feeds))):
                os.replace(tmp, optimized)
                kept = True
                _remove_other_copies(path, keep={optimized.name, weights.name})
            else:
                logger.info("the optimized copy of %s computes other numbers: not kept", path.name)
    finally:
        tmp.unlink(missing_ok=True)
        if not kept:
            weights.unlink(missing_ok=True)
    return session


def _remove_other_copies(path: Path, keep: set[str]) -> None:
    """Remove the optimized copies of ``path`` and their weight files other than ``keep`` (names):
    another runtime's, an earlier kind's, a replaced copy's (a session that has one open keeps
    its mapping: the file goes when it closes)."""
    for other in path.parent.glob(f"{path.stem}.optimized-*"):
        if other.name not in keep:
            other.unlink(missing_ok=True)


def _saved_check(path: Path) -> tuple[bool, str | None]:
    """(whether the graph ``path`` has a self-check record for this ONNX Runtime and
    :data:`FORMAT`, the problem it found: None where the tokens agreed)."""
    import onnxruntime as ort

    try:
        saved = json.loads(path.with_suffix(".check.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, None
    if isinstance(saved, dict) and saved.get("onnxruntime") == ort.__version__ and saved.get("format") == FORMAT:
        return True, saved.get("problem")
    return False, None


def fast_decoder(model: nn.Module, runtime: str = "ort", threads: int | None = None,
                 key: str | None = None) -> tuple[FastDecoder | None, str | None]:
    """(decoder, None) for ``model`` (float32, CPU; a LoRA merged or unmerged) in ``runtime`` "ort" or "ort-int8", or
    (None, why not): ``onnxruntime`` missing, an unsupported model, a failed export or session, or
    (for "ort") a self-check whose tokens differ from torch's. "ort-int8" is approximate by design:
    a differing self-check is a warning."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None, "onnxruntime is not installed (pip install onnxruntime)"
    why = supported(model)
    if why:
        return None, why
    try:
        decoder = FastDecoder.for_model(model, getattr(model.config, "_name_or_path", None), runtime, threads, key)
        problem = decoder.checked(model)
    except Exception as e:  # a failed export or session leaves the torch path, it does not stop inference
        return None, f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
    if problem and runtime == "ort":
        return None, f"the self-check failed: {problem}"
    if problem:
        logger.warning("%s decodes other tokens than torch on the self-check: %s", runtime, problem)
    return decoder, None


def cached_explanation_lm(ckpt_dir: str | Path, config: Any, threads: int | None = None) -> Any:
    """The explanation LM of checkpoint ``ckpt_dir`` (model config ``config``) decoded by its
    "ort" step where an earlier load exported and checked it (:meth:`FastDecoder.open_checked`),
    as :meth:`~emosem.modeling.language_model.ExplanationLM.without_weights`: the checkpoint
    explains without building the torch LM or importing transformers (seconds and hundreds of
    MB of a cold start); the first beam or sampling call builds it. None where there is no such
    graph, the LM is not float32 or the checkpoint has no adapter folder (the caller loads the LM
    as usual)."""
    from emosem.modeling.errors import one_line
    from emosem.modeling.language_model import EmbeddingTable, ExplanationLM
    from emosem.modeling.lm_weights import resolve_lm_path
    from emosem.modeling.pretrained import ADAPTER_DIR, load_checkpoint_lm

    adapter = Path(ckpt_dir) / ADAPTER_DIR
    if config.dtype != "float32" or not adapter.is_dir():
        return None
    try:
        import onnxruntime  # noqa: F401

        lm_dir = Path(resolve_lm_path(config.lm))
        key = checkpoint_key(adapter, lm_dir)
        if not (cache_folder(lm_dir, key) / "step.onnx").is_file():
            return None
        table = EmbeddingTable(str(lm_dir))
        decoder = FastDecoder.open_checked(lm_dir, key, table.weight, threads)
    except Exception as e:  # no runtime, an unreadable folder or graph: the usual load
        logger.info("explanations do not start from the cached graph: %s", one_line(e))
        return None
    if decoder is None:
        return None

    def reload() -> nn.Module:
        lm = load_checkpoint_lm(ckpt_dir, config.lm, config.dtype)[0]
        return lm.merge_and_unload() if hasattr(lm, "merge_and_unload") else lm

    return ExplanationLM.without_weights(table, config.instruction, decoder, reload)
