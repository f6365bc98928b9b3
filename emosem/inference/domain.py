"""How far a painting (and each region of it) lies from the paintings the model learned from.

The frozen ImageNet backbone's maps (EfficientNet-Lite strides 8, 16 and 32 and its 1280-channel
head, see :meth:`~emosem.modeling.image_encoders.EfficientNetLiteEncoder.domain_maps`) are pooled
under a weight — the valid (unpadded) canvas for the whole image, a mask for a region — into the
per-channel mean and standard deviation of each map (the second are the texture statistics of
style transfer). A Gaussian fitted to the pooled features of the checkpoint's training images
(probabilistic PCA: the top principal directions with their own variances, the rest shrunk to one
shared noise variance) gives a Mahalanobis distance; the distances of *held-out* training images
turn it into a score in [0, 1]: the share of held-out training images that lie farther away
(about uniform on training-like images, 0 beyond all of them). Regions get a second Gaussian
fitted on the training regions (their ground-truth masks).

The statistics live in the checkpoint folder, ``domain/domain.safetensors`` + ``domain/domain.json``,
written by ``tools/fit_domain.py`` (see :func:`fit_domain`); a checkpoint without them scores None.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from emosem.in_domain import IN_DOMAIN_THRESHOLD, domain_note, is_in_domain
from emosem.modeling.errors import CheckpointError, load_safetensors

__all__ = ["DomainModel", "IN_DOMAIN_THRESHOLD", "domain_note", "fit_checkpoint_domain", "is_in_domain",
           "load_domain", "pooled_features"]

logger = logging.getLogger(__name__)

DOMAIN_DIR = "domain"
STATS_NAME = "domain.safetensors"
META_NAME = "domain.json"
FORMAT = 1
DEFAULT_COMPONENTS = 32


# ---------------------------------------------------------------------- features
def pooled_features(maps: list[torch.Tensor], weight: torch.Tensor) -> torch.Tensor:
    """Weighted per-channel mean and standard deviation of each map.

    Args:
        maps: feature maps [B, C_l, h_l, w_l] of one image batch (any resolutions).
        weight: [B, 1, H, W] non-negative weights on the canvas the maps cover (the valid area of
            the image, or a region's mask); resized to each map by area averaging.

    Returns:
        [B, sum_l 2·C_l] float32: (mean_l, std_l) per map, in the order of ``maps``.
    """
    out = []
    for m in maps:
        w = F.interpolate(weight.float(), size=m.shape[-2:], mode="area")
        w = w / w.sum(dim=(2, 3), keepdim=True).clamp_min(1e-8)
        m = m.float()
        mean = (m * w).sum(dim=(2, 3))
        var = ((m - mean[..., None, None]) ** 2 * w).sum(dim=(2, 3))
        out += [mean, var.clamp_min(0).sqrt()]
    return torch.cat(out, dim=1)


def valid_weight(input_size: tuple[int, int], canvas: int) -> torch.Tensor:
    """[1, 1, S, S] weight: 1 on the resized image, 0 on the padding (bottom/right)."""
    w = torch.zeros(1, 1, canvas, canvas)
    w[..., : input_size[0], : input_size[1]] = 1.0
    return w


# ---------------------------------------------------------------------- the Gaussian
@dataclass
class Gaussian:
    """Probabilistic-PCA Gaussian on standardised features.

    ``mean``/``scale`` [D] standardise; ``components`` [k, D] (orthonormal rows) with their
    ``variances`` [k]; every other direction has variance ``noise``.
    """

    mean: torch.Tensor
    scale: torch.Tensor
    components: torch.Tensor
    variances: torch.Tensor
    noise: float

    @classmethod
    def fit(cls, x: torch.Tensor, k: int = DEFAULT_COMPONENTS) -> Gaussian:
        """Fit on features x [N, D] (N > k)."""
        x = x.double()
        n, d = x.shape
        if n <= k + 1:
            raise ValueError(f"{n} samples cannot fit {k} components; use more images or fewer components")
        mean = x.mean(0)
        scale = x.std(0).clamp_min(1e-6)
        z = (x - mean) / scale
        _, s, vh = torch.linalg.svd(z, full_matrices=False)
        eig = s**2 / (n - 1)
        rest = eig[k:]
        noise = float(rest.sum() / max(d - k, 1)) if len(rest) else float(eig[-1])
        return cls(mean.float(), scale.float(), vh[:k].float(), eig[:k].float(), max(noise, 1e-6))

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance per row, divided by D: x [N, D] → [N]."""
        z = (x.float() - self.mean) / self.scale
        proj = z @ self.components.T
        inside = (proj**2 / self.variances).sum(1)
        resid = (z**2).sum(1) - (proj**2).sum(1)
        return (inside + resid.clamp_min(0) / self.noise) / z.shape[1]

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.mean": self.mean, f"{prefix}.scale": self.scale,
                f"{prefix}.components": self.components.half(), f"{prefix}.variances": self.variances,
                f"{prefix}.noise": torch.tensor([self.noise])}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], prefix: str) -> Gaussian:
        return cls(*(t[f"{prefix}.{k}"].float() for k in ("mean", "scale", "components", "variances")),
                   float(t[f"{prefix}.noise"][0]))


