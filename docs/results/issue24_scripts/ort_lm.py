"""SmolLM2 through ONNX Runtime: a Llama step (inputs_embeds + explicit KV cache) in plain torch,
exported to ONNX, weights block-quantized with MatMulNBits (block 32, accuracy_level 4), greedy
tokens and tokens/s against HF float32 generate, interleaved (issue 24, item 1)."""
import json, sys, time, os
sys.path.append("/tmp/ortpkgs")  # after the venv: its numpy wins
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
PATH = "checkpoints/smollm2-135m-instruct"
OUT = "/tmp/lmq/onnx"
os.makedirs(OUT, exist_ok=True)
tok = AutoTokenizer.from_pretrained(PATH)
hf = AutoModelForCausalLM.from_pretrained(PATH, dtype=torch.float32).eval()
cfg = hf.config
L, H, KV, HD, D = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size
theta = cfg.rope_parameters["rope_theta"] if hasattr(cfg, "rope_parameters") and cfg.rope_parameters else cfg.rope_theta
EPS = cfg.rms_norm_eps


class Step(nn.Module):
    """logits, new keys/values = step(inputs_embeds [1,T,D], position_ids [1,T], past k/v [1,KV,P,HD] x L)."""
    def __init__(self, hf):
        super().__init__()
        self.m = hf.model
        self.head = hf.lm_head
        inv = 1.0 / (theta ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD))
        self.register_buffer("inv_freq", inv)

    def forward(self, x, pos, *past):
        f = pos[0].float()[:, None] * self.inv_freq[None]  # [T, HD/2]
        emb = torch.cat([f, f], -1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        T = x.shape[1]
        P = past[0].shape[2]
        # causal mask over [P + T]
        i = torch.arange(T)[:, None] + P
        j = torch.arange(P + T)[None]
        mask = torch.where(j <= i, 0.0, float("-inf"))[None, None]
        presents = []
        for li, layer in enumerate(self.m.layers):
            h = layer.input_layernorm(x)
            a = layer.self_attn
            q = a.q_proj(h).view(1, T, H, HD).transpose(1, 2)
            k = a.k_proj(h).view(1, T, KV, HD).transpose(1, 2)
            v = a.v_proj(h).view(1, T, KV, HD).transpose(1, 2)
            def rot(t):
                t1, t2 = t[..., : HD // 2], t[..., HD // 2:]
                return t * cos + torch.cat([-t2, t1], -1) * sin
            q, k = rot(q), rot(k)
            k = torch.cat([past[2 * li], k], 2)
            v = torch.cat([past[2 * li + 1], v], 2)
            presents += [k, v]
            kk = k.repeat_interleave(H // KV, 1)
            vv = v.repeat_interleave(H // KV, 1)
            att = (q @ kk.transpose(-1, -2)) / (HD ** 0.5) + mask
            o = (att.softmax(-1) @ vv).transpose(1, 2).reshape(1, T, H * HD)
            x = x + a.o_proj(o)
            h = layer.post_attention_layernorm(x)
            mlp = layer.mlp
            x = x + mlp.down_proj(F.silu(mlp.gate_proj(h)) * mlp.up_proj(h))
        x = self.m.norm(x)
        return (self.head(x[:, -1:]), *presents)


step = Step(hf).eval()
emb_table = hf.get_input_embeddings().weight.detach()
PROMPTS = json.load(open("/tmp/lmq/prompts.json"))[: int(os.environ.get("N_PROMPTS", 3))]
N_NEW = int(os.environ.get("N_NEW", 20))


def check_step():
    enc = tok.apply_chat_template([{"role": "user", "content": PROMPTS[0]}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids = enc["input_ids"]
    with torch.no_grad():
        ref = hf(input_ids=ids).logits[:, -1:]
        past = [torch.zeros(1, KV, 0, HD) for _ in range(2 * L)]
        got = step(emb_table[ids], torch.arange(ids.shape[1])[None], *past)[0]
    return float((ref - got).abs().max())


fp = f"{OUT}/step.onnx"
if not os.path.exists(fp):
    ids = torch.tensor([[1, 2, 3]])
    past = [torch.zeros(1, KV, 2, HD) for _ in range(2 * L)]
    names = [f"past_{t}_{i}" for i in range(L) for t in ("k", "v")]
    pres = [f"present_{t}_{i}" for i in range(L) for t in ("k", "v")]
    dyn = {"x": {1: "T"}, "pos": {1: "T"}, **{n: {2: "P"} for n in names}, **{n: {2: "PT"} for n in pres}}
    torch.onnx.export(step, (emb_table[ids], torch.arange(2, 5)[None], *past), fp, input_names=["x", "pos", *names],
                      output_names=["logits", *pres], dynamic_axes=dyn, opset_version=17, dynamo=False)
fq = f"{OUT}/step_q4.onnx"
fq8 = f"{OUT}/step_q8.onnx"
import onnx
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
for bits, path in ((4, fq), (8, fq8)):
    if not os.path.exists(path):
        kw = dict(block_size=32, is_symmetric=True, accuracy_level=4)
        try:
            q = MatMulNBitsQuantizer(onnx.load(fp), bits=bits, **kw)
        except TypeError:
            if bits != 4:
                continue
            q = MatMulNBitsQuantizer(onnx.load(fp), **kw)
        q.process()
        q.model.save_model_to_file(path, use_external_data_format=False)
import onnxruntime as ort


def session(path):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


sessions = {"ort_float32": session(fp), "ort_int4_b32_acc4": session(fq)}
if os.path.exists(fq8):
    sessions["ort_int8_b32_acc4"] = session(fq8)


def ort_greedy(sess, ids):
    x = emb_table[ids].numpy()
    pos = np.arange(ids.shape[1])[None]
    past = {f"past_{t}_{i}": np.zeros((1, KV, 0, HD), np.float32) for i in range(L) for t in ("k", "v")}
    out = []
    for _ in range(N_NEW):
        res = sess.run(None, {"x": x, "pos": pos, **past})
        nxt = int(res[0][0, -1].argmax())
        out.append(nxt)
        past = {f"past_{t}_{i}": res[1 + 2 * i + (t == "v")] for i in range(L) for t in ("k", "v")}
        x = emb_table[torch.tensor([[nxt]])].numpy(); pos = np.array([[pos[0, -1] + 1]])
    return out


def hf_greedy(ids):
    with torch.no_grad():
        g = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=N_NEW, min_new_tokens=N_NEW, do_sample=False)
    return g[0, ids.shape[1]:].tolist()


result = {"step_vs_hf_max_abs_logit_diff": check_step(), "threads": threads}
encs = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"] for p in PROMPTS]
runs = {"hf_float32_generate": hf_greedy, **{k: (lambda ids, s=s: ort_greedy(s, ids)) for k, s in sessions.items()}}
out = {k: {"tokens": [], "times": []} for k in runs}
for rep in range(2):
    for ids in (encs[:1] if rep == 0 else encs):  # rep 0: one warm-up call per runner
        for k, fn in runs.items():
            t = time.perf_counter(); toks = fn(ids); dt = time.perf_counter() - t
            print(k, rep, round(dt, 2), toks[:8], file=sys.stderr, flush=True)
            if rep == 1:
                out[k]["tokens"].append(toks); out[k]["times"].append(dt)
ref = out["hf_float32_generate"]["tokens"]
for k, v in out.items():
    result[k] = {"tokens_per_s": round(N_NEW * len(encs) / sum(v["times"]), 2),
                 "same_40_tokens": f"{sum(a == b for a, b in zip(v['tokens'], ref))}/{len(ref)}",
                 "same_first_20": f"{sum(a[:20] == b[:20] for a, b in zip(v['tokens'], ref))}/{len(ref)}",
                 "first_differing_token": [next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), None) for a, b in zip(v["tokens"], ref)]}
base = result["hf_float32_generate"]["tokens_per_s"]
for k in runs:
    result[k]["speed_vs_hf_float32"] = round(result[k]["tokens_per_s"] / base, 3)
result["sample_hf"] = tok.decode(ref[0]); result["sample_int4"] = tok.decode(out["ort_int4_b32_acc4"]["tokens"][0])
result["versions"] = {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "torch": torch.__version__}
print(json.dumps(result, indent=1))
