"""Data: robust image loading, SAM preprocessing, ArtEmis CSV + COCO masks, datasets, synthetic set.

Names load lazily so that ``import emosem.data`` stays cheap (torch is only imported for the
dataset and the transforms)::

    from emosem.data import load_artemis, split_by_painting, StimulusDataset, collate_samples
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # image_io
    "ImageLoadError": "image_io",
    "load_image": "image_io",
    "image_size": "image_io",
    "DEFAULT_MAX_PIXELS": "image_io",
    "IMAGE_EXTENSIONS": "image_io",
    # transforms
    "SamTransform": "transforms",
    # artemis
    "StimulusSample": "artemis",
    "ArtEmisData": "artemis",
    "load_artemis": "artemis",
    "split_by_painting": "artemis",
    # report
    "DataReport": "report",
    "ArtEmisFormatError": "report",
    # rle
    "encode_mask": "rle",
    "decode_rle": "rle",
    # dataset
    "StimulusDataset": "dataset",
    "collate_samples": "dataset",
    # synthetic
    "MOTIFS": "synthetic",
    "Motif": "synthetic",
    "motif_by_name": "synthetic",
    "mentions_motif": "synthetic",
    "render_painting": "synthetic",
    "generate_synthetic_artemis": "synthetic",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"emosem.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'emosem.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = list(_EXPORTS)