def layer_slices(maps_channels: list[int]) -> list[tuple[int, int]]:
    """Column ranges of each map's (mean, std) block in :func:`pooled_features`' output."""
    out, start = [], 0
    for c in maps_channels:
        out.append((start, start + 2 * c))
        start += 2 * c
    return out


@dataclass
class LayeredGaussian:
    """One :class:`Gaussian` per map (columns ``slices`` of the pooled features); the distance is
    the mean over maps of the log distance, so that each level of the pyramid (texture at stride
    8 up to the ImageNet head) counts alike, however many channels it has."""

    slices: list[tuple[int, int]]
    gaussians: list[Gaussian]

    @classmethod
    def fit(cls, x: torch.Tensor, slices: list[tuple[int, int]], k: int) -> LayeredGaussian:
        return cls(slices, [Gaussian.fit(x[:, a:b], k) for a, b in slices])

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, D] → mean log distance [N]."""
        return torch.stack([g.distance(x[:, a:b]).clamp_min(1e-12).log()
                            for (a, b), g in zip(self.slices, self.gaussians)]).mean(0)

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        out = {f"{prefix}.slices": torch.tensor(self.slices, dtype=torch.int64)}
        for i, g in enumerate(self.gaussians):
            out.update(g.tensors(f"{prefix}.{i}"))
        return out

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], prefix: str) -> LayeredGaussian:
        slices = [(int(a), int(b)) for a, b in t[f"{prefix}.slices"].tolist()]
        return cls(slices, [Gaussian.from_tensors(t, f"{prefix}.{i}") for i in range(len(slices))])


@dataclass
class CalibratedGaussian:
    """A :class:`LayeredGaussian` and the sorted distances of held-out training samples [M]."""

    model: LayeredGaussian
    held_out: torch.Tensor

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """features [N, D] → in-domain score [N] in [0, 1]: share of held-out samples farther."""
        d = self.model.distance(features)
        farther = len(self.held_out) - torch.searchsorted(self.held_out, d, right=False)
        return farther.float() / len(self.held_out)

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {**self.model.tensors(prefix), f"{prefix}.held_out": self.held_out}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], prefix: str) -> CalibratedGaussian:
        return cls(LayeredGaussian.from_tensors(t, prefix), t[f"{prefix}.held_out"].float())


# ---------------------------------------------------------------------- the model
@dataclass
class DomainModel:
    """Image- and region-level in-domain scores of one checkpoint (see the module docstring)."""

    image: CalibratedGaussian
    region: CalibratedGaussian | None
    meta: dict[str, Any]

    def image_score(self, features: torch.Tensor) -> float:
        """Pooled features [1, D] of a whole image → score in [0, 1]."""
        return round(float(self.image.score(features)[0]), 4)

    def region_scores(self, features: torch.Tensor) -> list[float | None]:
        """Pooled features [N, D] of N regions → scores in [0, 1] (None without region statistics)."""
        if self.region is None:
            return [None] * features.shape[0]
        return [round(float(s), 4) for s in self.region.score(features)]

    def save(self, folder: str | Path) -> Path:
        """Write ``domain.safetensors`` and ``domain.json`` into ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = self.image.tensors("image")
        if self.region is not None:
            tensors.update(self.region.tensors("region"))
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / STATS_NAME),
                  metadata={"format": "pt"})
        meta = {"format": FORMAT, "in_domain_threshold": IN_DOMAIN_THRESHOLD, **self.meta}
        (folder / META_NAME).write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> DomainModel | None:
        """The statistics in ``folder`` (a checkpoint's ``domain/``), or None where there are none."""
        folder = Path(folder)
        if not (folder / STATS_NAME).is_file():
            return None
        try:
            meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{folder / META_NAME} cannot be read: {e}; run tools/fit_domain.py "
                                  "again") from None
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{folder} holds in-domain statistics of format {meta.get('format')!r}, "
                                  f"this toolkit reads {FORMAT}; run tools/fit_domain.py again")
        t = load_safetensors(folder / STATS_NAME)
        try:
            image = CalibratedGaussian.from_tensors(t, "image")
            region = CalibratedGaussian.from_tensors(t, "region") if "region.slices" in t else None
        except KeyError as e:
            raise CheckpointError(f"{folder / STATS_NAME} lacks {e}; run tools/fit_domain.py again") from None
        return cls(image, region, meta)


