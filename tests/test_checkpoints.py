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
from emosem.modeling.segmenter import CheckpointError

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
         "missing adapter", "changed weights", "config not an object"]
EXPECT = {"truncated weights": "damaged", "corrupt header": "damaged", "negative size": "num_emotion_tokens",
          "huge prefix": "prefix_length", "wrong type": "prefix_layers",
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
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Cannot load the checkpoint" in lines[0] and EXPECT[case] in lines[0]
