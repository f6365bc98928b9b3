"""Evaluation: segmentation metrics, captioning metrics and emotional alignment.

``metrics`` (numpy only) is imported eagerly; ``text_metrics`` (pycocoevalcap, Java) and
``emotion_classifier`` (torch) load on first use of their names.

``emosem evaluate`` is :func:`emosem.evaluation.evaluate.evaluate`, a driver over
:mod:`.data` (what is scored), :mod:`.predict` (the sharded prediction run → the typed rows of
:mod:`.rows`), :mod:`.sections` (one module per report section and its baselines),
:mod:`.report` (JSON, Markdown, figures) and :mod:`.classifier_cache` (the alignment judge).
"""

from __future__ import annotations

import importlib
from typing import Any

from emosem.evaluation.metrics import (
    SegmentationMeter,
    correct_motif,
    distribution_metrics,
    dominant_emotion,
    emotion_counts,
    f_measure,
    intersection_union,
    mae,
    mask_iou,
    soft_to_shape,
)

_LAZY = {
    "caption_scores": "emosem.evaluation.text_metrics",
    "CaptionScorer": "emosem.evaluation.text_metrics",
    "simple_tokenize": "emosem.evaluation.text_metrics",
    "TextEmotionClassifier": "emosem.evaluation.emotion_classifier",
    "emotional_alignment": "emosem.evaluation.emotion_classifier",
}

__all__ = [
    "CaptionScorer",
    "SegmentationMeter",
    "TextEmotionClassifier",
    "caption_scores",
    "correct_motif",
    "distribution_metrics",
    "dominant_emotion",
    "emotion_counts",
    "emotional_alignment",
    "f_measure",
    "intersection_union",
    "mae",
    "mask_iou",
    "simple_tokenize",
    "soft_to_shape",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
