"""Run-folder checkpoints: atomic ``save_state`` writes, ``--resume auto``, keep-last-K.

Layout of a run folder::

    run_dir/config.yaml          resolved config
    run_dir/train.log            log file (rank 0)
    run_dir/metrics.json         train/val history and the final summary
    run_dir/checkpoints/step_00000200/   accelerate save_state + trainer_state.json
    run_dir/best/, run_dir/last/ EmoSEM.save_pretrained folders (what tools/infer.py loads)

A checkpoint is written into ``.tmp-step_…`` and renamed when complete, so a process killed
mid-write leaves the previous checkpoint as the latest good one. It holds what the stage
trains, not the whole model: ``model.safetensors`` keeps the parameters that learn, every
buffer and the parts ``save_pretrained`` writes (a frozen language model or official SAM
encoder is rebuilt from the config on resume), plus accelerate's optimizer and scheduler
files. The RNG states are written without pickle (``rng_state_<rank>.safetensors``: torch,
CUDA, numpy and Python states as tensors, the rest as JSON metadata) in place of accelerate's
``random_states_<rank>.pkl``. ``trainer_state.json`` is written last and records every file's
size, so ``--resume auto`` can tell an intact checkpoint from a damaged one (disk full, a copy
cut short) and fall back to the newest intact one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
MODEL_FILE = "model.safetensors"  # accelerate's name for the first model's weights
RNG_FILE = "rng_state_{rank}.safetensors"
_ACCELERATE_RNG = "random_states_{rank}.pkl"
_STEP_RE = re.compile(r"^step_(\d+)$")
_WRAPPERS = ("module.", "_orig_mod.")  # DDP and torch.compile prefixes of state-dict keys


class ResumeError(RuntimeError):
    """``--resume`` names no usable checkpoint (a one-line message for the user)."""


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints in step order (incomplete temporaries are ignored)."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_RE.match(p.name)
        if m and (p / STATE_FILE).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def _bare(key: str) -> str:
    while key.startswith(_WRAPPERS):
        key = key.split(".", 1)[1]
    return key


def kept_keys(model: torch.nn.Module) -> set[str]:
    """State-dict keys (as ``model`` names them, wrapper prefixes included) that a step
    checkpoint keeps: parameters that learn, every buffer, and the parts ``save_pretrained``
    writes. Frozen parameters outside those (the base LM, an official SAM encoder) are left out."""
    inner = model
    while hasattr(inner, "module"):
        inner = inner.module
    inner = getattr(inner, "_orig_mod", inner)
    prefixes = tuple(inner.saved_prefixes()) if hasattr(inner, "saved_prefixes") else ()
    keep = {n for n, p in model.named_parameters() if p.requires_grad}
    keep |= {n for n, _ in model.named_buffers()}
    return keep | {k for k in model.state_dict() if _bare(k).startswith(prefixes)}


def _trainable_state_hook(models, weights, output_dir) -> None:
    """accelerate save_state pre-hook: keep only :func:`kept_keys` of each model's state dict."""
    for i, (model, state) in enumerate(zip(models, weights)):
        keep = kept_keys(model)
        weights[i] = {k: v for k, v in state.items() if k in keep}


def save_rng_state(path: Path, accelerator_step: int) -> None:
    """This process's torch / CUDA / numpy / Python RNG states, as tensors and JSON (no pickle)."""
    import random

    import numpy as np
    from safetensors.torch import save_file

    version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "python": torch.tensor(py_state, dtype=torch.int64),
               "numpy": torch.from_numpy(np.asarray(np_keys, dtype=np.int64))}
    if torch.cuda.is_available():
        for i, st in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = st
    meta = {"python": json.dumps([version, py_gauss]),
            "numpy": json.dumps([np_name, int(np_pos), int(np_has_gauss), float(np_cached)]),
            "accelerator_step": str(int(accelerator_step))}
    save_file(tensors, str(path), metadata=meta)


def load_rng_state(path: Path) -> int:
    """Restore the states :func:`save_rng_state` wrote; returns the accelerator's step counter."""
    import random

    import numpy as np
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        t = {k: f.get_tensor(k) for k in f.keys()}
    version, py_gauss = json.loads(meta["python"])
    random.setstate((version, tuple(int(x) for x in t["python"].tolist()), py_gauss))
    np_name, np_pos, np_has_gauss, np_cached = json.loads(meta["numpy"])
    np.random.set_state((np_name, t["numpy"].numpy().astype(np.uint32), np_pos, np_has_gauss, np_cached))
    torch.set_rng_state(t["torch"])
    cuda = [t[f"cuda.{i}"] for i in range(len(t)) if f"cuda.{i}" in t]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return int(meta.get("accelerator_step", 0))


