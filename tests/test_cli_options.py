"""The infer and evaluate options that had no test, on the tiny random checkpoint: each is used
(an observable change in the outputs), recorded, and part of what decides reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils
from svgelements import Close
from svgelements import Path as SvgPath

# a low threshold: the random checkpoint's masks are then never empty, so the geometry checks run
BASE = ["--emotion", "awe", "--emotion", "fear", "--json-only", "--max-new-tokens", "6",
        "--threshold", "0.02"]


def _infer(painting: Path, out: Path, *args: str) -> int:
    """``tools/infer.py`` in this process (the same entry point, without a new interpreter's
    imports for each of the runs below); its exit code."""
    from emosem.cli import main

    return main(["infer", str(painting), "--out", str(out), *args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_checkpoint, sample_paintings):
    """Three runs of one painting: the defaults; grounding off, torch decoding, sampled (seed 1), a coarse
    polygon tolerance; the same sampled with seed 2 and no annotations. Spies record what each
    run handed the language model's generate and the polygon tracer (then call the real ones)."""
    from emosem.inference import annotations
    from emosem.modeling.language_model import ExplanationLM

    painting, root = sample_paintings[0], tmp_path_factory.mktemp("options")
    common = [*BASE, "--checkpoint", str(tiny_checkpoint)]
    other = ["--no-word-grounding", "--lm-runtime", "torch", "--sample", "--polygon-tolerance", "4"]
    out = {"default": root / "default", "s1": root / "s1", "s2": root / "s2"}
    seen: dict[str, dict[str, list]] = {}
    generate, rings = ExplanationLM.generate, annotations.mask_rings

    def spy_generate(self, *args, **kwargs):
        processors = kwargs.get("logits_processor") or []
        calls["generate"].append((kwargs.get("do_sample"), [type(p).__name__ for p in processors]))
        return generate(self, *args, **kwargs)

    def spy_rings(mask, tolerance=annotations.DEFAULT_TOLERANCE, *args, **kwargs):
        calls["tolerance"].append(tolerance)
        return rings(mask, tolerance, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ExplanationLM, "generate", spy_generate)
        mp.setattr(annotations, "mask_rings", spy_rings)
        for name, extra in (("default", []), ("s1", [*other, "--seed", "1"]),
                            ("s2", [*other, "--seed", "2", "--no-annotations"])):
            calls = seen[name] = {"generate": [], "tolerance": []}
            assert _infer(painting, out[name], *common, *extra) == 0, name
    return painting, common, out, seen


def _doc(out: Path, painting: Path) -> dict:
    return json.loads((out / painting.name / "results.json").read_text())


def test_options_are_used_and_recorded(runs):
    painting, _, out, seen = runs
    d, s1, s2 = (_doc(out[k], painting) for k in ("default", "s1", "s2"))
    assert (d["run_signature"]["word_grounding"], s1["run_signature"]["word_grounding"]) == (True, False)
    # the tiny Llama decodes greedily through ONNX Runtime by default (its self-check passes)
    assert (d["lm_runtime"], s1["lm_runtime"], s2["lm_runtime"]) == ("ort", "torch", "torch")
    assert (d["run_signature"]["sample"], s1["run_signature"]["sample"]) == (False, True)
    # what reached the language model: greedy with the grounding processor by default; sampled
    # and without it under --sample --no-word-grounding (every explained batch)
    assert seen["default"]["generate"] and seen["s1"]["generate"]
    assert all(not sample and "BannedWords" in kinds for sample, kinds in seen["default"]["generate"])
    assert all(sample and "BannedWords" not in kinds for sample, kinds in seen["s1"]["generate"])
    # --polygon-tolerance reaches the tracer (image pixels: the target is the image itself)
    assert set(seen["default"]["tolerance"]) == {1.0} and set(seen["s1"]["tolerance"]) == {4.0}
    assert s1["run_signature"]["polygon_tolerance"] == 4.0
    # --no-annotations: nothing traced, no annotations.json, and it is not among the files
    assert seen["s2"]["tolerance"] == []
    assert (out["default"] / painting.name / "annotations.json").is_file()
    assert not (out["s2"] / painting.name / "annotations.json").exists()
    assert "annotations.json" not in s2["files"] and not s2["run_signature"]["annotations"]


def _even_odd(svg: str, size: tuple[int, int]) -> np.ndarray:
    import xml.etree.ElementTree as ET

    h, w = size
    out = np.zeros((h, w), bool)
    for el in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}path"):
        for sub in SvgPath(el.get("d")).as_subpaths():
            img = Image.new("1", (w, h), 0)
            ImageDraw.Draw(img).polygon([(s.end.x, s.end.y) for s in sub if not isinstance(s, Close)],
                                        fill=1, outline=1)
            out ^= np.array(img)
    return out


