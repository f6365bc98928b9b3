"""Score a checkpoint on a data split against baselines, in one run (``emosem evaluate``).

    report = evaluate("runs/emosem-tiny-stage2/best", "data/synthetic", split="test")
    report["segmentation"]["overall"]["gIoU"], report["baselines"]["beats_baselines"]

What is computed, on the same samples for the model and every baseline:

* **Segmentation** (samples with a ground-truth mask): gIoU, cIoU, F-measure (β² = 0.3) and MAE
  of the soft map, overall and per emotion (:class:`~emosem.evaluation.metrics.SegmentationMeter`),
  with the predicted mask at the painting's **original** resolution against the decoded COCO
  mask. On sets whose annotations name their ``motif`` (the synthetic set) also the
  correct-motif rate (:func:`~emosem.evaluation.metrics.correct_motif`: the prediction overlaps
  the asked emotion's motifs more than any single motif of another emotion), overall and on
  paintings holding motifs of at least two different emotions (where picking the right one is
  the actual test).
* **Explanations** (samples with reference utterances): BLEU-1..4, METEOR, ROUGE-L, CIDEr
  against *all* references of the (painting, emotion) (:class:`CaptionScorer`); the rate at which
  an explanation names a motif of the asked emotion (synthetic set); emotional alignment: a
  :class:`~emosem.evaluation.emotion_classifier.TextEmotionClassifier` trained on the TRAIN
  split's utterances (label = the row's emotion, seed 0 so the judge is the same across runs)
  labels explanations. In the ArtEmis protocol (Achlioptas et al. 2021: one caption per
  painting, the emotion-grounded speaker grounded on an image-to-emotion classifier's
  prediction) the model explains each painting for its emotion head's top emotion, and the
  label is scored by ``accuracy_dominant`` against the painting's dominant annotator emotion and
  ``cross_entropy``/``kl`` against its annotator distribution; the text baselines are told no
  emotion there. ``accuracy_asked`` is the share of the (painting, emotion) explanations
  labelled with the asked emotion (faithfulness to the prompt). The classifier is cached in
  ``<checkpoint>/emotion_classifier/`` (else ``<out>/emotion_classifier/``) with a fingerprint of
  its training text, and retrained when the data differ.
* **Emotion recognition** (paintings with annotator labels, checkpoints with an emotion head):
  ``predict_distribution`` against the annotator distribution — accuracy against the dominant
  emotion (paintings that have one), cross-entropy and KL.
* **Baselines** (:mod:`emosem.evaluation.baselines`): centre prior and emotion-agnostic model
  (masks), nearest-neighbour retrieval (the consensus utterance of the asked emotion among the
  visually nearest train paintings) and the most typical train utterance of the emotion
  (explanations), majority emotion and train prior distribution (emotion recognition). Each lists the model's number, the
  baseline's, their difference (model − baseline) and whether the model is better;
  ``baselines["beats_baselines"][name]`` is True when the model is better on *every* compared
  metric (lower is better for cross-entropy and KL).

Every painting is encoded once and all its requested emotions are decoded and explained in one
batched call (greedy decoding or ``num_beams`` beam search, seeded). Under ``accelerate launch``
the paintings (and the train paintings the retrieval baseline encodes) are sharded across
processes, the per-sample rows are gathered, and rank 0 computes the metrics and writes
``report.json``, ``report.md``, ``samples.jsonl`` and the figures.

Report (``report.json``; NaN is written as ``null``; ``None`` where a part does not apply)::

    checkpoint, out, split, n_samples, n_paintings, n_failed, failed: [{painting, reason}]
    data: {root, csv, masks, image_root, split_ratios, split_seed, source}
    settings: {explain, meteor, batch_emotions, threshold, max_new_tokens, num_beams, seed,
               max_samples, decoding}
    fit: {data, split: "train", source, split_seed, n_train_samples, overlaps_evaluated}
    segmentation: {overall: {gIoU, cIoU, F_beta, MAE, n}, per_emotion: {emotion: {same}},
                   correct_motif_rate, n_correct_motif, correct_motif_rate_multi_emotion,
                   n_correct_motif_multi_emotion}                        (None: no masks)
    explanations: {BLEU-1..BLEU-4, METEOR, ROUGE-L, CIDEr, tokenizer, n, n_empty, skipped,
                   per_emotion: {emotion: {n, METEOR, ROUGE-L, CIDEr}} (sentence-level means),
                   names_motif_rate, n_names_motif,
                   emotional_alignment: {accuracy_dominant, n_dominant, cross_entropy, kl,
                                         n (paintings), grounding, accuracy_asked, n_asked,
                                         classifier: {source, path, n_train}}}
                                                                          (None: explain=False)
    emotion_recognition: {accuracy_dominant, n_dominant, cross_entropy, kl, n,
                          majority_baseline: {emotion, accuracy_dominant},
                          prior_baseline: {cross_entropy, kl, accuracy_dominant}}
    baselines: {centre_prior: {description, fit, segmentation, comparison},
                emotion_agnostic: {description, segmentation, comparison},
                retrieval: {description, fit: {n_train_paintings, k, seconds}, explanations,
                            comparison},
                typical_utterance: {description, texts, overall, explanations, comparison},
                majority_emotion: {description, emotion, accuracy_dominant, n_dominant, comparison},
                train_prior_distribution: {description, distribution, cross_entropy, kl,
                                           accuracy_dominant, comparison},
                beats_baselines: {name: bool | None}}
        comparison: {metric: {model, baseline, difference, higher_is_better, model_better}}
    files, seconds, timing: {load_model_s, predict_s, metrics_s, figures_s, per_painting_s},
    machine: {platform, python, torch, device, cpu_count, torch_threads, num_processes, gpu?}

The baselines, the emotion classifier, the majority emotion and the prior are fitted on the
TRAIN split of the data config (``fit_data``; by default the evaluated data). With
``split="all"`` (a held-out set generated with an unused seed) they are fitted on the training
run's data when the checkpoint sits in a run folder whose ``config.yaml`` names another data
root; otherwise on the evaluated set's own train split, flagged in
``report["fit"]["overlaps_evaluated"]``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import platform
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from emosem.config import ConfigError, DataConfig, load_config
from emosem.emotions import ARTEMIS_EMOTIONS, emotion_color
from emosem.evaluation.baselines import (
    CentrePrior,
    NearestNeighbourRetrieval,
    RetrievalBaseline,
    majority_emotion,
    mean_distribution,
    neutral_prediction,
    painting_feature,
)
from emosem.evaluation.metrics import (
    SegmentationMeter,
    correct_motif,
    distribution_metrics,
    soft_to_shape,
)

logger = logging.getLogger(__name__)

__all__ = ["SPLITS", "evaluate", "format_summary", "resolve_data_config"]

SPLITS = ("train", "val", "test", "all")
CLASSIFIER_DIR = "emotion_classifier"
CLASSIFIER_SEED = 0
CAPTION_KEYS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
MASK_BASELINES = ("emotion_agnostic", "centre_prior")
SEG_FIELD = {
    "model": "seg",
    "emotion_agnostic": "seg_emotion_agnostic",
    "centre_prior": "seg_centre_prior",
}


# ---------------------------------------------------------------------------------------------
# Configuration: checkpoint, data, output folder
# ---------------------------------------------------------------------------------------------


def _resolve_path(p: str | Path) -> Path:
    """``p`` as given if it exists (or is absolute), else relative to the repository root."""
    from emosem.modeling.lm_weights import repo_root

    path = Path(p)
    if path.is_absolute() or path.exists():
        return path
    alt = repo_root() / path
    return alt if alt.exists() else path


def _run_data_config(checkpoint: Path) -> tuple[DataConfig, Path] | None:
    """The data section of ``<run>/config.yaml`` when ``checkpoint`` is ``<run>/best`` etc."""
    cfg_path = checkpoint.parent / "config.yaml"
    if not cfg_path.is_file():
        return None
    try:
        return load_config(cfg_path).data, cfg_path
    except (ConfigError, OSError, ValueError) as e:
        logger.warning("Ignoring the run config %s: %s", cfg_path, e)
        return None


def _same_folder(a: str | Path, b: str | Path) -> bool:
    try:
        return _resolve_path(a).resolve() == _resolve_path(b).resolve()
    except OSError:
        return False


def resolve_data_config(
    data_root: str | Path | DataConfig | None,
    checkpoint: str | Path,
    split_seed: int | None = None,
) -> tuple[DataConfig, str]:
    """The :class:`DataConfig` to evaluate on, and where it came from.

    A :class:`DataConfig` is used as given. A folder uses the run's ``config.yaml`` data
    settings (split ratios/seed, file names) when the checkpoint sits in a run folder trained on
    that same folder, else the defaults. ``None`` takes the run's data, else ``data/synthetic``.
    ``split_seed`` overrides the seed.
    """
    run = _run_data_config(Path(checkpoint))
    if isinstance(data_root, DataConfig):
        cfg, source = copy.deepcopy(data_root), "given DataConfig"
    elif data_root is None:
        if run is not None:
            cfg, source = copy.deepcopy(run[0]), f"run config {run[1]}"
        else:
            cfg, source = DataConfig(), "default"
    elif run is not None and _same_folder(run[0].root, data_root):
        cfg, source = copy.deepcopy(run[0]), f"run config {run[1]}"
        cfg.root = str(data_root)
    else:
        cfg, source = DataConfig(root=str(data_root)), "defaults for the given folder"
    cfg.root = str(_resolve_path(cfg.root))
    if split_seed is not None:
        cfg.split_seed = int(split_seed)
    return cfg, source


def default_out_dir(checkpoint: Path, split: str) -> Path:
    """``outputs/eval/<checkpoint name>-<split>`` (``<run>-best`` for a run's best/last)."""
    name = checkpoint.name or "checkpoint"
    if name in ("best", "last") and checkpoint.parent.name:
        name = f"{checkpoint.parent.name}-{name}"
    return Path("outputs") / "eval" / f"{name}-{split}"


# ---------------------------------------------------------------------------------------------
# Distributed helpers (single process needs no `accelerate launch`)
# ---------------------------------------------------------------------------------------------


class _SingleProcess:
    num_processes = 1
    process_index = 0
    is_main_process = True
    device = None

    def shard(self, items: list) -> list:
        return list(items)

    def gather(self, rows: list) -> list:
        return list(rows)


class _AcceleratePeers:
    """Shards and gathers through ``accelerate``'s process state (launched runs only)."""

    def __init__(self, device: str) -> None:
        import torch
        from accelerate import PartialState

        # gloo on CPUs: accelerate only forms a CPU process group when asked to use the CPU
        use_cpu = (
            str(device) == "cpu"
            or not torch.cuda.is_available()
            or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
        )
        self.state = PartialState(cpu=use_cpu)
        self.num_processes = self.state.num_processes
        self.process_index = self.state.process_index
        self.is_main_process = self.state.is_main_process
        self.device = self.state.device

    def shard(self, items: list) -> list:
        with self.state.split_between_processes(list(items)) as mine:
            return list(mine)

    def gather(self, rows: list) -> list:
        from accelerate.utils import gather_object

        return list(gather_object(list(rows)))


def _peers(device: str) -> _SingleProcess | _AcceleratePeers:
    """Several processes when launched by ``accelerate launch``/``torchrun`` (WORLD_SIZE > 1)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 1
    return _AcceleratePeers(device) if world > 1 else _SingleProcess()


# ---------------------------------------------------------------------------------------------
# Emotion classifier (the alignment judge)
# ---------------------------------------------------------------------------------------------


def _train_texts(samples: Sequence[Any]) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for s in samples:
        for u in s.utterances:
            texts.append(u)
            labels.append(s.emotion)
    return texts, labels


def _fingerprint(texts: Sequence[str], labels: Sequence[str]) -> str:
    h = hashlib.sha1(f"seed={CLASSIFIER_SEED}\n".encode())
    for t, e in zip(texts, labels):
        h.update(f"{e}\t{t}\n".encode("utf-8", "replace"))
    return h.hexdigest()


def _writable(folder: Path) -> bool:
    """Whether ``folder`` is (or can be created as) a writable folder."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK)


def load_or_train_classifier(
    classifier: Any, checkpoint: Path, out_dir: Path, train_samples: Sequence[Any]
) -> tuple[Any, dict]:
    """The alignment classifier and a description ``{"source", "path", "n_train", ...}``.

    ``classifier``: a :class:`TextEmotionClassifier`, a folder saved by it, or ``None`` (reuse
    the cache in ``<checkpoint>/emotion_classifier/`` or ``<out_dir>/emotion_classifier/`` when
    its fingerprint matches the train utterances, else train and cache one). Returns
    ``(None, {"skipped": reason})`` when there is nothing to train on.
    """
    from emosem.evaluation.emotion_classifier import CONFIG_NAME, TextEmotionClassifier

    if isinstance(classifier, TextEmotionClassifier):
        return classifier, {"source": "given"}
    if classifier is not None:
        clf = TextEmotionClassifier.load(classifier)
        return clf, {"source": "given folder", "path": str(classifier)}
    texts, labels = _train_texts(train_samples)
    if not texts:
        return None, {"skipped": "the train split has no utterances"}
    fp = _fingerprint(texts, labels)
    candidates = [checkpoint / CLASSIFIER_DIR, out_dir / CLASSIFIER_DIR]
    for folder in candidates:
        if (folder / CONFIG_NAME).is_file():
            try:
                clf = TextEmotionClassifier.load(folder)
            except (OSError, ValueError, KeyError) as e:
                logger.warning("Ignoring the cached classifier in %s: %s", folder, e)
                continue
            if clf.train_info.get("fingerprint") == fp:
                logger.info("Reusing the emotion classifier cached in %s", folder)
                return clf, {"source": "cache", "path": str(folder), "n_train": len(texts)}
            logger.info("The classifier in %s was trained on other data: retraining", folder)
    try:
        clf = TextEmotionClassifier.fit(texts, labels, seed=CLASSIFIER_SEED)
    except ValueError as e:
        return None, {"skipped": f"could not train the emotion classifier: {e}"}
    clf.train_info["fingerprint"] = fp
    for folder in candidates:
        if not _writable(folder):
            continue
        try:
            clf.save(folder)
        except OSError as e:
            logger.info("Cannot cache the classifier in %s (%s)", folder, e)
            continue
        return clf, {"source": "trained", "path": str(folder), "n_train": len(texts)}
    logger.warning("Could not cache the emotion classifier (no writable folder)")
    return clf, {"source": "trained (not cached)", "path": None, "n_train": len(texts)}


# ---------------------------------------------------------------------------------------------
# Per-painting work (runs on every process)
# ---------------------------------------------------------------------------------------------


def _mentions(text: str, motif: str) -> bool:
    from emosem.data.synthetic import mentions_motif

    try:
        return mentions_motif(text, motif)
    except KeyError:  # a motif name the synthetic generator does not know: match the name
        words = re.escape(motif.replace("_", " "))
        return re.search(rf"\b{words}\b", text or "", re.IGNORECASE) is not None


class _PaintingScorer:
    """Predicts and scores the samples of one painting; returns plain-dict rows."""

    def __init__(self, predictor: Any, data: Any, prior: CentrePrior | None, opts: dict) -> None:
        self.predictor = predictor
        self.data = data
        self.prior = prior
        self.opts = opts
        self.meter = SegmentationMeter()

    def __call__(self, key: str, samples: list[Any]) -> tuple[list[dict], dict]:
        o = self.opts
        predictor = self.predictor
        state = predictor.encode(samples[0].image_path)
        emotions = [s.emotion for s in samples]
        gen = dict(
            explain=o["explain"],
            threshold=o["threshold"],
            max_new_tokens=o["max_new_tokens"],
            state=state,
            seed=o["seed"],
            num_beams=o["num_beams"],
            do_sample=False,
        )
        probs = None
        if predictor.model.emotion_head is not None:
            probs = [float(v) for v in predictor.predict_distribution(state).values()]
        # ArtEmis alignment protocol: one explanation per painting, grounded on the emotion the
        # model predicts for it (decoded in the same batch unless it was asked anyway)
        grounded = ARTEMIS_EMOTIONS[int(np.argmax(probs))] if probs and o["explain"] else None
        ask = emotions + ([grounded] if grounded and grounded not in emotions else [])
        if o["batch_emotions"]:
            results = predictor.predict(ask, **gen)
        else:
            results = [predictor.predict([e], **gen)[0] for e in ask]
        neutral = None
        if any(s.has_mask for s in samples):
            neutral = neutral_prediction(predictor, state, o["threshold"])
        motif_anns = [a for a in self.data.annotations(key) if a.get("motif")]
        motif_masks = None
        if motif_anns and any(s.has_mask for s in samples):
            from emosem.data.artemis import decode_rle

            motif_masks = [decode_rle(a["rle"]) for a in motif_anns]
        n_motif_emotions = len({a["emotion"] for a in motif_anns})

        rows = []
        for s, r in zip(samples, results):
            row: dict[str, Any] = {
                "key": key,
                "emotion": s.emotion,
                "image": str(s.image_path),
                "has_mask": s.has_mask,
                "has_text": s.has_text,
                "predicted_iou": float(r.predicted_iou),
                "explanation": r.explanation,
            }
            if s.has_mask:
                gt = self.data.decode_mask(s)
                shape = gt.shape
                preds = {"model": soft_to_shape(r.soft_mask, shape, o["threshold"])}
                preds["emotion_agnostic"] = soft_to_shape(neutral[1], shape, o["threshold"])
                if self.prior is not None:
                    pm = self.prior.mask(*shape)
                    preds["centre_prior"] = (pm, pm.astype(np.float32))
                for name, (mask, soft) in preds.items():
                    row[SEG_FIELD[name]] = self.meter.update(
                        mask, gt, s.emotion, soft=soft, key=key
                    )
                targets = [
                    m for a, m in zip(motif_anns, motif_masks or []) if a["emotion"] == s.emotion
                ]
                if targets:
                    others = [
                        m for a, m in zip(motif_anns, motif_masks) if a["emotion"] != s.emotion
                    ]
                    if targets[0].shape == shape:
                        row["correct_motif"] = {
                            name: bool(correct_motif(mask, targets, others))
                            for name, (mask, _) in preds.items()
                        }
                        row["multi_emotion"] = n_motif_emotions >= 2
            motifs = sorted({a["motif"] for a in motif_anns if a["emotion"] == s.emotion})
            if motifs:
                row["motifs"] = motifs
                if r.explanation is not None:
                    row["names_motif"] = any(_mentions(r.explanation, m) for m in motifs)
            rows.append(row)
        painting = {"key": key, "emotion_probs": probs}
        if grounded is not None:
            painting["grounded"] = {"emotion": grounded,
                                    "explanation": results[ask.index(grounded)].explanation}
        if o["explain"]:  # for the nearest-neighbour retrieval baseline
            painting["feature"] = painting_feature(state.embedding).tolist()
        return rows, painting


def _train_features(predictor: Any, train_samples: list, peers: Any, show: bool
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


# ---------------------------------------------------------------------------------------------
# Metrics (rank 0, from the gathered rows)
# ---------------------------------------------------------------------------------------------


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _rate(values: Sequence[bool]) -> float | None:
    return float(np.mean(values)) if values else None


def _segmentation(rows: list[dict], which: str) -> tuple[dict | None, SegmentationMeter | None]:
    seg_rows = [r[SEG_FIELD[which]] for r in rows if r.get(SEG_FIELD[which])]
    if not seg_rows:
        return None, None
    meter = SegmentationMeter.from_rows(seg_rows, deduplicate=True)
    m = meter.compute()
    per = m.pop("per_emotion")
    motif = [r for r in rows if r.get("correct_motif") and which in r["correct_motif"]]
    multi = [r for r in motif if r.get("multi_emotion")]
    return {
        "overall": m,
        "per_emotion": per,
        "correct_motif_rate": _rate([r["correct_motif"][which] for r in motif]),
        "n_correct_motif": len(motif),
        "correct_motif_rate_multi_emotion": _rate([r["correct_motif"][which] for r in multi]),
        "n_correct_motif_multi_emotion": len(multi),
    }, meter


def _alignment(clf: Any, texts: list[str], counts: list[np.ndarray]) -> dict | None:
    """ArtEmis Emo-Align of one explanation per painting (``texts``) against the paintings'
    annotator ``counts [9]``: accuracy against the dominant emotion, cross-entropy and KL."""
    from emosem.evaluation.emotion_classifier import emotional_alignment

    keep = [i for i, c in enumerate(counts) if c.sum() > 0]
    if clf is None or not keep:
        return None
    return emotional_alignment(clf, [texts[i] for i in keep], np.stack([counts[i] for i in keep]))


def _asked_accuracy(clf: Any, texts: list[str], asked: list[str]) -> dict:
    """``{accuracy_asked, n_asked}``: the share of (painting, emotion) explanations that the
    classifier labels with the emotion they were asked for."""
    from emosem.evaluation.emotion_classifier import emotional_alignment

    rows = [i for i, e in enumerate(asked) if e in ARTEMIS_EMOTIONS]
    if clf is None or not rows:
        return {}
    acc = emotional_alignment(clf, [texts[i] for i in rows], [asked[i] for i in rows])
    return {"accuracy_asked": acc["accuracy_dominant"], "n_asked": len(rows)}


SENTENCE_KEYS = ("METEOR", "ROUGE-L", "CIDEr")  # corpus score = mean of the sentence scores


def _per_emotion(scores: dict, emotion_of: dict[str, str]) -> dict:
    """Replaces ``per_sample`` in ``CaptionScorer.score`` output by ``per_emotion {emotion: {n,
    METEOR, ROUGE-L, CIDEr}}``, the mean sentence-level score of the emotion's samples (CIDEr's
    IDF from all of them); returns the popped ``{key: {metric: score}}``."""
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


def _compare(model: dict, base: dict, metrics: Sequence[tuple[str, bool]]) -> dict:
    """``{metric: {model, baseline, difference, higher_is_better, model_better}}``."""
    out = {}
    for name, higher in metrics:
        m, b = model.get(name), base.get(name)
        if not (_finite(m) and _finite(b)):
            continue
        out[name] = {
            "model": m,
            "baseline": b,
            "difference": m - b,
            "higher_is_better": higher,
            "model_better": bool(m > b) if higher else bool(m < b),
        }
    return out


def _beats(comparison: dict) -> bool | None:
    return all(v["model_better"] for v in comparison.values()) if comparison else None


def _seg_flat(section: dict | None) -> dict:
    if section is None:
        return {}
    return {
        **section["overall"],
        "correct_motif_rate": section["correct_motif_rate"],
        "correct_motif_rate_multi_emotion": section["correct_motif_rate_multi_emotion"],
    }


def _flat_explanations(ex: dict | None) -> dict:
    if ex is None:
        return {}
    out = {k: ex.get(k) for k in CAPTION_KEYS}
    al = ex.get("emotional_alignment") or {}
    out["alignment_accuracy_dominant"] = al.get("accuracy_dominant")
    out["alignment_cross_entropy"] = al.get("cross_entropy")
    return out


SEG_COMPARE = (("gIoU", True), ("cIoU", True), ("correct_motif_rate", True))
TEXT_BASELINES = ("retrieval", "typical_utterance")
TEXT_COMPARE = tuple((k, True) for k in CAPTION_KEYS) + (
    ("alignment_accuracy_dominant", True),
    ("alignment_cross_entropy", False),
)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    return x


def _machine(device: Any, n_proc: int) -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "num_processes": n_proc,
    }
    if getattr(device, "type", "") == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------


def evaluate(
    checkpoint: str | Path | None = None,
    data_root: str | Path | DataConfig | None = None,
    split: str = "test",
    out_dir: str | Path | None = None,
    device: str = "auto",
    max_samples: int | None = None,
    explain: bool = True,
    meteor: bool = True,
    batch_emotions: bool = True,
    classifier: Any = None,
    seed: int = 0,
    *,
    split_seed: int | None = None,
    fit_data: str | Path | DataConfig | None = None,
    threshold: float | None = None,
    max_new_tokens: int = 40,
    num_beams: int = 1,
    retrieval_k: int = 5,
    num_overlays: int = 3,
    progress: bool | None = None,
) -> dict:
    """Evaluate ``checkpoint`` on ``split`` of ``data_root`` against the baselines.

    Args:
        checkpoint: an EmoSEM checkpoint folder (default: the bundled ``checkpoints/emosem-tiny``).
        data_root: the ArtEmis-style data folder or a :class:`DataConfig` (see
            :func:`resolve_data_config`).
        split: ``train``, ``val``, ``test`` (split by painting with the data config's ratios
            and ``split_seed``) or ``all`` (every sample: a held-out set).
        out_dir: where the report and figures go (default ``outputs/eval/<name>-<split>``).
        device: ``auto|cpu|cuda|mps`` (a launched multi-GPU run uses each process's GPU).
        max_samples: score a fixed random subset of N (painting, emotion) samples of the split
            (drawn with ``seed``; kept in data order so paintings stay together).
        explain: generate and score explanations (``False``: masks and emotion head only).
        meteor: compute METEOR (Java); otherwise reported as skipped.
        batch_emotions: one decode/generate call per painting (``False``: one per emotion).
        classifier: the alignment judge (a ``TextEmotionClassifier`` or its folder); ``None``
            trains one on the train split (cached).
        seed: seeds torch/numpy/random before predicting and draws the ``max_samples`` subset.
        split_seed: overrides the data config's painting-split seed.
        fit_data: data whose TRAIN split fits the baselines and the classifier (default: see
            the module doc).
        threshold: mask probability threshold (``None``: the checkpoint's ``mask_threshold``).
        max_new_tokens: explanation length limit.
        num_beams: beam width of the (deterministic) decoding; 1 is greedy.
        retrieval_k: how many nearest train paintings the retrieval baseline pools.
        num_overlays: how many best and worst overlays to draw.
        progress: show a progress bar (default: when stderr is a terminal).

    Returns:
        The report (also written to ``out_dir/report.json``) on the main process; ``{}`` on
        the other processes of a launched run.
    """
    import torch
    from tqdm.auto import tqdm

    from emosem.data.image_io import ImageLoadError
    from emosem.data.splits import build_splits
    from emosem.inference.predictor import EmoSEMPredictor, default_checkpoint, resolve_device
    from emosem.modeling.emosem import EmoSEM

    t0 = time.perf_counter()
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be at least 1, got {max_samples}")
    if num_beams < 1:
        raise ValueError(f"num_beams must be at least 1, got {num_beams}")
    if retrieval_k < 1:
        raise ValueError(f"retrieval_k must be at least 1, got {retrieval_k}")
    ckpt = Path(checkpoint) if checkpoint else default_checkpoint()
    EmoSEM.read_config(ckpt)  # a wrong folder fails now, not after loading the data
    out = Path(out_dir) if out_dir else default_out_dir(ckpt, split)
    peers = _peers(device)
    main = peers.is_main_process

    # -- data ---------------------------------------------------------------------------------
    data_cfg, data_source = resolve_data_config(data_root, ckpt, split_seed)
    splits = build_splits(data_cfg, check_images=True)
    data = splits.data
    samples = list(data.samples) if split == "all" else list(splits.get(split).samples)
    if max_samples is not None and max_samples < len(samples):
        keep = sorted(random.Random(seed).sample(range(len(samples)), max_samples))
        samples = [samples[i] for i in keep]
    if not samples:
        raise ValueError(f"The {split} split of {data_cfg.root} is empty: nothing to evaluate.")
    by_key: dict[str, list[Any]] = {}
    for s in samples:
        by_key.setdefault(s.key, []).append(s)
    paintings = list(by_key)

    fit_cfg, fit_source = data_cfg, "the evaluated data"
    if fit_data is not None:
        fit_cfg, fit_source = resolve_data_config(fit_data, ckpt, split_seed)
        fit_source = f"given ({fit_cfg.root})"
    elif split == "all":
        run = _run_data_config(ckpt)
        if run is not None and not _same_folder(run[0].root, data_cfg.root):
            fit_cfg, fit_source = resolve_data_config(None, ckpt, None)[0], f"run config {run[1]}"
    fit_splits = splits if fit_cfg is data_cfg else build_splits(fit_cfg, check_images=False)
    train_samples = list(fit_splits.train.samples)
    overlaps = _same_folder(fit_cfg.root, data_cfg.root) and (
        split in ("all", "train")
        or fit_cfg.split_seed != data_cfg.split_seed
        or list(fit_cfg.split_ratios) != list(data_cfg.split_ratios)
    )
    if overlaps and main:
        logger.warning(
            "The baselines and the emotion classifier are fitted on the train split of %s, which "
            "overlaps the evaluated samples (split %r); pass fit_data / --fit-data to avoid it.",
            fit_cfg.root,
            split,
        )
    try:
        prior = CentrePrior.fit(train_samples)
    except ValueError as e:
        prior = None
        logger.warning("No centre-prior baseline: %s", e)

    # -- model ----------------------------------------------------------------------------------
    if peers.num_processes > 1 and device in ("auto", "cuda") and peers.device.type == "cuda":
        dev = peers.device
    else:
        dev = resolve_device(device)
    t_load = time.perf_counter()
    predictor = EmoSEMPredictor.from_pretrained(ckpt, device=str(dev))
    load_s = time.perf_counter() - t_load
    if threshold is None:
        threshold = predictor.model.config.mask_threshold
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    opts = {
        "explain": explain,
        "threshold": float(threshold),
        "max_new_tokens": int(max_new_tokens),
        "num_beams": int(num_beams),
        "seed": int(seed),
        "batch_emotions": batch_emotions,
    }
    scorer = _PaintingScorer(predictor, data, prior, opts)

    # -- predict (sharded) ----------------------------------------------------------------------
    mine = peers.shard(paintings)
    show = (sys.stderr.isatty() if progress is None else progress) and main
    rows: list[dict] = []
    painting_rows: list[dict] = []
    failures: list[dict] = []
    t_pred = time.perf_counter()
    for key in tqdm(
        mine, desc=f"evaluate {split}", unit="painting", disable=not show, dynamic_ncols=True
    ):
        try:
            r, p = scorer(key, by_key[key])
        except (ImageLoadError, OSError, ValueError) as e:  # a bad painting; go on, report it
            logger.error("%s: %s", key, e)
            failures.append({"painting": key, "reason": str(e)})
            continue
        rows.extend(r)
        painting_rows.append(p)
    predict_s = time.perf_counter() - t_pred
    rows = peers.gather(rows)
    painting_rows = peers.gather(painting_rows)
    failures = peers.gather(failures)
    t_fit = time.perf_counter()
    train_features = (
        _train_features(predictor, train_samples, peers, show) if explain else {}
    )
    nn_fit_s = time.perf_counter() - t_fit
    if not main:  # rank 0 scores the gathered rows; no collective call follows
        return {}

    # -- metrics (main process) -----------------------------------------------------------------
    t_metrics = time.perf_counter()
    seen: set = set()
    rows = [
        r
        for r in rows
        if not ((r["key"], r["emotion"]) in seen or seen.add((r["key"], r["emotion"])))
    ]
    seen_p: set = set()
    painting_rows = [p for p in painting_rows if not (p["key"] in seen_p or seen_p.add(p["key"]))]
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "checkpoint": str(ckpt),
        "out": str(out),
        "data": {
            **{
                k: v
                for k, v in asdict(data_cfg).items()
                if k in ("root", "csv", "masks", "image_root", "split_ratios", "split_seed")
            },
            "source": data_source,
        },
        "split": split,
        "n_samples": len(rows),
        "n_paintings": len({r["key"] for r in rows}),
        "n_failed": len(failures),
        "failed": failures,
        "settings": {
            "explain": explain,
            "meteor": meteor,
            "batch_emotions": batch_emotions,
            "threshold": threshold,
            "max_new_tokens": max_new_tokens,
            "num_beams": num_beams,
            "seed": seed,
            "max_samples": max_samples,
            "decoding": "greedy" if num_beams == 1 else f"beam search, {num_beams} beams",
        },
        "fit": {
            "data": fit_cfg.root,
            "split": "train",
            "source": fit_source,
            "split_seed": fit_cfg.split_seed,
            "n_train_samples": len(train_samples),
            "overlaps_evaluated": bool(overlaps),
        },
    }

    seg = {name: _segmentation(rows, name) for name in ("model", *MASK_BASELINES)}
    report["segmentation"] = seg["model"][0]

    sample_of = {(s.key, s.emotion): s for s in samples}
    clf, clf_info = None, {}
    # name -> {"said": {(key, emotion): explanation}, "entry": its report fields (description, ...)}
    text_baselines: dict[str, dict[str, Any]] = {}
    text_scores: dict[str, dict] = {}
    explanations = None
    painting_records: list[dict] = []
    if explain:
        with_text = [r for r in rows if r["has_text"] and r["explanation"] is not None]
        with_expl = [r for r in rows if r["explanation"] is not None]
        features = {p["key"]: np.asarray(p["feature"], np.float32)
                    for p in painting_rows if "feature" in p}
        # the alignment protocol's paintings: those the model explained for its own emotion
        grounded = [p for p in painting_rows
                    if p.get("grounded") and p["grounded"]["explanation"] is not None]
        try:
            nn_retrieval = NearestNeighbourRetrieval.fit(train_samples, train_features,
                                                         k=retrieval_k)
            text_baselines["retrieval"] = {
                "said": {(r["key"], r["emotion"]): nn_retrieval.explain(features[r["key"]],
                                                                        r["emotion"])
                         for r in with_expl},
                "ungrounded": {p["key"]: nn_retrieval.explain(features[p["key"]])
                               for p in grounded},
                "entry": {
                    "description": "nearest-neighbour retrieval: the consensus utterance of the "
                    f"asked emotion among the {nn_retrieval.k} train paintings nearest to the "
                    "painting (cosine of the pooled SAM image embedding; highest mean TF-IDF "
                    "cosine to the other candidates); for the alignment, which asks for no "
                    "emotion, the consensus of those paintings' utterances of any emotion "
                    "(ArtEmis' NN speaker)",
                    "fit": {"n_train_paintings": len(nn_retrieval.keys), "k": nn_retrieval.k,
                            "seconds": round(nn_fit_s, 2)},
                },
            }
        except ValueError as e:
            logger.warning("No nearest-neighbour retrieval baseline: %s", e)
        try:
            typical = RetrievalBaseline.fit(train_samples)
            text_baselines["typical_utterance"] = {
                "said": {(r["key"], r["emotion"]): typical.explain(r["emotion"])
                         for r in with_expl},
                "ungrounded": {p["key"]: typical.explain(None) for p in grounded},
                "entry": {
                    "description": "for each emotion, the medoid train utterance of that emotion "
                    "(highest mean TF-IDF cosine to the other train utterances of the emotion); "
                    "for the alignment, the medoid of all train utterances; it does not look at "
                    "the painting",
                    "texts": typical.texts,
                    "overall": typical.overall,
                },
            }
        except ValueError as e:
            logger.warning("No typical-utterance baseline: %s", e)
        clf, clf_info = load_or_train_classifier(classifier, ckpt, out, train_samples)
        g_counts = [data.emotion_counts(p["key"]) for p in grounded]
        asked = [r["emotion"] for r in with_expl]
        if with_text:
            from emosem.evaluation.text_metrics import CaptionScorer

            refs = {
                f"{r['key']}|{r['emotion']}": sample_of[(r["key"], r["emotion"])].utterances
                for r in with_text
            }
            cands = {f"{r['key']}|{r['emotion']}": r["explanation"] for r in with_text}
            emotion_of = {f"{r['key']}|{r['emotion']}": r["emotion"] for r in with_text}
            with CaptionScorer(meteor=meteor) as cs:
                explanations = cs.score(cands, refs, per_sample=True)
                sentence = _per_emotion(explanations, emotion_of)
                for r in with_text:  # samples.jsonl: each explanation's sentence-level scores
                    r["caption_scores"] = sentence[f"{r['key']}|{r['emotion']}"]
                for name, b in text_baselines.items():
                    text_scores[name] = cs.score(
                        {f"{r['key']}|{r['emotion']}": b["said"][r["key"], r["emotion"]]
                         for r in with_text}, refs, per_sample=True)
                    _per_emotion(text_scores[name], emotion_of)
        else:
            explanations = {k: None for k in CAPTION_KEYS}
            explanations.update(
                n=0, skipped={"captions": "no evaluated sample has reference utterances"}
            )
        named = [r["names_motif"] for r in rows if "names_motif" in r]
        explanations["names_motif_rate"] = _rate(named)
        explanations["n_names_motif"] = len(named)
        al = _alignment(clf, [p["grounded"]["explanation"] for p in grounded], g_counts)
        asked_acc = _asked_accuracy(clf, [r["explanation"] for r in with_expl], asked)
        if al is None:
            why = clf_info.get("skipped") or (
                "no painting has annotator labels" if grounded else
                "the checkpoint has no emotion head to ground an explanation on"
            )
            al = {"accuracy_dominant": None, "cross_entropy": None, "skipped": why}
        explanations["emotional_alignment"] = {
            **al,
            "grounding": "the emotion head's top emotion",
            **asked_acc,
            "classifier": clf_info,
        }
        for p in grounded:  # paintings.jsonl: what each method said for the alignment
            rec = {"key": p["key"], **p["grounded"]}
            rec.update({name: b["ungrounded"][p["key"]] for name, b in text_baselines.items()})
            painting_records.append(rec)
        if clf is not None and painting_records:
            for field, who in (("explanation", "model"), *((n, n) for n in text_baselines)):
                judged = clf.predict_proba([r[field] for r in painting_records]).argmax(1)
                for r, j in zip(painting_records, judged):
                    r.setdefault("judged", {})[who] = ARTEMIS_EMOTIONS[int(j)]
        for name, b in text_baselines.items():
            sc = text_scores.setdefault(name, {k: None for k in CAPTION_KEYS})
            texts = [b["said"][r["key"], r["emotion"]] for r in with_expl]
            named_b = [any(_mentions(t, m) for m in r["motifs"])
                       for r, t in zip(with_expl, texts) if "motifs" in r]
            sc["names_motif_rate"] = _rate(named_b)
            sc["emotional_alignment"] = {
                **(_alignment(clf, [b["ungrounded"][p["key"]] for p in grounded], g_counts)
                   or {}),
                "grounding": "none (no emotion given)",
                **_asked_accuracy(clf, texts, asked),
            }
    report["explanations"] = explanations

    # emotion recognition
    er = None
    train_counts = [
        fit_splits.data.emotion_counts(k) for k in dict.fromkeys(s.key for s in train_samples)
    ]
    scored = [p for p in painting_rows if p["emotion_probs"] is not None]
    target = [data.emotion_counts(p["key"]) for p in scored]
    keep = [i for i, t in enumerate(target) if t.sum() > 0]
    baselines: dict[str, Any] = {}
    beats: dict[str, bool | None] = {}
    if keep:
        probs = np.array([scored[i]["emotion_probs"] for i in keep], dtype=np.float64)
        tgt = np.stack([target[i] for i in keep])
        er = distribution_metrics(probs / probs.sum(axis=1, keepdims=True), tgt)
        maj = majority_emotion(train_counts)
        if maj is not None:
            onehot = np.zeros((len(keep), len(ARTEMIS_EMOTIONS)))
            onehot[:, maj] = 1.0
            m = distribution_metrics(onehot, tgt)
            er["majority_baseline"] = {
                "emotion": ARTEMIS_EMOTIONS[maj],
                "accuracy_dominant": m["accuracy_dominant"],
            }
            comp = _compare(er, m, (("accuracy_dominant", True),))
            baselines["majority_emotion"] = {
                "description": "the most frequent dominant emotion of the train paintings, "
                "predicted for every painting",
                "emotion": ARTEMIS_EMOTIONS[maj],
                "accuracy_dominant": m["accuracy_dominant"],
                "n_dominant": m["n_dominant"],
                "comparison": comp,
            }
            beats["majority_emotion"] = _beats(comp)
        if any(c.sum() > 0 for c in train_counts):
            prior_dist = mean_distribution(train_counts)
            m = distribution_metrics(np.tile(prior_dist, (len(keep), 1)), tgt)
            er["prior_baseline"] = {k: m[k] for k in ("cross_entropy", "kl", "accuracy_dominant")}
            comp = _compare(er, m, (("cross_entropy", False), ("kl", False)))
            baselines["train_prior_distribution"] = {
                "description": "the mean annotator distribution of the train paintings, "
                "predicted for every painting",
                "distribution": dict(zip(ARTEMIS_EMOTIONS, prior_dist.tolist())),
                **{k: m[k] for k in ("cross_entropy", "kl", "accuracy_dominant")},
                "comparison": comp,
            }
            beats["train_prior_distribution"] = _beats(comp)
    report["emotion_recognition"] = er

    # mask baselines
    model_flat = _seg_flat(seg["model"][0])
    descriptions = {
        "emotion_agnostic": "the same checkpoint prompted with an empty emotion "
        '(template with e = ""): one mask per painting for every emotion',
        "centre_prior": (prior.describe() if prior is not None else "not fitted")
        + " (fitted on the train split)",
    }
    for name in MASK_BASELINES:
        section = seg[name][0]
        if section is None:
            continue
        comp = _compare(model_flat, _seg_flat(section), SEG_COMPARE)
        entry = {"description": descriptions[name], "segmentation": section, "comparison": comp}
        if name == "centre_prior" and prior is not None:
            entry["fit"] = {"area_fraction": prior.fraction, "n_train_masks": prior.n_fit}
        baselines[name] = entry
        beats[name] = _beats(comp)
    for name, b in text_baselines.items() if explanations is not None else ():
        comp = _compare(
            _flat_explanations(explanations), _flat_explanations(text_scores[name]), TEXT_COMPARE
        )
        baselines[name] = {**b["entry"], "explanations": text_scores[name], "comparison": comp}
        beats[name] = _beats(comp)
    order = (
        "centre_prior",
        "emotion_agnostic",
        "retrieval",
        "typical_utterance",
        "majority_emotion",
        "train_prior_distribution",
    )
    report["baselines"] = {
        **{n: baselines[n] for n in order if n in baselines},
        "beats_baselines": {n: beats[n] for n in order if n in beats},
    }
    metrics_s = time.perf_counter() - t_metrics

    # -- files ------------------------------------------------------------------------------------
    t_files = time.perf_counter()
    files = _write_samples(out / "samples.jsonl", rows)
    if painting_records:
        files.append(_write_jsonl(out / "paintings.jsonl", painting_records))
    try:
        files += _write_figures(
            out, report, seg, rows, predictor, data, sample_of, num_overlays, threshold
        )
    except Exception as e:  # noqa: BLE001 - a figure must never lose the numbers
        logger.warning("Could not draw the figures: %s: %s", type(e).__name__, e)
    report["files"] = sorted(str(Path(f).name) for f in files) + ["report.json", "report.md"]
    report["seconds"] = round(time.perf_counter() - t0, 3)
    report["timing"] = {
        "load_model_s": round(load_s, 3),
        "predict_s": round(predict_s, 3),
        "metrics_s": round(metrics_s, 3),
        "figures_s": round(time.perf_counter() - t_files, 3),
        "per_painting_s": round(predict_s / max(1, len(mine)), 4),
    }
    report["machine"] = _machine(dev, peers.num_processes)
    report = _jsonable(report)
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / "report.md").write_text(markdown_report(report), encoding="utf-8")
    logger.info("Wrote %s and %s", out / "report.json", out / "report.md")
    return report


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