def verify_checkpoint(ckpt: Path) -> str | None:
    """Why ``ckpt`` cannot be resumed from (``None`` when it is intact): the state file is
    missing or not JSON, a recorded file is missing or of another size, a safetensors file's
    header or a ``torch.save`` archive is unreadable."""
    ckpt = Path(ckpt)
    if not ckpt.is_dir():
        return "no such folder"
    try:
        state = json.loads((ckpt / STATE_FILE).read_text())
    except FileNotFoundError:
        return f"no {STATE_FILE} (an interrupted save)"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"{STATE_FILE} is not valid JSON ({' '.join(str(e).split())})"
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or state["step"] < 0:
        return f"{STATE_FILE} holds no step count"
    files = state.get("files")
    if files is not None:
        if not isinstance(files, dict):
            return f"{STATE_FILE}: \"files\" is not a mapping"
        for name, size in files.items():
            path = ckpt / name
            if Path(name).is_absolute() or ".." in Path(name).parts:
                return f"bad file name {name!r} in {STATE_FILE}"
            if not path.is_file():
                return f"{name} is missing"
            if path.stat().st_size != size:
                return f"{name} has {path.stat().st_size} bytes, {size} were written"
    elif not (ckpt / MODEL_FILE).is_file() and not (ckpt / "pytorch_model.bin").is_file():
        return "no model weights"
    for path in sorted(ckpt.iterdir()):
        try:
            if path.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(path), "pt") as f:
                    f.keys()
            elif path.suffix == ".bin":
                zipfile.ZipFile(path).close()  # torch.save archives: the central directory is at the end
        except Exception as e:  # SafetensorError, BadZipFile, OSError
            return f"{path.name} is unreadable ({' '.join(str(e).split())[:200]})"
    return None


def resolve_resume(resume: str | None, run_dir: Path, log: bool = True) -> Path | None:
    """``None`` → fresh; ``"auto"`` → the newest intact checkpoint in run_dir (fresh if there is
    none at all; damaged newer ones are skipped and named); else an explicit, intact folder.
    Raises :class:`ResumeError` with a one-line message otherwise."""
    if not resume:
        return None
    if resume == "auto":
        ckpts = list_checkpoints(run_dir)
        skipped = []
        for ckpt in reversed(ckpts):
            problem = verify_checkpoint(ckpt)
            if problem is None:
                return ckpt
            skipped.append(f"{ckpt.name}: {problem}")
            if log:
                logger.warning("--resume auto: skipping damaged checkpoint %s: %s", ckpt, problem)
        if skipped:
            raise ResumeError(f"--resume auto: no intact checkpoint in {checkpoint_dir(run_dir)} "
                              f"({'; '.join(skipped[:3])}); remove them to start afresh")
        return None
    path = Path(resume)
    problem = verify_checkpoint(path)
    if problem is not None:
        raise ResumeError(f"--resume {resume}: not a usable training checkpoint ({problem}); "
                          "pass a run folder's checkpoints/step_N or --resume auto")
    return path


def save_checkpoint(accelerator, run_dir: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    """``accelerator.save_state`` (trainable parts only, RNG without pickle) into a temporary
    folder, the state file with every file's size last, then rename; prune to ``keep_last``."""
    root = checkpoint_dir(run_dir)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-step_{step:08d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp-step_*"):  # left by a killed save
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    handle = accelerator.register_save_state_pre_hook(_trainable_state_hook)
    try:
        accelerator.save_state(str(tmp))
    finally:
        handle.remove()
    rank = accelerator.process_index
    save_rng_state(tmp / RNG_FILE.format(rank=rank), accelerator.step)
    (tmp / _ACCELERATE_RNG.format(rank=rank)).unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        files = {p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / STATE_FILE).write_text(json.dumps({**state, "files": files}, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, model: torch.nn.Module, ckpt: Path) -> None:
    """Restore what :func:`save_checkpoint` wrote into the prepared model, optimizer, scheduler
    and this process's RNG. The weights file must hold every parameter that learns."""
    from safetensors import safe_open

    ckpt = Path(ckpt)
    if (ckpt / MODEL_FILE).is_file():
        with safe_open(str(ckpt / MODEL_FILE), "pt") as f:
            have = set(f.keys())
        own = model.state_dict()
        missing = sorted(n for n, p in model.named_parameters() if p.requires_grad and n not in have)
        unexpected = sorted(have - set(own))
        if missing or unexpected:
            raise ResumeError(f"{ckpt} does not fit this run's model (another stage or config?): "
                              f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    accelerator.load_state(str(ckpt), strict=False)
    rng = ckpt / RNG_FILE.format(rank=accelerator.process_index)
    if rng.is_file():
        accelerator.step = load_rng_state(rng)


def read_state(ckpt: Path) -> dict[str, Any]:
    state = json.loads((Path(ckpt) / STATE_FILE).read_text())
    state.pop("files", None)
    return state
