"""The real-art report: hand-made results with known answers, and a small real run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from emosem.cli import main
from emosem.data.rle import encode_mask
from emosem.evaluation.real_art import load_truth, score_results, summarize

RED, BLUE = (200, 30, 30), (40, 80, 200)


def _hand_made_run(tmp_path: Path) -> tuple[Path, Path]:
    """A painting (top half blue, bottom half red), a list of what it shows, and a run with three
    regions: the bottom half, the top half, and five specks."""
    img = np.zeros((100, 80, 3), dtype=np.uint8)
    img[:50], img[50:] = BLUE, RED
    Image.fromarray(img).save(tmp_path / "sea.png")
    (tmp_path / "visible.json").write_text(json.dumps(
        {"sea.png": {"visible": ["sea", "sky", "waves"], "plausible_emotions": ["awe", "fear"]}}))
    bottom, top, specks = (np.zeros((100, 80), bool) for _ in range(3))
    bottom[50:], top[:50] = True, True
    for i in range(5):
        specks[10 + 15 * i, 10 + 10 * i] = True

    def res(emotion, mask, text):
        return {"emotion": emotion, "segmentation": encode_mask(mask), "explanation": text,
                "cues": {"area_fraction": float(mask.mean()), "centroid": [0.5, 0.75],
                         "colours": [{"name": "red"}], "object": None}}

    run = tmp_path / "run" / "sea.png"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({
        "image": "sea.png", "source": str(tmp_path / "sea.png"), "in_domain": {"score": 0.25},
        "emotion_distribution": {"sadness": 0.5, "fear": 0.3, "awe": 0.2},
        "results": [res("fear", bottom, "The red cottage at the bottom scares me."),
                    res("awe", top, "The BLUE sea at the top, and its green waves."),
                    res("sadness", specks, None)]}))
    return tmp_path / "run", tmp_path / "visible.json"


def test_hand_made_results_have_known_answers(tmp_path):
    run, visible = _hand_made_run(tmp_path)
    paintings, explained = score_results(run, load_truth(visible))
    (p,) = paintings
    assert p.ranking[:3] == ["sadness", "fear", "awe"] and not p.top1_plausible and p.top3_plausible
    assert p.in_domain == 0.25 and [r["parts"] for r in p.regions] == [1, 1, 5]
    fear, awe = explained
    assert fear.absent_things == ["cottage"] and fear.colours == {"red": True}
    assert fear.positions == {"at the bottom": True} and fear.leaks == ["cottage"]
    assert awe.absent_things == [] and awe.colours == {"blue": True, "green": False}
    assert awe.positions == {"at the top": True} and awe.pointable
    s = summarize(paintings, explained)
    assert s["names_absent_thing"] == {"share": 0.5, "n": 2}
    assert s["colour_words_true"] == {"share": 2 / 3, "n": 3}
    assert s["position_words_true"]["share"] == 1.0 and s["top1_plausible"]["share"] == 0.0
    assert s["pointable_regions"]["share"] == 1.0 and s["in_domain_mean"] == 0.25
    # the awe row's cues (copied from the fear row) contradict blue, green, top, sea and waves
    assert s["leaked_words"] == {"colour": 2, "position": 1, "object": 3}


def test_the_command_scores_a_run_and_refuses_bad_input(tmp_path):
    run, visible = _hand_made_run(tmp_path)
    out = tmp_path / "report"
    assert main(["real-art", "--results", str(run), "--visible", str(visible), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["explanations"] == 2 and "cottage" in (out / "report.md").read_text()
    assert main(["real-art", "--results", str(tmp_path / "report"), "--visible", str(visible)]) == 2
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["real-art", "--results", str(run), "--visible", str(tmp_path / "bad.json")]) == 2


def test_a_small_real_run_of_a_checkpoint(tmp_path, tiny_checkpoint, sample_paintings):
    """The command runs a (random) checkpoint over real paintings and scores what it wrote."""
    folder = tmp_path / "art"
    folder.mkdir()
    known = {"shipwreck.jpg": {"visible": ["ship", "sea", "waves"], "plausible_emotions": ["fear", "awe"]},
             "starry_night.jpg": {"visible": ["sky", "stars", "village"], "plausible_emotions": ["awe"]}}
    picked = [p for p in sample_paintings if p.name in known]
    for p in picked:
        shutil.copy(p, folder / p.name)
    (folder / "visible.json").write_text(json.dumps(known))
    out = tmp_path / "report"
    assert main(["real-art", str(folder), "--checkpoint", str(tiny_checkpoint), "--emotion", "awe",
                 "--emotion", "fear", "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["paintings"] == 2
    assert all(len(p["ranking"]) == 9 and len(p["regions"]) == 2 for p in report["paintings"])
    assert (out / "run" / picked[0].name / "results.json").exists()
