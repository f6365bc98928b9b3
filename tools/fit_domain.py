#!/usr/bin/env python
"""Fit a checkpoint's in-domain statistics on its own training split (``CHECKPOINT/domain/``).

    python tools/fit_domain.py checkpoints/emosem-tiny --data data/synthetic

The frozen encoder's pooled features of ``--fit-images`` training paintings fit the Gaussians and
``--held-out`` others calibrate the 0–1 score (see ``emosem.inference.domain``); about two
minutes for 1,400 paintings on one CPU thread. ``tools/export_checkpoint.py`` carries them over.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

import _bootstrap  # noqa: F401

from emosem.inference.domain import DOMAIN_DIR, fit_checkpoint_domain
from emosem.modeling.errors import CheckpointError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", type=Path, default=None,
                   help="the data folder the checkpoint trained on (default: its run's data)")
    p.add_argument("--fit-images", type=int, default=1000)
    p.add_argument("--held-out", type=int, default=400, help="training paintings that calibrate the score")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
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
