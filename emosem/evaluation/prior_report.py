"""Measure the emotion priors (:data:`~emosem.inference.affect_prior.PRIOR_METHODS`) on a folder of
real paintings against their plausible emotions (``visible.json``): top-1 and top-3 plausible,
per painting, and seconds per painting (issue 27, item 1).

    python tools/measure_affect_prior.py ../shared/art --out docs/results/issue27_priors.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emosem.evaluation.real_art import load_truth
from emosem.inference.affect_prior import PRIOR_METHODS, painting_prior
from emosem.machine import git_commit

logger = logging.getLogger(__name__)


@dataclass
class PaintingScore:
    image: str
    top3: list[str]
    top1_plausible: bool
    top3_plausible: bool


@dataclass
class MethodReport:
    method: str
    top1_plausible: int
    top3_plausible: int
    paintings: int
    seconds_per_painting: float
    cpu_seconds_per_painting: float
    per_painting: list[PaintingScore]


def score_method(method: str, images: dict[str, np.ndarray], plausible: dict[str, frozenset[str]]) -> MethodReport:
    """One method's prior on every painting, ranked and checked against its plausible emotions."""
    if images:  # a first call loads what the method needs (a language model, its reference scores)
        painting_prior(next(iter(images.values()))[:8, :8], method)
    rows, start, cpu = [], time.perf_counter(), time.process_time()
    for name, image in images.items():
        dist = painting_prior(image, method)
        ranking = sorted(dist, key=dist.get, reverse=True)
        rows.append(PaintingScore(name, ranking[:3], ranking[0] in plausible[name],
                                  bool(set(ranking[:3]) & plausible[name])))
    n = max(len(images), 1)
    seconds, cpu = (time.perf_counter() - start) / n, (time.process_time() - cpu) / n
    return MethodReport(method, sum(r.top1_plausible for r in rows), sum(r.top3_plausible for r in rows),
                        len(rows), round(seconds, 3), round(cpu, 3), rows)


@dataclass
class BlendCheck:
    """How far a prior can move the emotion accuracy of an in-domain set when blended: only
    paintings whose in-domain score gives the prior weight can change their top emotion."""

    method: str
    paintings: int
    scored: int  # paintings with an in-domain score
    with_prior_weight: int  # prior weight > 0
    top1_changed: int  # blended top-1 differs from the head's
    max_accuracy_change: float  # top1_changed / paintings: a bound on |Δ emotion accuracy|
    changed: list[str]


def blend_check(checkpoint: Path | None, images_dir: Path, methods: list[str]) -> list[BlendCheck]:
    """Run the checkpoint's encoder (domain score) and emotion head once on every painting under
    ``images_dir``, and each method's prior where its weight is > 0 (:func:`blend_distribution`)."""
    from emosem.inference.affect_prior import blend_distribution, prior_weight
    from emosem.inference.predictor import EmoSEMPredictor

    predictor = EmoSEMPredictor.from_pretrained(checkpoint, device="cpu", explain=False)
    files = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    scored = weighted = 0
    changed: dict[str, list[str]] = {m: [] for m in methods}
    for path in files:
        state = predictor.encode(path)
        score = predictor.in_domain_score(state)
        scored += score is not None
        if prior_weight(score) == 0.0:
            continue
        weighted += 1
        head = predictor.predict_distribution(state)
        for method in methods:
            blended, _ = blend_distribution(head, painting_prior(state.image, method), score)
            if max(blended, key=blended.get) != max(head, key=head.get):
                changed[method].append(str(path.relative_to(images_dir)))
    n = max(len(files), 1)
    return [BlendCheck(m, len(files), scored, weighted, len(c), round(len(c) / n, 4), c)
            for m, c in changed.items()]


def load_paintings(folder: Path, names: list[str]) -> dict[str, np.ndarray]:
    from PIL import Image

    return {n: np.asarray(Image.open(folder / n).convert("RGB")) for n in names if (folder / n).is_file()}


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paintings", type=Path, help="folder of real paintings holding visible.json")
    p.add_argument("--visible", type=Path, help="list of plausible emotions (default: PAINTINGS/visible.json)")
    p.add_argument("--methods", nargs="+", default=list(PRIOR_METHODS), choices=list(PRIOR_METHODS))
    p.add_argument("--out", type=Path, help="JSON report (default: print)")
    p.add_argument("--blend-check", type=Path, metavar="IMAGES",
                   help="also bound the change of emotion accuracy on an in-domain image folder "
                        "(e.g. data/synthetic_eval/images) when each method's prior is blended")
    p.add_argument("--checkpoint", type=Path, help="checkpoint for --blend-check (default: the bundled one)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    commit = git_commit(Path(__file__).resolve().parents[2])  # the tree the run starts from
    truth = load_truth(args.visible or args.paintings / "visible.json")
    images = load_paintings(args.paintings, sorted(truth))
    plausible = {n: truth[n].plausible for n in images}
    reports = []
    for method in args.methods:
        report = score_method(method, images, plausible)
        logger.info("%s: top-1 plausible %d/%d, top-3 %d/%d, %.2f s (CPU %.2f s) per painting", method,
                    report.top1_plausible, report.paintings, report.top3_plausible, report.paintings,
                    report.seconds_per_painting, report.cpu_seconds_per_painting)
        reports.append(asdict(report))
    if args.blend_check:
        checks = [asdict(c) for c in blend_check(args.checkpoint, args.blend_check, args.methods)]
        logger.info("blend check: %s", [(c["method"], c["with_prior_weight"], c["top1_changed"]) for c in checks])
    out = {"commit": commit, "paintings": str(args.paintings),
           "torch_threads": _torch_threads(), "load_average": os.getloadavg(), "methods": reports}
    if args.blend_check:
        out["blend_check"] = checks
    text = json.dumps(out, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0
