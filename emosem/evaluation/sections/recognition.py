"""Emotion-recognition section: the emotion head's distribution against the annotators'
(accuracy against the dominant emotion, cross-entropy, KL), beside the majority emotion and the
train prior distribution of the train paintings.

Report part: ``emotion_recognition: {accuracy_dominant, n_dominant, cross_entropy, kl, n,
majority_baseline, prior_baseline}`` and ``baselines.{majority_emotion,
train_prior_distribution}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.evaluation.baselines import majority_emotion, mean_distribution
from emosem.evaluation.metrics import distribution_metrics
from emosem.evaluation.rows import PaintingRow
from emosem.evaluation.sections.compare import beats, compare

__all__ = ["RecognitionResult", "emotion_recognition"]


@dataclass
class RecognitionResult:
    """``section``: ``report["emotion_recognition"]`` (``None``: no head or no labels);
    ``baselines`` / ``beats``: the majority-emotion and train-prior entries."""

    section: dict[str, Any] | None = None
    baselines: dict[str, dict] = field(default_factory=dict)
    beats: dict[str, Any] = field(default_factory=dict)


def _majority(result: RecognitionResult, train_counts: list, tgt: np.ndarray) -> None:
    maj = majority_emotion(train_counts)
    if maj is None:
        return
    er = result.section
    onehot = np.zeros((len(tgt), len(ARTEMIS_EMOTIONS)))
    onehot[:, maj] = 1.0
    m = distribution_metrics(onehot, tgt)
    er["majority_baseline"] = {"emotion": ARTEMIS_EMOTIONS[maj],
                               "accuracy_dominant": m["accuracy_dominant"]}
    comp = compare(er, m, (("accuracy_dominant", True),))
    result.baselines["majority_emotion"] = {
        "description": "the most frequent dominant emotion of the train paintings, "
        "predicted for every painting",
        "emotion": ARTEMIS_EMOTIONS[maj],
        "accuracy_dominant": m["accuracy_dominant"],
        "n_dominant": m["n_dominant"],
        "comparison": comp,
    }
    result.beats["majority_emotion"] = beats(comp)


def _prior(result: RecognitionResult, train_counts: list, tgt: np.ndarray) -> None:
    if not any(c.sum() > 0 for c in train_counts):
        return
    er = result.section
    prior_dist = mean_distribution(train_counts)
    m = distribution_metrics(np.tile(prior_dist, (len(tgt), 1)), tgt)
    er["prior_baseline"] = {k: m[k] for k in ("cross_entropy", "kl", "accuracy_dominant")}
    comp = compare(er, m, (("cross_entropy", False), ("kl", False)))
    result.baselines["train_prior_distribution"] = {
        "description": "the mean annotator distribution of the train paintings, "
        "predicted for every painting",
        "distribution": dict(zip(ARTEMIS_EMOTIONS, prior_dist.tolist())),
        **{k: m[k] for k in ("cross_entropy", "kl", "accuracy_dominant")},
        "comparison": comp,
    }
    result.beats["train_prior_distribution"] = beats(comp)


def emotion_recognition(paintings: list[PaintingRow], data: Any, fit_data: Any,
                        train_samples: list) -> RecognitionResult:
    """Score the paintings' ``emotion_probs`` against ``data``'s annotator counts; the baselines
    from the counts of the train samples' paintings in ``fit_data``."""
    train_counts = [fit_data.emotion_counts(k) for k in dict.fromkeys(s.key for s in train_samples)]
    scored = [p for p in paintings if p.emotion_probs is not None]
    target = [data.emotion_counts(p.key) for p in scored]
    keep = [i for i, t in enumerate(target) if t.sum() > 0]
    result = RecognitionResult()
    if not keep:
        return result
    probs = np.array([scored[i].emotion_probs for i in keep], dtype=np.float64)
    tgt = np.stack([target[i] for i in keep])
    result.section = distribution_metrics(probs / probs.sum(axis=1, keepdims=True), tgt)
    _majority(result, train_counts, tgt)
    _prior(result, train_counts, tgt)
    return result
