"""``tools/benchmark.py``: the report's schema, the memory probe, the Markdown table.

No test asserts a speed: timings depend on the machine and its load. The end-to-end run checks
that every figure is there and positive.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

import emosem.benchmark as bench
from emosem.inference.packed_linear import packing_supported

STAGES = {
    "cold_start_import_torch", "cold_start", "cold_start_first_result", "cold_start_reported", "cold_start_masks",
    "cold_start_masks_first_result", "cold_start_masks_reported", "encode", "decode", "explain",
    "plain_generate", "end_to_end", "emosem_mask", "sam_point_mask", "emosem_decode_only",
    "sam_point_decode_only", "sam_tiny_point_mask",
}
RATIOS = {
    "nine_vs_one_decode", "nine_vs_one_decoder_only", "nine_vs_one_explain",
    "nine_vs_one_with_encode", "explain_vs_plain_generate", "mask_path_vs_sam",
    "mask_decode_vs_sam_decode", "nine_vs_one_sam_points", "packing_speedup_1", "packing_speedup_9",
    "nine_vs_one_explain_plain_linear", "mask_path_vs_sam_tiny", "lm_runtime_speedup",
    "collection_speedup",
}


def _check_stats(entry: dict, where: str, runs: int | None = None) -> None:
    for key in ("median_s", "p90_s", "min_s", "mean_s"):
        assert isinstance(entry.get(key), float) and entry[key] > 0, f"{where}.{key}: {entry.get(key)}"
    assert entry["min_s"] <= entry["median_s"] <= entry["p90_s"], where
    assert len(entry["times_s"]) == entry["runs"] >= 1, where
    if runs is not None:
        assert entry["runs"] == runs, where


@pytest.mark.slow
def test_quick_run_writes_the_full_report(repo_root: Path, tiny_checkpoint: Path, tmp_path: Path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(repo_root / "tools" / "benchmark.py"), "--checkpoint",
           str(tiny_checkpoint), "--what", "all", "--quick", "--threads", "1", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["schema_version"] == bench.SCHEMA_VERSION
    assert report["errors"] == []

    m = report["machine"]
    assert m["cpu_model"] and m["logical_cores"] >= 1 and m["torch_threads"] == 1
    assert m["threads_requested"] == 1 and m["device"] == "cpu"
    assert m["torch_version"] and m["python_version"].count(".") == 2
    assert m["cpu_model"] in m["line"] and "torch" in m["line"]

    s = report["settings"]
    assert s["quick"] and s["repeats"] == 2 and s["warmup"] == 1 and s["max_new_tokens"] == 8
    assert report["model"]["segmenter"] == "sam_tiny" and report["model"]["load_s"] > 0

    stages = report["stages"]
    assert set(stages) == STAGES
    method = report["memory"]["method"]
    assert method in bench.MEMORY_METHODS
    for name, entry in stages.items():
        runs = 4 * s["repeats"] if name.startswith(("emosem_", "sam_point", "sam_tiny")) else s["repeats"]
        _check_stats(entry, name, None if name.startswith("cold_start") else runs)
        assert entry["description"]
        if method != "none" and not name.startswith("cold_start"):
            assert entry["rss_peak_increase_mb"] >= 0, name
    assert stages["explain"]["new_tokens"] == stages["plain_generate"]["new_tokens"] == 8
    assert stages["cold_start"]["child_peak_rss_mb"] > 0
    assert stages["cold_start_masks"]["child_peak_rss_mb"] > 0
    # each process's own peak: importing torch alone is the smallest, explaining the largest
    peaks = [stages[k]["child_peak_rss_mb"] for k in ("cold_start_import_torch", "cold_start_masks", "cold_start")]
    assert 0 < peaks[0] <= peaks[1] <= peaks[2]
    over = report["cold_start_over_import_torch"]
    assert over["import_torch_s"] == stages["cold_start_import_torch"]["median_s"] > 0
    for key, first, whole in (("first_mask", "cold_start_masks_first_result", "cold_start_masks"),
                              ("first_explanation", "cold_start_first_result", "cold_start")):
        extra = stages[first]["median_s"] - stages["cold_start_import_torch"]["median_s"]
        assert over[key]["seconds_over_import_torch"] == pytest.approx(extra, abs=1e-3)
        assert over[key]["peak_mb"] == stages[whole]["child_peak_rss_mb"]
        assert isinstance(over[key]["meets_seconds"], bool) and isinstance(over[key]["meets_peak"], bool)

    tp = report["throughput"]
    for key in ("images_per_s", "tokens_per_s", "plain_generate_tokens_per_s",
                "tokens_per_s_9_in_one_call"):
        assert tp[key] > 0, key

    wp = report["scaling"].get("weight_packing")  # the tiny Llama's linears, packed and plain
    ratios = report["ratios"]
    packing = {k for k in RATIOS if "packing" in k or "plain_linear" in k}
    fast = {"lm_runtime_speedup", "collection_speedup"} if report["scaling"].get("lm_runtime") else set()
    assert set(ratios) == (RATIOS - {"lm_runtime_speedup", "collection_speedup"}) - (set() if wp else packing) | fast
    for key, r in ratios.items():
        assert r["value"] > 0 and r["description"], key
        assert r["numerator"]["median_s"] > 0 and r["denominator"]["median_s"] > 0, key
        if key in bench.TARGETS:
            assert r["target"] and isinstance(r["meets_target"], bool), key
            assert r["target_value"] == bench.TARGETS[key][1], key
        else:
            assert r["target"] is None and r["meets_target"] is None, key

    sc = report["scaling"]
    assert [row["num_emotions"] for row in sc["emotions"]] == s["emotion_counts"] == [1, 9]
    for row in sc["emotions"]:
        for part in ("decoder_only", "sam_point_prompts", "decode", "decode_explain"):
            _check_stats(row[part], f"emotions {row['num_emotions']} {part}", s["repeats"])
    assert (wp is not None) == packing_supported("cpu")  # packed for the comparison where ORT decodes
    assert report["model"]["lm_packed_layers"] == (0 if report["model"]["lm_runtime"] == "ort" else (wp or {}).get("packed_layers", 0))
    lr = sc.get("lm_runtime")  # ONNX Runtime beside torch, where onnxruntime is installed (the tiny Llama)
    import importlib.util

    assert (lr is not None) == (importlib.util.find_spec("onnxruntime") is not None)
    assert report["model"]["lm_runtime"] == ("ort" if lr else "torch")
    if lr:
        _check_stats(lr["ort"], "lm_runtime ort", s["repeats"])
        _check_stats(lr["torch"], "lm_runtime torch", s["repeats"])
        assert lr["same_first_20_tokens"] is True  # the float32 graph decodes torch's tokens
        assert tp["tokens_per_s_lm_runtime"] > 0 and tp["tokens_per_s_torch"] > 0
    col = sc["collection"]  # tools/infer.py FOLDER --emotion all, per runtime, in fresh processes
    assert col["images"] == s["collection_images"] == 2 and col["emotions_per_image"] == 9
    assert set(col["runtimes"]) == ({"ort", "torch"} if lr else {"torch"})
    for name, row in col["runtimes"].items():
        _check_stats(row, f"collection {name}", s["cold_repeats"])
        assert tp[f"collection_images_per_s_{name}"] == row["images_per_s"] > 0
    for side in ("packed", "plain_linear"):
        for k in (1, 9) if wp else ():
            _check_stats(wp[side][f"explain@{k}"], f"packing {side} {k}", s["repeats"])
    assert [row["size"] for row in sc["image_size"]] == s["image_sizes"]
    for row in sc["image_size"]:
        assert max(row["image_hw"]) == row["size"]
        _check_stats(row["encode"], f"image {row['size']} encode")
        _check_stats(row["decode"], f"image {row['size']} decode")
    assert [row["img_size"] for row in sc["encoder_input_size"]] == s["encoder_sizes"]
    for row in sc["encoder_input_size"]:
        _check_stats(row["encode"], f"encoder {row['img_size']}")
        assert row["tokens"] == (row["img_size"] // 16) ** 2
    assert sc["encoder_hparams"]["embed_dim"] == 192 and sc["encoder_hparams"]["depth"] == 6

    rows = {(r["stage"], r["batch_size"]) for r in report["training"]}
    assert rows == set(itertools.product(bench.TRAIN_STAGES, s["train_batch_sizes"]))
    for r in report["training"]:
        _check_stats(r["step"], f"train {r['stage']}@{r['batch_size']}", s["repeats"])
        assert r["samples_per_s"] > 0 and r["trainable_params_m"] > 0
    assert set(tp["train_samples_per_s"]) == {f"{a}@{b}" for a, b in rows}

    mem = report["memory"]
    assert mem["process_peak_rss_mb"] > 0 and mem["cuda_max_allocated_mb"] is None

    md = out.with_suffix(".md").read_text()
    assert md == bench.to_markdown(report)
    assert "| Stage |" in md and "| Ratio |" in md and "| Training step |" in md
    assert ("oneDNN-prepacked" in md) == bool(wp) and "SAM, as many point prompts" in md
    assert "| Stage |" in proc.stdout


def test_statistics():
    stats = bench.summarize([0.3, 0.1, 0.2, 0.4])
    assert stats["median_s"] == pytest.approx(0.25) and stats["min_s"] == 0.1
    assert stats["p90_s"] == pytest.approx(0.37) and stats["runs"] == 4
    assert bench.percentile([2.0], 90) == 2.0
    with pytest.raises(ValueError):
        bench.summarize([])


def test_memory_probe_sees_a_touched_allocation():
    monitor = bench.MemoryMonitor("auto")
    if monitor.method == "none":
        pytest.skip("no per-stage memory method on this platform")

    def allocate():
        block = b"x" * (80 * 2**20)  # written, so resident
        return len(block)

    got = monitor.probe(allocate, lambda: None)
    assert got["rss_peak_increase_mb"] >= 60
    assert monitor.probe(lambda: None, lambda: None)["rss_peak_increase_mb"] < 60
    assert monitor.process_peak_rss_mb() >= 80


def test_each_child_process_reports_its_own_peak():
    """wait_with_peak reads the child's own high-water mark: a small child after a large one
    reports its own small peak (RUSAGE_CHILDREN would report the large one's; a child's
    ru_maxrss would start from this test process's size), and the poll runs meanwhile."""
    from emosem.benchmark.memory import wait_with_peak

    def child(mb: int, code: int = 0) -> tuple[float, int, int]:
        calls = []
        proc = subprocess.Popen([sys.executable, "-c", f"b = bytearray({mb} << 20); b[::4096] = bytes(len(b[::4096])); import time; time.sleep(0.2); "
                                 f"raise SystemExit({code})"])
        peak = wait_with_peak(proc, lambda: calls.append(1))
        return peak, proc.returncode, len(calls)

    big, code, polls = child(300)
    small, _, _ = child(10)
    assert code == 0 and polls > 3
    assert big > 300 and small < big - 250
    assert child(10, code=3)[1] == 3


def test_encoder_hparams_rebuild_the_same_encoder():
    from emosem.modeling.segmenter import build_segmenter

    encoder = build_segmenter("sam_tiny").image_encoder
    hp = bench.encoder_hparams(encoder)
    same = bench.build_encoder(hp, hp["original_img_size"])
    a, b = encoder.state_dict(), same.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    bigger = bench.build_encoder(hp, 512)
    assert bigger.pos_embed.shape[1:3] == (32, 32)


def test_markdown_of_a_partial_report():
    report = {
        "machine": {"cpu_model": "Test CPU", "logical_cores": 2, "torch_threads": 2,
                    "torch_version": "2.x", "device": "cpu", "python_version": "3.11.0"},
        "settings": {"repeats": 3, "warmup": 1, "max_new_tokens": 40},
        "stages": {"encode": {"median_s": 0.04, "p90_s": 0.05, "min_s": 0.039,
                              "rss_peak_increase_mb": 12.0}},
        "ratios": {"mask_path_vs_sam": {"value": 1.05, "target": "<= 1.1", "meets_target": True,
                                        "description": "mask path vs SAM"}},
        "errors": [{"section": "training steps", "error": "RuntimeError: boom"}],
    }
    md = bench.to_markdown(report)
    assert "Test CPU · 2 logical cores" in md
    assert "| encode (preprocess + image encoder) | 40.0 ms | 50.0 ms | 39.0 ms | 12 MB |" in md
    assert "| (c) EmoSEM mask path ÷ SAM with a point prompt | 1.05× | <= 1.1 | yes |" in md
    assert "training steps: RuntimeError: boom" in md


def test_bad_checkpoint_is_a_clear_error(tmp_path: Path, caplog):
    from emosem.cli import main

    assert main(["benchmark", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "b.json")]) == 2
    assert not (tmp_path / "b.json").exists()
    assert f"--checkpoint {tmp_path} is not an EmoSEM checkpoint" in caplog.text
    assert "config.json" in caplog.text and "Traceback" not in caplog.text


