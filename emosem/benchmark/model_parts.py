"""Model pieces the benchmark builds or counts: the LoRA adapter's size, an image encoder with a
checkpoint's hyper-parameters at another input size."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["adapter_params", "build_encoder", "encoder_hparams"]


def adapter_params(checkpoint: Path) -> int:
    """Parameters in the checkpoint's saved LoRA adapter (0 without one)."""
    from safetensors import safe_open

    path = checkpoint / "lm_adapter" / "adapter_model.safetensors"
    if not path.is_file():
        return 0
    with safe_open(str(path), "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def encoder_hparams(encoder: Any) -> dict[str, Any]:
    """The constructor arguments of a ``segment_anything`` ``ImageEncoderViT`` (bar img_size)."""
    proj = encoder.patch_embed.proj
    blocks = list(encoder.blocks)
    b0 = blocks[0]
    dim = proj.out_channels
    return {
        "patch_size": int(proj.kernel_size[0]),
        "in_chans": int(proj.in_channels),
        "embed_dim": int(dim),
        "depth": len(blocks),
        "num_heads": int(b0.attn.num_heads),
        "mlp_ratio": b0.mlp.lin1.out_features / dim,
        "out_chans": int(encoder.neck[0].out_channels),
        "qkv_bias": b0.attn.qkv.bias is not None,
        "use_abs_pos": encoder.pos_embed is not None,
        "use_rel_pos": bool(b0.attn.use_rel_pos),
        "window_size": max(int(b.window_size) for b in blocks),
        "global_attn_indexes": tuple(i for i, b in enumerate(blocks) if b.window_size == 0),
        "norm_eps": float(b0.norm1.eps),
        "original_img_size": int(encoder.img_size),
    }


def build_encoder(hp: dict[str, Any], img_size: int) -> Any:
    """A randomly initialised ``ImageEncoderViT`` with ``hp`` (from :func:`encoder_hparams`)."""
    from functools import partial

    from torch import nn

    from emosem.modeling.sam_modules import ImageEncoderViT

    kwargs = {k: v for k, v in hp.items() if k not in ("norm_eps", "original_img_size")}
    return ImageEncoderViT(img_size=img_size, norm_layer=partial(nn.LayerNorm, eps=hp["norm_eps"]),
                           **kwargs)
