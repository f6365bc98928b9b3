"""Greedy-text agreement and tokens/s of weight-only quantized SmolLM2 linears against float32,
interleaved in one process (issue 24, item 1)."""
import json, sys, time, copy, platform, statistics as st
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.manual_seed(0)
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
PATH = "checkpoints/smollm2-135m-instruct"
tok = AutoTokenizer.from_pretrained(PATH)
base = AutoModelForCausalLM.from_pretrained(PATH, torch_dtype=torch.float32).eval()
PROMPTS = ["Explain why the painting makes you feel awe. The region: at the top, large (30% of the canvas); dark blue, yellow; swirling strokes.",
           "Explain why the painting makes you feel fear. The region: in the lower left, medium (7% of the canvas); black; darker than its surroundings.",
           "Explain why the painting makes you feel contentment. The region: in the center, small (4% of the canvas); light green; smooth.",
           "Explain why the painting makes you feel sadness. The region: along the bottom edge, medium (12% of the canvas); grey; more muted, cooler.",
           "Explain why the painting makes you feel excitement. The region: scattered in 5 patches; orange, red; brighter than its surroundings."]
N_NEW = 20


class Int8WeightLinear(nn.Module):
    """Per-output-channel symmetric int8 weights, float activations (torch._weight_int8pack_mm)."""
    def __init__(self, lin):
        super().__init__()
        w = lin.weight.detach().float()
        scale = w.abs().amax(1).clamp_min(1e-8) / 127
        self.register_buffer("w", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.bias = None if lin.bias is None else lin.bias.detach()
    def forward(self, x):
        y = torch._weight_int8pack_mm(x.reshape(-1, x.shape[-1]), self.w, self.scale)
        y = y.reshape(*x.shape[:-1], -1)
        return y if self.bias is None else y + self.bias


class Int4GroupLinear(nn.Module):
    """Group-wise asymmetric int4 weights (group g), float activations
    (torch.ops.aten._weight_int4pack_mm_for_cpu)."""
    def __init__(self, lin, group=32):
        super().__init__()
        w = lin.weight.detach().float()
        n, k = w.shape
        g = w.reshape(n, k // group, group)
        lo, hi = g.amin(-1), g.amax(-1)
        scale = ((hi - lo) / 15).clamp_min(1e-8)
        zero = lo + scale * 8  # torch's int4 zero point convention: w = (q - 8) * scale + zero
        q = torch.round((g - lo[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32).reshape(n, k)
        self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1))
        self.register_buffer("sz", torch.stack([scale, zero], -1).transpose(0, 1).contiguous())  # [k/g, n, 2]
        self.group, self.n = group, n
        self.bias = None if lin.bias is None else lin.bias.detach()
    def forward(self, x):
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(x.reshape(-1, x.shape[-1]), self.packed, self.group, self.sz)
        y = y.reshape(*x.shape[:-1], self.n)
        return y if self.bias is None else y + self.bias


def replace(model, make, skip_head=False):
    m = copy.deepcopy(model)
    for name, mod in list(m.named_modules()):
        for cname, child in list(mod.named_children()):
            full = f"{name}.{cname}" if name else cname
            if isinstance(child, nn.Linear) and not (skip_head and full == "lm_head"):
                setattr(mod, cname, make(child))
    return m


def packed(model):
    sys.path.insert(0, ".")
    from emosem.inference.packed_linear import pack_linears
    m = copy.deepcopy(model)
    pack_linears(m)
    return m


variants = {"float32": base, "float32_packed": packed(base),
            "int8_weight_only": replace(base, Int8WeightLinear),
            "int4_g32": replace(base, lambda l: Int4GroupLinear(l, 32)),
            "bfloat16": copy.deepcopy(base).to(torch.bfloat16)}
# the lm_head is tied to the embedding: untie for replaced copies
inputs = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, return_tensors="pt", return_dict=True) for p in PROMPTS]
out = {k: {"tokens": [], "times": []} for k in variants}
for rep in range(2):
    encs = inputs[:1] if rep == 0 else inputs[:3]
    for i, enc in enumerate(encs):
        for k, m in variants.items():
            t = time.perf_counter()
            with torch.no_grad():
                g = m.generate(**enc, max_new_tokens=N_NEW, min_new_tokens=N_NEW, do_sample=False)
            dt = time.perf_counter() - t
            print(k, rep, round(dt, 2), file=sys.stderr, flush=True)
            if rep == 1:
                out[k]["times"].append(dt)
                out[k]["tokens"].append(g[0, enc["input_ids"].shape[1]:].tolist())
ref = out["float32"]["tokens"]
res = {}
for k, v in out.items():
    same_all = sum(a == b for a, b in zip(v["tokens"], ref))
    same20 = sum(a[:20] == b[:20] for a, b in zip(v["tokens"], ref))
    first_diff = [next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), None) for a, b in zip(v["tokens"], ref)]
    res[k] = {"tokens_per_s": round(N_NEW * len(v["times"]) / sum(v["times"]), 2),
              "same_40_tokens": f"{same_all}/{len(ref)}", "same_first_20": f"{same20}/{len(ref)}",
              "first_differing_token": first_diff}
f32 = res["float32"]["tokens_per_s"]
for k in res:
    res[k]["speed_vs_float32"] = round(res[k]["tokens_per_s"] / f32, 3)
print(json.dumps({"threads": threads, "prompts": len(ref), "new_tokens": N_NEW, "results": res,
                  "sample_float32": tok.decode(ref[0]), "sample_int4_g32": tok.decode(out["int4_g32"]["tokens"][0])}, indent=1))
