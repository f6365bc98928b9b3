"""Explanations section: BLEU-1..4, METEOR, ROUGE-L, CIDEr against all references of each
(painting, emotion), per emotion (mean sentence-level METEOR / ROUGE-L / CIDEr), the rate at
which an explanation names the asked emotion's motif, and the emotional alignment
(:mod:`.alignment`) — for the model and the two text baselines: nearest-neighbour retrieval and
the typical utterance.

Report part: ``explanations: {BLEU-1..BLEU-4, METEOR, ROUGE-L, CIDEr, tokenizer, n, n_empty,
skipped, per_emotion, names_motif_rate, n_names_motif, emotional_alignment}`` and
``baselines.{retrieval, typical_utterance}: {description, fit|texts+overall, explanations,
comparison}``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.evaluation.baselines import NearestNeighbourRetrieval, RetrievalBaseline
from emosem.evaluation.faithfulness import faithfulness
from emosem.evaluation.predict import mentions
from emosem.evaluation.rows import PaintingRow, SampleRow
from emosem.evaluation.sections.alignment import (
    baseline_alignment,
    model_alignment,
    painting_records,
)
from emosem.evaluation.sections.compare import beats, compare, rate

logger = logging.getLogger(__name__)

__all__ = ["CAPTION_KEYS", "TEXT_BASELINES", "ExplanationResult", "TextBaseline",
           "explanations"]

CAPTION_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
SENTENCE_KEYS = ("METEOR", "ROUGE-L", "CIDEr")  # corpus score = mean of the sentence scores
TEXT_BASELINES = ("retrieval", "typical_utterance")
TEXT_COMPARE = tuple((k, True) for k in CAPTION_KEYS) + (
    ("alignment_accuracy_dominant", True),
    ("alignment_cross_entropy", False),
    ("faithfulness_colour", True),
    ("faithfulness_position", True),
)
RETRIEVAL_DESCRIPTION = (
    "nearest-neighbour retrieval: the consensus utterance of the asked emotion among the {k} "
    "train paintings nearest to the painting (cosine of the pooled SAM image embedding; highest "
    "mean TF-IDF cosine to the other candidates); for the alignment, which asks for no emotion, "
    "the consensus of those paintings' utterances of any emotion (ArtEmis' NN speaker)"
)
TYPICAL_DESCRIPTION = (
    "for each emotion, the medoid train utterance of that emotion (highest mean TF-IDF cosine to "
    "the other train utterances of the emotion); for the alignment, the medoid of all train "
    "utterances; it does not look at the painting"
)


@dataclass
class TextBaseline:
    """What a text baseline said: per sample (:func:`sample_id`) for the asked emotion, and per
    painting key with no emotion given (the alignment protocol); ``entry``: its report fields."""

    said: dict[str, str]
    ungrounded: dict[str, str]
    entry: dict[str, Any]


@dataclass
class ExplanationResult:
    """``section``: ``report["explanations"]``; ``baselines``: the text baselines' report
    entries and ``beats``; ``paintings``: the ``paintings.jsonl`` records."""

    section: dict[str, Any]
    baselines: dict[str, dict] = field(default_factory=dict)
    beats: dict[str, Any] = field(default_factory=dict)
    paintings: list[dict] = field(default_factory=list)


def fit_text_baselines(train_samples: list, train_features: dict[str, np.ndarray],
                       features: dict[str, np.ndarray], with_expl: list[SampleRow],
                       grounded: list[PaintingRow], k: int, fit_s: float
                       ) -> dict[str, TextBaseline]:
    """The retrieval and typical-utterance baselines fitted on the train samples, and what they
    say for every explained sample and grounded painting (one left out, with a warning, when
    it cannot be fitted)."""
    out: dict[str, TextBaseline] = {}
    try:
        nn = NearestNeighbourRetrieval.fit(train_samples, train_features, k=k)
        out["retrieval"] = TextBaseline(
            said={r.id: nn.explain(features[r.key], r.emotion) for r in with_expl},
            ungrounded={p.key: nn.explain(features[p.key]) for p in grounded},
            entry={"description": RETRIEVAL_DESCRIPTION.format(k=nn.k),
                   "fit": {"n_train_paintings": len(nn.keys), "k": nn.k,
                           "seconds": round(fit_s, 2)}},
        )
    except ValueError as e:
        logger.warning("No nearest-neighbour retrieval baseline: %s", e)
    try:
        typical = RetrievalBaseline.fit(train_samples)
        out["typical_utterance"] = TextBaseline(
            said={r.id: typical.explain(r.emotion) for r in with_expl},
            ungrounded={p.key: typical.explain(None) for p in grounded},
            entry={"description": TYPICAL_DESCRIPTION, "texts": typical.texts,
                   "overall": typical.overall},
        )
    except ValueError as e:
        logger.warning("No typical-utterance baseline: %s", e)
    return out


def _per_emotion(scores: dict, emotion_of: dict[str, str]) -> dict:
    """Replaces ``per_sample`` in ``CaptionScorer.score`` output by ``per_emotion {emotion: {n,
    METEOR, ROUGE-L, CIDEr}}``, the mean sentence-level score of the emotion's samples (CIDEr's
    IDF from all of them); returns the popped ``{sample id: {metric: score}}``."""
    per_sample = scores.pop("per_sample")
    by: dict[str, list[dict]] = {}
    for key, row in per_sample.items():
        by.setdefault(emotion_of[key], []).append(row)
    order = [e for e in ARTEMIS_EMOTIONS if e in by] + sorted(set(by) - set(ARTEMIS_EMOTIONS))
    scores["per_emotion"] = {
        e: {"n": len(by[e]), **{m: (float(np.mean([r[m] for r in by[e]]))
                                    if all(r[m] is not None for r in by[e]) else None)
                                for m in SENTENCE_KEYS}}
        for e in order
    }
    return per_sample


def score_captions(with_text: list[SampleRow], references: dict[str, list[str]],
                   baselines: dict[str, TextBaseline], meteor: bool) -> tuple[dict, dict]:
    """Caption scores of the model (each row gets its ``caption_scores``) and of each baseline
    on the same samples: ``(model scores, {baseline: scores})``."""
    from emosem.evaluation.text_metrics import CaptionScorer

    if not with_text:
        empty = {k: None for k in CAPTION_KEYS}
        empty.update(n=0, skipped={"captions": "no evaluated sample has reference utterances"})
        return empty, {}
    refs = {r.id: references[r.id] for r in with_text}
    emotion_of = {r.id: r.emotion for r in with_text}
    text_scores: dict[str, dict] = {}
    with CaptionScorer(meteor=meteor) as cs:
        scores = cs.score({r.id: r.explanation for r in with_text}, refs, per_sample=True)
        sentence = _per_emotion(scores, emotion_of)
        for r in with_text:  # samples.jsonl: each explanation's sentence-level scores
            r.caption_scores = sentence[r.id]
        for name, b in baselines.items():
            text_scores[name] = cs.score({r.id: b.said[r.id] for r in with_text}, refs,
                                         per_sample=True)
            _per_emotion(text_scores[name], emotion_of)
    return scores, text_scores


def _flat(ex: dict | None) -> dict:
    if ex is None:
        return {}
    out = {k: ex.get(k) for k in CAPTION_KEYS}
    al = ex.get("emotional_alignment") or {}
    out["alignment_accuracy_dominant"] = al.get("accuracy_dominant")
    out["alignment_cross_entropy"] = al.get("cross_entropy")
    fa = ex.get("faithfulness") or {}
    out["faithfulness_colour"] = fa.get("colour")
    out["faithfulness_position"] = fa.get("position")
    return out


def _names_motif_rate(rows: list[SampleRow], texts: list[str]) -> float | None:
    return rate([any(mentions(t, m) for m in r.motifs)
                 for r, t in zip(rows, texts) if r.motifs is not None])


def faithfulness_scores(rows: list[SampleRow], texts: list[str]) -> dict[str, Any]:
    """Colour- and position-word faithfulness of ``texts`` (one per row) to the cues measured on
    the model's region of each row (:mod:`emosem.evaluation.faithfulness`): overall and per
    emotion."""
    pairs = [(t, r.cues) for r, t in zip(rows, texts) if r.cues is not None]
    out = faithfulness(pairs)
    by = {e: [(t, r.cues) for r, t in zip(rows, texts) if r.cues is not None and r.emotion == e]
          for e in ARTEMIS_EMOTIONS}
    out["per_emotion"] = {e: faithfulness(p) for e, p in by.items() if p}
    return out


def oracle_scores(rows: list[SampleRow]) -> dict[str, Any]:
    """The model's explanations by the independent oracle against the generator's truth
    (:attr:`SampleRow.oracle`): shares of colour words and position phrases true, and of
    explanations naming a thing that is not the asked emotion's motif, with their counts."""
    checked = [r.oracle for r in rows if r.oracle is not None]
    colours = [ok for o in checked for ok in o["colours"].values()]
    positions = [ok for o in checked for ok in o["positions"].values()]
    return {"colour": rate(colours), "colour_words": len(colours),
            "position": rate(positions), "position_phrases": len(positions),
            "names_absent_thing": rate([not all(o["things"].values()) for o in checked]),
            "n": len(checked)}


