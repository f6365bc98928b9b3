#!/usr/bin/env python
"""Fit a checkpoint's in-domain statistics on its own training split (``CHECKPOINT/domain/``).

    python tools/fit_domain.py checkpoints/emosem-tiny --data data/synthetic

The frozen encoder's pooled features of ``--fit-images`` training paintings fit the Gaussians and
``--held-out`` others calibrate the 0–1 score (see ``emosem.inference.domain``); about two
minutes for 1,400 paintings on one CPU thread. ``tools/export_checkpoint.py`` carries them over.

    python tools/fit_domain.py checkpoints/emosem-tiny --check data/synthetic_eval ../shared/art

``--check SYNTHETIC REAL`` only measures the stored statistics: AUROC and margin between the
paintings of a held-out synthetic data folder and a folder of real paintings.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

import _bootstrap  # noqa: F401

from emosem.inference.domain import DOMAIN_DIR, fit_checkpoint_domain
from emosem.modeling.errors import CheckpointError


def check(checkpoint: Path, synthetic: Path, real: Path) -> int:
    """Print :func:`~emosem.inference.domain.separation` of the two folders' paintings."""
    from emosem.config import DataConfig
    from emosem.data.artemis import load_artemis
    from emosem.data.image_io import IMAGE_EXTENSIONS, load_image
    from emosem.inference.domain import (
        DomainFeaturizer,
        collect_features,
        load_domain,
        painting_items,
        separation,
    )
    from emosem.modeling.emosem import EmoSEM

    try:
        domain = load_domain(checkpoint)
        if domain is None:
            raise CheckpointError(f"{checkpoint} has no in-domain statistics: run tools/fit_domain.py")
        model = EmoSEM.from_pretrained(checkpoint, load_lm=False)
        cfg = DataConfig(root=str(synthetic))
        data = load_artemis(cfg.root, csv=cfg.csv, image_root=cfg.image_root, masks=cfg.masks)
        paintings = sorted(p for p in real.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    featurizer = DomainFeaturizer(model.sam.image_encoder, model.image_size)
    inside = collect_features(featurizer, painting_items(data, data.samples))
    outside = collect_features(featurizer, ((load_image(p), []) for p in paintings))
    print(json.dumps({"checkpoint": str(checkpoint), "synthetic": str(synthetic), "real": str(real),
                      **separation(domain, inside, outside)}))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", type=Path, default=None,
                   help="the data folder the checkpoint trained on (default: its run's data)")
    p.add_argument("--fit-images", type=int, default=1000)
    p.add_argument("--held-out", type=int, default=400, help="training paintings that calibrate the score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", nargs=2, type=Path, metavar=("SYNTHETIC", "REAL"), default=None,
                   help="measure the stored statistics on a synthetic data folder and a real-art folder")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.check:
        return check(args.checkpoint, *args.check)
    try:
        domain = fit_checkpoint_domain(args.checkpoint, args.data, args.fit_images, args.held_out,
                                       args.seed, progress=sys.stderr.isatty())
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in (args.checkpoint / DOMAIN_DIR).iterdir()) / 2**10
    print(json.dumps({"domain": str(args.checkpoint / DOMAIN_DIR), "size_kb": round(size),
                      **{k: domain.meta[k] for k in ("fit", "held_out")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
