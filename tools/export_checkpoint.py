#!/usr/bin/env python
"""Export a trained run's checkpoint (e.g. runs/x/best) as a small, self-describing folder.

    python tools/export_checkpoint.py runs/emosem-tiny-stage2/best checkpoints/emosem-tiny \
        --note "trained on synthetic paintings: make train-default"

Loads with ``EmoSEM.from_pretrained`` (so only a valid checkpoint exports) and re-saves the trained
parts in float16 with the LoRA adapter; the base LM and SAM weights stay references. The
evaluation's text-emotion classifier cached in ``DST/emotion_classifier/`` (it depends on the
training data, not on the model) is kept across re-exports.
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
from emosem.modeling.emosem import EmoSEM


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--note", default=None, help="provenance note stored in config.json")
    p.add_argument("--metrics", type=Path, default=None, help="a report.json to store beside it")
    args = p.parse_args(argv)
    model = EmoSEM.from_pretrained(args.src)
    extra = {k: v for k, v in model.metadata.items() if k in ("step", "val")}
    if args.note:
        extra["note"] = args.note
    classifier = args.dst / CLASSIFIER_DIR
    with tempfile.TemporaryDirectory() as tmp:
        kept = Path(tmp) / CLASSIFIER_DIR
        if classifier.is_dir():
            shutil.copytree(classifier, kept)
        model.save_pretrained(args.dst, dtype=getattr(torch, args.dtype), extra=extra)
        if kept.is_dir() and not classifier.exists():
            shutil.copytree(kept, classifier)
    if args.metrics:
        (args.dst / "eval_report.json").write_text(args.metrics.read_text())
    size = sum(f.stat().st_size for f in args.dst.rglob("*") if f.is_file()) / 2**20
    print(json.dumps({"exported": str(args.dst), "size_mb": round(size, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