def explanations(rows: list[SampleRow], paintings: list[PaintingRow], data: Any,
                 references: dict[str, list[str]], train_samples: list,
                 train_features: dict[str, np.ndarray], clf: Any, clf_info: dict, *,
                 meteor: bool, retrieval_k: int, fit_s: float) -> ExplanationResult:
    """The explanations section, its text baselines and the ``paintings.jsonl`` records.

    ``references``: sample id (:func:`~emosem.evaluation.rows.sample_id`) → the reference
    utterances of every row with text; ``data``: the evaluated data (annotator
    counts); ``clf``: the alignment judge (``None``, with ``clf_info["skipped"]``, if none).
    """
    with_text = [r for r in rows if r.has_text and r.explanation is not None]
    with_expl = [r for r in rows if r.explanation is not None]
    features = {p.key: np.asarray(p.feature, np.float32) for p in paintings
                if p.feature is not None}
    # the alignment protocol's paintings: those the model explained for its own emotion
    grounded = [p for p in paintings if p.grounded and p.grounded.explanation is not None]
    baselines = fit_text_baselines(train_samples, train_features, features, with_expl, grounded,
                                   retrieval_k, fit_s)
    section, text_scores = score_captions(with_text, references, baselines, meteor)
    named = [r.names_motif for r in rows if r.names_motif is not None]
    section["names_motif_rate"] = rate(named)
    section["n_names_motif"] = len(named)
    counts = [data.emotion_counts(p.key) for p in grounded]
    section["emotional_alignment"] = model_alignment(clf, clf_info, grounded, counts, with_expl)
    # the decoder-side check: words against the cues the decoder itself read (a leak count)
    section["faithfulness"] = faithfulness_scores(with_expl, [r.explanation for r in with_expl])
    section["faithfulness_oracle"] = oracle_scores(with_expl)
    result = ExplanationResult(section)
    said = {name: b.ungrounded for name, b in baselines.items()}
    result.paintings = painting_records(grounded, said, clf)
    asked = [r.emotion for r in with_expl]
    for name, b in baselines.items():
        sc = text_scores.setdefault(name, {k: None for k in CAPTION_KEYS})
        texts = [b.said[r.id] for r in with_expl]
        sc["names_motif_rate"] = _names_motif_rate(with_expl, texts)
        sc["faithfulness"] = faithfulness_scores(with_expl, texts)
        sc["emotional_alignment"] = baseline_alignment(
            clf, [b.ungrounded[p.key] for p in grounded], counts, texts, asked)
    for name, b in baselines.items():
        comp = compare(_flat(section), _flat(text_scores[name]), TEXT_COMPARE)
        result.baselines[name] = {**b.entry, "explanations": text_scores[name], "comparison": comp}
        result.beats[name] = beats(comp)
    return result