def _write_samples(path: Path, rows: list[dict]) -> list[Path]:
    keep = (
        "key",
        "emotion",
        "has_mask",
        "has_text",
        "predicted_iou",
        "explanation",
        "motifs",
        "names_motif",
        "correct_motif",
        "multi_emotion",
        "caption_scores",
    )
    recs = []
    for r in rows:
        rec = {k: r[k] for k in keep if k in r}
        for name, field in SEG_FIELD.items():
            if r.get(field):
                rec[f"iou_{name}"] = r[field]["iou"]
        recs.append(rec)
    return [_write_jsonl(path, recs)]


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(_jsonable(rec)) + "\n")
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60] or "sample"


def _save_chart(fig: Any, ax: Any, path: Path) -> Path:
    """Legend, open top/right frame, tight layout; write ``path`` (PNG) and free the figure."""
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, facecolor="white")
    fig.clear()
    return path


def _write_figures(
    out: Path,
    report: dict,
    seg: dict,
    rows: list[dict],
    predictor: Any,
    data: Any,
    sample_of: dict,
    k: int,
    threshold: float,
) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from emosem.visualization.overlay import overlay_mask

    files: list[Path] = []
    for stale in [*out.glob("best_*.png"), *out.glob("worst_*.png")]:  # from an earlier run
        stale.unlink(missing_ok=True)
    section = report.get("segmentation")
    if section is None:
        return files
    # per-emotion gIoU, model vs mask baselines
    emotions = list(section["per_emotion"])
    series = [("model", section)] + [(n, seg[n][0]) for n in MASK_BASELINES if seg[n][0]]
    fig = Figure(figsize=(max(6.0, 1.0 + 0.9 * len(emotions)), 4.0), dpi=110, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(series)
    x = np.arange(len(emotions))
    for j, (name, sec) in enumerate(series):
        vals = [(sec["per_emotion"].get(e) or {}).get("gIoU") or 0.0 for e in emotions]
        color = {"model": "#1976d2", "emotion_agnostic": "#ef6c00"}.get(name, "#9e9e9e")
        ax.bar(
            x + (j - (len(series) - 1) / 2) * width,
            vals,
            width,
            label=name,
            color=color,
            edgecolor="#222222",
            linewidth=0.6,
        )
    ax.set_xticks(x)
    ax.set_xticklabels(emotions, rotation=30, ha="right", fontsize=9)
    ax.set_ylim(0, 1)
    ax.set_ylabel("gIoU")
    ax.set_title(
        f"Per-emotion gIoU ({report['split']}, n = {section['overall']['n']})", fontsize=11
    )
    files.append(_save_chart(fig, ax, out / "per_emotion_iou.png"))

    # IoU histogram
    fig = Figure(figsize=(6.0, 4.0), dpi=110, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    bins = np.linspace(0, 1, 21)
    for name, meter in ((n, seg[n][1]) for n in ("model", *MASK_BASELINES)):
        if meter is None:
            continue
        ious = [r["iou"] for r in meter.per_sample]
        label = f"{name} (gIoU {np.mean(ious):.3f})"
        if name == "model":
            ax.hist(ious, bins=bins, color="#1976d2", alpha=0.6, label=label)
        else:
            style = {"emotion_agnostic": ("#ef6c00", "--"), "centre_prior": ("#424242", ":")}[name]
            ax.hist(
                ious,
                bins=bins,
                histtype="step",
                linewidth=1.8,
                color=style[0],
                linestyle=style[1],
                label=label,
            )
    ax.set_xlabel("IoU per sample")
    ax.set_ylabel("samples")
    ax.set_title(f"IoU distribution ({report['split']})", fontsize=11)
    files.append(_save_chart(fig, ax, out / "iou_hist.png"))

    # best / worst overlays: prediction filled in the emotion's colour, GT as a white contour
    meter = seg["model"][1]
    if meter is None or k <= 0:
        return files
    n = len(meter)  # best and worst never overlap: with few samples, fewer of each
    best = meter.best_worst(min(k, (n + 1) // 2))[0]
    worst = meter.best_worst(min(k, n // 2))[1]
    expl = {(r["key"], r["emotion"]): r.get("explanation") for r in rows}
    for kind, group in (("best", best), ("worst", worst)):
        for rank, r in enumerate(group, 1):
            ident = (r["key"], r["emotion"])
            s = sample_of[ident]
            state = predictor.encode(s.image_path)
            res = predictor.predict([s.emotion], explain=False, threshold=threshold, state=state)[0]
            gt = data.decode_mask(s)
            pred, _ = soft_to_shape(res.soft_mask, gt.shape, threshold)
            img = state.image
            if img.shape[:2] != gt.shape:
                import cv2

                img = cv2.resize(img, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_AREA)
            pic = overlay_mask(img, pred, color=emotion_color(s.emotion), alpha=0.45)
            pic = overlay_mask(pic, gt, color=(255, 255, 255), alpha=0.0)
            h, w = gt.shape
            img_in, top_in, text_in = 5.0 * h / w, 0.55, 0.9
            total = img_in + top_in + text_in
            fig = Figure(figsize=(5.0, total), dpi=110, facecolor="white")
            FigureCanvasAgg(fig)
            ax = fig.add_axes([0.02, text_in / total, 0.96, img_in / total])
            ax.imshow(pic)
            ax.set_axis_off()
            fig.text(
                0.5,
                1.0 - 0.08 / total,
                f"{kind} {rank}: {s.emotion} — IoU {r['iou']:.3f}",
                ha="center",
                va="top",
                fontsize=10,
                weight="bold",
                color="#222222",
            )
            fig.text(
                0.5, 1.0 - 0.32 / total, s.key, ha="center", va="top", fontsize=7.5, color="#666666"
            )
            text = " ".join((expl.get(ident) or "(no explanation)").split())
            if len(text) > 220:
                text = text[:217] + "…"
            fig.text(
                0.03,
                (text_in - 0.08) / total,
                f"white contour: ground truth · colour: prediction\n“{text}”",
                fontsize=7.5,
                va="top",
                ha="left",
                wrap=True,
                color="#222222",
            )
            path = out / f"{kind}_{rank}_{_slug(s.painting)}_{_slug(s.emotion)}.png"
            fig.savefig(path, facecolor="white")
            fig.clear()
            files.append(path)
    return files


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines + [""]


def markdown_report(report: dict) -> str:
    """A readable Markdown summary of a report (what ``report.md`` holds)."""
    L: list[str] = [
        f"# EmoSEM evaluation — `{Path(report['checkpoint']).name}` on {report['split']}",
        "",
    ]
    d = report["data"]
    L += [
        f"- checkpoint: `{report['checkpoint']}`",
        f"- data: `{d['root']}` (split `{report['split']}`, ratios {d['split_ratios']}, "
        f"seed {d['split_seed']}; {d['source']})",
        f"- {report['n_samples']} samples on {report['n_paintings']} paintings; "
        f"{report['n_failed']} painting(s) failed",
        f"- baselines and classifier fitted on the train split of `{report['fit']['data']}`"
        + (" (**overlaps the evaluated samples**)" if report["fit"]["overlaps_evaluated"] else ""),
        f"- {report['seconds']:.1f} s on {report['machine']['device']} "
        f"({report['machine']['num_processes']} process(es)); "
        f"{report['settings'].get('decoding', 'greedy')} decoding, seed {report['settings']['seed']}",
        "",
    ]
    bl = report["baselines"]
    seg = report.get("segmentation")
    if seg:
        L += ["## Segmentation", ""]
        names = ["model"] + [n for n in MASK_BASELINES if n in bl]
        secs = [seg] + [bl[n]["segmentation"] for n in names[1:]]
        rows = []
        for metric in ("gIoU", "cIoU", "F_beta", "MAE"):
            rows.append([metric] + [s["overall"][metric] for s in secs])
        rows.append(["correct motif"] + [s["correct_motif_rate"] for s in secs])
        rows.append(
            ["correct motif (≥2 emotions)"] + [s["correct_motif_rate_multi_emotion"] for s in secs]
        )
        rows.append(["n"] + [s["overall"]["n"] for s in secs])
        L += _table(["metric", *names], rows)
        L += ["F_beta: β² = 0.3 on the binary mask; MAE on the soft map (lower is better).", ""]
        L += ["### Per emotion (gIoU / cIoU)", ""]
        per_rows = []
        for e, m in seg["per_emotion"].items():
            row = [e, m["n"], m["gIoU"], m["cIoU"]]
            for n in names[1:]:
                row.append((bl[n]["segmentation"]["per_emotion"].get(e) or {}).get("gIoU"))
            per_rows.append(row)
        L += _table(["emotion", "n", "gIoU", "cIoU", *[f"{n} gIoU" for n in names[1:]]], per_rows)
        L += ["![per-emotion IoU](per_emotion_iou.png)", "", "![IoU histogram](iou_hist.png)", ""]
    ex = report.get("explanations")
    if ex and (ex.get("n") or (ex.get("emotional_alignment") or {}).get("n")):
        L += ["## Explanations", ""]
        bls = [(bl.get(n) or {}).get("explanations") or {} for n in TEXT_BASELINES]
        rows = [[k, ex.get(k), *[b.get(k) for b in bls]] for k in CAPTION_KEYS]
        rows.append(["names the motif", ex.get("names_motif_rate"),
                     *[b.get("names_motif_rate") for b in bls]])
        als = [ex.get("emotional_alignment") or {}] + [b.get("emotional_alignment") or {}
                                                        for b in bls]
        for k in ("accuracy_dominant", "accuracy_asked", "cross_entropy", "kl"):
            rows.append([f"alignment {k}", *[a.get(k) for a in als]])
        L += _table(["metric", "model", *[f"{n.replace('_', ' ')} baseline" for n in TEXT_BASELINES]],
                    rows)
        al = ex.get("emotional_alignment") or {}
        L += [
            f"Tokenizer: {ex.get('tokenizer')}; {ex.get('n')} explanations scored against all "
            "references of their (painting, emotion).",
            "",
            "Emotional alignment, ArtEmis protocol: one explanation per painting "
            f"({al.get('n')} paintings, {al.get('n_dominant')} with a dominant emotion), the "
            "model grounded on its emotion head's top emotion, the baselines told no emotion "
            "(retrieval: the consensus of the nearest train paintings' utterances of any "
            "emotion; typical utterance: the medoid of all train utterances). The text-emotion "
            "classifier labels each; `accuracy_dominant` is against the dominant annotator "
            "emotion, `cross_entropy` and `kl` against the annotator distribution. "
            "`accuracy_asked`: the share of the (painting, emotion) explanations labelled with "
            "the asked emotion (a retrieved utterance of that emotion scores 1 by construction, "
            "so it is not compared).",
            "",
        ]
        if al.get("skipped"):
            L.append(f"- skipped emotional alignment: {al['skipped']}")
        for comp, why in (ex.get("skipped") or {}).items():
            L.append(f"- skipped {comp}: {why}")
        L.append("")
        pe = ex.get("per_emotion") or {}
        if pe:
            L += ["### Per emotion (mean sentence-level METEOR / CIDEr)", ""]
            short = [n.split("_")[0] for n in TEXT_BASELINES]
            per_rows = []
            for e, m in pe.items():
                others = [((b.get("per_emotion") or {}).get(e) or {}) for b in bls]
                per_rows.append([e, m["n"], m["METEOR"], *[o.get("METEOR") for o in others],
                                 m["CIDEr"], *[o.get("CIDEr") for o in others]])
            L += _table(["emotion", "n", "METEOR", *[f"{n} METEOR" for n in short],
                         "CIDEr", *[f"{n} CIDEr" for n in short]], per_rows)
    er = report.get("emotion_recognition")
    if er:
        L += ["## Emotion recognition (emotion head)", ""]
        maj, pri = er.get("majority_baseline") or {}, er.get("prior_baseline") or {}
        L += _table(
            ["metric", "model", "majority emotion", "train prior"],
            [
                [
                    "accuracy (dominant)",
                    er["accuracy_dominant"],
                    maj.get("accuracy_dominant"),
                    pri.get("accuracy_dominant"),
                ],
                ["cross-entropy", er["cross_entropy"], None, pri.get("cross_entropy")],
                ["KL", er["kl"], None, pri.get("kl")],
                [
                    "paintings (with a dominant emotion)",
                    f"{er['n']} ({er['n_dominant']})",
                    None,
                    None,
                ],
            ],
        )
        if maj:
            L += [f"Majority emotion of the train paintings: {maj['emotion']}.", ""]
    L += ["## Against the baselines", ""]
    rows = []
    for name, entry in bl.items():
        if name == "beats_baselines":
            continue
        for metric, c in entry["comparison"].items():
            rows.append(
                [name, metric, c["model"], c["baseline"], c["difference"], c["model_better"]]
            )
    L += _table(
        ["baseline", "metric", "model", "baseline", "model − baseline", "model better"], rows
    )
    L += [
        "Beats (better on every compared metric; lower is better for cross-entropy and KL): "
        + ", ".join(f"{k}: {_fmt(v)}" for k, v in bl["beats_baselines"].items()),
        "",
    ]
    for name, entry in bl.items():
        if name != "beats_baselines":
            L.append(f"- **{name}**: {entry['description']}")
    L.append("")
    overlays = [f for f in report.get("files", []) if f.startswith(("best_", "worst_"))]
    if overlays:
        L += [
            "## Best and worst samples",
            "",
            "White contour: ground truth; colour: prediction.",
            "",
        ]
        L += [f"![{f}]({f})" for f in overlays] + [""]
    if report["failed"]:
        L += ["## Failed paintings", ""] + [
            f"- {f['painting']}: {f['reason']}" for f in report["failed"]
        ]
    return "\n".join(L) + "\n"


def format_summary(report: dict) -> str:
    """A short plain-text table for the terminal: the model beside its baselines."""
    bl = report.get("baselines", {})
    lines: list[str] = []

    def block(title: str, names: Sequence[str], rows: list[tuple[str, list[Any]]]) -> None:
        lines.append(f"{title:<30}" + "".join(f"{n:>18}" for n in names))
        for label, vals in rows:
            lines.append(f"  {label:<28}" + "".join(f"{_fmt(v):>18}" for v in vals))

    seg = report.get("segmentation")
    if seg:
        secs = [seg] + [
            (bl.get(n) or {}).get("segmentation") or {}
            for n in ("centre_prior", "emotion_agnostic")
        ]
        rows = [
            (m, [(s.get("overall") or {}).get(m) for s in secs])
            for m in ("gIoU", "cIoU", "F_beta", "MAE")
        ]
        if seg.get("correct_motif_rate") is not None:
            rows.append(("correct motif", [s.get("correct_motif_rate") for s in secs]))
            rows.append(
                (
                    "correct motif (≥2 emotions)",
                    [s.get("correct_motif_rate_multi_emotion") for s in secs],
                )
            )
        block(
            f"segmentation (n={seg['overall']['n']})",
            ["model", "centre prior", "emotion-agnostic"],
            rows,
        )
    ex = report.get("explanations")
    if ex and (ex.get("n") or (ex.get("emotional_alignment") or {}).get("n")):
        secs = [ex] + [(bl.get(n) or {}).get("explanations") or {} for n in TEXT_BASELINES]
        rows = [(k, [s.get(k) for s in secs]) for k in CAPTION_KEYS]
        if ex.get("names_motif_rate") is not None:
            rows.append(("names the motif", [s.get("names_motif_rate") for s in secs]))
        als = [s.get("emotional_alignment") or {} for s in secs]
        rows.append(("alignment acc. (dominant)", [a.get("accuracy_dominant") for a in als]))
        rows.append(("alignment cross-entropy", [a.get("cross_entropy") for a in als]))
        block(f"explanations (n={ex.get('n')})", ["model", "retrieval (NN)", "typical utt."], rows)
    er = report.get("emotion_recognition")
    if er:
        maj, pri = er.get("majority_baseline") or {}, er.get("prior_baseline") or {}
        block(
            f"emotion head (n={er['n']})",
            ["model", "majority", "train prior"],
            [
                (
                    "accuracy (dominant)",
                    [
                        er["accuracy_dominant"],
                        maj.get("accuracy_dominant"),
                        pri.get("accuracy_dominant"),
                    ],
                ),
                ("cross-entropy", [er["cross_entropy"], None, pri.get("cross_entropy")]),
            ],
        )
    beats = bl.get("beats_baselines", {})
    lines.append("beats baselines: " + ", ".join(f"{k}={_fmt(v)}" for k, v in beats.items()))
    return "\n".join(lines)
