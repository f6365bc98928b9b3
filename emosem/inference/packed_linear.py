"""Inference-only ``nn.Linear`` with a oneDNN-prepacked weight (CPU, float32).

Token-by-token generation multiplies a few rows (1 per explanation) by every weight matrix of the
language model. PyTorch's default CPU path re-lays-out each weight on every call and runs small
batches row by row, so nine explanations cost about 2.5x one. Reordering each weight once into
oneDNN's blocked layout (what ``torch.compile``'s CPU freezing pass does) removes that: on the
2-core CI machine the 576x49152 LM head takes 7.8 ms instead of 15.9 ms for one row and 15 ms
instead of 47 ms for nine (``tools/benchmark.py`` reports the effect on whole explanations).

Results equal ``F.linear`` up to float summation order (max abs diff ~1e-4 on unit-scale inputs);
greedy explanations of the default checkpoint come out identical. The layer has no gradient and
refuses ``state_dict()`` (so a packed model cannot be saved incomplete by mistake): use it on a
model that is only run (:class:`emosem.inference.EmoSEMPredictor` does; ``unpack_linears`` undoes
it).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["PackedLinear", "packing_supported", "pack_linears", "unpack_linears"]


def _ops_present() -> bool:
    ops = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available()
            and hasattr(ops, "_reorder_linear_weight") and hasattr(ops, "_linear_pointwise"))


def _refuse_to_save(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    raise RuntimeError(f"{prefix.rstrip('.') or 'a layer'} holds a packed inference-only weight that "
                       "cannot be saved; call emosem.inference.packed_linear.unpack_linears(model) first")


class PackedLinear(nn.Module):
    """``y = x @ W.T + b`` with ``W`` [out, in] stored prepacked; x [..., in] → [..., out]."""

    def __init__(self, linear: nn.Linear, batch_hint: int = 1) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        w = linear.weight.detach()
        # Plain attributes, not buffers: a blocked oneDNN tensor cannot be moved or saved.
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(w.contiguous(), batch_hint)
        self.bias = None if linear.bias is None else linear.bias.detach()
        self.weight_dtype = w.dtype
        self._register_state_dict_hook(_refuse_to_save)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")

    def unpack(self) -> nn.Linear:
        """The equivalent ``nn.Linear`` (weights copied back to the dense layout)."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        device="cpu", dtype=self.weight_dtype)
        with torch.no_grad():
            lin.weight.copy_(self.packed_weight.to_dense())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin.requires_grad_(False)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}, packed=oneDNN"


def packing_supported(device: torch.device | str, dtype: torch.dtype = torch.float32) -> bool:
    """True where prepacking applies (CPU float32, oneDNN built in) and checks out numerically."""
    if torch.device(device).type != "cpu" or dtype != torch.float32 or not _ops_present():
        return False
    try:
        g = torch.Generator().manual_seed(0)
        lin = nn.Linear(64, 96)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(96, 64, generator=g))
            x = torch.randn(3, 5, 64, generator=g)
            ok = torch.allclose(PackedLinear(lin)(x), lin(x), rtol=1e-4, atol=1e-4)
    except (RuntimeError, NotImplementedError) as err:  # an op missing on this build
        logger.info("oneDNN weight packing unavailable: %s", err)
        return False
    return bool(ok)


def _swap(module: nn.Module, old: type, make) -> int:
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is old:  # exact type: LoRA/quantised wrappers are left alone
                new = make(child)
                if new is not child:
                    setattr(parent, name, new)
                    count += 1
    return count


@torch.no_grad()
def pack_linears(module: nn.Module, batch_hint: int = 1) -> int:
    """Replace every float32 CPU ``nn.Linear`` in ``module`` by a :class:`PackedLinear`, in place.

    Tied weights (an LM head sharing the embedding matrix) keep working: the embedding stays a
    normal parameter and the head gets its own packed copy. Returns how many layers were packed.
    """
    def make(lin: nn.Linear) -> nn.Module:
        if lin.weight.device.type != "cpu" or lin.weight.dtype != torch.float32:
            return lin
        return PackedLinear(lin, batch_hint)

    return _swap(module, nn.Linear, make)


def unpack_linears(module: nn.Module) -> int:
    """Undo :func:`pack_linears` (the layers come back as frozen ``nn.Linear``)."""
    return _swap(module, PackedLinear, lambda p: p.unpack())
