"""EfficientNet-Lite in plain ``torch.nn``, laid out as timm's ``tf_efficientnet_lite{0,2}``.

The frozen image encoder sits on the mask path, and importing timm costs seconds there: timm
imports torchvision, which imports ``torch._dynamo`` (and sympy). This module defines the same
network from its published architecture (Tan & Le 2019, the "lite" variant: no squeeze-excite,
ReLU6, fixed stem and head) with timm's module names, so state dicts move between the two
unchanged (``tests/test_image_encoders.py`` checks keys, shapes and outputs against timm).

TensorFlow "same" padding: a stride-1 convolution pads ``k // 2`` on every side; a stride-2 one
pads ``max((ceil(n / s) − 1) · s + k − n, 0)`` per axis, the smaller half first (timm's
``Conv2dSame``). BatchNorm eps 1e-3.

Shapes at input ``[B, 3, S, S]``: stem S/2 (32) → stages of strides 2, 4, 8, 8·, 16, 32, 32 (16, 24,
40, 80, 112, 192, 320 channels for lite0) → head ``[B, 1280, S/32, S/32]`` → logits ``[B, 1000]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3  # TensorFlow's default, as the converted weights expect
HEAD_FEATURES = 1280
STEM_CHANNELS = 32


@dataclass(frozen=True)
class StageSpec:
    """One stage of the architecture: block kind ("ds" depthwise-separable, "ir" inverted
    residual), repeats, kernel, first block's stride, expansion ratio, output channels."""

    kind: str
    repeats: int
    kernel: int
    stride: int
    expand: int
    channels: int


# EfficientNet-Lite's stages (timm's arch_def 'ds_r1_k3_s1_e1_c16', 'ir_r2_k3_s2_e6_c24', ...)
LITE_STAGES = (
    StageSpec("ds", 1, 3, 1, 1, 16),
    StageSpec("ir", 2, 3, 2, 6, 24),
    StageSpec("ir", 2, 5, 2, 6, 40),
    StageSpec("ir", 3, 3, 2, 6, 80),
    StageSpec("ir", 3, 5, 1, 6, 112),
    StageSpec("ir", 4, 5, 2, 6, 192),
    StageSpec("ir", 1, 3, 1, 6, 320),
)
# (channel multiplier, depth multiplier) of each variant
MULTIPLIERS = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2),
               "lite3": (1.2, 1.4), "lite4": (1.4, 1.8)}
# feature_info entries: the stages whose output is a new stride (2, 4, 8, 16, 32)
FEATURE_STAGES = (0, 1, 2, 4, 6)


