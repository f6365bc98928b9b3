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

from emosem.config import TRACKERS, EmoSEMConfig, check_choice
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
    check_choice(name, TRACKERS, "train.tracker")  # a config built in Python skips load_config
    mod = name  # the tracker's Python module
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
        model.config.cue_version = cfg.model.cue_version
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
            rows = batch.get("cues", [None] * n)[:n]
            cues = [c.phrase(unwrapped.config.cue_version) if c is not None else "" for c in rows]
            texts = unwrapped.explain(emb, logits, mtok, tokens, batch["emotion"][:n], cues=cues,
                                      objects=[getattr(c, "object", None) for c in rows], max_new_tokens=40)
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
    # object slot targets on the training split only (validation keeps the annotators' references)
    splits.train.appearance_share = cfg.data.appearance_share
    splits.train.object_swap_share = cfg.data.object_swap_share
    if cfg.model.num_tags > 0 and model.tag_head is None:
        fit_tag_head(model, splits.train, cfg.model.num_tags)
    if model.config.cues and model.config.cue_version >= 2:
        from emosem.data.cue_words import OBJECT_NOUNS

        n_obj = model.set_object_vocabulary(OBJECT_NOUNS)
        logger.info("Object slot: %d of the tag head's tags name an object", n_obj)
    train_loader, val_loader, batch_sampler = _loaders(cfg, splits)
    optimizer = torch.optim.AdamW(model.param_groups(tcfg), weight_decay=tcfg.weight_decay)
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, tcfg.warmup_steps, tcfg.max_steps, min_lr_rate=tcfg.min_lr_ratio
    )
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler
    )
    if accelerator.log_with:
        accelerator.init_trackers("emosem", config=_flat(cfg.to_dict()))
    loop = _Loop(cfg, accelerator, model, optimizer, scheduler, val_loader, run_dir)
    loop.resume(ckpt)
    return loop.finish(loop.run(splits.train, train_loader, batch_sampler))


def _loaders(cfg: EmoSEMConfig, splits: Any) -> tuple[DataLoader, DataLoader, PaintingBatchSampler | None]:
    """(train loader, val loader, the train batch sampler when batches group by painting)."""
    tcfg, workers = cfg.train, cfg.data.num_workers
    drop_last = len(splits.train) >= tcfg.batch_size
    batch_sampler = None
    if cfg.data.group_by_painting:
        batch_sampler = PaintingBatchSampler([s.key for s in splits.train.samples], tcfg.batch_size,
                                             seed=tcfg.seed, drop_last=drop_last)
        train_loader = DataLoader(splits.train, batch_sampler=batch_sampler, collate_fn=collate_samples,
                                  num_workers=workers)
    else:
        train_loader = DataLoader(splits.train, batch_size=tcfg.batch_size, shuffle=True,
                                  collate_fn=collate_samples, num_workers=workers, drop_last=drop_last)
    val_loader = DataLoader(splits.val, batch_size=tcfg.batch_size, shuffle=False,
                            collate_fn=collate_samples, num_workers=workers)
    return train_loader, val_loader, batch_sampler


