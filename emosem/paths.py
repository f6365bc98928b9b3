"""Where things live in the repository: its root and the default folders.

The relative spellings are what configs and command lines write (``model.lm``, ``data.root``);
the absolute ones do not depend on the working directory. Nothing heavy is imported here.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The repository root (``emosem/paths.py`` → one folder up)."""
    return Path(__file__).resolve().parents[1]


#: The base language model's short name, and its converted folder (``make weights``).
DEFAULT_LM_NAME = "smollm2-135m-instruct"
DEFAULT_LM = f"checkpoints/{DEFAULT_LM_NAME}"
DEFAULT_LM_DIR = repo_root() / DEFAULT_LM

#: The bundled EmoSEM checkpoint.
DEFAULT_CHECKPOINT = "checkpoints/emosem-tiny"

#: The synthetic ArtEmis-style data set (``make data``).
SYNTHETIC_DATA = "data/synthetic"

#: The public-domain sample paintings.
DEMO_ASSETS_DIR = repo_root() / "demo" / "assets"


#: The environment variables that name the user cache, in order (``EMOSEM_CACHE_DIR``: the
#: evaluation's name for it before there was one cache, still read).
CACHE_ENVS = ("EMOSEM_CACHE", "EMOSEM_CACHE_DIR")


def user_cache(*parts: str) -> Path:
    """A folder in the user's cache of derived files (exported graphs, reference scores, token
    texts, the evaluation's text-emotion classifier), joined with ``parts``: ``$EMOSEM_CACHE``,
    else ``$EMOSEM_CACHE_DIR``, else ``$XDG_CACHE_HOME/emosem``, else ``~/.cache/emosem``."""
    for name in CACHE_ENVS:
        if os.environ.get(name):
            return Path(os.environ[name], *parts)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg if xdg else Path.home() / ".cache", "emosem", *parts)


def default_checkpoint() -> Path:
    """The bundled checkpoint folder (``checkpoints/emosem-tiny`` in the repository)."""
    return repo_root() / DEFAULT_CHECKPOINT


__all__ = [
    "DEFAULT_CHECKPOINT",
    "DEFAULT_LM",
    "DEFAULT_LM_DIR",
    "DEFAULT_LM_NAME",
    "DEMO_ASSETS_DIR",
    "SYNTHETIC_DATA",
    "default_checkpoint",
    "repo_root",
    "user_cache",
]
