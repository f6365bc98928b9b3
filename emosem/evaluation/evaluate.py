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
  labelled with the asked emotion (faithfulness to the prompt). The classifier is trained once
  per training text and cached by its fingerprint in the user cache (``cache_dir``,
  ``$EMOSEM_CACHE_DIR``, ``$XDG_CACHE_HOME/emosem`` or ``~/.cache/emosem``; else the report
  folder); one a checkpoint ships is reused when it matches. Evaluation never writes into the
  checkpoint folder (:mod:`emosem.evaluation.classifier_cache`).
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

The code: :mod:`.data` (which samples, which fitting data), :mod:`.predict` (the sharded
prediction run returning the typed rows of :mod:`.rows`), :mod:`.sections` (one module per
report section and its baselines), :mod:`.report` (JSON, Markdown, figures); :func:`evaluate`
drives them.

Every painting is encoded once and all its requested emotions are decoded and explained in one
batched call (greedy decoding or ``num_beams`` beam search, seeded). Under ``accelerate launch``
the paintings (and the train paintings the retrieval baseline encodes) are sharded across
processes, the per-sample rows are gathered, and rank 0 computes the metrics and writes
``report.json``, ``report.md``, ``samples.jsonl`` and the figures.

Report (``report.json``; NaN is written as ``null``; ``None`` where a part does not apply)::

    checkpoint, out, split, n_samples, n_paintings, n_failed,
    failed: [{painting, kind: unreadable | error (skip_failures), reason}]
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
    machine: {emosem.machine.machine_info(device) fields, num_processes}

The baselines, the emotion classifier, the majority emotion and the prior are fitted on the
TRAIN split of the data config (``fit_data``; by default the evaluated data). With
``split="all"`` (a held-out set generated with an unused seed) they are fitted on the training
run's data when the checkpoint sits in a run folder whose ``config.yaml`` names another data
root; otherwise on the evaluated set's own train split, flagged in
``report["fit"]["overlaps_evaluated"]``.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from emosem.config import DataConfig, check_mask_threshold
from emosem.evaluation.baselines import CentrePrior
from emosem.evaluation.classifier_cache import CLASSIFIER_DIR, load_or_train_classifier
from emosem.evaluation.data import (
    SPLITS,
    EvaluationData,
    default_out_dir,
    load_evaluation_data,
    resolve_data_config,
)
from emosem.evaluation.peers import peers as make_peers
from emosem.evaluation.predict import (
    PaintingScorer,
    PredictionRun,
    PredictOptions,
    run_predictions,
    train_features,
)
from emosem.evaluation.report.figures import write_figures
from emosem.evaluation.report.files import (
    jsonable,
    write_jsonl,
    write_report_json,
    write_samples,
)
from emosem.evaluation.report.markdown import format_summary, markdown_report
from emosem.evaluation.sections.explanations import explanations as explanations_section
from emosem.evaluation.sections.recognition import emotion_recognition
from emosem.evaluation.sections.segmentation import mask_baselines, segmentation
from emosem.machine import check_device, machine_info

logger = logging.getLogger(__name__)

__all__ = [
    "CLASSIFIER_DIR",
    "SPLITS",
    "EvaluationArgumentError",
    "evaluate",
    "format_summary",
    "load_or_train_classifier",
    "markdown_report",
    "resolve_data_config",
]

BASELINE_ORDER = ("centre_prior", "emotion_agnostic", "retrieval", "typical_utterance",
                  "majority_emotion", "train_prior_distribution")


