"""Emotional alignment of explanations (ArtEmis protocol, Achlioptas et al. 2021).

One explanation per painting — the model grounded on its emotion head's top emotion, a text
baseline told no emotion — labelled by a text-emotion classifier trained on the train
utterances: ``accuracy_dominant`` against the painting's dominant annotator emotion,
``cross_entropy`` and ``kl`` against the annotator distribution. ``accuracy_asked``: the share of
the (painting, emotion) explanations labelled with the asked emotion (faithfulness to the
prompt). Also the ``paintings.jsonl`` records: what each method said for each painting and how
the classifier labelled it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.evaluation.rows import PaintingRow, SampleRow

__all__ = ["alignment", "asked_accuracy", "baseline_alignment", "model_alignment",
           "painting_records"]


def alignment(clf: Any, texts: list[str], counts: list[np.ndarray]) -> dict | None:
    """ArtEmis Emo-Align of one explanation per painting (``texts``) against the paintings'
    annotator ``counts [9]``: accuracy against the dominant emotion, cross-entropy and KL
    (``None`` without a classifier or a painting with annotator labels)."""
    from emosem.evaluation.emotion_classifier import emotional_alignment

    keep = [i for i, c in enumerate(counts) if c.sum() > 0]
    if clf is None or not keep:
        return None
    return emotional_alignment(clf, [texts[i] for i in keep], np.stack([counts[i] for i in keep]))


def asked_accuracy(clf: Any, texts: list[str], asked: list[str]) -> dict:
    """``{accuracy_asked, n_asked}``: the share of (painting, emotion) explanations that the
    classifier labels with the emotion they were asked for (``{}`` when none can be judged)."""
    from emosem.evaluation.emotion_classifier import emotional_alignment

    rows = [i for i, e in enumerate(asked) if e in ARTEMIS_EMOTIONS]
    if clf is None or not rows:
        return {}
    acc = emotional_alignment(clf, [texts[i] for i in rows], [asked[i] for i in rows])
    return {"accuracy_asked": acc["accuracy_dominant"], "n_asked": len(rows)}


def model_alignment(clf: Any, clf_info: dict, grounded: list[PaintingRow],
                    counts: list[np.ndarray], with_expl: list[SampleRow]) -> dict:
    """``explanations.emotional_alignment`` of the model (with why it was skipped, if it was)."""
    al = alignment(clf, [p.grounded.explanation for p in grounded], counts)
    asked = asked_accuracy(clf, [r.explanation for r in with_expl], [r.emotion for r in with_expl])
    if al is None:
        why = clf_info.get("skipped") or (
            "no painting has annotator labels" if grounded else
            "the checkpoint has no emotion head to ground an explanation on"
        )
        al = {"accuracy_dominant": None, "cross_entropy": None, "skipped": why}
    return {**al, "grounding": "the emotion head's top emotion", **asked, "classifier": clf_info}


def baseline_alignment(clf: Any, ungrounded: list[str], counts: list[np.ndarray],
                       texts: list[str], asked: list[str]) -> dict:
    """A text baseline's ``emotional_alignment``: ``ungrounded`` (one text per grounded
    painting, no emotion given) against ``counts``; ``texts`` for the ``asked`` emotions."""
    return {
        **(alignment(clf, ungrounded, counts) or {}),
        "grounding": "none (no emotion given)",
        **asked_accuracy(clf, texts, asked),
    }


def painting_records(grounded: list[PaintingRow], said: dict[str, dict[str, str]],
                     clf: Any) -> list[dict]:
    """``paintings.jsonl``: per grounded painting ``{key, emotion, explanation, <baseline>: text,
    ..., judged: {model|<baseline>: emotion}}`` (``said``: baseline → painting key → text)."""
    records = []
    for p in grounded:
        rec = {"key": p.key, "emotion": p.grounded.emotion, "explanation": p.grounded.explanation}
        rec.update({name: texts[p.key] for name, texts in said.items()})
        records.append(rec)
    if clf is not None and records:
        for column, who in (("explanation", "model"), *((n, n) for n in said)):
            judged = clf.predict_proba([r[column] for r in records]).argmax(1)
            for r, j in zip(records, judged):
                r.setdefault("judged", {})[who] = ARTEMIS_EMOTIONS[int(j)]
    return records
