"""tools/export_checkpoint.py: a loadable half-precision copy that keeps the cached classifier."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from emosem.modeling.emosem import EmoSEM

REPO = Path(__file__).resolve().parents[1]


def test_export_halves_weights_and_keeps_the_classifier_cache(tmp_path, tiny_checkpoint):
    dst = tmp_path / "exported"
    (dst / "emotion_classifier").mkdir(parents=True)
    (dst / "emotion_classifier" / "emotion_classifier.json").write_text('{"cached": true}')
    (dst / "stale.txt").write_text("from an older export")
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export_checkpoint.py"), str(tiny_checkpoint),
         str(dst), "--note", "unit test"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["exported"] == str(dst)
    assert json.loads((dst / "emotion_classifier" / "emotion_classifier.json").read_text()) == {"cached": True}
    assert not (dst / "stale.txt").exists()
    meta = json.loads((dst / "config.json").read_text())
    assert meta["note"] == "unit test" and meta["weights_dtype"] == "float16"
    from safetensors import safe_open

    with safe_open(str(dst / "model.safetensors"), "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    floating = {k: d for k, d in dtypes.items() if d in ("F16", "BF16", "F32", "F64")}
    assert floating and all(d == "F16" for d in floating.values()), \
        {k: d for k, d in floating.items() if d != "F16"}
    assert (dst / "model.safetensors").stat().st_size < 0.6 * (tiny_checkpoint / "model.safetensors").stat().st_size
    model = EmoSEM.from_pretrained(dst)
    ref = EmoSEM.from_pretrained(tiny_checkpoint)
    a, b = model.state_dict(), ref.state_dict()
    for key in ("projector.queries", "adapter.queries"):
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-3), key


def test_export_calibrates_the_mask_threshold_on_val(tmp_path, tiny_checkpoint, synthetic_dir):
    dst = tmp_path / "calibrated"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export_checkpoint.py"), str(tiny_checkpoint),
         str(dst), "--calibrate-on", str(synthetic_dir)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = json.loads((dst / "config.json").read_text())
    sweep = cfg["threshold_calibration"]
    assert sweep["split"] == "val" and sweep["n"] > 0 and len(sweep["gIoU"]) == len(sweep["thresholds"])
    best = sweep["gIoU"][sweep["thresholds"].index(sweep["best"])]
    assert best == max(sweep["gIoU"])
    assert cfg["model"]["mask_threshold"] == sweep["best"]
    assert EmoSEM.from_pretrained(dst).config.mask_threshold == sweep["best"]
    assert "mask threshold" in proc.stderr


def test_export_of_a_damaged_checkpoint_is_a_one_line_error(tmp_path, tiny_checkpoint):
    import shutil

    src = tmp_path / "damaged"
    shutil.copytree(tiny_checkpoint, src)
    weights = src / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a truncated copy
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export_checkpoint.py"), str(src), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "model.safetensors" in proc.stderr
    assert not (tmp_path / "out").exists()
