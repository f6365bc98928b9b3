"""Typed configuration: YAML files in ``configs/`` validated into dataclasses.

``load_config("configs/tiny_cpu.yaml", overrides=["train.lr=1e-3", "model.lora_r=4"])`` returns an
:class:`EmoSEMConfig`. Unknown keys and wrongly typed values raise :class:`ConfigError` with the
dotted path of the offending key. ``--set`` values are parsed as YAML scalars (``1e-3``, ``true``,
``[q_proj, v_proj]``, ``null``). Fields with a closed set of values (:data:`CHOICES`) are checked
at load time too: a wrong value names the field, the valid values and the closest one.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from emosem.data.layout import CSV_NAME, IMAGES_DIR, MASKS_NAME
from emosem.paths import DEFAULT_LM, SYNTHETIC_DATA


class ConfigError(ValueError):
    """A configuration file or override that does not match the schema."""


# The closed sets of values. The segmenter names mirror emosem.modeling.segmenter.SEGMENTERS (a
# test keeps them equal): importing the registry costs torch and segment_anything, seconds.
SEGMENTER_NAMES = ("sam_vit_b", "sam_vit_l", "sam_vit_h", "sam_tiny", "sam_effnet_lite0",
                   "sam_effnet_lite2")
DECODERS = ("film", "shared")
ADAPTER_MASKS = ("pred", "gt")
DTYPES = ("float32", "float16", "bfloat16")
STAGES = ("all", "segmenter", "language")
MIXED_PRECISIONS = ("no", "fp16", "bf16", "fp8")  # accelerate's PrecisionType
TRACKERS = ("tensorboard", "wandb", "none")  # null and "" mean none too

#: Dotted field → its valid values; checked by :func:`config_from_dict` and :func:`load_config`.
CHOICES: dict[str, tuple[str, ...]] = {
    "model.segmenter": SEGMENTER_NAMES,
    "model.decoder": DECODERS,
    "model.adapter_mask": ADAPTER_MASKS,
    "model.dtype": DTYPES,
    "train.stage": STAGES,
    "train.mixed_precision": MIXED_PRECISIONS,
    "train.tracker": TRACKERS,
    "train.save_dtype": DTYPES,
}


@dataclass
class DataConfig:
    root: str = SYNTHETIC_DATA
    csv: str = CSV_NAME
    masks: str | None = MASKS_NAME
    image_root: str = IMAGES_DIR
    image_size: int = 256
    split_ratios: list[float] = field(default_factory=lambda: [0.85, 0.05, 0.10])
    split_seed: int = 2021
    num_workers: int = 0
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    # Keep a painting's emotions in one batch (each image is encoded once per batch).
    group_by_painting: bool = True
    # Object slot targets of the language stage (models with model.cue_version 2), on samples
    # whose stimulus is a known synthetic motif: this share gets an appearance reference built
    # from the region's measured cues and the slot "none" (abstention), and this share a plain
    # noun in the slot that the reference then uses (copying the slot); the rest name the motif
    # with the motif in the slot. See emosem.data.dataset.StimulusDataset.object_target.
    appearance_share: float = 0.0
    object_swap_share: float = 0.0


@dataclass
class ModelConfig:
    segmenter: str = "sam_tiny"
    sam_checkpoint: str | None = None
    # None: frozen when official SAM weights are loaded, trained otherwise (sam_tiny).
    freeze_image_encoder: bool | None = None
    lm: str = DEFAULT_LM
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = None  # None: per-architecture default
    prompt_template: str = "generate the mask for the emotion {e}"
    instruction: str = "Explain why the painting makes you feel {e}."
    num_emotion_tokens: int = 4
    film: bool = True
    # How the emotion reaches the mask decoder: "film" (each emotion FiLM-modulates its own copy
    # of the image embedding, one decoder pass per emotion) or "shared" (one image-side pass per
    # image, each emotion's token stream reads it: see segmenter.decode_masks_shared).
    decoder: str = "film"
    prefix_length: int = 8
    prefix_layers: int = 2
    prefix_heads: int = 8
    global_grid: int = 2
    # Mask probability threshold used when none is given (chosen on val data by
    # emosem.evaluation.calibrate; SAM's own is 0.5, i.e. logit 0).
    mask_threshold: float = 0.5
    # Tag head (emosem.modeling.tag_head): the tag_k words it rates highest for the stimulus
    # region join the prefix. num_tags > 0 in a training config adds and fits one (the
    # vocabulary of at most num_tags content tokens comes from the training explanations).
    num_tags: int = 0
    tag_k: int = 4
    # Which mask the prefix adapter pools under during training: "pred" (the segmenter's soft
    # mask, as at inference) or "gt" (teacher forcing where a ground-truth mask exists).
    adapter_mask: str = "pred"
    emotion_head: bool = True
    # Region cues (emosem.data.cues: place, size, colours, light, and the encoder's ImageNet
    # concepts) go into the LM's instruction as words: from the ground-truth mask in training,
    # from the predicted mask at inference.
    cues: bool = False
    num_concepts: int = 3
    # Which cue phrase the LM reads (emosem.data.cues.Cues.phrase): 1 = place, size, colours,
    # light, "shows: <concepts>"; 2 = also shape and texture words and "object: <word or none>".
    cue_version: int = 1
    # The tag-head probability at which a motif of the trained vocabulary may name a region of an
    # in-domain painting (its object slot); chosen on validation data at export
    # (emosem.evaluation.calibrate.motif_licence_sweep).
    motif_min_prob: float = 0.5
    dtype: str = "float32"


@dataclass
class LossConfig:
    focal: float = 20.0
    dice: float = 1.0
    bce: float = 0.0
    iou: float = 1.0
    lm: float = 1.0
    tags: float = 1.0  # BCE of the tag head (when the model has one)
    emotion_dist: float = 0.5
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    # Side of the square on which the mask losses compare prediction and ground truth (0: the
    # data's image_size). A larger input with 4x-upsampled logits needs no 384² loss maps.
    mask_size: int = 0


@dataclass
class TrainConfig:
    output_dir: str = "runs/emosem"
    seed: int = 0
    # Which parts learn: "all", "segmenter" (encoder/decoder/projector/emotion head) or
    # "language" (prefix adapter + LoRA with the segmenter frozen).
    stage: str = "all"
    max_steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 3e-4
    lr_encoder: float = 3e-4
    lr_lora: float = 2e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    grad_checkpointing_encoder: bool = False
    # Keep a frozen pretrained backbone's features of each training image (float16, in memory)
    # after its first pass, so later epochs run only the neck and decoder.
    cache_encoder_features: bool = True
    grad_checkpointing_lm: bool = False
    save_every: int = 200
    keep_last: int = 2
    eval_every: int = 200
    log_every: int = 10
    max_nan_steps: int = 20
    tracker: str | None = "tensorboard"
    init_from: str | None = None
    save_dtype: str = "float32"
    num_threads: int = 0  # CPU threads for torch (0: torch's default)
    num_val_explanations: int = 4
    max_text_tokens: int = 48


@dataclass
class EmoSEMConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML (``.yaml``) or JSON (any other suffix)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".yaml", ".yml"):
            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        else:
            path.write_text(json.dumps(self.to_dict(), indent=2))


_BOOL_WORDS = {"yes": True, "on": True, "y": True, "no": False, "off": False, "n": False}


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_check_type(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if tp is bool and isinstance(value, str) and value.lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.lower()]
    if tp is str and isinstance(value, bool):
        raise ConfigError(
            f"{where}: expected a string, got {value!r} (YAML 1.1 reads an unquoted no/yes/off/on "
            'as a boolean: quote it, e.g. mixed_precision: "no")'
        )
    if tp in (int, str, bool, float):
        if tp is int and isinstance(value, bool):
            raise ConfigError(f"{where}: expected int, got {value!r}")
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"Unknown config key(s) {', '.join(f'{where}{k}' for k in unknown)}; "
            f"valid keys under {where or 'the top level'}: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _from_dict(tp, value or {}, f"{where}{name}.")
        else:
            kwargs[name] = _check_type(value, tp, f"{where}{name}")
    return cls(**kwargs)


def check_choice(value: str, choices: tuple[str, ...], where: str) -> None:
    """Raise :class:`ConfigError` naming ``where`` unless ``value`` is one of ``choices``."""
    if value in choices:
        return
    close = difflib.get_close_matches(str(value).lower(), choices, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"{where}: unknown value {value!r}.{hint} Valid values: {', '.join(choices)}.")


def check_mask_threshold(value: Any) -> float:
    """``value`` as a float if it is a mask probability strictly between 0 and 1, the one rule for
    every threshold (configs, checkpoints, the predictor, infer, evaluate, the demo); else
    ``ValueError("threshold must be ...")`` (callers put their flag's or key's name in front)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 < number < 1.0:  # also false for NaN
        raise ValueError(f"threshold must be a mask probability strictly between 0 and 1, "
                         f"got {value!r}")
    return number


