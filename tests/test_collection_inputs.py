"""Inputs are read-only (issue 28): tools/infer.py with --out equal to, inside and around the input
folder, a glob that catches the output folder, and a file in --out where a result would go. Every
input file is checked byte for byte after each run."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from cli_runs import ASSETS
from cli_runs import run_infer as _infer
from PIL import Image


def _paintings(folder: Path) -> dict[Path, str]:
    """Three small paintings (one in a subfolder) and a text file; → {path: sha256}."""
    (folder / "sub").mkdir(parents=True)
    Image.open(ASSETS / "shipwreck.jpg").convert("RGB").resize((72, 48)).save(folder / "a.jpg")
    Image.open(ASSETS / "the_scream.jpg").convert("RGB").resize((40, 52)).save(folder / "b.png")
    Image.open(ASSETS / "starry_night.jpg").convert("RGB").resize((64, 40)).save(folder / "sub" / "a.jpg")
    (folder / "notes.txt").write_text("my notes on these paintings\n")
    return _hashes(folder.rglob("*"))


def _hashes(paths) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def _one_error(proc: subprocess.CompletedProcess) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["equal", "inside", "around"])
def test_inputs_are_never_touched_whatever_the_out(tmp_path, tiny_checkpoint, layout):
    """--out is the input folder, a subfolder of it, or its parent; each run twice without and
    twice with --overwrite. Refused layouts say so in one line before the model loads (the
    checkpoint is not even read) and create nothing; the accepted one leaves --out out of the walk.
    Before the fix, ``--out`` equal to the input with --overwrite deleted a.jpg on the second run."""
    src = tmp_path / "in"
    before = _paintings(src)
    out = {"equal": src, "inside": src / "out", "around": tmp_path}[layout]
    for flags in ([], [], ["--overwrite"], ["--overwrite"]):
        proc = _infer(src, "--out", out, "-e", "awe", "--no-explain", "--json-only",
                      "--checkpoint", tiny_checkpoint, *flags)
        after = _hashes(p for p in src.rglob("*") if not p.is_relative_to(src / "out"))
        assert after == before, (layout, flags)  # every input file, byte for byte, and nothing new
        if layout == "inside":
            assert proc.returncode == 0, proc.stderr[-3000:]
            summary = json.loads((out / "summary.json").read_text())
            assert summary["done"] == ["a.jpg", "b.png", "sub/a.jpg"], summary
            assert [s["image"] for s in summary["skipped"]] == ["notes.txt"]
        else:
            assert proc.returncode == 1
            why = "is the input" if layout == "equal" else "contains the input"
            assert why in _one_error(proc) and "checkpoint" not in proc.stderr.lower()
            assert not (src / ".emosem").exists() and not (tmp_path / ".emosem").exists()


@pytest.mark.slow
def test_a_glob_that_catches_the_out_folder_is_not_read_back(tmp_path, tiny_checkpoint):
    """``infer in/* --out in/out`` twice: the second run's glob holds in/out, which is skipped
    with its reason, nothing under it is taken for an input and nothing is nested in out/out.
    Before: 39 inputs, 22 failed, ``out/out/...``."""
    src = tmp_path / "in"
    before = _paintings(src)
    out = src / "out"
    for run in range(2):
        inputs = sorted(src.iterdir())  # what the shell gives for in/*
        proc = _infer(*inputs, "--out", out, "-e", "awe", "--no-explain", "--checkpoint", tiny_checkpoint)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert _hashes(p for p in src.rglob("*") if not p.is_relative_to(out)) == before
        summary = json.loads((out / "summary.json").read_text())
        assert summary["done"] == ["a.jpg", "b.png", "sub/a.jpg"] and summary["failed"] == []
        skipped = {s["image"]: s["reason"] for s in summary["skipped"]}
        assert set(skipped) == ({"notes.txt", "out"} if run else {"notes.txt"})
        assert not (out / "out").exists()
    assert summary["this_run"]["reused"] == 3


@pytest.mark.slow
def test_a_file_where_a_result_would_go_is_never_replaced(tmp_path, tiny_checkpoint):
    """A user's own file at OUT/a.jpg (not an input): the image fails with one line naming it,
    also with --overwrite, and the file is left byte for byte; the other image is done."""
    src = tmp_path / "in"
    _paintings(src)
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "a.jpg"
    mine.write_bytes((src / "a.jpg").read_bytes() + b"my edit")
    keep = mine.read_bytes()
    for flags in ([], ["--overwrite"]):
        proc = _infer(src / "a.jpg", src / "b.png", "--out", out, "-e", "awe", "--no-explain", "--json-only",
                      "--checkpoint", tiny_checkpoint, *flags)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert mine.read_bytes() == keep
        summary = json.loads((out / "summary.json").read_text())
        assert summary["done"] == ["b.png"]
        assert "is not a result folder of this tool" in summary["failed"][0]["reason"]