def test_settings_resolve_defaults_and_quick(tiny_checkpoint: Path):
    full = bench.BenchmarkSettings(checkpoint=tiny_checkpoint).resolve()
    assert (full.repeats, full.warmup, full.cold_repeats, full.max_new_tokens) == (5, 1, 3, 40)
    assert full.emotion_counts == (1, 3, 9) and full.image.name == "starry_night.jpg"
    quick = bench.BenchmarkSettings(checkpoint=tiny_checkpoint, quick=True, repeats=3,
                                    emotion_counts=(4,)).resolve()
    assert quick.repeats == 3 and quick.max_new_tokens == 8
    assert quick.emotion_counts == (1, 4, 9)  # 1 and 9 always, sorted
    assert quick.measured() == {
        "repeats": 3, "warmup": 1, "cold_repeats": 1, "max_new_tokens": 8,
        "image_sizes": [256, 512], "encoder_sizes": [256, 512], "emotion_counts": [1, 4, 9],
        "train_batch_sizes": [4], "collection_images": 2,
    }
    assert quick.resolve() == quick  # idempotent


@pytest.mark.parametrize("change, name, words", [
    ({"repeats": 0}, "repeats", "at least 1, got 0"),
    ({"warmup": -1}, "warmup", "0 or more"),
    ({"emotion_counts": (12,)}, "emotion_counts", "up to 9"),
    ({"image_sizes": ()}, "image_sizes", "positive integers"),
    ({"threads": 0}, "threads", "at least 1"),
    ({"collection_images": 1}, "collection_images", "0 .skip. or at least 2"),
    ({"what": "everything"}, "what", "one of infer, train, all"),
    ({"memory": "rss"}, "memory", "one of auto, hwm, psutil, none"),
    ({"device": "tpu"}, "device", "must be one of auto, cpu, cuda, mps"),
    ({"image": "no/such.jpg"}, "image", "no such file"),
])
def test_settings_errors_name_the_field_not_a_flag(tiny_checkpoint: Path, change, name, words):
    with pytest.raises(bench.BenchmarkSettingError, match=words) as err:
        bench.BenchmarkSettings(checkpoint=tiny_checkpoint, **change).resolve()
    assert err.value.name == name and "--" not in str(err.value)


