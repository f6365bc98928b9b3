"""tools/train.py as researchers run it: real subprocesses, real files, real Accelerate."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from emosem.config import load_config

REPO = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, str(REPO / "tools" / "train.py")]


def _args(run_dir: Path, synthetic_dir: Path, lm: Path, *extra: str) -> list[str]:
    return [
        "--config", str(REPO / "configs" / "smoke.yaml"),
        "--set", f"data.root={synthetic_dir}",
        "--set", f"model.lm={lm}",
        "--set", f"train.output_dir={run_dir}",
        "--set", "model.lora_dropout=0.0",
        *extra,
    ]


def _run(args: list[str], env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(args, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO)


def test_config_overrides_and_errors(tmp_path):
    cfg = load_config(REPO / "configs" / "emosem_tiny_stage1.yaml",
                      ["train.lr=1e-3", "model.lora_target_modules=[q_proj, v_proj]"])
    assert cfg.train.lr == 1e-3 and cfg.model.lora_target_modules == ["q_proj", "v_proj"]
    assert cfg.train.stage == "segmenter"
    for name in ("emosem_tiny_stage1b.yaml", "emosem_tiny_stage2.yaml", "emosem_tiny_stage2b.yaml",
                 "sam_vit_b_gpu.yaml", "smoke.yaml"):
        load_config(REPO / "configs" / name)
    from emosem.config import ConfigError

    with pytest.raises(ConfigError, match="train.lrr"):
        load_config(None, ["train.lrr=1"])
    with pytest.raises(ConfigError, match="train.max_steps: expected int"):
        load_config(None, ["train.max_steps=many"])
    # YAML 1.1 would read these words as booleans; overrides keep them as the words they are
    cfg = load_config(None, ["train.mixed_precision=no", "model.film=off", "model.emotion_head=yes"])
    assert cfg.train.mixed_precision == "no" and cfg.model.film is False
    assert cfg.model.emotion_head is True
    assert load_config(None, ["model.film=false"]).model.film is False
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  mixed_precision: no\n")  # unquoted in a file: a clear error
    with pytest.raises(ConfigError, match='quote it, e.g. mixed_precision: "no"'):
        load_config(bad)


@pytest.mark.slow
def test_train_writes_a_run_folder_and_a_loadable_checkpoint(tmp_path, synthetic_dir, tiny_llama_dir):
    run = tmp_path / "run"
    # checkpoints at steps 4, 8 and 10 (the end): keep_last=2 prunes the first
    proc = _run(TRAIN + _args(run, synthetic_dir, tiny_llama_dir, "--set", "train.tracker=tensorboard",
                              "--set", "model.num_tags=64", "--set", "train.save_every=4",
                              "--set", "train.keep_last=2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "config.yaml").is_file() and (run / "train.log").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["summary"]["step"] == 10 and len(metrics["train"]) == 10
    assert {"loss", "focal", "dice", "lm", "tags", "samples_per_s", "lr"} <= set(metrics["train"][-1])
    assert "Tag head fitted" in (run / "train.log").read_text()
    assert len(metrics["val"]) == 2 and 0.0 <= metrics["val"][-1]["gIoU"] <= 1.0
    assert metrics["val"][-1]["explanations"], "validation should generate a few explanations"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000008", "step_00000010"]
    ckpt = run / "checkpoints" / "step_00000010"
    assert not list(ckpt.glob("*.pkl")), "RNG states are saved without pickle"
    assert (ckpt / "rng_state_0.safetensors").is_file()
    # best/ holds the step with the highest val gIoU (the first of equals), last/ the final step
    scores = [v["gIoU"] for v in metrics["val"]]
    best_step = metrics["val"][scores.index(max(scores))]["step"]
    assert json.loads((run / "best" / "config.json").read_text())["step"] == best_step
    assert json.loads((run / "last" / "config.json").read_text())["step"] == 10
    assert any(p.name.startswith("events.out.tfevents") for p in run.rglob("*")), "TensorBoard logs"
    from emosem.modeling.emosem import EmoSEM

    model = EmoSEM.from_pretrained(run / "last")
    assert model.image_size == 256
    assert 0 < model.config.num_tags <= 64 and len(model.tag_head.token_ids) == model.config.num_tags


@pytest.mark.slow
def test_sigkill_then_resume_auto_equals_straight_run(tmp_path, synthetic_dir, tiny_llama_dir):
    """20 steps straight == 10 steps, SIGKILL at step 13, `--resume auto` to 20 (same weights)."""
    common = ("--set", "train.max_steps=20", "--set", "train.save_every=10",
              "--set", "train.eval_every=100", "--set", "model.emotion_head=true")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    p1 = _run(TRAIN + _args(straight, synthetic_dir, tiny_llama_dir, *common))
    assert p1.returncode == 0, p1.stderr[-3000:]
    p2 = _run(TRAIN + _args(resumed, synthetic_dir, tiny_llama_dir, *common),
              env={"EMOSEM_FAULT_AT_STEP": "13"})
    assert p2.returncode == -signal.SIGKILL, (p2.returncode, p2.stderr[-2000:])
    assert (resumed / "checkpoints" / "step_00000010").is_dir()
    assert not (resumed / "last").exists()
    # a newer checkpoint damaged by a full disk and a save killed mid-write: both passed over
    ckpts = resumed / "checkpoints"
    shutil.copytree(ckpts / "step_00000010", ckpts / "step_00000012")
    opt = ckpts / "step_00000012" / "optimizer.bin"
    opt.write_bytes(opt.read_bytes()[: opt.stat().st_size // 3])
    shutil.copytree(ckpts / "step_00000010", ckpts / ".tmp-step_00000013")
    (ckpts / ".tmp-step_00000013" / "trainer_state.json").unlink()
    p3 = _run(TRAIN + _args(resumed, synthetic_dir, tiny_llama_dir, *common, "--resume", "auto"))
    assert p3.returncode == 0, p3.stderr[-3000:]
    assert "Traceback" not in p3.stderr
    assert "skipping damaged checkpoint" in p3.stderr and "step_00000012: optimizer.bin has" in p3.stderr
    assert f"Resumed from {ckpts / 'step_00000010'} at step 10" in p3.stderr
    a = load_file(str(straight / "last" / "model.safetensors"))
    b = load_file(str(resumed / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 1e-5, k
    la = load_file(str(straight / "last" / "lm_adapter" / "adapter_model.safetensors"))
    lb = load_file(str(resumed / "last" / "lm_adapter" / "adapter_model.safetensors"))
    for k in la:
        assert (la[k] - lb[k]).abs().max().item() < 1e-5, k


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, synthetic_dir, tiny_llama_dir):
    run = tmp_path / "run"
    args = TRAIN + _args(run, synthetic_dir, tiny_llama_dir, "--set", "train.max_steps=1000",
                         "--set", "train.save_every=1000", "--set", "train.eval_every=1000")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    deadline = time.time() + 300
    while time.time() < deadline and not (run / "metrics.json").exists():
        if (run / "train.log").exists() and "step 3 " in (run / "train.log").read_text():
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    ckpts = sorted((run / "checkpoints").glob("step_*"))
    assert ckpts, "SIGTERM must leave a checkpoint"
    state = json.loads((ckpts[-1] / "trainer_state.json").read_text())
    assert 0 < state["step"] < 1000
    assert "stopping" in err


def test_non_finite_losses_stop_the_run_with_a_clear_message(tmp_path, synthetic_dir, tiny_llama_dir):
    run = tmp_path / "run"
    proc = _run(TRAIN + _args(run, synthetic_dir, tiny_llama_dir, "--set", "loss.focal=.nan",
                              "--set", "train.max_nan_steps=3", "--set", "train.eval_every=100"))
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "non-finite losses in a row" in proc.stderr
    assert proc.stderr.count("Non-finite loss at step") == 3


@pytest.mark.slow
def test_two_cpu_processes_with_accelerate_launch(tmp_path, synthetic_dir, tiny_llama_dir):
    """Two CPU processes (gloo) through `accelerate launch`: disjoint shards, reduced loss,
    only rank 0 writes. accelerate's own `--cpu` launcher flag starts a single process unless
    mpirun is used, so the torchrun-based launcher (`--multi_gpu`) spawns the two ranks and the
    training script's `--cpu` keeps them on the CPU."""
    run = tmp_path / "run"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              str(REPO / "tools" / "train.py"), "--cpu"]
    proc = _run(launch + _args(run, synthetic_dir, tiny_llama_dir, "--set", "train.max_steps=4",
                               "--set", "train.save_every=2", "--set", "train.eval_every=4",
                               "--set", "train.batch_size=2"),
                env={"EMOSEM_LOG_SHARDS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    shards = [json.loads(line.split("SHARD ", 1)[1]) for line in proc.stderr.splitlines() if "SHARD {" in line]
    ranks: dict[int, set] = {}
    for s in shards:
        ranks.setdefault(s["rank"], set()).update(s["indices"])
    assert set(ranks) == {0, 1}, proc.stderr[-2000:]
    assert ranks[0] and ranks[1] and not (ranks[0] & ranks[1]), "ranks must see disjoint samples"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["summary"]["step"] == 4
    assert metrics["train"][-1]["samples_per_s"] > 0
    # reduced loss: each recorded step's loss is the mean of the two ranks' own losses (log_every=1)
    local: dict[int, dict[int, float]] = {}
    for line in proc.stderr.splitlines():
        if "LOSS {" in line:
            rec = json.loads(line.split("LOSS ", 1)[1])
            local.setdefault(rec["step"], {})[rec["rank"]] = rec["local"]
    assert sorted(local) == [1, 2, 3, 4] and all(set(v) == {0, 1} for v in local.values()), local
    assert any(abs(v[0] - v[1]) > 1e-6 for v in local.values()), "ranks train on different data"
    for rec in metrics["train"]:
        assert rec["loss"] == pytest.approx((local[rec["step"]][0] + local[rec["step"]][1]) / 2, rel=1e-5)
    # only rank 0 writes: one report, rank 1's lines reach stderr but never train.log, one copy
    # of the weights per checkpoint (each rank keeps only its own RNG state beside them)
    assert proc.stderr.count("Data report") == 1, "only rank 0 reports"
    log = (run / "train.log").read_text()
    assert '"rank": 0' in log and '"rank": 1' not in log
    assert '"rank": 1' in proc.stderr
    for ckpt in (run / "checkpoints").glob("step_*"):
        names = sorted(p.name for p in ckpt.iterdir())
        assert names.count("model.safetensors") == 1 and not any(n.endswith(".pkl") for n in names)
        assert {"rng_state_0.safetensors", "rng_state_1.safetensors"} <= set(names)
    assert not list(run.glob("**/*rank1*")) and not list(run.glob("**/*.tmp*"))
    from emosem.modeling.emosem import EmoSEM

    EmoSEM.from_pretrained(run / "last")