def round_channels(channels: float, multiplier: float, divisor: int = 8) -> int:
    """Channels × multiplier rounded to a multiple of ``divisor``, never more than 10 % below."""
    if not multiplier:
        return int(channels)
    v = channels * multiplier
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def scaled_repeats(stages: tuple[StageSpec, ...], depth_multiplier: float) -> list[int]:
    """Repeats per stage: ceil(repeats × multiplier), the first and last stages fixed (lite)."""
    last = len(stages) - 1
    return [s.repeats if i in (0, last) else int(math.ceil(s.repeats * depth_multiplier))
            for i, s in enumerate(stages)]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) of one axis of ``size`` pixels."""
    pad = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return pad // 2, pad - pad // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "same" padding worked out from the input's size (stride > 1);
    a stride-1 convolution uses ordinary symmetric padding. Bias-free, as in EfficientNet."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        static = stride == 1
        super().__init__(in_ch, out_ch, kernel, stride, padding=kernel // 2 if static else 0,
                         groups=groups, bias=False)
        self.dynamic = not static

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic:
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = same_padding(x.shape[-2], k, s)
            left, right = same_padding(x.shape[-1], k, s)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm, then ReLU6 where ``act`` (timm's BatchNormAct2d: same parameter names)."""

    def __init__(self, channels: int, act: bool = True) -> None:
        super().__init__(channels, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class DepthwiseSeparable(nn.Module):
    """Depthwise k×k (stride s) → BN+ReLU6 → pointwise 1×1 → BN; residual when shapes agree."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv_dw = SameConv2d(in_ch, in_ch, kernel, stride, groups=in_ch)
        self.bn1 = BatchNormAct2d(in_ch)
        self.conv_pw = SameConv2d(in_ch, out_ch, 1)
        self.bn2 = BatchNormAct2d(out_ch, act=False)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))
        return x + y if self.residual else y


class InvertedResidual(nn.Module):
    """Pointwise expand ×e → BN+ReLU6 → depthwise k×k (stride s) → BN+ReLU6 → pointwise
    project → BN; residual when shapes agree (MobileNetV2's block, no squeeze-excite)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.conv_pw = SameConv2d(in_ch, mid, 1)
        self.bn1 = BatchNormAct2d(mid)
        self.conv_dw = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self.bn2 = BatchNormAct2d(mid)
        self.conv_pwl = SameConv2d(mid, out_ch, 1)
        self.bn3 = BatchNormAct2d(out_ch, act=False)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn3(self.conv_pwl(self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite ``variant`` ("lite0" … "lite4") with timm's attribute names:
    ``conv_stem``, ``bn1``, ``blocks`` (stages of blocks), ``conv_head``, ``bn2``, ``classifier``,
    plus ``feature_info`` ([{"num_chs", "reduction", "module"}] per stride) and
    ``num_features`` (1280), as the encoder and the concept head read them."""

    def __init__(self, variant: str = "lite0", num_classes: int = 1000) -> None:
        super().__init__()
        if variant not in MULTIPLIERS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; one of {sorted(MULTIPLIERS)}")
        width, depth = MULTIPLIERS[variant]
        self.conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self.bn1 = BatchNormAct2d(STEM_CHANNELS)
        stages, in_ch, reduction = [], STEM_CHANNELS, 2
        self.feature_info: list[dict] = []
        for i, (spec, repeats) in enumerate(zip(LITE_STAGES, scaled_repeats(LITE_STAGES, depth))):
            out_ch = round_channels(spec.channels, width)
            blocks = []
            for j in range(repeats):
                stride = spec.stride if j == 0 else 1
                if spec.kind == "ds":
                    blocks.append(DepthwiseSeparable(in_ch, out_ch, spec.kernel, stride))
                else:
                    blocks.append(InvertedResidual(in_ch, out_ch, spec.kernel, stride, spec.expand))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
            reduction *= spec.stride
            if i in FEATURE_STAGES:
                self.feature_info.append({"num_chs": out_ch, "reduction": reduction,
                                          "module": f"blocks.{i}", "stage": i + 1})
        self.blocks = nn.Sequential(*stages)
        self.num_features = HEAD_FEATURES
        self.conv_head = SameConv2d(in_ch, HEAD_FEATURES, 1)
        self.bn2 = BatchNormAct2d(HEAD_FEATURES)
        self.classifier = nn.Linear(HEAD_FEATURES, num_classes)

    def forward_intermediates(self, x: torch.Tensor, indices: list[int],
                              intermediates_only: bool = True) -> list[torch.Tensor]:
        """x [B,3,S,S] → the outputs of the ``feature_info`` entries ``indices`` (as timm's
        ``forward_intermediates(..., intermediates_only=True)``); stops after the last one."""
        if not intermediates_only:
            raise ValueError("only intermediates_only=True is supported")
        wanted = {self.feature_info[i]["stage"] for i in indices}
        out = []
        x = self.bn1(self.conv_stem(x))
        for stage, blocks in enumerate(self.blocks, start=1):
            x = blocks(x)
            if stage in wanted:
                out.append(x)
            if len(out) == len(wanted):
                break
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,3,S,S] → head features [B, 1280, S/32, S/32]."""
        return self.bn2(self.conv_head(self.blocks(self.bn1(self.conv_stem(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B,3,S,S] in ``(rgb − 127) / 128`` → ImageNet logits [B, 1000]."""
        return self.classifier(self.forward_features(x).mean(dim=(2, 3)))
