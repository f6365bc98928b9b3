"""What a benchmark run measures: :class:`BenchmarkSettings`, checked where the values enter.

    settings = BenchmarkSettings(checkpoint="runs/x/best", what="infer", quick=True).resolve()

``resolve()`` fills what is not given from the full or the ``quick`` defaults, checks every value
and raises :class:`BenchmarkSettingError` (``name`` = the field) with a message that names no
command-line flag; the CLI prints it with the flag's name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FULL", "QUICK", "WHAT", "BenchmarkSettingError", "BenchmarkSettings", "default_image"]

WHAT = ("infer", "train", "all")
MEMORY_CHOICES = ("auto", "hwm", "psutil", "none")

# Defaults (full run) and the quick ones; the order is the report's.
FULL = {
    "repeats": 5, "warmup": 1, "cold_repeats": 3, "max_new_tokens": 40,
    "image_sizes": (256, 512, 1024), "encoder_sizes": (256, 512, 1024),
    "emotion_counts": (1, 3, 9), "train_batch_sizes": (4, 8), "collection_images": 4,
}
QUICK = {
    "repeats": 2, "warmup": 1, "cold_repeats": 1, "max_new_tokens": 8,
    "image_sizes": (256, 512), "encoder_sizes": (256, 512),
    "emotion_counts": (1, 9), "train_batch_sizes": (4,), "collection_images": 2,
}


class BenchmarkSettingError(ValueError):
    """A setting out of range: ``name`` is the field, ``message`` what is wrong."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name} {message}")
        self.name = name
        self.message = message


def default_image() -> Path | None:
    """``demo/assets/starry_night.jpg`` (else the first sample painting; ``None`` if none)."""
    from emosem.paths import DEMO_ASSETS_DIR as assets

    preferred = assets / "starry_night.jpg"
    if preferred.is_file():
        return preferred
    found = sorted(assets.glob("*.jpg")) if assets.is_dir() else []
    return found[0] if found else None


@dataclass
class BenchmarkSettings:
    """A benchmark run. ``None`` takes the full or (``quick``) the quick default.

    ``checkpoint``: an EmoSEM checkpoint folder (default: the bundled one); ``what``: ``infer``
    (stages, ratios, scaling), ``train`` (optimizer steps) or ``all``; ``image``: the painting
    (default: :func:`default_image`); ``emotion``: of the one-emotion stages; ``repeats``: timed
    calls per stage; ``warmup``: untimed calls first; ``cold_repeats``: fresh-process cold starts
    (0 skips them); ``max_new_tokens``: forced explanation length; ``image_sizes`` /
    ``encoder_sizes`` / ``emotion_counts`` / ``train_batch_sizes``: the scaling points;
    ``collection_images``: paintings in the collection run (``--emotion all`` with explanations,
    per LM runtime; 0 skips it, else at least 2: the rate is measured after the first);
    ``threads``: ``torch.set_num_threads`` (and the cold-start processes' ``OMP_NUM_THREADS``);
    ``device``: ``auto|cpu|cuda|mps``; ``memory``: the per-stage memory method.
    """

    checkpoint: str | Path | None = None
    what: str = "all"
    image: str | Path | None = None
    emotion: str = "awe"
    quick: bool = False
    repeats: int | None = None
    warmup: int | None = None
    cold_repeats: int | None = None
    max_new_tokens: int | None = None
    image_sizes: tuple[int, ...] | None = None
    encoder_sizes: tuple[int, ...] | None = None
    emotion_counts: tuple[int, ...] | None = None
    train_batch_sizes: tuple[int, ...] | None = None
    collection_images: int | None = None
    threads: int | None = None
    device: str = "auto"
    memory: str = "auto"

    def _check_counts(self) -> None:
        for key in ("repeats", "max_new_tokens"):
            if getattr(self, key) < 1:
                raise BenchmarkSettingError(key, f"must be at least 1, got {getattr(self, key)}")
        for key in ("warmup", "cold_repeats"):
            if getattr(self, key) < 0:
                raise BenchmarkSettingError(key, f"must be 0 or more, got {getattr(self, key)}")
        for key in ("image_sizes", "encoder_sizes", "emotion_counts", "train_batch_sizes"):
            values = getattr(self, key)
            if not values or min(values) < 1:
                raise BenchmarkSettingError(key, f"must be positive integers, got {values!r}")
        if self.collection_images == 1 or self.collection_images < 0:
            raise BenchmarkSettingError("collection_images", "must be 0 (skip) or at least 2 (the "
                                        f"rate is measured after the first), got {self.collection_images}")
        if max(self.emotion_counts) > 9:
            raise BenchmarkSettingError("emotion_counts", "go up to 9 (the ArtEmis emotions)")
        if self.threads is not None and self.threads < 1:
            raise BenchmarkSettingError("threads", f"must be at least 1, got {self.threads}")

    def _check_choices(self) -> None:
        from emosem.machine import check_device

        if self.what not in WHAT:
            raise BenchmarkSettingError("what", f"must be one of {', '.join(WHAT)}, "
                                        f"got {self.what!r}")
        if self.memory not in MEMORY_CHOICES:
            raise BenchmarkSettingError("memory", f"must be one of {', '.join(MEMORY_CHOICES)}, "
                                        f"got {self.memory!r}")
        try:
            check_device(self.device)
        except ValueError as e:
            raise BenchmarkSettingError("device", str(e).removeprefix("device ")) from None

    def _resolve_paths(self) -> dict[str, Path]:
        from emosem.paths import default_checkpoint

        checkpoint = Path(self.checkpoint) if self.checkpoint else default_checkpoint()
        if not (checkpoint / "config.json").is_file():
            raise BenchmarkSettingError(
                "checkpoint", f"{checkpoint} is not an EmoSEM checkpoint: give a folder with "
                "config.json and model.safetensors (e.g. a training run's best/)")
        if self.image:
            image = Path(self.image)
            if not image.is_file():
                raise BenchmarkSettingError("image", f"{image}: no such file")
        else:
            image = default_image()
            if image is None:
                raise BenchmarkSettingError("image", "not given and there is no sample painting "
                                            "in demo/assets/")
        return {"checkpoint": checkpoint, "image": image}

    def resolve(self) -> BenchmarkSettings:
        """A copy with every default filled in and every value checked (emotion counts always
        include 1 and 9, sorted); raises :class:`BenchmarkSettingError`."""
        base = QUICK if self.quick else FULL
        filled = {k: (base[k] if getattr(self, k) is None else getattr(self, k)) for k in base}
        for key in ("image_sizes", "encoder_sizes", "emotion_counts", "train_batch_sizes"):
            filled[key] = tuple(int(v) for v in filled[key])
        s = dataclasses.replace(self, **filled)
        s._check_counts()
        s.emotion_counts = tuple(sorted(set(s.emotion_counts) | {1, 9}))
        s._check_choices()
        return dataclasses.replace(s, **s._resolve_paths())

    def measured(self) -> dict[str, Any]:
        """The scaling and repetition settings, in report order (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k in FULL for v in (getattr(self, k),)}