def test_annotation_geometry(runs):
    """Every record has a region here, so the bounding box, the fragment and the polygon are
    checked against the decoded mask by hand and by PIL."""
    painting, _, out, _ = runs
    doc = _doc(out["default"], painting)
    page = json.loads((out["default"] / painting.name / "annotations.json").read_text())
    assert len(page["items"]) == len(doc["results"]) == 2
    for rec, anno in zip(doc["results"], page["items"]):
        seg = rec["segmentation"]
        mask = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}).astype(bool)
        assert rec["area"] == mask.sum() > 0
        ys, xs = np.nonzero(mask)
        bbox = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
        assert rec["bbox"] == bbox
        frag, svg = (next(s for s in anno["target"]["selector"] if s["type"] == t)
                     for t in ("FragmentSelector", "SvgSelector"))
        assert frag["value"] == "xywh=" + ",".join(map(str, bbox))
        back = _even_odd(svg["value"], mask.shape)
        assert (back & mask).sum() / (back | mask).sum() > 0.85


def test_a_changed_setting_is_not_reused_and_no_resume_recomputes(runs, caplog):
    painting, common, out, _ = runs
    assert _infer(painting, out["default"], *common) == 0  # the same settings: reused, no model
    summary = json.loads((out["default"] / "summary.json").read_text())
    assert summary["this_run"]["reused"] == 1 and summary["this_run"]["processed"] == 0
    # only --no-word-grounding changed: those results are not reused but refused
    assert _infer(painting, out["default"], *common, "--no-word-grounding") == 1
    assert "pass --overwrite" in caplog.text
    assert _doc(out["default"], painting)["run_signature"]["word_grounding"] is True
    assert _infer(painting, out["default"], *common, "--no-word-grounding", "--overwrite") == 0
    assert _doc(out["default"], painting)["run_signature"]["word_grounding"] is False
    # --no-resume: the same settings are computed again, not reused
    before = (out["default"] / painting.name / "results.json").stat().st_mtime_ns
    assert _infer(painting, out["default"], *common, "--no-word-grounding", "--no-resume") == 0
    summary = json.loads((out["default"] / "summary.json").read_text())
    assert summary["this_run"]["reused"] == 0 and summary["this_run"]["processed"] == 1
    assert (out["default"] / painting.name / "results.json").stat().st_mtime_ns > before


def test_evaluate_grounding_precision_fit_data_and_cache_dir(tiny_checkpoint, synthetic_dir, tmp_path):
    """--no-word-grounding, --lm-runtime, --fit-data and --cache-dir reach the report."""
    import shutil

    from emosem.cli import main

    fit = Path(shutil.copytree(synthetic_dir, tmp_path / "fit"))
    cache, out = tmp_path / "cache", tmp_path / "eval"
    code = main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--data", str(synthetic_dir),
                 "--split", "test", "--fit-data", str(fit), "--max-samples", "3", "--no-meteor",
                 "--max-new-tokens", "4", "--num-overlays", "0", "--no-word-grounding",
                 "--lm-runtime", "torch", "--cache-dir", str(cache), "--device", "cpu",
                 "--out", str(out), "--quiet"])
    assert code == 0
    r = json.loads((out / "report.json").read_text())
    assert r["settings"]["word_grounding"] is False and r["settings"]["lm_runtime"] == "torch"
    assert Path(r["fit"]["data"]).resolve() == fit.resolve()  # the baselines' train split
    clf = r["explanations"]["emotional_alignment"]["classifier"]
    assert Path(clf["path"]).parent == cache / "emotion_classifier"
    assert any((cache / "emotion_classifier").iterdir())


@pytest.mark.slow
def test_quiet_runs_print_only_the_summary_even_when_graphs_are_built(tiny_llama_dir, tmp_path):
    """--quiet on a first run (a language model whose graph is not exported yet: it is loaded
    through transformers to export it) writes nothing to stderr: no log lines, no loading bars, no
    library deprecation notices; stdout keeps the summary. (Before: "Loading weights" bars and a
    transformers FutureWarning.)"""
    import shutil
    import subprocess
    import sys

    import torch
    from cli_runs import ASSETS, ENV, INFER

    from emosem.config import ModelConfig
    from emosem.modeling.emosem import EmoSEM

    lm = Path(shutil.copytree(tiny_llama_dir, tmp_path / "lm", ignore=shutil.ignore_patterns("onnx")))
    torch.manual_seed(0)
    checkpoint = EmoSEM.build(ModelConfig(lm=str(lm), prefix_length=4)).save_pretrained(tmp_path / "ckpt")
    env = {**ENV, "EMOSEM_CACHE": str(tmp_path / "cache")}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    proc = subprocess.run([sys.executable, INFER, str(ASSETS / "starry_night.jpg"), "-e", "awe",
                           "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"),
                           "--max-new-tokens", "3", "--quiet"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""
    assert proc.stdout.startswith("Done: 1 image(s)")
    assert any((lm / "onnx").rglob("step.onnx"))  # the graph was exported in this run
