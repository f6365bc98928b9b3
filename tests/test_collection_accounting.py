"""The smaller accounting rules of issue 28: stale ledgers cleaned, links to folders accounted for,
the run signature over the normalised, sorted emotions, free-text emotions deduplicated across
case and Unicode normalisation, result folders of earlier versions recognised."""

from __future__ import annotations

import json
import unicodedata

import pytest
from cli_runs import ASSETS
from cli_runs import run_infer as _infer
from PIL import Image

from emosem.inference.cli import _expand_emotions
from emosem.inference.collection import RESULT_MARKER, is_result_folder


def test_free_text_emotions_are_deduplicated_across_case_and_normalisation():
    """Before: `Melancholy`/`melancholy` and NFC/NFD `café` were each analysed twice."""
    nfd, nfc = unicodedata.normalize("NFD", "café"), unicodedata.normalize("NFC", "café")
    assert nfd != nfc
    emotions, auto = _expand_emotions(["Melancholy", "melancholy", nfd, nfc, "AWE", "awe", "auto"])
    assert emotions == ["Melancholy", nfc, "awe"] and auto


def test_result_folders_are_recognised_by_marker_or_by_an_earlier_versions_results(tmp_path):
    ours = tmp_path / "x.jpg"
    ours.mkdir()
    (ours / "awe_mask.png").write_bytes(b"png")
    (ours / "results.json").write_text(json.dumps({"run_signature": {}, "files": ["awe_mask.png", "results.json"]}))
    assert is_result_folder(ours)  # an earlier version's result: every file named in results.json
    (ours / "notes.txt").write_text("mine")
    assert not is_result_folder(ours)  # a file it does not name: not replaced
    (ours / RESULT_MARKER).write_text("{}")
    assert is_result_folder(ours)
    painting = tmp_path / "a.jpg"
    painting.write_bytes(b"jpeg")
    link = tmp_path / "link.jpg"
    link.symlink_to(ours)
    assert not is_result_folder(painting) and not is_result_folder(link)


@pytest.mark.slow
def test_emotion_order_and_case_stale_ledgers_and_linked_folders(tmp_path, tiny_checkpoint):
    """Run 1 with `-e fear -e Awe -e Melancholy -e melancholy`, run 2 with
    `-e Melancholy -e awe -e FEAR`: the same settings, so run 2 reuses the image. Before: run 2
    was refused as "other settings" (exit 1), run 1 analysed melancholy twice, a killed run's
    ledger stayed in .emosem/runs forever and a linked folder was skipped without a word."""
    src, elsewhere, out = tmp_path / "in", tmp_path / "elsewhere", tmp_path / "out"
    src.mkdir()
    elsewhere.mkdir()
    Image.open(ASSETS / "shipwreck.jpg").convert("RGB").resize((48, 32)).save(src / "a.jpg")
    Image.open(ASSETS / "the_scream.jpg").convert("RGB").resize((32, 40)).save(elsewhere / "b.jpg")
    (src / "linked").symlink_to(elsewhere, target_is_directory=True)
    stale = out / ".emosem" / "runs" / "0123456789ab"
    stale.mkdir(parents=True)
    (stale / "rank-0.jsonl").write_text('{"index": 0, "key": "a.jpg", "source": "a.jpg", "status": "done"}\n')
    common = ["--out", out, "--no-explain", "--json-only", "--checkpoint", tiny_checkpoint]
    proc = _infer(src, "-e", "fear", "-e", "Awe", "-e", "Melancholy", "-e", "melancholy", *common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (out / ".emosem" / "runs").exists() or not list((out / ".emosem" / "runs").iterdir())
    doc = json.loads((out / "a.jpg" / "results.json").read_text())
    assert [r["emotion"] for r in doc["results"]] == ["fear", "awe", "Melancholy"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["done"] == ["a.jpg"]
    [skip] = summary["skipped"]
    assert skip["image"] == "linked" and "link to a folder" in skip["reason"]
    proc = _infer(src, "-e", "Melancholy", "-e", "awe", "-e", "FEAR", *common)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["this_run"]["reused"] == 1 and summary["this_run"]["model_load_s"] == 0
