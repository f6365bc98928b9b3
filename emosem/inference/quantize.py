"""Int8 weights for the language model's linear layers on a CPU (dynamic quantization).

Token-by-token generation is bound by reading every weight matrix once per token. PyTorch's
dynamic quantization (``torch.ao.quantization.quantize_dynamic``) stores each ``nn.Linear``
weight in int8 with a per-tensor scale and quantizes the activations on the fly (fbgemm / x86
kernels), a quarter of the bytes to read. The greedy text changes, so the effect on quality is
measured by ``tools/evaluate.py --lm-precision int8`` (README, "Speed"), not assumed. Measured on
the held-out synthetic set, per-tensor int8 cost far more than the 0.01 allowed (names the motif
0.80 vs 0.98, METEOR 0.171 vs 0.206), so it is opt-in: ``EmoSEMPredictor(lm_int8=True)`` /
``--lm-precision int8``, on CPU float32 models where :func:`int8_supported` says the kernels are
there and correct. Weights are quantized per output channel. GPUs keep bf16/fp16.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["int8_supported", "quantize_linears"]

# Self-check: int8 output vs float32 on a random layer, relative to the output's scale.
SELF_CHECK_TOLERANCE = 0.05


@lru_cache(maxsize=1)
def _kernels_work() -> bool:
    """Quantize a random 256→512 layer and compare it with float32 (once per process)."""
    try:
        from torch.ao.quantization import quantize_dynamic

        g = torch.Generator().manual_seed(0)
        layer = nn.Linear(256, 512)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(512, 256, generator=g) * 0.05)
        x = torch.randn(3, 256, generator=g)
        q = quantize_dynamic(nn.Sequential(layer), {nn.Linear}, dtype=torch.qint8)
        with torch.no_grad():
            ref, out = layer(x), q(x)
        err = float((out - ref).abs().max() / ref.abs().max())
    except Exception as e:  # missing engine, unsupported build
        logger.info("int8 linears unavailable (%s: %s); the LM stays float32", type(e).__name__, e)
        return False
    if not err < SELF_CHECK_TOLERANCE:
        logger.warning("int8 linears gave a relative error of %.3f in the self-check; not used", err)
        return False
    return True


def int8_supported(device: torch.device | str, dtype: torch.dtype) -> bool:
    """Whether dynamic int8 linears can run here: CPU, a float32 model, a quantized engine,
    and a self-check that the kernels compute what float32 does (within 5 %)."""
    return (torch.device(device).type == "cpu" and dtype == torch.float32
            and torch.backends.quantized.engine != "none" and _kernels_work())


def quantize_linears(model: nn.Module) -> int:
    """Replace every ``nn.Linear`` of ``model`` in place by a dynamic int8 one; returns how many.
    The model can no longer be trained or saved in the project's layout."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    count = sum(1 for m in model.modules() if type(m) is nn.Linear)
    # per output channel: a per-tensor scale over the 576x49152 LM head cost too much accuracy
    quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                     inplace=True)
    return count