class _Loop:
    """The optimizer-step loop of :func:`train`: resumable state, the metrics history and its
    logging window, NaN skipping, validation with ``best/``, checkpoints, and the end of a run."""

    def __init__(self, cfg: EmoSEMConfig, accelerator, model, optimizer, scheduler, val_loader,
                 run_dir: Path) -> None:
        self.cfg, self.tcfg, self.acc, self.run_dir = cfg, cfg.train, accelerator, run_dir
        self.model, self.optimizer, self.scheduler, self.val_loader = model, optimizer, scheduler, val_loader
        self.unwrapped = accelerator.unwrap_model(model)
        self.state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "nan_steps": 0,
                                      "best_score": None, "samples_seen": 0, "skipped_rows": 0}
        self.history_path = run_dir / "metrics.json"
        self.history: dict[str, Any] = {}
        self.save_dtype = getattr(torch, self.tcfg.save_dtype)
        self.fault_step = int(os.environ.get(FAULT_ENV, "0") or 0)
        self.log_shards = bool(os.environ.get(SHARD_ENV))
        self.consecutive_nan = 0
        self.window: dict[str, list[float]] = {}
        self.t_window, self.n_window = time.perf_counter(), 0
        self.bar: Any = None

    def resume(self, ckpt: Path | None) -> None:
        """Load ``ckpt`` (model, optimizer, scheduler, RNG, loop state) and its history rows."""
        if ckpt is not None:
            load_checkpoint(self.acc, self.model, ckpt)
            self.state.update(read_state(ckpt))
            logger.info("Resumed from %s at step %d", ckpt, self.state["step"])
        resumed = ckpt is not None and self.history_path.exists()
        history = json.loads(self.history_path.read_text()) if resumed else {}
        for part in ("train", "val"):
            history[part] = [r for r in history.get(part, []) if r["step"] <= self.state["step"]]
        self.history = history

    def run(self, train_set: Any, train_loader: DataLoader, batch_sampler: Any) -> int | None:
        """Train to ``max_steps`` or a SIGTERM/SIGINT; returns that signal's number, else None."""
        from tqdm.auto import tqdm

        state, tcfg = self.state, self.tcfg
        self.bar = tqdm(total=tcfg.max_steps, initial=state["step"], disable=not self.acc.is_main_process,
                        desc="train", dynamic_ncols=True, mininterval=1.0)
        self.t_window = time.perf_counter()
        with _StopFlag() as stop:
            while state["step"] < tcfg.max_steps and stop.signum is None:
                epoch = state["epoch"]
                train_set.set_epoch(epoch)
                train_loader.set_epoch(epoch)
                if batch_sampler is not None:
                    batch_sampler.set_epoch(epoch)
                loader = train_loader
                if state["batch_in_epoch"]:
                    loader = self.acc.skip_first_batches(train_loader, state["batch_in_epoch"])
                for batch in loader:
                    if self._batch(batch, epoch) and (state["step"] >= tcfg.max_steps
                                                      or stop.signum is not None):
                        break
                else:
                    state["epoch"] += 1
                    state["batch_in_epoch"] = 0
            stopped_by = stop.signum
        self.bar.close()
        return stopped_by

    def _batch(self, batch: dict[str, Any], epoch: int) -> bool:
        """One batch; True when it completed an optimizer step."""
        state, tcfg = self.state, self.tcfg
        state["batch_in_epoch"] += 1
        state["skipped_rows"] += int(batch.get("num_skipped", 0))
        if batch.get("batch_size", 1) == 0:
            return False
        if self.log_shards:
            logger.warning("SHARD %s", json.dumps({"rank": self.acc.process_index,
                                                   "indices": [int(i) for i in batch["index"]]}))
        out = self._forward_backward(batch)
        if out is None or not self.acc.sync_gradients:
            return False
        state["step"] += 1
        self._record(batch, out, epoch)
        if self.fault_step and state["step"] == self.fault_step:
            os.kill(os.getpid(), signal.SIGKILL)
        if state["step"] % tcfg.eval_every == 0 or state["step"] == tcfg.max_steps:
            self._validate()
        if state["step"] % tcfg.save_every == 0 and state["step"] < tcfg.max_steps:
            self.checkpoint()
        return True

    def _forward_backward(self, batch: dict[str, Any]) -> Any:
        """Forward, backward, clip and step (under gradient accumulation); None when the loss
        was not finite on some process, which skips the step on all of them."""
        tcfg, acc = self.tcfg, self.acc
        with acc.accumulate(self.model):
            out = self.model(batch, self.cfg.loss, max_text_tokens=tcfg.max_text_tokens,
                             encoder_checkpointing=tcfg.grad_checkpointing_encoder)
            finite = torch.isfinite(out.loss.detach())
            finite = acc.reduce(finite.float(), reduction="min") > 0
            if finite:
                if out.loss.requires_grad:
                    acc.backward(out.loss)
                if acc.sync_gradients and tcfg.max_grad_norm > 0:
                    acc.clip_grad_norm_(self.model.parameters(), tcfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        if finite:
            self.consecutive_nan = 0
            return out
        self.state["nan_steps"] += 1
        self.consecutive_nan += 1
        logger.warning("Non-finite loss at step %d: step skipped (%d so far)",
                       self.state["step"], self.state["nan_steps"])
        if self.consecutive_nan >= tcfg.max_nan_steps:
            raise TrainingAborted(
                f"{self.consecutive_nan} non-finite losses in a row at step {self.state['step']}: "
                "lower train.lr, check the data, or use fp32 (train.mixed_precision=no)"
            )
        return None

    def _record(self, batch: dict[str, Any], out: Any, epoch: int) -> None:
        """Count the step's samples, reduce its losses, and every ``log_every`` steps log the
        window's means (metrics.json, the tracker, the progress bar)."""
        state, tcfg, acc = self.state, self.tcfg, self.acc
        n_batch = len(batch["emotion"]) * acc.num_processes * tcfg.grad_accum
        state["samples_seen"] += n_batch
        self.n_window += n_batch
        reduced = {k: acc.reduce(v.detach(), reduction="mean").item()
                   for k, v in {"loss": out.loss, **out.losses}.items()}
        if self.log_shards:  # each rank's own loss beside the reduced one the run records
            logger.warning("LOSS %s", json.dumps({"rank": acc.process_index, "step": state["step"],
                                                  "local": out.loss.item()}))
        for k, v in {**reduced, **out.metrics}.items():
            self.window.setdefault(k, []).append(float(v))
        self.bar.update(1)
        if state["step"] % tcfg.log_every and state["step"] != tcfg.max_steps:
            return
        elapsed = time.perf_counter() - self.t_window
        rec = {k: sum(v) / len(v) for k, v in self.window.items()}
        rec.update(step=state["step"], epoch=epoch, samples_per_s=self.n_window / max(elapsed, 1e-9),
                   lr=self.scheduler.get_last_lr()[0], nan_steps=state["nan_steps"],
                   skipped_rows=state["skipped_rows"])
        self.history["train"].append(rec)
        self.bar.set_postfix(loss=f"{rec['loss']:.3f}", iou=f"{rec.get('mask_iou', float('nan')):.3f}",
                             sps=f"{rec['samples_per_s']:.1f}")
        acc.log({f"train/{k}": v for k, v in rec.items() if isinstance(v, (int, float))}, step=state["step"])
        logger.info("step %d %s", state["step"], {k: round(v, 4) for k, v in rec.items() if isinstance(v, float)})
        self.window, self.t_window, self.n_window = {}, time.perf_counter(), 0

    def _validate(self) -> None:
        """Validate, log, and save ``best/`` when the score improved."""
        state, acc = self.state, self.acc
        val = validate(acc, self.model, self.val_loader, self.cfg, self.tcfg.num_val_explanations)
        val["step"] = state["step"]
        self.history["val"].append(val)
        score = _score(val, self.tcfg.stage)
        logger.info("val step %d: gIoU %.4f cIoU %.4f lm_loss %.4f", state["step"],
                    val["gIoU"], val["cIoU"], val["lm_loss"])
        for ex in val["explanations"]:
            logger.info("  [%s | %s] %s", ex["key"], ex["emotion"], ex["generated"])
        acc.log({f"val/{k}": v for k, v in val.items() if isinstance(v, (int, float))}, step=state["step"])
        _log_text(acc, val["explanations"], state["step"])
        if state["best_score"] is None or score > state["best_score"]:
            state["best_score"] = score
            if acc.is_main_process:
                self.unwrapped.save_pretrained(self.run_dir / "best", dtype=self.save_dtype,
                                               extra={"step": state["step"], "val": _scalars(val)})
        acc.wait_for_everyone()

    def write_history(self) -> None:
        if self.acc.is_main_process:
            self.history_path.write_text(json.dumps(self.history, indent=2))

    def checkpoint(self) -> None:
        save_checkpoint(self.acc, self.run_dir, self.state["step"], self.state, self.tcfg.keep_last)
        self.write_history()

    def finish(self, stopped_by: int | None) -> dict[str, Any]:
        """The last checkpoint; after a full run also ``last/`` (and ``best/`` if validation
        never wrote one) and the summary in metrics.json."""
        self.checkpoint()
        state, run_dir = self.state, self.run_dir
        summary: dict[str, Any] = {"step": state["step"], "samples_seen": state["samples_seen"],
                                   "nan_steps": state["nan_steps"], "skipped_rows": state["skipped_rows"],
                                   "best_score": state["best_score"], "run_dir": str(run_dir),
                                   "stopped_by_signal": signal.Signals(stopped_by).name if stopped_by else None}
        if stopped_by is None and self.acc.is_main_process:
            extra = {"step": state["step"]}
            self.unwrapped.save_pretrained(run_dir / "last", dtype=self.save_dtype, extra=extra)
            if not (run_dir / "best").exists():
                self.unwrapped.save_pretrained(run_dir / "best", dtype=self.save_dtype, extra=extra)
            if torch.cuda.is_available():
                summary["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
            import resource

            summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.history["summary"] = summary
            self.write_history()
        self.acc.wait_for_everyone()
        self.acc.end_training()
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
