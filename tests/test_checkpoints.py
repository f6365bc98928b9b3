"""Damaged checkpoints give one-line errors; run-folder checkpoints resume only from intact ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emosem.modeling.emosem import EmoSEM
from emosem.modeling.errors import CheckpointError

REPO = Path(__file__).resolve().parents[1]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_config(ckpt: Path, **model_values) -> None:
    meta = json.loads((ckpt / "config.json").read_text())
    meta["model"].update(model_values)
    (ckpt / "config.json").write_text(json.dumps(meta))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8:40] = b"#" * 32  # the JSON header right after its 8-byte length
    path.write_bytes(bytes(data))


def _damage(case: str, ck: Path) -> None:
    if case == "truncated weights":
        _truncate(ck / "model.safetensors")
    elif case == "corrupt header":
        _corrupt_header(ck / "model.safetensors")
    elif case == "negative size":
        _edit_config(ck, num_emotion_tokens=-4)
    elif case == "huge prefix":
        _edit_config(ck, prefix_length=10**9)
    elif case == "wrong type":
        _edit_config(ck, prefix_layers="two")
    elif case == "threshold of one":  # the old inclusive range let every pixel fall below it
        _edit_config(ck, mask_threshold=1.0)
    elif case == "missing adapter":
        shutil.rmtree(ck / "lm_adapter")
    elif case == "changed weights":  # same size, other bytes: only the checksum sees it
        data = bytearray((ck / "model.safetensors").read_bytes())
        data[-4:] = b"\x00\x00\xc0\x7f"  # a NaN in the last tensor
        (ck / "model.safetensors").write_bytes(bytes(data))
    elif case == "config not an object":
        (ck / "config.json").write_text("[1, 2, 3]")
    else:
        raise AssertionError(case)


CASES = ["truncated weights", "corrupt header", "negative size", "huge prefix", "wrong type",
         "threshold of one", "missing adapter", "changed weights", "config not an object"]
EXPECT = {"truncated weights": "damaged", "corrupt header": "damaged", "negative size": "num_emotion_tokens",
          "huge prefix": "prefix_length", "wrong type": "prefix_layers",
          "threshold of one": "model.mask_threshold must be a mask probability strictly between 0 and 1",
          "missing adapter": "lm_adapter/adapter_model.safetensors is missing",
          "changed weights": "SHA-256", "config not an object": "not a JSON object"}


@pytest.mark.parametrize("case", CASES)
def test_damaged_checkpoint_is_refused_with_a_clear_error(tmp_path, tiny_checkpoint, case):
    ck = _copy(tiny_checkpoint, tmp_path / "ck")
    _damage(case, ck)
    with pytest.raises(CheckpointError, match=EXPECT[case]) as info:
        EmoSEM.from_pretrained(ck)
    assert "\n" not in str(info.value)


def test_checkpoint_records_its_files_and_old_ones_still_load(tmp_path, tiny_checkpoint, caplog):
    meta = json.loads((tiny_checkpoint / "config.json").read_text())
    assert {"model.safetensors", "emotion_prompts.safetensors",
            "lm_adapter/adapter_model.safetensors", "lm_adapter/adapter_config.json"} <= set(meta["files"])
    rec = meta["files"]["model.safetensors"]
    assert rec["size"] == (tiny_checkpoint / "model.safetensors").stat().st_size and len(rec["sha256"]) == 64
    # a checkpoint written before the record existed: loads; a missing adapter is a warning
    old = _copy(tiny_checkpoint, tmp_path / "old")
    del meta["files"]
    (old / "config.json").write_text(json.dumps(meta))
    EmoSEM.from_pretrained(old)
    shutil.rmtree(old / "lm_adapter")
    EmoSEM.from_pretrained(old)
    assert "without its LoRA adapter" in caplog.text
    # without the record, a truncated or corrupt weights file is still a one-line error
    for damage, why in ((_truncate, "not fully covered"), (_corrupt_header, "invalid JSON in header")):
        bad = _copy(old, tmp_path / f"old-{damage.__name__}")
        damage(bad / "model.safetensors")
        with pytest.raises(CheckpointError, match=f"model.safetensors is damaged .*{why}") as info:
            EmoSEM.from_pretrained(bad)
        assert "\n" not in str(info.value)
    # files the record does not name (an evaluation cache, a report) are allowed
    extra = _copy(tiny_checkpoint, tmp_path / "extra")
    (extra / "eval_report.json").write_text("{}")
    EmoSEM.from_pretrained(extra)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["truncated weights", "huge prefix", "missing adapter"])
def test_infer_cli_on_a_damaged_checkpoint_is_one_line(tmp_path, tiny_checkpoint, sample_paintings, case):
    ck = _copy(tiny_checkpoint, tmp_path / "ck")
    _damage(case, ck)
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "infer.py"), str(sample_paintings[0]), "--checkpoint", str(ck),
         "--emotion", "awe", "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Cannot load the checkpoint" in lines[0] and EXPECT[case] in lines[0]


# ---------------------------------------------------------------------- run-folder checkpoints
def _step(run: Path, step: int, *, state: bool = True, tmp: bool = False) -> Path:
    """A checkpoint folder as save_checkpoint writes it (small tensors, real formats)."""
    import torch
    from safetensors.torch import save_file

    from emosem.training.checkpointing import STATE_FILE

    folder = run / "checkpoints" / (f".tmp-step_{step:08d}" if tmp else f"step_{step:08d}")
    folder.mkdir(parents=True)
    save_file({"w": torch.full((64,), float(step))}, str(folder / "model.safetensors"))
    torch.save({"state": {}, "param_groups": []}, folder / "optimizer.bin")
    if state:
        files = {p.name: p.stat().st_size for p in folder.iterdir()}
        (folder / STATE_FILE).write_text(json.dumps({"step": step, "files": files}))
    return folder


def test_resume_auto_takes_the_newest_intact_checkpoint(tmp_path, caplog):
    from emosem.training.checkpointing import ResumeError, read_state, resolve_resume

    run = tmp_path / "run"
    assert resolve_resume("auto", run) is None  # nothing yet: a fresh start
    assert resolve_resume(None, run) is None
    _step(run, 2)
    good = _step(run, 4)
    _step(run, 6, tmp=True)  # a save killed mid-write
    _step(run, 8, state=False)  # a folder without its state file
    assert resolve_resume("auto", run) == good and read_state(good) == {"step": 4}
    # damaged newer ones are skipped and named: truncated weights, a truncated optimizer file,
    # a state file cut short, a changed safetensors header of the recorded size
    damaged = {10: "model.safetensors has", 12: "optimizer.bin is unreadable", 14: "not valid JSON",
               16: "model.safetensors is unreadable"}
    for step in damaged:
        ck = _step(run, step)
    _truncate(run / "checkpoints" / "step_00000010" / "model.safetensors")
    opt = run / "checkpoints" / "step_00000012" / "optimizer.bin"
    opt.write_bytes(opt.read_bytes()[:-200].ljust(opt.stat().st_size, b"\0"))
    _truncate(run / "checkpoints" / "step_00000014" / "trainer_state.json")
    _corrupt_header(ck / "model.safetensors")
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert resolve_resume("auto", run) == good
    for step, why in damaged.items():
        line = next(r.getMessage() for r in caplog.records if f"step_{step:08d}" in r.getMessage())
        assert why in line and "skipping damaged checkpoint" in line, line
    assert not any("step_00000006" in r.getMessage() for r in caplog.records)
    # --resume DIR: the folder itself, or a one-line error
    assert resolve_resume(str(good), run) == good
    for bad, why in ((run / "checkpoints" / "step_00000010", "model.safetensors has"),
                     (run / "checkpoints" / "step_00000008", "no trainer_state.json"),
                     (tmp_path / "nowhere", "no such folder")):
        with pytest.raises(ResumeError, match=why) as info:
            resolve_resume(str(bad), run)
        assert "\n" not in str(info.value)
    # every checkpoint damaged: an error, not a silent fresh start
    shutil.rmtree(run / "checkpoints" / "step_00000002")
    shutil.rmtree(good)
    with pytest.raises(ResumeError, match="no intact checkpoint"):
        resolve_resume("auto", run)


def test_rng_state_round_trips_without_pickle(tmp_path):
    import random

    import numpy as np
    import torch

    from emosem.training.checkpointing import load_rng_state, save_rng_state

    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.standard_normal()  # a cached gaussian in numpy's state
    save_rng_state(tmp_path / "rng.safetensors", accelerator_step=7)
    expected = (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    assert load_rng_state(tmp_path / "rng.safetensors") == 7
    assert (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist()) == expected
    assert (tmp_path / "rng.safetensors").read_bytes()[:2] != b"\x80\x04"  # not a pickle


def test_train_cli_resume_errors_are_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train.py"), "--config", str(REPO / "configs" / "smoke.yaml"),
         "--set", f"train.output_dir={tmp_path / 'run'}", "--resume", str(tmp_path / "nowhere"), "--cpu"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "--resume" in errors[0] and "no such folder" in errors[0], proc.stderr
