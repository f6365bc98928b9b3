"""Which data an evaluation scores, and which data fits its baselines.

    cfg, source = resolve_data_config("data/heldout", "runs/x/best")
    data = load_evaluation_data(cfg, source, checkpoint, split="all", fit_data=..., ...)

The baselines, the emotion classifier, the majority emotion and the prior are fitted on the
TRAIN split of ``fit_data`` (by default the evaluated data). With ``split="all"`` (a held-out
set) they are fitted on the training run's data when the checkpoint sits in a run folder whose
``config.yaml`` names another data root; otherwise on the evaluated set's own train split,
flagged as ``overlaps_evaluated``.
"""

from __future__ import annotations

import copy
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emosem.config import ConfigError, DataConfig, load_config

logger = logging.getLogger(__name__)

__all__ = [
    "SPLITS",
    "EvaluationData",
    "default_out_dir",
    "load_evaluation_data",
    "resolve_data_config",
]

SPLITS = ("train", "val", "test", "all")
#: The data-config fields a report lists.
REPORTED_DATA_FIELDS = ("root", "csv", "masks", "image_root", "split_ratios", "split_seed")


def _resolve_path(p: str | Path) -> Path:
    """``p`` as given if it exists (or is absolute), else relative to the repository root."""
    from emosem.paths import repo_root

    path = Path(p)
    if path.is_absolute() or path.exists():
        return path
    alt = repo_root() / path
    return alt if alt.exists() else path


def _run_data_config(checkpoint: Path) -> tuple[DataConfig, Path] | None:
    """The data section of ``<run>/config.yaml`` when ``checkpoint`` is ``<run>/best`` etc."""
    cfg_path = checkpoint.parent / "config.yaml"
    if not cfg_path.is_file():
        return None
    try:
        return load_config(cfg_path).data, cfg_path
    except (ConfigError, OSError, ValueError) as e:
        logger.warning("Ignoring the run config %s: %s", cfg_path, e)
        return None


def _same_folder(a: str | Path, b: str | Path) -> bool:
    try:
        return _resolve_path(a).resolve() == _resolve_path(b).resolve()
    except OSError:
        return False


def resolve_data_config(
    data_root: str | Path | DataConfig | None,
    checkpoint: str | Path,
    split_seed: int | None = None,
) -> tuple[DataConfig, str]:
    """The :class:`DataConfig` to evaluate on, and where it came from.

    A :class:`DataConfig` is used as given. A folder uses the run's ``config.yaml`` data
    settings (split ratios/seed, file names) when the checkpoint sits in a run folder trained on
    that same folder, else the defaults. ``None`` takes the run's data, else ``data/synthetic``.
    ``split_seed`` overrides the seed.
    """
    run = _run_data_config(Path(checkpoint))
    if isinstance(data_root, DataConfig):
        cfg, source = copy.deepcopy(data_root), "given DataConfig"
    elif data_root is None:
        if run is not None:
            cfg, source = copy.deepcopy(run[0]), f"run config {run[1]}"
        else:
            cfg, source = DataConfig(), "default"
    elif run is not None and _same_folder(run[0].root, data_root):
        cfg, source = copy.deepcopy(run[0]), f"run config {run[1]}"
        cfg.root = str(data_root)
    else:
        cfg, source = DataConfig(root=str(data_root)), "defaults for the given folder"
    cfg.root = str(_resolve_path(cfg.root))
    if split_seed is not None:
        cfg.split_seed = int(split_seed)
    return cfg, source


def default_out_dir(checkpoint: Path, split: str) -> Path:
    """``outputs/eval/<checkpoint name>-<split>`` (``<run>-best`` for a run's best/last)."""
    name = checkpoint.name or "checkpoint"
    if name in ("best", "last") and checkpoint.parent.name:
        name = f"{checkpoint.parent.name}-{name}"
    return Path("outputs") / "eval" / f"{name}-{split}"


