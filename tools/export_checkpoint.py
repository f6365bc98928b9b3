#!/usr/bin/env python
"""Export a trained run's checkpoint (e.g. runs/x/best) as a small, self-describing folder.

    python tools/export_checkpoint.py runs/emosem-tiny-stage2b/best checkpoints/emosem-tiny \
        --calibrate-on data/synthetic --note "trained on synthetic paintings: make train-default"

Loads with ``EmoSEM.from_pretrained`` (so only a valid checkpoint exports) and re-saves the trained
parts in float16 with the LoRA adapter; the base LM and SAM weights stay references. The
evaluation's text-emotion classifier cached in ``DST/emotion_classifier/`` (it depends on the
training data, not on the model) is kept across re-exports. ``--calibrate-on DATA`` chooses
the mask threshold on DATA's val split (see ``emosem.evaluation.calibrate``) and stores it as
``model.mask_threshold``, and the tag-head probability at which a motif may name a region as
``model.motif_min_prob``. The in-domain statistics (``domain/``, see ``tools/fit_domain.py``) of
SRC, or else of the DST being replaced, are carried over when they were fitted for the same frozen
encoder; ``--fit-domain DATA`` fits them afresh on DATA's train split.
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import _bootstrap  # noqa: F401
import torch

from emosem.evaluation.evaluate import CLASSIFIER_DIR
from emosem.inference.domain import DOMAIN_DIR, META_NAME, fit_checkpoint_domain, statistics_fit
from emosem.modeling.emosem import EmoSEM
from emosem.modeling.errors import CheckpointError


def _val_split(model: EmoSEM, src: Path, data_root: Path, split: str):
    """(a predictor over ``model`` that leaves it saveable, the data, ``split``'s samples)."""
    from emosem.data.splits import build_splits
    from emosem.evaluation.evaluate import resolve_data_config
    from emosem.inference.predictor import EmoSEMPredictor

    cfg, _ = resolve_data_config(data_root, src)
    splits = build_splits(cfg, check_images=True)
    # The model is saved afterwards: keep its LoRA and weights as they are.
    predictor = EmoSEMPredictor(model, "cpu", merge_lora=False, pack_weights=False)
    return predictor, splits.data, list(splits.get(split).samples)


def calibrate(model: EmoSEM, src: Path, data_root: Path, split: str) -> dict:
    """The val-split threshold sweep of ``model`` (see ``emosem.evaluation.calibrate``)."""
    from emosem.evaluation.calibrate import threshold_sweep

    sweep = threshold_sweep(*_val_split(model, src, data_root, split), progress=True)
    sweep.update(data=str(data_root), split=split)
    at = dict(zip(sweep["thresholds"], sweep["gIoU"]))
    print(f"mask threshold {sweep['best']:.2f}: {split} gIoU {at[sweep['best']]:.4f} "
          f"(0.50: {at.get(0.5, float('nan')):.4f}, n = {sweep['n']})", file=sys.stderr)
    return sweep


def calibrate_motifs(model: EmoSEM, src: Path, data_root: Path, split: str) -> dict:
    """The val-split motif licence sweep of ``model`` (see ``emosem.evaluation.calibrate``)."""
    from emosem.evaluation.calibrate import motif_licence_sweep

    sweep = motif_licence_sweep(*_val_split(model, src, data_root, split), progress=True)
    sweep.update(data=str(data_root), split=split)
    i = sweep["thresholds"].index(sweep["best"])
    print(f"motif licence {sweep['best']:.2f}: {split} precision {sweep['precision'][i]:.3f}, "
          f"coverage {sweep['coverage'][i]:.3f} (n = {sweep['n']})", file=sys.stderr)
    return sweep


def carried_domain(model: EmoSEM, folders: list[Path]) -> Path | None:
    """The first ``domain/`` of ``folders`` fitted for ``model``'s frozen encoder (others are
    reported and left behind)."""
    for folder in folders:
        meta_file = folder / DOMAIN_DIR / META_NAME
        if not meta_file.is_file():
            continue
        if statistics_fit(json.loads(meta_file.read_text(encoding="utf-8")), model.metadata):
            return folder / DOMAIN_DIR
        print(f"{folder / DOMAIN_DIR} was fitted for another image encoder: not carried over "
              "(tools/fit_domain.py fits it again)", file=sys.stderr)
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--note", default=None, help="provenance note stored in config.json")
    p.add_argument("--metrics", type=Path, default=None, help="a report.json to store beside it")
    p.add_argument("--calibrate-on", type=Path, default=None, metavar="DATA",
                   help="choose the mask threshold on the val split of this data folder")
    p.add_argument("--split", default="val", help="the split --calibrate-on uses (default: val)")
    p.add_argument("--fit-domain", type=Path, default=None, metavar="DATA",
                   help="fit the in-domain statistics on this data folder's train split")
    args = p.parse_args(argv)
    try:
        model = EmoSEM.from_pretrained(args.src)
    except CheckpointError as e:  # damaged, edited or not a checkpoint: one line, exit 1
        print(f"error: {e}", file=sys.stderr)
        return 1
    extra = {k: v for k, v in model.metadata.items() if k in ("step", "val")}
    if args.calibrate_on is not None:
        extra["threshold_calibration"] = calibrate(model, args.src, args.calibrate_on, args.split)
        model.config.mask_threshold = extra["threshold_calibration"]["best"]
        if model.tag_head is not None:
            extra["motif_licence"] = calibrate_motifs(model, args.src, args.calibrate_on, args.split)
            model.config.motif_min_prob = extra["motif_licence"]["best"]
    if args.note:
        extra["note"] = args.note
    classifier = args.dst / CLASSIFIER_DIR
    domain = None if args.fit_domain else carried_domain(model, [args.src, args.dst])
    with tempfile.TemporaryDirectory() as tmp:
        kept = Path(tmp) / CLASSIFIER_DIR
        if classifier.is_dir():
            shutil.copytree(classifier, kept)
        if domain is not None:
            domain = Path(shutil.copytree(domain, Path(tmp) / DOMAIN_DIR))
        model.save_pretrained(args.dst, dtype=getattr(torch, args.dtype), extra=extra)
        if kept.is_dir() and not classifier.exists():
            shutil.copytree(kept, classifier)
        if domain is not None:
            shutil.copytree(domain, args.dst / DOMAIN_DIR)
    if args.fit_domain:
        fit_checkpoint_domain(args.dst, args.fit_domain)
    if args.metrics:
        (args.dst / "eval_report.json").write_text(args.metrics.read_text())
    size = sum(f.stat().st_size for f in args.dst.rglob("*") if f.is_file()) / 2**20
    print(json.dumps({"exported": str(args.dst), "size_mb": round(size, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