def load_domain(checkpoint: str | Path) -> DomainModel | None:
    """A checkpoint's in-domain statistics (``CHECKPOINT/domain/``), or None for older ones."""
    return DomainModel.load(Path(checkpoint) / DOMAIN_DIR)


# ---------------------------------------------------------------------- fitting
class DomainFeaturizer:
    """Pooled in-domain features of images and regions through a model's frozen encoder, on the
    same canvas the predictor uses (longest side resized to the model's input, zero padding)."""

    def __init__(self, encoder: torch.nn.Module, image_size: int) -> None:
        from emosem.data.transforms import SamTransform

        if not hasattr(encoder, "domain_maps"):
            raise ValueError("in-domain statistics need a pretrained encoder with a frozen "
                             "backbone (segmenter sam_effnet_lite0/lite2)")
        self.encoder = encoder
        self.transform = SamTransform(image_size)
        self.channels: list[int] = list(encoder.domain_channels)

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray, masks: Iterable[np.ndarray] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        """rgb [H, W, 3] uint8 and region masks [H, W] → (image features [1, D], regions [R, D])."""
        x, input_size = self.transform.apply_image(rgb)
        device = next(self.encoder.parameters()).device
        maps = self.encoder.domain_maps(x[None].to(device))
        image = pooled_features(maps, valid_weight(input_size, self.transform.image_size).to(device))
        weights = [self.transform.apply_mask(m) for m in masks]
        weights = [w for w in weights if w.sum() > 0]
        if not weights:
            return image.cpu(), image.new_zeros(0, image.shape[1]).cpu()
        w = torch.stack(weights)[:, None].to(device)
        regions = pooled_features([m.expand(len(w), -1, -1, -1) for m in maps], w)
        return image.cpu(), regions.cpu()


@dataclass
class FeatureSet:
    """Pooled features of a set of images: images [N, D] and their regions [R, D]."""

    images: torch.Tensor
    regions: torch.Tensor


def collect_features(featurizer: DomainFeaturizer,
                     items: Iterable[tuple[np.ndarray, list[np.ndarray]]],
                     progress: bool = False, total: int | None = None) -> FeatureSet:
    """Features of ``(rgb, region masks)`` items (see :class:`DomainFeaturizer`)."""
    from tqdm.auto import tqdm

    images, regions = [], []
    for rgb, masks in tqdm(items, total=total, disable=not progress, desc="domain features"):
        img, reg = featurizer(rgb, masks)
        images.append(img)
        regions.append(reg)
    return FeatureSet(torch.cat(images), torch.cat(regions))


