"""Training through Accelerate: one code path for 1 CPU process, 1 GPU, or many GPUs/nodes.

``train(cfg, resume="auto")`` builds the data splits and the model, then runs ``max_steps``
optimizer steps with gradient accumulation, clipping, warmup + cosine decay, periodic
validation (mask gIoU/cIoU, a few generated explanations), atomic ``save_state`` checkpoints
every ``save_every`` steps (exact resume: same data order through the seedable sampler and
``skip_first_batches``, same RNG), SIGTERM/SIGINT handling, and NaN/Inf step skipping. At the
end ``best/`` and ``last/`` are written with ``EmoSEM.save_pretrained``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from emosem.config import EmoSEMConfig
from emosem.data.dataset import collate_samples
from emosem.data.sampler import PaintingBatchSampler
from emosem.data.splits import build_splits
from emosem.iou import giou_ciou, intersection_union
from emosem.modeling.emosem import EmoSEM
from emosem.training.checkpointing import (
    load_checkpoint,
    read_state,
    resolve_resume,
    save_checkpoint,
)

logger = logging.getLogger(__name__)

FAULT_ENV = "EMOSEM_FAULT_AT_STEP"  # test hook: SIGKILL this process at that step
SHARD_ENV = "EMOSEM_LOG_SHARDS"  # test hook: log the sample indices each rank trains on


class TrainingAborted(RuntimeError):
    """Too many non-finite losses in a row, or another unrecoverable training state."""


class _StopFlag:
    """Remembers SIGTERM/SIGINT so the loop can checkpoint and exit cleanly."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # second signal: give up at once
            raise KeyboardInterrupt
        self.signum = signum
        logger.warning("Received %s: saving a checkpoint and stopping", signal.Signals(signum).name)

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def _tracker(cfg: EmoSEMConfig) -> str | None:
    name = cfg.train.tracker
    if name in (None, "", "none"):
        return None
    mod = {"tensorboard": "tensorboard", "wandb": "wandb"}.get(name)
    if mod is None:
        raise ValueError(f"train.tracker must be tensorboard, wandb or none, got {name!r}")
    import importlib.util

    if importlib.util.find_spec(mod) is None:
        logger.warning("Tracker %s requested but %s is not installed; not logging to it", name, mod)
        return None
    return name


def build_accelerator(cfg: EmoSEMConfig, run_dir: Path, cpu: bool | None = None):
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs

    mp = cfg.train.mixed_precision
    return Accelerator(
        mixed_precision=mp,
        gradient_accumulation_steps=cfg.train.grad_accum,
        log_with=_tracker(cfg),
        project_dir=str(run_dir),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.train.seed),
        # Batches without text leave the LM unused; batches of the language stage the decoder.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        cpu=bool(cpu),
    )


def _setup_logging(run_dir: Path, is_main: bool) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if is_main:
        fh = logging.FileHandler(run_dir / "train.log")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)
    else:
        root.setLevel(logging.WARNING)


def build_model(cfg: EmoSEMConfig) -> EmoSEM:
    """Fresh model from ``cfg.model``, or continue from ``cfg.train.init_from`` (a saved model)."""
    if cfg.train.init_from:
        model = EmoSEM.from_pretrained(cfg.train.init_from, trainable=True)
        # what the language side reads is the run's choice, not the initialising checkpoint's
        model.config.adapter_mask = cfg.model.adapter_mask
        model.config.cues = cfg.model.cues
        model.config.num_concepts = cfg.model.num_concepts
        logger.info("Initialised from %s", cfg.train.init_from)
    else:  # a tag head is added and fitted on the data by train() (see fit_tag_head)
        model = EmoSEM.build(dataclasses.replace(cfg.model, num_tags=0))
    model.set_stage(cfg.train.stage)
    if cfg.train.cache_encoder_features and hasattr(model.sam.image_encoder, "enable_cache"):
        model.sam.image_encoder.enable_cache()
    if cfg.train.grad_checkpointing_lm:
        model.lm.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.lm.model.enable_input_require_grads()
    model.train()
    return model


