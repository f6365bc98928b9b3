"""EmoSEM: segment and explain the emotion stimuli in visual art.

Heavy parts load lazily: ``from emosem import EmoSEM, EmoSEMPredictor``.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "EmoSEM": "emosem.modeling.emosem",
    "EmoSEMPredictor": "emosem.inference.predictor",
    "load_config": "emosem.config",
    "ARTEMIS_EMOTIONS": "emosem.emotions",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emosem' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
