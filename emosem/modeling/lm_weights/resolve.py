"""Language-model names → folders: the checks of a prepared folder and :func:`resolve_lm_path`.

No heavy imports: checking an already prepared folder costs milliseconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from emosem.modeling.errors import LMWeightsNotFoundError
from emosem.paths import DEFAULT_LM, DEFAULT_LM_DIR, DEFAULT_LM_NAME, repo_root

#: Names that :func:`resolve_lm_path` maps to the converted default folder (case-insensitive).
DEFAULT_LM_ALIASES = frozenset({DEFAULT_LM_NAME, "smollm2", "smollm2-135m", "default"})

#: Written into every folder this package prepares: where the weights came from.
SOURCE_FILE = "emosem_lm_source.json"

_PREP_HINT = "run `make weights` (or `python tools/prepare_weights.py`)"

# --------------------------------------------------------------------------------------------
# Folder checks
# --------------------------------------------------------------------------------------------

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")


def is_hf_model_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` looks like a complete Hugging Face causal-LM folder.

    Checks, without importing ``transformers``: a parseable ``config.json`` with a
    ``model_type``, safetensors weights (every shard of a sharded index), and tokenizer files.
    """
    return hf_dir_problem(Path(path)) is None


def hf_dir_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable HF model folder, or None when it is."""
    if not path.is_dir():
        return f"{path} is not a folder"
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{path} has no config.json"
    except (OSError, ValueError) as exc:
        return f"{path}/config.json is unreadable ({exc})"
    if not isinstance(config, dict) or "model_type" not in config:
        return f"{path}/config.json has no model_type"
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError) as exc:
            return f"{index} is unreadable ({exc})"
        missing = sorted(s for s in shards if not (path / s).is_file())
        if missing:
            return f"{path} lacks weight shards {missing}"
    elif not any(path.glob("*.safetensors")):
        return f"{path} has no *.safetensors weights"
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        return f"{path} has no tokenizer files ({', '.join(_TOKENIZER_FILES)})"
    return None


def read_source(path: Path) -> dict | None:
    try:
        return json.loads((path / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


def looks_like_path(text: str) -> bool:
    """True when ``text`` is written as a folder path rather than a hub id (``owner/name``)."""
    return (text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text
            or text.endswith("/"))


def local_candidates(name: str) -> list[Path]:
    """Where a relative folder name may be: the working directory, then the repository root."""
    path = Path(name).expanduser()
    if path.is_absolute():
        return [path]
    return [Path.cwd() / path, repo_root() / path]


def resolve_lm_path(name_or_path: str | os.PathLike[str]) -> str:
    """Turn a configured language-model name into something ``from_pretrained`` accepts.

    * an existing folder (absolute, or relative to the working directory, then to the repo
      root) → its absolute path;
    * ``"smollm2-135m-instruct"`` (also ``"smollm2"``, ``"default"``) or the default folder's
      path → the converted default folder; a clear error if it has not been prepared yet;
    * anything else → returned unchanged, as a hub id.
    """
    name = os.fspath(name_or_path).strip()
    if not name:
        raise ValueError("empty language-model name; give a folder, a hub id or "
                         f"{DEFAULT_LM_NAME!r}")
    for candidate in local_candidates(name):
        if candidate.is_dir():
            return str(candidate.resolve())
    default_spellings = {str(DEFAULT_LM_DIR), DEFAULT_LM}
    if name.lower() in DEFAULT_LM_ALIASES or name.rstrip("/") in default_spellings:
        if is_hf_model_dir(DEFAULT_LM_DIR):
            return str(DEFAULT_LM_DIR)
        raise LMWeightsNotFoundError(
            f"the default language model ({DEFAULT_LM_NAME}) is not prepared in "
            f"{DEFAULT_LM_DIR}; {_PREP_HINT} once, offline, about a minute"
        )
    if looks_like_path(name):
        raise LMWeightsNotFoundError(
            f"language-model folder {name!r} does not exist (looked in {Path.cwd()} and "
            f"{repo_root()}); pass an existing folder, a hub id or {DEFAULT_LM_NAME!r}"
        )
    return name

