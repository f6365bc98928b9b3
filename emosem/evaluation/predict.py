"""The prediction run: every painting encoded once, all its emotions decoded (and explained) in
one batched call, each sample scored against its ground truth; sharded across processes.

    run = run_predictions(predictor, data, prior, options, peers, show=True)
    run.rows, run.paintings, run.failures

Only this module and the figures touch the model; the report sections read the typed rows.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.evaluation.baselines import CentrePrior, neutral_prediction, painting_feature
from emosem.evaluation.metrics import SegmentationMeter, correct_motif, soft_to_shape
from emosem.evaluation.oracle import check_explanation, motif_things
from emosem.evaluation.rows import (
    GroundedExplanation,
    PaintingRow,
    SampleRow,
    dedupe,
)

logger = logging.getLogger(__name__)

__all__ = ["PaintingScorer", "PredictOptions", "PredictionRun", "ScoringError", "UnreadablePainting",
           "mentions", "run_predictions", "train_features"]


class UnreadablePainting(ValueError):
    """The painting's file could not be read: bad input, reported, and the evaluation goes on."""


class ScoringError(RuntimeError):
    """Scoring a readable painting failed: a fault of the code or the model, which stops the run
    (the original error is its ``__cause__``) unless failures are skipped."""


@dataclass(frozen=True)
class PredictOptions:
    """How each painting is predicted (the report's ``settings`` hold the same values)."""

    explain: bool
    threshold: float
    max_new_tokens: int
    num_beams: int
    seed: int
    batch_emotions: bool
    word_grounding: bool = True  # emosem.inference.grounding


@dataclass
class PredictionRun:
    """The gathered result of :func:`run_predictions` (deduplicated on the main process)."""

    rows: list[SampleRow]
    paintings: list[PaintingRow]
    failures: list[dict[str, str]]
    predict_s: float
    n_mine: int


def mentions(text: str | None, motif: str) -> bool:
    """Whether ``text`` names ``motif`` (the synthetic generator's words for it, else its name)."""
    from emosem.data.synthetic import mentions_motif

    try:
        return mentions_motif(text, motif)
    except KeyError:  # a motif name the synthetic generator does not know: match the name
        words = re.escape(motif.replace("_", " "))
        return re.search(rf"\b{words}\b", text or "", re.IGNORECASE) is not None


