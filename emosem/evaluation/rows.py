"""The typed rows a prediction run returns: one per (painting, emotion) sample and one per painting.

Rows travel between processes (``accelerate``'s ``gather_object`` pickles them) and are the only
input of the report sections (:mod:`emosem.evaluation.sections`), which never see the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GroundedExplanation",
    "MASK_METHODS",
    "PaintingRow",
    "SampleRow",
    "dedupe",
    "sample_id",
]

#: The mask predictors scored on every sample with a mask: the model and its two mask baselines.
MASK_METHODS = ("model", "emotion_agnostic", "centre_prior")


def sample_id(key: str, emotion: str) -> str:
    """The one identifier of a (painting, emotion) sample: ``"<painting key>|<emotion>"``."""
    return f"{key}|{emotion}"


@dataclass
class SampleRow:
    """What was predicted and measured for one (painting, emotion) sample.

    ``seg``: per mask method (:data:`MASK_METHODS`) the :class:`SegmentationMeter` row of the
    sample (``{"iou", "inter", "union", ...}``), only for samples with a ground-truth mask.
    ``correct_motif`` / ``multi_emotion``: per mask method, whether the mask picks the asked
    emotion's motif, and whether the painting holds motifs of two or more emotions (synthetic
    set). ``motifs``: the asked emotion's motif names; ``names_motif``: whether the explanation
    names one. ``caption_scores``: the explanation's sentence-level scores (set by the
    explanations section). ``cues``: the region cues record of the model's mask (what the
    faithfulness of every method's explanation is checked against). ``oracle``: the model's
    explanation checked by :mod:`emosem.evaluation.oracle` against the generator's ground truth
    (the painting's pixels under the ground-truth mask, the mask, the asked emotion's motifs):
    ``{"colours", "positions", "things"}`` word → true. ``None`` means "does not apply" and is left out of ``samples.jsonl``.
    """

    key: str
    emotion: str
    image: str
    has_mask: bool
    has_text: bool
    predicted_iou: float
    explanation: str | None
    seg: dict[str, dict[str, Any]] = field(default_factory=dict)
    motifs: list[str] | None = None
    names_motif: bool | None = None
    correct_motif: dict[str, bool] | None = None
    multi_emotion: bool | None = None
    caption_scores: dict[str, Any] | None = None
    cues: dict[str, Any] | None = None  # the cues measured on the model's own region
    oracle: dict[str, Any] | None = None  # independent verdicts against the generator's truth

    @property
    def id(self) -> str:
        return sample_id(self.key, self.emotion)

    def to_record(self) -> dict[str, Any]:
        """The ``samples.jsonl`` line: fields that apply, then ``iou_<method>`` per mask method."""
        rec: dict[str, Any] = {
            "key": self.key,
            "emotion": self.emotion,
            "has_mask": self.has_mask,
            "has_text": self.has_text,
            "predicted_iou": self.predicted_iou,
            "explanation": self.explanation,
        }
        for name in ("motifs", "names_motif", "correct_motif", "multi_emotion", "caption_scores",
                     "cues", "oracle"):
            value = getattr(self, name)
            if value is not None:
                rec[name] = value
        for method in MASK_METHODS:
            if self.seg.get(method):
                rec[f"iou_{method}"] = self.seg[method]["iou"]
        return rec


@dataclass
class GroundedExplanation:
    """The painting's one explanation in the ArtEmis alignment protocol: for the emotion the
    model's emotion head predicts."""

    emotion: str
    explanation: str | None


@dataclass
class PaintingRow:
    """Per painting: the emotion head's distribution (ArtEmis order; ``None`` without a head),
    the grounded explanation (``None`` without explanations or a head) and the pooled image
    feature the retrieval baseline compares (``None`` without explanations)."""

    key: str
    emotion_probs: list[float] | None
    grounded: GroundedExplanation | None = None
    feature: list[float] | None = None


def dedupe(rows: list[Any], ident: Any) -> list[Any]:
    """``rows`` without repeats of ``ident(row)``, first kept (a gather can repeat padded items)."""
    seen: set = set()
    out = []
    for r in rows:
        k = ident(r)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out