def test_cli_translates_a_setting_error_to_the_flag(tmp_path: Path, caplog):
    from emosem.cli import main

    assert main(["benchmark", "--repeats", "0", "--out", str(tmp_path / "b.json")]) == 2
    assert "--repeats must be at least 1, got 0" in caplog.text
    assert main(["benchmark", "--emotion-counts", "3,12", "--out", str(tmp_path / "b.json")]) == 2
    assert "--emotion-counts go up to 9" in caplog.text
    assert not (tmp_path / "b.json").exists()


def test_callable_from_python(tiny_checkpoint: Path, tmp_path: Path):
    """A training-only run through the Python API: settings in, report out, files written."""
    settings = bench.BenchmarkSettings(checkpoint=tiny_checkpoint, what="train", repeats=1,
                                       train_batch_sizes=(2,), threads=1, memory="none")
    report = bench.run_benchmark(settings)
    assert report["errors"] == [] and report["settings"]["what"] == "train"
    assert list(report)[:5] == ["schema_version", "created", "emosem_commit", "machine", "settings"]
    assert {(r["stage"], r["batch_size"]) for r in report["training"]} == {
        (stage, 2) for stage in bench.TRAIN_STAGES}
    assert report["machine"]["threads_requested"] == 1 and report["stages"] == {}
    out, md = bench.write_report(report, tmp_path / "sub" / "bench.json")
    assert json.loads(out.read_text()) == report and md.read_text() == bench.to_markdown(report)


def test_one_machine_info_for_both_reports():
    """The evaluation report and the benchmark share emosem.machine.machine_info's keys."""
    from emosem import machine

    info = machine.machine_info("cpu")
    for key in ("cpu_model", "logical_cores", "torch_threads", "torch_version", "device",
                "python_version", "platform"):
        assert info[key] is not None, key
    assert info["device"] == "cpu" and info["gpu"] is None
    assert bench.to_markdown({"machine": info}).startswith(f"**Machine:** {machine.machine_line(info)}")