class _Motifs:
    """A painting's motif annotations (synthetic set) and their decoded masks."""

    def __init__(self, data: Any, key: str, need_masks: bool) -> None:
        self.anns = [a for a in data.annotations(key) if a.get("motif")]
        self.masks: list[np.ndarray] | None = None
        if self.anns and need_masks:
            from emosem.data.artemis import decode_rle

            self.masks = [decode_rle(a["rle"]) for a in self.anns]
        self.n_emotions = len({a["emotion"] for a in self.anns})

    def names(self, emotion: str) -> list[str]:
        return sorted({a["motif"] for a in self.anns if a["emotion"] == emotion})

    def split(self, emotion: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The masks of ``emotion``'s motifs and of the other emotions' motifs."""
        pairs = list(zip(self.anns, self.masks or []))
        return ([m for a, m in pairs if a["emotion"] == emotion],
                [m for a, m in pairs if a["emotion"] != emotion])


class PaintingScorer:
    """Predicts and scores the samples of one painting; returns typed rows."""

    def __init__(self, predictor: Any, data: Any, prior: CentrePrior | None,
                 opts: PredictOptions) -> None:
        self.predictor = predictor
        self.data = data
        self.prior = prior
        self.opts = opts
        self.meter = SegmentationMeter()

    def _predict(self, state: Any, ask: list[str]) -> list[Any]:
        o = self.opts
        gen = dict(explain=o.explain, threshold=o.threshold, max_new_tokens=o.max_new_tokens,
                   state=state, seed=o.seed, num_beams=o.num_beams, do_sample=False,
                   word_grounding=o.word_grounding)
        if o.batch_emotions:
            return self.predictor.predict(ask, **gen)
        return [self.predictor.predict([e], **gen)[0] for e in ask]

    def __call__(self, key: str, samples: list[Any]) -> tuple[list[SampleRow], PaintingRow]:
        from emosem.data.image_io import ImageLoadError

        o, predictor = self.opts, self.predictor
        try:
            state = predictor.encode(samples[0].image_path)
        except (ImageLoadError, OSError) as e:
            raise UnreadablePainting(str(e)) from e
        emotions = [s.emotion for s in samples]
        probs = None
        if predictor.model.emotion_head is not None:
            # what users get: the head's, moving toward the colour prior out of domain
            probs = [float(v) for v in predictor.predict_emotions(state).distribution.values()]
        # ArtEmis alignment protocol: one explanation per painting, grounded on the emotion the
        # model predicts for it (decoded in the same batch unless it was asked anyway)
        grounded = ARTEMIS_EMOTIONS[int(np.argmax(probs))] if probs and o.explain else None
        ask = emotions + ([grounded] if grounded and grounded not in emotions else [])
        results = self._predict(state, ask)
        any_mask = any(s.has_mask for s in samples)
        neutral = neutral_prediction(predictor, state, o.threshold) if any_mask else None
        motifs = _Motifs(self.data, key, any_mask)
        rows = [self._row(key, s, r, neutral, motifs, state.image) for s, r in zip(samples, results)]
        painting = PaintingRow(key=key, emotion_probs=probs)
        if grounded is not None:
            painting.grounded = GroundedExplanation(
                grounded, results[ask.index(grounded)].explanation)
        if o.explain:  # for the nearest-neighbour retrieval baseline
            painting.feature = painting_feature(state.embedding).tolist()
        return rows, painting

    def _row(self, key: str, s: Any, r: Any, neutral: Any, motifs: _Motifs, image: np.ndarray) -> SampleRow:
        row = SampleRow(key=key, emotion=s.emotion, image=str(s.image_path), has_mask=s.has_mask,
                        has_text=s.has_text, predicted_iou=float(r.predicted_iou),
                        explanation=r.explanation,
                        cues=r.cues.record() if getattr(r, "cues", None) is not None else None)
        gt = self.data.decode_mask(s) if s.has_mask else None
        if gt is not None:
            self._score_masks(row, s, r, neutral, motifs, gt)
        names = motifs.names(s.emotion)
        if names:
            row.motifs = names
            if r.explanation is not None:
                row.names_motif = any(mentions(r.explanation, m) for m in names)
                row.oracle = _oracle(r.explanation, image, gt, names)
        return row

    def _score_masks(self, row: SampleRow, s: Any, r: Any, neutral: Any, motifs: _Motifs,
                     gt: np.ndarray) -> None:
        """The model's and the mask baselines' masks against the ground truth ``gt`` [H, W] bool
        (and the motifs)."""
        t = self.opts.threshold
        shape = gt.shape
        preds = {"model": soft_to_shape(r.soft_mask, shape, t),
                 "emotion_agnostic": soft_to_shape(neutral[1], shape, t)}
        if self.prior is not None:
            pm = self.prior.mask(*shape)
            preds["centre_prior"] = (pm, pm.astype(np.float32))
        for name, (mask, soft) in preds.items():
            row.seg[name] = self.meter.update(mask, gt, s.emotion, soft=soft, key=row.key)
        targets, others = motifs.split(s.emotion)
        if targets and targets[0].shape == shape:
            row.correct_motif = {name: bool(correct_motif(mask, targets, others))
                                 for name, (mask, _) in preds.items()}
            row.multi_emotion = motifs.n_emotions >= 2


def _oracle(text: str, image: np.ndarray, gt: np.ndarray | None, motifs: list[str]) -> dict[str, Any] | None:
    """The independent oracle's verdicts on an explanation against the generator's truth: the
    painting's pixels under the ground-truth mask, the mask, the motifs' vocabulary (None without
    a mask at the image's size, or for motifs the generator does not know)."""
    if gt is None or gt.shape != image.shape[:2]:
        return None
    try:
        things = frozenset().union(*(motif_things(m) for m in motifs))
    except KeyError:
        return None
    return asdict(check_explanation(text, image, gt, things))


def _failure(key: str, error: Exception, kind: str) -> dict[str, str]:
    return {"painting": key, "kind": kind,
            "reason": str(error) if kind == "unreadable" else f"{type(error).__name__}: {error}"}


def run_predictions(scorer: PaintingScorer, by_key: dict[str, list[Any]], peers: Any,
                    desc: str, show: bool, skip_failures: bool = False) -> PredictionRun:
    """Score this process's share of the paintings and gather every process's rows.

    A painting whose file cannot be read is logged and listed in ``failures`` (``kind``
    ``unreadable``); the others go on. Any other error while scoring a painting is a fault of
    the code or the model, not of the data: it stops the run, unless ``skip_failures``, which
    lists it in ``failures`` too (``kind`` ``error``) so the report counts it. On every process
    the result holds all the gathered rows (each sample once).
    """
    from tqdm.auto import tqdm

    mine = peers.shard(list(by_key))
    rows: list[SampleRow] = []
    paintings: list[PaintingRow] = []
    failures: list[dict[str, str]] = []
    t0 = time.perf_counter()
    for key in tqdm(mine, desc=desc, unit="painting", disable=not show, dynamic_ncols=True):
        try:
            r, p = scorer(key, by_key[key])
        except UnreadablePainting as e:  # a bad painting; go on, report it
            logger.error("%s: %s", key, e)
            failures.append(_failure(key, e, "unreadable"))
            continue
        except Exception as e:  # noqa: BLE001 - re-raised unless the user asked to skip
            if not skip_failures:
                raise ScoringError(
                    f"scoring painting {key} failed: {type(e).__name__}: {e} (skip_failures / "
                    "--skip-failures scores the others and counts it as failed)") from e
            logger.exception("%s: scoring failed (skipped, counted in the report)", key)
            failures.append(_failure(key, e, "error"))
            continue
        rows.extend(r)
        paintings.append(p)
    predict_s = time.perf_counter() - t0
    return PredictionRun(
        rows=dedupe(peers.gather(rows), lambda r: (r.key, r.emotion)),
        paintings=dedupe(peers.gather(paintings), lambda p: p.key),
        failures=peers.gather(failures),
        predict_s=predict_s,
        n_mine=len(mine),
    )


def train_features(predictor: Any, train_samples: list, peers: Any, show: bool
                   ) -> dict[str, np.ndarray]:
    """``{key: painting_feature}`` of every distinct TRAIN painting (sharded, gathered to all);
    a painting that fails to load is left out with a warning."""
    from tqdm.auto import tqdm

    paths = {s.key: s.image_path for s in train_samples if s.utterances}
    out = []
    for key in tqdm(peers.shard(list(paths)), desc="retrieval: train paintings", unit="painting",
                    disable=not show, dynamic_ncols=True):
        try:
            feat = painting_feature(predictor.encode(paths[key]).embedding)
        except (OSError, ValueError) as e:  # ImageLoadError is a ValueError
            logger.warning("retrieval baseline: %s left out: %s", key, e)
            continue
        out.append((key, feat.tolist()))
    return {k: np.asarray(v, np.float32) for k, v in peers.gather(out)}
