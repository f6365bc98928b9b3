"""The figures of an evaluation: per-emotion gIoU bars (model vs mask baselines), the IoU
histogram, and overlays of the best and worst samples (prediction in the emotion's colour,
ground truth as a white contour, the explanation below)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emosem.emotions import emotion_color, emotion_file_stem
from emosem.evaluation.metrics import soft_to_shape
from emosem.evaluation.rows import SampleRow
from emosem.evaluation.sections.segmentation import MASK_BASELINES, SegmentationResult
from emosem.files import file_stem

__all__ = ["write_figures"]

COLORS = {"model": "#1976d2", "emotion_agnostic": "#ef6c00"}
STEP_STYLES = {"emotion_agnostic": ("#ef6c00", "--"), "centre_prior": ("#424242", ":")}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def _save_chart(fig: Any, ax: Any, path: Path) -> Path:
    """Legend, open top/right frame, tight layout; write ``path`` (PNG) and free the figure."""
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, facecolor="white")
    fig.clear()
    return path


def per_emotion_bars(path: Path, split: str, seg: SegmentationResult) -> Path:
    """Per-emotion gIoU of the model and of each scored mask baseline."""
    section = seg.model
    emotions = list(section["per_emotion"])
    series = [("model", section)] + [(n, seg.sections[n]) for n in MASK_BASELINES
                                     if seg.sections[n]]
    fig = _figure(max(6.0, 1.0 + 0.9 * len(emotions)), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(series)
    x = np.arange(len(emotions))
    for j, (name, sec) in enumerate(series):
        vals = [(sec["per_emotion"].get(e) or {}).get("gIoU") or 0.0 for e in emotions]
        ax.bar(x + (j - (len(series) - 1) / 2) * width, vals, width, label=name,
               color=COLORS.get(name, "#9e9e9e"), edgecolor="#222222", linewidth=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(emotions, rotation=30, ha="right", fontsize=9)
    ax.set_ylim(0, 1)
    ax.set_ylabel("gIoU")
    ax.set_title(f"Per-emotion gIoU ({split}, n = {section['overall']['n']})", fontsize=11)
    return _save_chart(fig, ax, path)


def iou_histogram(path: Path, split: str, seg: SegmentationResult) -> Path:
    """Per-sample IoU histogram: the model filled, each mask baseline as a step line."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    bins = np.linspace(0, 1, 21)
    for name in ("model", *MASK_BASELINES):
        meter = seg.meters[name]
        if meter is None:
            continue
        ious = [r["iou"] for r in meter.per_sample]
        label = f"{name} (gIoU {np.mean(ious):.3f})"
        if name == "model":
            ax.hist(ious, bins=bins, color=COLORS["model"], alpha=0.6, label=label)
        else:
            color, style = STEP_STYLES[name]
            ax.hist(ious, bins=bins, histtype="step", linewidth=1.8, color=color,
                    linestyle=style, label=label)
    ax.set_xlabel("IoU per sample")
    ax.set_ylabel("samples")
    ax.set_title(f"IoU distribution ({split})", fontsize=11)
    return _save_chart(fig, ax, path)


def _overlay_picture(predictor: Any, data: Any, s: Any, threshold: float) -> np.ndarray:
    """The painting with the re-predicted mask filled and the ground truth as a contour."""
    from emosem.visualization.overlay import overlay_mask

    state = predictor.encode(s.image_path)
    res = predictor.predict([s.emotion], explain=False, threshold=threshold, state=state)[0]
    gt = data.decode_mask(s)
    pred, _ = soft_to_shape(res.soft_mask, gt.shape, threshold)
    img = state.image
    if img.shape[:2] != gt.shape:
        import cv2

        img = cv2.resize(img, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_AREA)
    pic = overlay_mask(img, pred, color=emotion_color(s.emotion), alpha=0.45)
    return overlay_mask(pic, gt, color=(255, 255, 255), alpha=0.0)


def _overlay_figure(path: Path, pic: np.ndarray, title: str, key: str,
                    explanation: str | None) -> Path:
    h, w = pic.shape[:2]
    img_in, top_in, text_in = 5.0 * h / w, 0.55, 0.9
    total = img_in + top_in + text_in
    fig = _figure(5.0, total)
    ax = fig.add_axes([0.02, text_in / total, 0.96, img_in / total])
    ax.imshow(pic)
    ax.set_axis_off()
    fig.text(0.5, 1.0 - 0.08 / total, title, ha="center", va="top", fontsize=10, weight="bold",
             color="#222222")
    fig.text(0.5, 1.0 - 0.32 / total, key, ha="center", va="top", fontsize=7.5, color="#666666")
    text = " ".join((explanation or "(no explanation)").split())
    if len(text) > 220:
        text = text[:217] + "…"
    fig.text(0.03, (text_in - 0.08) / total,
             f"white contour: ground truth · colour: prediction\n“{text}”",
             fontsize=7.5, va="top", ha="left", wrap=True, color="#222222")
    fig.savefig(path, facecolor="white")
    fig.clear()
    return path


def best_worst_overlays(out: Path, seg: SegmentationResult, rows: list[SampleRow],
                        predictor: Any, data: Any, sample: Any, k: int,
                        threshold: float) -> list[Path]:
    """``best_<rank>_<painting>_<emotion>.png`` and ``worst_...`` for up to ``k`` samples each
    (``sample(key, emotion)`` gives the data sample; masks are predicted again)."""
    meter = seg.meters["model"]
    if meter is None or k <= 0:
        return []
    n = len(meter)  # best and worst never overlap: with few samples, fewer of each
    best = meter.best_worst(min(k, (n + 1) // 2))[0]
    worst = meter.best_worst(min(k, n // 2))[1]
    expl = {(r.key, r.emotion): r.explanation for r in rows}
    files = []
    for kind, group in (("best", best), ("worst", worst)):
        for rank, r in enumerate(group, 1):
            s = sample(r["key"], r["emotion"])
            pic = _overlay_picture(predictor, data, s, threshold)
            path = out / f"{kind}_{rank}_{file_stem(s.painting, 60, 'sample')}_{emotion_file_stem(s.emotion)}.png"
            files.append(_overlay_figure(path, pic, f"{kind} {rank}: {s.emotion} — IoU "
                                         f"{r['iou']:.3f}", s.key, expl.get((r["key"], r["emotion"]))))
    return files


def write_figures(out: Path, split: str, seg: SegmentationResult, rows: list[SampleRow],
                  predictor: Any, data: Any, sample: Any, k: int, threshold: float
                  ) -> list[Path]:
    """All figures into ``out`` (earlier runs' overlays removed first); the paths written."""
    for stale in [*out.glob("best_*.png"), *out.glob("worst_*.png")]:  # from an earlier run
        stale.unlink(missing_ok=True)
    if seg.model is None:
        return []
    files = [per_emotion_bars(out / "per_emotion_iou.png", split, seg),
             iou_histogram(out / "iou_hist.png", split, seg)]
    return files + best_worst_overlays(out, seg, rows, predictor, data, sample, k, threshold)