class EvaluationArgumentError(ValueError):
    """A bad :func:`evaluate` argument: ``name`` is the parameter, ``message`` says what is
    wrong and what to do (the command line prints it with the flag's name instead)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name} {message}")
        self.name = name
        self.message = message


def check_arguments(split: str, max_samples: int | None, num_beams: int, retrieval_k: int,
                    threshold: float | None, device: str) -> None:
    """Raise :class:`EvaluationArgumentError` for the first argument out of its range."""
    if split not in SPLITS:
        raise EvaluationArgumentError("split", f"must be one of {', '.join(SPLITS)}, got {split!r}")
    for name, value in (("max_samples", max_samples), ("num_beams", num_beams),
                        ("retrieval_k", retrieval_k)):
        if value is not None and value < 1:
            raise EvaluationArgumentError(name, f"must be at least 1, got {value}")
    try:
        if threshold is not None:
            check_mask_threshold(threshold)
    except ValueError as e:
        raise EvaluationArgumentError("threshold", str(e).removeprefix("threshold ")) from None
    try:
        check_device(device)
    except ValueError as e:
        raise EvaluationArgumentError("device", str(e).removeprefix("device ")) from None


def _fit_prior(train_samples: list) -> CentrePrior | None:
    try:
        return CentrePrior.fit(train_samples)
    except ValueError as e:
        logger.warning("No centre-prior baseline: %s", e)
        return None


def _resolve_device(device: str, peers: Any) -> Any:
    """This process's device: the launcher's GPU in a multi-GPU run, else ``device``."""
    from emosem.inference.predictor import resolve_device

    if peers.num_processes > 1 and device in ("auto", "cuda") and peers.device.type == "cuda":
        return peers.device
    return resolve_device(device)


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _settings(explain: bool, meteor: bool, batch_emotions: bool, threshold: float,
              max_new_tokens: int, num_beams: int, seed: int, max_samples: int | None) -> dict:
    return {
        "explain": explain,
        "meteor": meteor,
        "batch_emotions": batch_emotions,
        "threshold": threshold,
        "max_new_tokens": max_new_tokens,
        "num_beams": num_beams,
        "seed": seed,
        "max_samples": max_samples,
        "decoding": "greedy" if num_beams == 1 else f"beam search, {num_beams} beams",
    }


def _sections(report: dict, run: PredictionRun, edata: EvaluationData, prior: Any,
              feats: dict, clf_args: tuple, settings: dict, retrieval_k: int,
              fit_s: float) -> tuple[Any, list[dict]]:
    """Fill the report's sections and baselines from the rows; returns the segmentation result
    (for the figures) and the ``paintings.jsonl`` records."""
    seg = segmentation(run.rows)
    report["segmentation"] = seg.model
    baselines, beats = mask_baselines(seg, prior)
    records: list[dict] = []
    report["explanations"] = None
    if settings["explain"]:
        clf, clf_info = load_or_train_classifier(*clf_args)
        refs = {r.id: edata.sample(r.key, r.emotion).utterances for r in run.rows if r.has_text}
        ex = explanations_section(run.rows, run.paintings, edata.data, refs, edata.train_samples,
                                  feats, clf, clf_info, meteor=settings["meteor"],
                                  retrieval_k=retrieval_k, fit_s=fit_s)
        report["explanations"] = ex.section
        baselines.update(ex.baselines)
        beats.update(ex.beats)
        records = ex.paintings
    er = emotion_recognition(run.paintings, edata.data, edata.fit_data, edata.train_samples)
    report["emotion_recognition"] = er.section
    baselines.update(er.baselines)
    beats.update(er.beats)
    report["baselines"] = {
        **{n: baselines[n] for n in BASELINE_ORDER if n in baselines},
        "beats_baselines": {n: beats[n] for n in BASELINE_ORDER if n in beats},
    }
    return seg, records


def _write_files(out: Path, report: dict, run: PredictionRun, seg: Any, records: list[dict],
                 predictor: Any, edata: EvaluationData, num_overlays: int) -> list[Path]:
    files = [write_samples(out / "samples.jsonl", run.rows)]
    if records:
        files.append(write_jsonl(out / "paintings.jsonl", records))
    try:
        files += write_figures(out, report["split"], seg, run.rows, predictor, edata.data,
                               edata.sample, num_overlays, report["settings"]["threshold"])
    except Exception as e:  # noqa: BLE001 - a figure must never lose the numbers
        logger.warning("Could not draw the figures: %s: %s", type(e).__name__, e)
    return files


def _finish(report: dict, timing: dict, out: Path, run: PredictionRun, seg: Any,
            records: list[dict], predictor: Any, edata: EvaluationData, num_overlays: int,
            machine: dict) -> dict:
    """Write the files and the figures, add files / seconds / timing / machine to the report,
    write ``report.json`` and ``report.md``; the JSON-ready report."""
    t_files = time.perf_counter()
    files = _write_files(out, report, run, seg, records, predictor, edata, num_overlays)
    report["files"] = sorted(str(Path(f).name) for f in files) + ["report.json", "report.md"]
    report["seconds"] = round(time.perf_counter() - timing["t0"], 3)
    report["timing"] = {
        "load_model_s": round(timing["load_model_s"], 3),
        "predict_s": round(run.predict_s, 3),
        "metrics_s": round(timing["metrics_s"], 3),
        "figures_s": round(time.perf_counter() - t_files, 3),
        "per_painting_s": round(run.predict_s / max(1, run.n_mine), 4),
    }
    report["machine"] = machine
    report = jsonable(report)
    write_report_json(out / "report.json", report)
    (out / "report.md").write_text(markdown_report(report), encoding="utf-8")
    logger.info("Wrote %s and %s", out / "report.json", out / "report.md")
    return report


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
    cache_dir: str | Path | None = None,
    lm_runtime: str = "auto",
    word_grounding: bool = True,
    skip_failures: bool = False,
) -> dict:
    """Evaluate ``checkpoint`` on ``split`` of ``data_root`` against the baselines.

    Args:
        checkpoint: an EmoSEM checkpoint folder (default: the bundled ``checkpoints/emosem-tiny``).
            It is only read.
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
            trains one on the train split (cached, see ``cache_dir``).
        seed: seeds torch/numpy/random before predicting and draws the ``max_samples`` subset.
        split_seed: overrides the data config's painting-split seed.
        fit_data: data whose TRAIN split fits the baselines and the classifier (default: see
            the module doc).
        threshold: mask probability threshold, 0 < t < 1 (``None``: the checkpoint's
            ``mask_threshold``).
        max_new_tokens: explanation length limit.
        num_beams: beam width of the (deterministic) decoding; 1 is greedy.
        retrieval_k: how many nearest train paintings the retrieval baseline pools.
        num_overlays: how many best and worst overlays to draw.
        progress: show a progress bar (default: when stderr is a terminal).
        cache_dir: the user cache for the classifier (default ``$EMOSEM_CACHE_DIR``, else
            ``$XDG_CACHE_HOME/emosem``, else ``~/.cache/emosem``).
        lm_runtime: what decodes the explanations (:mod:`emosem.inference.fast_lm`; "auto":
            ONNX Runtime where its self-check passes, else torch).
        word_grounding: explanations cannot use colour or position words the region's cues
            contradict (:mod:`emosem.inference.grounding`); ``False`` measures the free decoder.
        skip_failures: a painting whose scoring raises is listed in ``failed`` (``kind``
            ``error``) and the others are scored; by default such an error stops the evaluation
            (:class:`~emosem.evaluation.predict.ScoringError`). An unreadable painting is always
            listed (``kind`` ``unreadable``) and skipped.

    Returns:
        The report (also written to ``out_dir/report.json``) on the main process; ``{}`` on
        the other processes of a launched run.

    Raises:
        EvaluationArgumentError: an argument out of range (before anything is loaded).
    """
    from emosem.inference.predictor import EmoSEMPredictor
    from emosem.modeling.emosem import EmoSEM
    from emosem.paths import default_checkpoint

    t0 = time.perf_counter()
    check_arguments(split, max_samples, num_beams, retrieval_k, threshold, device)
    ckpt = Path(checkpoint) if checkpoint else default_checkpoint()
    EmoSEM.read_config(ckpt)  # a wrong folder fails now, not after loading the data
    out = Path(out_dir) if out_dir else default_out_dir(ckpt, split)
    peers = make_peers(device)
    main = peers.is_main_process
    edata = load_evaluation_data(data_root, ckpt, split, split_seed=split_seed, fit_data=fit_data,
                                 max_samples=max_samples, seed=seed, warn=main)
    prior = _fit_prior(edata.train_samples)

    dev = _resolve_device(device, peers)
    t_load = time.perf_counter()
    predictor = EmoSEMPredictor.from_pretrained(ckpt, device=str(dev), explain=explain,
                                                lm_runtime=lm_runtime)
    load_s = time.perf_counter() - t_load
    threshold = predictor.threshold(threshold)
    _seed_everything(seed)
    opts = PredictOptions(explain=explain, threshold=float(threshold),
                          max_new_tokens=int(max_new_tokens), num_beams=int(num_beams),
                          seed=int(seed), batch_emotions=batch_emotions,
                          word_grounding=bool(word_grounding))
    show = (sys.stderr.isatty() if progress is None else progress) and main
    run = run_predictions(PaintingScorer(predictor, edata.data, prior, opts), edata.by_key, peers,
                          f"evaluate {split}", show, skip_failures=skip_failures)
    t_fit = time.perf_counter()
    feats = train_features(predictor, edata.train_samples, peers, show) if explain else {}
    fit_s = time.perf_counter() - t_fit
    if not main:  # rank 0 scores the gathered rows; no collective call follows
        return {}

    t_metrics = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "checkpoint": str(ckpt), "out": str(out), "data": edata.data_section(), "split": split,
        "n_samples": len(run.rows), "n_paintings": len({r.key for r in run.rows}),
        "n_failed": len(run.failures), "failed": run.failures,
        "settings": {**_settings(explain, meteor, batch_emotions, threshold, max_new_tokens,
                                 num_beams, seed, max_samples),
                     "lm_runtime": predictor.lm_runtime,
                     "word_grounding": bool(word_grounding),
                     "skip_failures": bool(skip_failures)},
        "fit": edata.fit_section(),
    }
    seg, records = _sections(report, run, edata, prior, feats,
                             (classifier, ckpt, out, edata.train_samples, cache_dir),
                             report["settings"], retrieval_k, fit_s)
    metrics_s = time.perf_counter() - t_metrics

    timing = {"t0": t0, "load_model_s": load_s, "metrics_s": metrics_s}
    report = _finish(report, timing, out, run, seg, records, predictor, edata, num_overlays,
                     {**machine_info(dev), "num_processes": peers.num_processes})
    return report
