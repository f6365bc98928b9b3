"""The training section of a benchmark: optimizer steps of the checkpoint's architecture on
synthetic batches (forward + backward + gradient clipping + AdamW; no accelerate)."""

from __future__ import annotations

import logging
import time
from typing import Any

from emosem.benchmark.timing import fmt_s

logger = logging.getLogger(__name__)

__all__ = ["TRAIN_STAGES", "TrainingSection", "synthetic_batch"]

TRAIN_STAGES = ("all", "segmenter")
_UTTERANCES = (
    "The tiny boat under the towering dark wave makes me fear for the sailors on board.",
    "The swirling golden stars over the quiet village fill me with awe and wonder tonight.",
    "The soft light on the calm green meadow makes me feel content and completely at peace.",
    "The twisted face and the blood red sky make me feel an anxious and helpless sadness.",
)



def synthetic_batch(b: int, size: int) -> dict[str, Any]:
    """A collated training batch of ``b`` samples with a mask, a text and a distribution each."""
    import torch

    from emosem.emotions import ARTEMIS_EMOTIONS

    g = torch.Generator().manual_seed(b)
    return {
        "image": torch.randn(b, 3, size, size, generator=g),
        "mask": (torch.rand(b, size, size, generator=g) > 0.7).float(),
        "has_mask": [True] * b,
        "emotion": [ARTEMIS_EMOTIONS[i % len(ARTEMIS_EMOTIONS)] for i in range(b)],
        "utterance": [_UTTERANCES[i % len(_UTTERANCES)] for i in range(b)],
        "has_text": [True] * b,
        "emotion_dist": torch.softmax(torch.randn(b, len(ARTEMIS_EMOTIONS), generator=g), -1),
        "has_dist": [True] * b,
    }



class TrainingSection:
    """Mixin of :class:`~emosem.benchmark.runner.Benchmark`: the training section."""

    # ------------------------------------------------------------------ training
    def training(self) -> None:
        import torch

        from emosem.config import LossConfig, TrainConfig
        from emosem.modeling.emosem import EmoSEM

        t0 = time.perf_counter()
        model = EmoSEM.from_pretrained(self.checkpoint, device=self.device, trainable=True)
        model.train()
        logger.info("  trainable model loaded in %.1f s", time.perf_counter() - t0)
        self.report.setdefault("model", {
            "checkpoint": str(self.checkpoint), "segmenter": model.config.segmenter,
            "image_size": model.image_size, "lm": model.config.lm, "lm_dtype": model.config.dtype,
            "prefix_length": model.prefix_tokens})
        tcfg, lcfg = TrainConfig(), LossConfig()
        size = model.image_size
        rows = []
        for stage in TRAIN_STAGES:
            model.set_stage(stage)
            for b in self.s.train_batch_sizes:
                batch = synthetic_batch(b, size)
                opt = torch.optim.AdamW(model.param_groups(tcfg), weight_decay=tcfg.weight_decay)
                params = [p for g in opt.param_groups for p in g["params"]]

                def step(batch: dict[str, Any] = batch, opt: Any = opt, params: list = params,
                         model: Any = model) -> float:
                    model.zero_grad(set_to_none=True)
                    out = model(batch, lcfg, max_text_tokens=tcfg.max_text_tokens)
                    out.loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, tcfg.max_grad_norm)
                    opt.step()
                    return float(out.loss.detach())

                r = self.run_group({"step": step})["step"]
                rows.append({
                    "stage": stage, "batch_size": b, "step": r,
                    "samples_per_s": round(b / r["median_s"], 3),
                    "trainable_params_m": round(sum(p.numel() for p in params) / 1e6, 3),
                })
                logger.info("  train %s @%d: step %s, %.2f samples/s", stage, b,
                            fmt_s(r["median_s"]), b / r["median_s"])
                del opt, params, step
                model.zero_grad(set_to_none=True)
        self.report["training"] = rows
        self.report["throughput"]["train_samples_per_s"] = {
            f"{row['stage']}@{row['batch_size']}": row["samples_per_s"] for row in rows}
        del model
