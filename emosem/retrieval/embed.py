"""Region embeddings: the frozen encoder's features pooled under a stimulus mask.

A region's vector is built from the image features the predictor caches (``ImageState``), so
indexing a finished collection run re-runs the image encoder only, never the mask decoder nor the
language model. Feature kinds (:data:`FEATURES`):

* ``concepts`` — the pretrained ImageNet backbone's head map [1280, h/2, w/2] (what the region
  shows); falls back to ``sam`` for an encoder without one;
* ``sam`` — SAM's 256-channel image embedding [256, h, w] (the decoder's input);
* ``both`` — each L2-normalised, then concatenated.

The vector is the L2-normalised pooled feature, optionally followed by the emotion's one-hot
(nine ArtEmis emotions, weight ``emotion_weight``) and a few measured cue numbers (weight
``cue_weight``), and normalised again, so an inner product is a cosine similarity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from emosem.emotions import ARTEMIS_EMOTIONS, is_artemis_emotion, parse_emotion
from emosem.modeling.image_encoders import split_image_features

FEATURES = ("concepts", "sam", "both")


@dataclass(frozen=True)
class EmbeddingSpec:
    """How region vectors are made; stored in the index so every vector of one index agrees."""

    features: str = "concepts"
    emotion_weight: float = 0.0
    cue_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {', '.join(FEATURES)}, got {self.features!r}")
        for name in ("emotion_weight", "cue_weight"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def record(self) -> dict[str, Any]:
        return asdict(self)


# The index's default vector: both feature maps pooled, the emotion one-hot at weight 1 and the
# measured cue numbers at 0.5 (chosen by `emosem search evaluate`: docs/results/issue25_search.json).
DEFAULT_SPEC = EmbeddingSpec("both", emotion_weight=1.0, cue_weight=0.5)


def feature_maps(embedding: torch.Tensor, concept_map: torch.Tensor | None, features: str) -> list[torch.Tensor]:
    """The maps to pool, each [1, C, h, w]: see :data:`FEATURES`."""
    sam = split_image_features(embedding)[0]
    if features == "sam" or concept_map is None:
        return [sam]
    if features == "concepts":
        return [concept_map]
    return [concept_map, sam]


def pool_under_masks(fmap: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Masked mean of ``fmap`` [1, C, h, w] under ``masks`` [n, S, S] (float in [0, 1], in the
    model's padded input frame) → [n, C]. Each mask is area-resized to the map's grid, so a region
    smaller than one cell still gets its cell's share; an all-zero mask gives a zero row."""
    weights = F.interpolate(masks[:, None].float(), size=fmap.shape[-2:], mode="area")[:, 0]  # [n, h, w]
    total = weights.flatten(1).sum(1, keepdim=True)  # [n, 1]
    pooled = torch.einsum("nhw,chw->nc", weights, fmap[0].float())
    return pooled / total.clamp_min(1e-8)


def emotion_onehot(emotion: str) -> np.ndarray:
    """[9] one-hot of an ArtEmis emotion (zeros for a free-text one)."""
    out = np.zeros(len(ARTEMIS_EMOTIONS), np.float32)
    if is_artemis_emotion(emotion):
        out[ARTEMIS_EMOTIONS.index(parse_emotion(emotion))] = 1.0
    return out


def cue_numbers(cues: dict[str, Any] | None) -> np.ndarray:
    """[7] measured numbers of a region, each scaled to about [-1, 1]: centroid x, y, area
    fraction, lightness, chroma, warmth, contrast (zeros without cues)."""
    c = cues or {}
    try:
        x, y = (c.get("centroid") or [0.5, 0.5])[:2]
        vals = [2 * float(x) - 1, 2 * float(y) - 1, 2 * float(c.get("area_fraction", 0.0)) - 1,
                float(c.get("lightness", 50.0)) / 50 - 1, float(c.get("chroma", 0.0)) / 50,
                float(c.get("warmth", 0.0)) / 50, float(c.get("contrast", 0.0)) / 50]
    except (TypeError, ValueError):
        return np.zeros(7, np.float32)
    return np.clip(np.asarray(vals, np.float32), -2, 2)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` [n, d] scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def compose(pooled: list[np.ndarray], emotions: list[str], cues: list[dict | None],
            spec: EmbeddingSpec) -> np.ndarray:
    """Region vectors [n, d]: each pooled block [n, C_i] normalised, concatenated, then the
    weighted emotion one-hot and cue numbers; the whole row normalised."""
    parts = [normalize_rows(p) for p in pooled]
    if spec.emotion_weight > 0:
        parts.append(spec.emotion_weight * np.stack([emotion_onehot(e) for e in emotions]))
    if spec.cue_weight > 0:
        parts.append(spec.cue_weight * np.stack([cue_numbers(c) for c in cues]) / np.sqrt(7))
    return normalize_rows(np.concatenate(parts, axis=1))


def padded_masks(transform: Any, masks: list[np.ndarray]) -> torch.Tensor:
    """Masks at any image size [H, W] → [n, S, S] float in the model's padded input frame
    (``SamTransform.apply_mask``: resized like the image, zero-padded)."""
    return torch.stack([transform.apply_mask(m) for m in masks])


@torch.no_grad()
def embed_regions(state: Any, transform: Any, masks: list[np.ndarray], emotions: list[str],
                  cues: list[dict | None], spec: EmbeddingSpec) -> np.ndarray:
    """Vectors [n, d] of ``masks`` (each [H, W] bool, any size) of one encoded image ``state``
    (``ImageState``: ``embedding`` [1, C, h, w], ``concept_map`` or None)."""
    if not masks:
        return np.zeros((0, 0), np.float32)
    m = padded_masks(transform, masks).to(state.embedding.device)
    pooled = [pool_under_masks(f, m).cpu().numpy() for f in feature_maps(state.embedding, state.concept_map, spec.features)]
    return compose(pooled, emotions, cues, spec)


@torch.no_grad()
def embed_whole(state: Any, transform: Any, features: str) -> np.ndarray:
    """[d] vector of the whole painting: the same features pooled under the image's extent
    (not the padding), each block normalised, concatenated and normalised; used for
    near-duplicate groups and as the whole-image baseline."""
    h, w = state.input_size
    full = torch.zeros(1, transform.image_size, transform.image_size, device=state.embedding.device)
    full[:, :h, :w] = 1.0
    pooled = [pool_under_masks(f, full).cpu().numpy() for f in feature_maps(state.embedding, state.concept_map, features)]
    return normalize_rows(np.concatenate([normalize_rows(p) for p in pooled], axis=1))[0]