def _check_choices(cfg: EmoSEMConfig) -> None:
    for where, choices in CHOICES.items():
        section, name = where.split(".")
        value = getattr(getattr(cfg, section), name)
        if where == "train.tracker" and value in (None, ""):
            continue
        check_choice(value, choices, where)


def config_from_dict(data: dict[str, Any]) -> EmoSEMConfig:
    """Validate a nested mapping into an :class:`EmoSEMConfig` (types, keys, closed sets)."""
    cfg = _from_dict(EmoSEMConfig, data or {}, "")
    _check_choices(cfg)
    if cfg.model.cue_version not in (1, 2):
        raise ConfigError(f"model.cue_version must be 1 or 2, got {cfg.model.cue_version!r}")
    shares = (cfg.data.appearance_share, cfg.data.object_swap_share)
    if min(shares) < 0 or sum(shares) > 1:
        raise ConfigError(f"data.appearance_share and data.object_swap_share must be >= 0 and sum "
                          f"to at most 1, got {shares[0]!r} and {shares[1]!r}")
    try:
        check_mask_threshold(cfg.model.mask_threshold)
    except ValueError as e:
        raise ConfigError(f"model.mask_{e}") from None
    return cfg


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides to a nested mapping (values parsed as YAML)."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"Override {item!r} is not of the form section.key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Override {item!r}: {p} is not a section")
        value = yaml.safe_load(raw) if raw.strip() else ""
        if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
            value = raw.strip()  # yes/no/on/off stay words (YAML 1.2): mixed_precision=no
        node[parts[-1]] = value
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> EmoSEMConfig:
    """Load a YAML (or JSON) config file, apply ``--set`` overrides and validate."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"Config file {p} not found")
        data = yaml.safe_load(p.read_text()) or {}
    return config_from_dict(apply_overrides(data, overrides or []))