def fit_domain(fit: FeatureSet, held_out: FeatureSet, channels: list[int],
               k: int = DEFAULT_COMPONENTS, meta: dict[str, Any] | None = None) -> DomainModel:
    """Gaussians on ``fit``'s images and regions, calibrated on ``held_out``'s (see the module
    docstring); ``channels`` are the pooled maps' channel counts (:attr:`DomainFeaturizer.
    channels`). Regions are left out when either set has too few of them."""
    slices = layer_slices(channels)

    def calibrated(train: torch.Tensor, held: torch.Tensor) -> CalibratedGaussian:
        g = LayeredGaussian.fit(train, slices, min(k, train.shape[0] // 2))
        return CalibratedGaussian(g, g.distance(held).sort().values)

    if len(held_out.images) < 10:
        raise ValueError(f"{len(held_out.images)} held-out images cannot calibrate the score; use 10 or more")
    image = calibrated(fit.images, held_out.images)
    region = calibrated(fit.regions, held_out.regions) \
        if len(fit.regions) > 2 * k and len(held_out.regions) >= 10 else None
    info = {"components": k, "feature_dim": int(fit.images.shape[1]), "maps": list(channels),
            "fit": {"images": len(fit.images), "regions": len(fit.regions)},
            "held_out": {"images": len(held_out.images), "regions": len(held_out.regions)}}
    return DomainModel(image, region, {**info, **(meta or {})})


def painting_items(data: Any, samples: Iterable[Any]) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """``(rgb, stimulus masks)`` per painting of ``samples`` (an :class:`~emosem.data.artemis.
    ArtEmisData`'s samples, several per painting), in first-seen order."""
    from emosem.data.image_io import load_image

    by_key: dict[str, list[Any]] = {}
    for s in samples:
        by_key.setdefault(s.key, []).append(s)
    for group in by_key.values():
        rgb = load_image(group[0].image_path)
        yield rgb, [data.decode_mask(s) for s in group if s.has_mask]


def encoder_identity(checkpoint_meta: dict[str, Any]) -> dict[str, Any]:
    """What in-domain statistics depend on in a checkpoint's ``config.json``: the segmenter, its
    input size and the frozen encoder's weights (a checkpoint that retrains only its language
    part keeps them valid)."""
    model = checkpoint_meta.get("model") or {}
    weights = checkpoint_meta.get("image_encoder_weights") or {}
    return {"segmenter": model.get("segmenter"), "encoder_sha256": weights.get("sha256")}


def statistics_fit(domain_meta: dict[str, Any], checkpoint_meta: dict[str, Any]) -> bool:
    """Whether statistics (their ``domain.json``) were fitted for this checkpoint's frozen encoder."""
    mine = encoder_identity(checkpoint_meta)
    return mine["encoder_sha256"] is not None and all(domain_meta.get(k) == v for k, v in mine.items())


def fit_checkpoint_domain(checkpoint: str | Path, data_root: str | Path | None = None,
                          fit_images: int = 1000, held_out_images: int = 400, seed: int = 0,
                          k: int = DEFAULT_COMPONENTS, progress: bool = False) -> DomainModel:
    """Fit the in-domain statistics of ``checkpoint`` on its training split (of ``data_root``,
    default: the run's data) and write them to ``CHECKPOINT/domain/``.

    The train split's paintings are shuffled (``seed``); the first ``fit_images`` fit the
    Gaussians, the next ``held_out_images`` calibrate the score. Only the frozen encoder is
    loaded (not the language model)."""
    import random

    from emosem.data.splits import build_splits
    from emosem.evaluation.data import resolve_data_config
    from emosem.modeling.emosem import EmoSEM

    model = EmoSEM.from_pretrained(checkpoint, load_lm=False)
    featurizer = DomainFeaturizer(model.sam.image_encoder, model.image_size)
    cfg, source = resolve_data_config(data_root, checkpoint)
    splits = build_splits(cfg, check_images=True)
    samples = list(splits.train.samples)
    keys = list(dict.fromkeys(s.key for s in samples))
    random.Random(seed).shuffle(keys)
    if len(keys) < 2 * DEFAULT_COMPONENTS + 10:
        raise ValueError(f"{cfg.root}'s train split has {len(keys)} paintings; the statistics need "
                         f"at least {2 * DEFAULT_COMPONENTS + 10}")
    n_held = min(held_out_images, len(keys) // 3)
    parts = {"fit": set(keys[n_held : n_held + fit_images]), "held_out": set(keys[:n_held])}
    sets = {name: collect_features(featurizer, painting_items(splits.data, [s for s in samples if s.key in ks]),
                                   progress=progress, total=len(ks))
            for name, ks in parts.items()}
    meta = {"data": str(data_root or cfg.root), "data_source": source, "split": "train",
            "seed": seed, **encoder_identity(model.metadata)}
    domain = fit_domain(sets["fit"], sets["held_out"], featurizer.channels, k, meta)
    domain.save(Path(checkpoint) / DOMAIN_DIR)
    logger.info("in-domain statistics of %s: %d paintings fit, %d calibrate", checkpoint,
                len(sets["fit"].images), len(sets["held_out"].images))
    return domain


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Probability that an ``outside`` sample lies farther than an ``inside`` one (ties: ½)."""
    a, b = np.asarray(inside, float)[None, :], np.asarray(outside, float)[:, None]
    return float((b > a).mean() + 0.5 * (b == a).mean())


def separation(domain: DomainModel, inside: FeatureSet, outside: FeatureSet) -> dict[str, Any]:
    """How well the image score tells ``inside`` images (e.g. held-out synthetic paintings) from
    ``outside`` ones (real paintings): AUROC on the distance, the margin between the nearest
    outside and the farthest inside image in standard deviations of the held-out training
    distances, and the share of each called in domain."""
    d_in = domain.image.model.distance(inside.images).numpy()
    d_out = domain.image.model.distance(outside.images).numpy()
    s_in = domain.image.score(inside.images).numpy()
    s_out = domain.image.score(outside.images).numpy()
    spread = float(domain.image.held_out.std())
    return {
        "auroc": round(auroc(d_in, d_out), 4),
        "margin_sd": round(float(d_out.min() - d_in.max()) / spread, 2),
        "inside": {"n": len(d_in), "in_domain": round(float(np.mean([is_in_domain(float(s)) for s in s_in])), 4),
                   "score_median": round(float(np.median(s_in)), 4)},
        "outside": {"n": len(d_out), "in_domain": round(float(np.mean([is_in_domain(float(s)) for s in s_out])), 4),
                    "score_max": round(float(s_out.max()), 4)},
    }