@dataclass
class EvaluationData:
    """The evaluated samples (grouped by painting) and the train samples that fit the baselines.

    ``data`` / ``fit_data``: the loaded :class:`ArtEmisData` of each; ``by_key``: painting key →
    its evaluated samples, in data order.
    """

    config: DataConfig
    source: str
    split: str
    data: Any
    samples: list[Any]
    by_key: dict[str, list[Any]]
    fit_config: DataConfig
    fit_source: str
    fit_data: Any
    train_samples: list[Any]
    overlaps: bool
    _by_id: dict[tuple[str, str], Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {(s.key, s.emotion): s for s in self.samples}

    @property
    def paintings(self) -> list[str]:
        return list(self.by_key)

    def sample(self, key: str, emotion: str) -> Any:
        """The evaluated sample of ``(key, emotion)``."""
        return self._by_id[key, emotion]

    def data_section(self) -> dict[str, Any]:
        """``report["data"]``."""
        fields = {k: v for k, v in asdict(self.config).items() if k in REPORTED_DATA_FIELDS}
        return {**fields, "source": self.source}

    def fit_section(self) -> dict[str, Any]:
        """``report["fit"]``."""
        return {
            "data": self.fit_config.root,
            "split": "train",
            "source": self.fit_source,
            "split_seed": self.fit_config.split_seed,
            "n_train_samples": len(self.train_samples),
            "overlaps_evaluated": bool(self.overlaps),
        }


def _subset(samples: list[Any], max_samples: int | None, seed: int) -> list[Any]:
    """A seeded random subset of ``max_samples``, kept in data order (paintings stay together)."""
    if max_samples is not None and max_samples < len(samples):
        keep = sorted(random.Random(seed).sample(range(len(samples)), max_samples))
        samples = [samples[i] for i in keep]
    return samples


def _fit_config(
    fit_data: Any, data_cfg: DataConfig, checkpoint: Path, split: str, split_seed: int | None
) -> tuple[DataConfig, str]:
    if fit_data is not None:
        cfg, _ = resolve_data_config(fit_data, checkpoint, split_seed)
        return cfg, f"given ({cfg.root})"
    if split == "all":
        run = _run_data_config(checkpoint)
        if run is not None and not _same_folder(run[0].root, data_cfg.root):
            return resolve_data_config(None, checkpoint, None)[0], f"run config {run[1]}"
    return data_cfg, "the evaluated data"


def load_evaluation_data(
    data_root: Any,
    checkpoint: Path,
    split: str,
    *,
    split_seed: int | None = None,
    fit_data: Any = None,
    max_samples: int | None = None,
    seed: int = 0,
    warn: bool = True,
) -> EvaluationData:
    """Load the evaluated split (``max_samples``: a ``seed``-ed subset) and the fitting data.

    Raises ``ValueError`` when the split is empty (and the data loaders' errors on bad data).
    """
    from emosem.data.splits import build_splits

    data_cfg, data_source = resolve_data_config(data_root, checkpoint, split_seed)
    splits = build_splits(data_cfg, check_images=True)
    samples = list(splits.data.samples) if split == "all" else list(splits.get(split).samples)
    samples = _subset(samples, max_samples, seed)
    if not samples:
        raise ValueError(f"The {split} split of {data_cfg.root} is empty: nothing to evaluate.")
    by_key: dict[str, list[Any]] = {}
    for s in samples:
        by_key.setdefault(s.key, []).append(s)

    fit_cfg, fit_source = _fit_config(fit_data, data_cfg, checkpoint, split, split_seed)
    fit_splits = splits if fit_cfg is data_cfg else build_splits(fit_cfg, check_images=False)
    overlaps = _same_folder(fit_cfg.root, data_cfg.root) and (
        split in ("all", "train")
        or fit_cfg.split_seed != data_cfg.split_seed
        or list(fit_cfg.split_ratios) != list(data_cfg.split_ratios)
    )
    if overlaps and warn:
        logger.warning(
            "The baselines and the emotion classifier are fitted on the train split of %s, which "
            "overlaps the evaluated samples (split %r); pass fit_data / --fit-data to avoid it.",
            fit_cfg.root,
            split,
        )
    return EvaluationData(
        config=data_cfg,
        source=data_source,
        split=split,
        data=splits.data,
        samples=samples,
        by_key=by_key,
        fit_config=fit_cfg,
        fit_source=fit_source,
        fit_data=fit_splits.data,
        train_samples=list(fit_splits.train.samples),
        overlaps=overlaps,
    )