@torch.no_grad()
def fit_tag_head(model: EmoSEM, train_set: Any, max_tags: int, batch_size: int = 16) -> dict[str, Any]:
    """Add a tag head to ``model`` and fit it on frozen features of the training samples.

    The vocabulary is the content tokens of the training explanations (see
    :func:`~emosem.modeling.tag_head.tag_vocabulary`); each sample's targets are the tags of all
    its explanations; features come from the (frozen) segmenter with its own predicted mask.
    """
    from emosem.modeling.tag_head import tag_vocabulary

    t0 = time.perf_counter()
    rows = [i for i, s in enumerate(train_set.samples) if s.has_text]
    utts = [train_set.samples[i].utterances for i in rows]
    flat = model.lm.target_ids([u for us in utts for u in us])
    per_utt, start = [], 0
    for us in utts:
        per_utt.append(flat[start : start + len(us)])
        start += len(us)
    token_ids, _ = tag_vocabulary(flat, model.lm.tokenizer.decode, max_tags=max_tags)
    head = model.add_tag_head(token_ids)
    feats = []
    was_training = model.training
    model.eval()
    for i in range(0, len(rows), batch_size):
        batch = collate_samples([train_set[j] for j in rows[i : i + batch_size]])
        # each painting encoded once; a frozen backbone's features land in the training cache
        emb, _, index = model.encode_unique(batch["image"].to(model.device), list(batch["key"]), False)
        logits, _, mtok, tokens = model.segment(emb, list(batch["emotion"]), index)
        feats.append(model.tag_features(emb[index], logits.sigmoid(), mtok, tokens).float().cpu())
    model.train(was_training)
    features = torch.cat(feats).to(model.device)
    bce = head.fit(features, [[t for ids in us for t in ids] for us in per_utt])
    info = {"num_tags": len(token_ids), "samples": len(rows), "bce": round(bce, 4),
            "seconds": round(time.perf_counter() - t0, 1)}
    logger.info("Tag head fitted: %s", info)
    return info


@torch.no_grad()
def validate(accelerator, model, loader, cfg: EmoSEMConfig, num_explanations: int = 0) -> dict[str, Any]:
    """Val mask gIoU / cIoU (at the model's input resolution), mean losses, a few explanations."""
    unwrapped = accelerator.unwrap_model(model)
    was_training = unwrapped.training
    unwrapped.eval()
    inters, unions, lm_losses = [], [], []
    samples: list[dict[str, str]] = []
    for batch in loader:
        if batch.get("batch_size", 1) == 0:
            continue
        out = unwrapped(batch, cfg.loss, max_text_tokens=cfg.train.max_text_tokens)
        has = torch.as_tensor(batch["has_mask"], device=out.mask_logits.device, dtype=torch.bool)
        up = torch.nn.functional.interpolate(
            out.mask_logits, size=batch["mask"].shape[-2:], mode="bilinear", align_corners=False
        )[:, 0] > 0
        inter, union = intersection_union(up, batch["mask"].to(up.device) > 0.5)
        inter, union, has = accelerator.gather_for_metrics((inter, union, has))
        inters.append(inter[has].cpu())
        unions.append(union[has].cpu())
        if "lm" in out.losses:
            lm_losses.append(accelerator.gather_for_metrics(out.losses["lm"].detach()[None]).mean().item())
        if accelerator.is_main_process and len(samples) < num_explanations and unwrapped.stage != "segmenter":
            n = min(num_explanations - len(samples), len(batch["emotion"]))
            emb = unwrapped.encode(batch["image"][:n].to(unwrapped.device))
            logits, _, mtok, tokens = unwrapped.segment(emb, batch["emotion"][:n])
            cues = [c.text if c is not None else "" for c in batch.get("cues", [None] * n)[:n]]
            texts = unwrapped.explain(emb, logits, mtok, tokens, batch["emotion"][:n],
                                      cues=cues, max_new_tokens=40)
            for i in range(n):
                samples.append({"key": batch["key"][i], "emotion": batch["emotion"][i],
                                "generated": texts[i], "reference": batch["utterance"][i]})
    inter = torch.cat(inters) if inters else torch.zeros(0, dtype=torch.int64)
    giou, ciou = giou_ciou(inter, torch.cat(unions) if unions else torch.zeros(0, dtype=torch.int64))
    result: dict[str, Any] = {
        "gIoU": giou,
        "cIoU": ciou,
        "n_masks": len(inter),
        "lm_loss": sum(lm_losses) / len(lm_losses) if lm_losses else float("nan"),
        "explanations": samples,
    }
    if was_training:
        unwrapped.train()
    return result


