"""Segmentation section: gIoU, cIoU, F-measure (β² = 0.3), MAE, overall and per emotion, and the
correct-motif rate (synthetic set), for the model and each mask baseline (centre prior,
emotion-agnostic prompt).

Report part: ``segmentation: {overall: {gIoU, cIoU, F_beta, MAE, n}, per_emotion, correct_motif_rate,
n_correct_motif, correct_motif_rate_multi_emotion, n_correct_motif_multi_emotion}`` and
``baselines.{centre_prior, emotion_agnostic}: {description, segmentation, comparison[, fit]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emosem.evaluation.metrics import SegmentationMeter
from emosem.evaluation.rows import MASK_METHODS, SampleRow
from emosem.evaluation.sections.compare import beats, compare, rate

__all__ = ["MASK_BASELINES", "SegmentationResult", "mask_baselines", "segmentation"]

MASK_BASELINES = MASK_METHODS[1:]  # ("emotion_agnostic", "centre_prior")
SEG_COMPARE = (("gIoU", True), ("cIoU", True), ("correct_motif_rate", True))


@dataclass
class SegmentationResult:
    """Per mask method (:data:`~emosem.evaluation.rows.MASK_METHODS`): its report section and
    its meter (for the figures); ``None`` for both where no sample has a mask."""

    sections: dict[str, dict[str, Any] | None]
    meters: dict[str, SegmentationMeter | None]

    @property
    def model(self) -> dict[str, Any] | None:
        return self.sections["model"]


def _section(rows: list[SampleRow], method: str
             ) -> tuple[dict[str, Any] | None, SegmentationMeter | None]:
    seg_rows = [r.seg[method] for r in rows if r.seg.get(method)]
    if not seg_rows:
        return None, None
    meter = SegmentationMeter.from_rows(seg_rows, deduplicate=True)
    m = meter.compute()
    per = m.pop("per_emotion")
    motif = [r for r in rows if r.correct_motif and method in r.correct_motif]
    multi = [r for r in motif if r.multi_emotion]
    return {
        "overall": m,
        "per_emotion": per,
        "correct_motif_rate": rate([r.correct_motif[method] for r in motif]),
        "n_correct_motif": len(motif),
        "correct_motif_rate_multi_emotion": rate([r.correct_motif[method] for r in multi]),
        "n_correct_motif_multi_emotion": len(multi),
    }, meter


def segmentation(rows: list[SampleRow]) -> SegmentationResult:
    """The segmentation section of the model and of each mask baseline."""
    pairs = {method: _section(rows, method) for method in MASK_METHODS}
    return SegmentationResult({k: v[0] for k, v in pairs.items()},
                              {k: v[1] for k, v in pairs.items()})


def _flat(section: dict | None) -> dict:
    if section is None:
        return {}
    return {
        **section["overall"],
        "correct_motif_rate": section["correct_motif_rate"],
        "correct_motif_rate_multi_emotion": section["correct_motif_rate_multi_emotion"],
    }


def mask_baselines(seg: SegmentationResult, prior: Any) -> tuple[dict[str, dict], dict[str, Any]]:
    """``({name: baseline entry}, {name: beats})`` for the mask baselines that were scored."""
    descriptions = {
        "emotion_agnostic": "the same checkpoint prompted with an empty emotion "
        '(template with e = ""): one mask per painting for every emotion',
        "centre_prior": (prior.describe() if prior is not None else "not fitted")
        + " (fitted on the train split)",
    }
    model_flat = _flat(seg.model)
    entries: dict[str, dict] = {}
    won: dict[str, Any] = {}
    for name in MASK_BASELINES:
        section = seg.sections[name]
        if section is None:
            continue
        comp = compare(model_flat, _flat(section), SEG_COMPARE)
        entry = {"description": descriptions[name], "segmentation": section, "comparison": comp}
        if name == "centre_prior" and prior is not None:
            entry["fit"] = {"area_fraction": prior.fraction, "n_train_masks": prior.n_fit}
        entries[name] = entry
        won[name] = beats(comp)
    return entries, won
