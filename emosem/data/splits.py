"""Datasets for a config: load the ArtEmis-style folder once, split by painting, wrap splits.

The data layer sits below the config: :func:`build_splits` takes any object with the fields of
:class:`SplitSettings` (``emosem.config.DataConfig`` has them) and imports nothing from above.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from emosem.data.artemis import ArtEmisData, load_artemis, split_by_painting
from emosem.data.dataset import StimulusDataset

logger = logging.getLogger(__name__)


class SplitSettings(Protocol):
    """What :func:`build_splits` reads: the data folder, its files, the split and the sizes."""

    root: str
    csv: str
    image_root: str
    masks: str | None
    split_ratios: Sequence[float]
    split_seed: int
    image_size: int
    max_train_samples: int | None
    max_eval_samples: int | None


@dataclass
class DataSplits:
    data: ArtEmisData
    train: StimulusDataset
    val: StimulusDataset
    test: StimulusDataset

    def get(self, split: str) -> StimulusDataset:
        if split not in ("train", "val", "test"):
            raise ValueError(f"Unknown split {split!r}; valid: train, val, test")
        return getattr(self, split)


def build_splits(cfg: SplitSettings, check_images: bool = True) -> DataSplits:
    """Load ``cfg.root`` and split by painting (``cfg.split_ratios``, ``cfg.split_seed``)."""
    data = load_artemis(
        cfg.root, csv=cfg.csv, image_root=cfg.image_root, masks=cfg.masks,
        check_images=check_images,
    )
    if not data.samples:
        raise ValueError(f"No usable samples in {cfg.root}:\n{data.report.summary()}")
    parts = split_by_painting(data.samples, tuple(cfg.split_ratios), seed=cfg.split_seed)
    if cfg.max_train_samples:
        parts["train"] = parts["train"][: cfg.max_train_samples]
    for name in ("val", "test"):
        if cfg.max_eval_samples:
            parts[name] = parts[name][: cfg.max_eval_samples]
    logger.info(
        "Data %s: %d train / %d val / %d test samples", cfg.root,
        len(parts["train"]), len(parts["val"]), len(parts["test"]),
    )
    return DataSplits(
        data=data,
        **{k: StimulusDataset(v, data, image_size=cfg.image_size) for k, v in parts.items()},
    )
