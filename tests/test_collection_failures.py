"""One image fails, the run goes on (issue 28, case 3): an error while writing one image's results
is that image's failure, and a full disk (a real one: a small tmpfs in a user namespace) stops the
run cleanly with summary.json written, and the same command again completes the rest."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runs import ASSETS, ENV, INFER, REPO
from cli_runs import run_infer as _infer
from PIL import Image


def _three_paintings(folder: Path, sub: str | None = None) -> list[str]:
    keys = ["p0.jpg", f"{sub}/p1.jpg" if sub else "p1.jpg", "p2.jpg"]
    sizes = [("shipwreck.jpg", (160, 110)), ("the_scream.jpg", (120, 150)), ("starry_night.jpg", (160, 100))]
    for key, (name, size) in zip(keys, sizes):
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        Image.open(ASSETS / name).convert("RGB").resize(size).save(folder / key)
    return keys


@pytest.mark.slow
def test_an_error_writing_one_image_is_that_images_failure(tmp_path, tiny_checkpoint):
    """OUT/sub is a file of the user's, so sub/p1.jpg's folder cannot be made: that image fails
    with one line, the images before and after it are done, summary.json is written and the file
    is left as it was. Before: a FileExistsError traceback, p2.jpg never tried, no summary.json."""
    src, out = tmp_path / "in", tmp_path / "out"
    _three_paintings(src, sub="sub")
    out.mkdir()
    (out / "sub").write_text("my notes\n")
    proc = _infer(src, "--out", out, "-e", "awe", "--no-explain", "--json-only", "--checkpoint", tiny_checkpoint)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["done"] == ["p0.jpg", "p2.jpg"]
    [failed] = summary["failed"]
    assert failed["key"] == "sub/p1.jpg" and "\n" not in failed["reason"] and "Error" in failed["reason"]
    assert (out / "sub").read_text() == "my notes\n"
    assert not list((out / ".emosem" / "tmp").iterdir()), "the failed image's staging folder is removed"


def _user_namespace_mounts() -> bool:
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True) if shutil.which("unshare") else None
    return probe is not None and probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _user_namespace_mounts(), reason="cannot mount a tmpfs in a user namespace here")
def test_a_full_disk_stops_cleanly_and_a_resume_completes(tmp_path, tiny_checkpoint):
    """--out on a 1.6 MB tmpfs; each image's folder (figures on) takes about 1 MB: the first image
    is done, the second meets ENOSPC, the run stops with one line, the third is accounted as not
    processed, summary.json is written. The tmpfs grown to 16 MB, the same command completes the
    rest and reuses the first. Before: an ENOSPC traceback on the second image, no summary.json."""
    src, mnt, saved = tmp_path / "in", tmp_path / "mnt", tmp_path / "saved"
    keys = _three_paintings(src)
    mnt.mkdir()
    cmd = " ".join(shlex.quote(str(a)) for a in [sys.executable, INFER, src, "--out", mnt / "out", "-e", "awe",
                                                  "-e", "fear", "--no-explain", "--checkpoint", tiny_checkpoint])
    script = f"""
        mount -t tmpfs -o size=1600k tmpfs {mnt} || exit 99
        {cmd} >{tmp_path}/first.out 2>{tmp_path}/first.err; echo $? >{tmp_path}/first.rc
        cp -r {mnt}/out {saved}
        mount -o remount,size=16m {mnt} || exit 98
        {cmd} >{tmp_path}/second.out 2>{tmp_path}/second.err; echo $? >{tmp_path}/second.rc
        cp {mnt}/out/summary.json {tmp_path}/second-summary.json
    """
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                          timeout=900, env=ENV, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    first_err = (tmp_path / "first.err").read_text()
    assert (tmp_path / "first.rc").read_text().strip() == "1" and "Traceback" not in first_err, first_err[-3000:]
    stops = [line for line in first_err.splitlines() if "The run stopped: no space left on device" in line]
    assert len(stops) == 1, first_err[-3000:]
    summary = json.loads((saved / "summary.json").read_text())
    assert summary["done"] == keys[:1]
    assert [f["key"] for f in summary["failed"]] == keys[1:]
    assert summary["failed"][0]["reason"] == "no space left on device"
    assert summary["failed"][1]["reason"].startswith("not processed: the run stopped: no space left on device")
    assert not list((saved / ".emosem" / "tmp").iterdir())
    second_err = (tmp_path / "second.err").read_text()
    assert (tmp_path / "second.rc").read_text().strip() == "0", second_err[-3000:]
    second = json.loads((tmp_path / "second-summary.json").read_text())
    assert second["done"] == keys and second["failed"] == []
    assert second["this_run"]["reused"] == 1 and second["this_run"]["processed"] == 2
    assert second["this_run"]["images_per_s_after_first"] > 0  # two new images: a steady rate