def _score(val: dict[str, Any], stage: str) -> float:
    """Higher is better: val gIoU, or minus the LM loss when only the language part learns."""
    if stage == "language" or math.isnan(val["gIoU"]):
        return -val["lm_loss"] if not math.isnan(val["lm_loss"]) else float("-inf")
    return val["gIoU"]


def train(cfg: EmoSEMConfig, resume: str | None = None, cpu: bool | None = None) -> dict[str, Any]:
    """Run training as configured; returns the final summary (also in ``metrics.json``)."""
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    tcfg = cfg.train
    run_dir = Path(tcfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    accelerator = build_accelerator(cfg, run_dir, cpu=cpu)
    _setup_logging(run_dir, accelerator.is_main_process)
    # which checkpoint to continue (newest intact one for "auto"), before the model is built
    ckpt = resolve_resume(resume, run_dir, log=accelerator.is_main_process)
    if accelerator.is_main_process:
        cfg.save(run_dir / "config.yaml")
    set_seed(tcfg.seed)
    if tcfg.num_threads > 0:
        torch.set_num_threads(tcfg.num_threads)

    splits = build_splits(cfg.data, check_images=True)
    if accelerator.is_main_process:
        logger.info("Data report:\n%s", splits.data.report.summary())
    model = build_model(cfg)
    for part in (splits.train, splits.val):
        part.with_cues = model.config.cues
    if cfg.model.num_tags > 0 and model.tag_head is None:
        fit_tag_head(model, splits.train, cfg.model.num_tags)
    drop_last = len(splits.train) >= tcfg.batch_size
    if cfg.data.group_by_painting:
        batch_sampler = PaintingBatchSampler([s.key for s in splits.train.samples], tcfg.batch_size,
                                             seed=tcfg.seed, drop_last=drop_last)
        train_loader = DataLoader(splits.train, batch_sampler=batch_sampler, collate_fn=collate_samples,
                                  num_workers=cfg.data.num_workers)
    else:
        batch_sampler = None
        train_loader = DataLoader(splits.train, batch_size=tcfg.batch_size, shuffle=True,
                                  collate_fn=collate_samples, num_workers=cfg.data.num_workers,
                                  drop_last=drop_last)
    val_loader = DataLoader(
        splits.val, batch_size=tcfg.batch_size, shuffle=False, collate_fn=collate_samples,
        num_workers=cfg.data.num_workers,
    )
    optimizer = torch.optim.AdamW(model.param_groups(tcfg), weight_decay=tcfg.weight_decay)
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, tcfg.warmup_steps, tcfg.max_steps, min_lr_rate=tcfg.min_lr_ratio
    )
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler
    )
    unwrapped = accelerator.unwrap_model(model)
    if accelerator.log_with:
        accelerator.init_trackers("emosem", config=_flat(cfg.to_dict()))

    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "nan_steps": 0,
                             "best_score": None, "samples_seen": 0, "skipped_rows": 0}
    if ckpt is not None:
        load_checkpoint(accelerator, model, ckpt)
        state.update(read_state(ckpt))
        logger.info("Resumed from %s at step %d", ckpt, state["step"])

    history_path = run_dir / "metrics.json"
    history = json.loads(history_path.read_text()) if ckpt is not None and history_path.exists() else {}
    history.setdefault("train", [])
    history.setdefault("val", [])
    history["train"] = [r for r in history["train"] if r["step"] <= state["step"]]
    history["val"] = [r for r in history["val"] if r["step"] <= state["step"]]

    def write_history() -> None:
        if accelerator.is_main_process:
            history_path.write_text(json.dumps(history, indent=2))

    def checkpoint() -> None:
        save_checkpoint(accelerator, run_dir, state["step"], state, tcfg.keep_last)
        write_history()

    fault_step = int(os.environ.get(FAULT_ENV, "0") or 0)
    log_shards = bool(os.environ.get(SHARD_ENV))
    bar = tqdm(total=tcfg.max_steps, initial=state["step"], disable=not accelerator.is_main_process,
               desc="train", dynamic_ncols=True, mininterval=1.0)
    consecutive_nan = 0
    window: dict[str, list[float]] = {}
    t_window, n_window = time.perf_counter(), 0
    save_dtype = getattr(torch, tcfg.save_dtype)
    stopped_by = None
    with _StopFlag() as stop:
        while state["step"] < tcfg.max_steps and stop.signum is None:
            epoch = state["epoch"]
            splits.train.set_epoch(epoch)
            train_loader.set_epoch(epoch)
            if batch_sampler is not None:
                batch_sampler.set_epoch(epoch)
            loader = train_loader
            if state["batch_in_epoch"]:
                loader = accelerator.skip_first_batches(train_loader, state["batch_in_epoch"])
            for batch in loader:
                state["batch_in_epoch"] += 1
                state["skipped_rows"] += int(batch.get("num_skipped", 0))
                if batch.get("batch_size", 1) == 0:
                    continue
                if log_shards:
                    logger.warning("SHARD %s", json.dumps({"rank": accelerator.process_index,
                                                           "indices": [int(i) for i in batch["index"]]}))
                with accelerator.accumulate(model):
                    out = model(batch, cfg.loss, max_text_tokens=tcfg.max_text_tokens,
                                encoder_checkpointing=tcfg.grad_checkpointing_encoder)
                    loss = out.loss
                    finite = torch.isfinite(loss.detach())
                    finite = accelerator.reduce(finite.float(), reduction="min") > 0
                    if finite:
                        if loss.requires_grad:
                            accelerator.backward(loss)
                        if accelerator.sync_gradients and tcfg.max_grad_norm > 0:
                            accelerator.clip_grad_norm_(model.parameters(), tcfg.max_grad_norm)
                        optimizer.step()
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                if not finite:
                    state["nan_steps"] += 1
                    consecutive_nan += 1
                    logger.warning("Non-finite loss at step %d: step skipped (%d so far)",
                                   state["step"], state["nan_steps"])
                    if consecutive_nan >= tcfg.max_nan_steps:
                        raise TrainingAborted(
                            f"{consecutive_nan} non-finite losses in a row at step {state['step']}: "
                            "lower train.lr, check the data, or use fp32 (train.mixed_precision=no)"
                        )
                    continue
                consecutive_nan = 0
                if not accelerator.sync_gradients:
                    continue
                state["step"] += 1
                n_batch = len(batch["emotion"]) * accelerator.num_processes * tcfg.grad_accum
                state["samples_seen"] += n_batch
                n_window += n_batch
                reduced = {k: accelerator.reduce(v.detach(), reduction="mean").item()
                           for k, v in {"loss": loss, **out.losses}.items()}
                if log_shards:  # each rank's own loss beside the reduced one the run records
                    logger.warning("LOSS %s", json.dumps({"rank": accelerator.process_index, "step": state["step"],
                                                          "local": loss.item()}))
                for k, v in {**reduced, **out.metrics}.items():
                    window.setdefault(k, []).append(float(v))
                bar.update(1)
                if state["step"] % tcfg.log_every == 0 or state["step"] == tcfg.max_steps:
                    elapsed = time.perf_counter() - t_window
                    rec = {k: sum(v) / len(v) for k, v in window.items()}
                    rec.update(step=state["step"], epoch=epoch, samples_per_s=n_window / max(elapsed, 1e-9),
                               lr=scheduler.get_last_lr()[0], nan_steps=state["nan_steps"],
                               skipped_rows=state["skipped_rows"])
                    history["train"].append(rec)
                    bar.set_postfix(loss=f"{rec['loss']:.3f}", iou=f"{rec.get('mask_iou', float('nan')):.3f}",
                                    sps=f"{rec['samples_per_s']:.1f}")
                    accelerator.log({f"train/{k}": v for k, v in rec.items() if isinstance(v, (int, float))},
                                    step=state["step"])
                    logger.info("step %d %s", state["step"], {k: round(v, 4) for k, v in rec.items()
                                                              if isinstance(v, float)})
                    window, t_window, n_window = {}, time.perf_counter(), 0
                if fault_step and state["step"] == fault_step:
                    os.kill(os.getpid(), signal.SIGKILL)
                if state["step"] % tcfg.eval_every == 0 or state["step"] == tcfg.max_steps:
                    val = validate(accelerator, model, val_loader, cfg, tcfg.num_val_explanations)
                    val["step"] = state["step"]
                    history["val"].append(val)
                    score = _score(val, cfg.train.stage)
                    logger.info("val step %d: gIoU %.4f cIoU %.4f lm_loss %.4f", state["step"],
                                val["gIoU"], val["cIoU"], val["lm_loss"])
                    for ex in val["explanations"]:
                        logger.info("  [%s | %s] %s", ex["key"], ex["emotion"], ex["generated"])
                    accelerator.log({f"val/{k}": v for k, v in val.items() if isinstance(v, (int, float))},
                                    step=state["step"])
                    _log_text(accelerator, val["explanations"], state["step"])
                    if state["best_score"] is None or score > state["best_score"]:
                        state["best_score"] = score
                        if accelerator.is_main_process:
                            unwrapped.save_pretrained(run_dir / "best", dtype=save_dtype,
                                                      extra={"step": state["step"], "val": _scalars(val)})
                    accelerator.wait_for_everyone()
                if state["step"] % tcfg.save_every == 0 and state["step"] < tcfg.max_steps:
                    checkpoint()
                if state["step"] >= tcfg.max_steps or stop.signum is not None:
                    break
            else:
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
        stopped_by = stop.signum
    bar.close()
    checkpoint()
    summary: dict[str, Any] = {"step": state["step"], "samples_seen": state["samples_seen"],
                               "nan_steps": state["nan_steps"], "skipped_rows": state["skipped_rows"],
                               "best_score": state["best_score"], "run_dir": str(run_dir),
                               "stopped_by_signal": signal.Signals(stopped_by).name if stopped_by else None}
    if stopped_by is None and accelerator.is_main_process:
        unwrapped.save_pretrained(run_dir / "last", dtype=save_dtype, extra={"step": state["step"]})
        if not (run_dir / "best").exists():
            unwrapped.save_pretrained(run_dir / "best", dtype=save_dtype, extra={"step": state["step"]})
        if torch.cuda.is_available():
            summary["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        import resource

        summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        history["summary"] = summary
        write_history()
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


def _scalars(d: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in d.items() if isinstance(v, (int, float))}


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def _log_text(accelerator, explanations: list[dict[str, str]], step: int) -> None:
    if not explanations or not accelerator.is_main_process:
        return
    try:
        writer = accelerator.get_tracker("tensorboard", unwrap=True)
    except (ValueError, AttributeError):
        return
    if hasattr(writer, "add_text"):
        text = "\n\n".join(f"**{e['key']} — {e['emotion']}**: {e['generated']}  \n_ref_: {e['reference']}"
                           for e in explanations)
        writer.add_text("val/explanations", text, step)
