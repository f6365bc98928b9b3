#!/usr/bin/env python
"""Calibrate the licence threshold of ImageNet concept words on synthetic paintings' regions.

    python tools/calibrate_concepts.py --data data/synthetic --paintings 300 --rate 0.01

The synthetic paintings show none of the things in ``emosem/inference/concept_words.json``, so
any word licensed on one of their stimulus regions is false: the threshold is the score that only
``--rate`` of them reach (see ``emosem.inference.concepts``). Writes
``emosem/inference/concept_licence.json`` (``--out`` elsewhere).
"""

import argparse
import json
import random
import sys
from pathlib import Path

import _bootstrap  # noqa: F401

from emosem.inference.concepts import DEFAULT_RATE, LICENCE_FILE, calibrate_licence
from emosem.inference.domain import painting_items


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/synthetic"))
    p.add_argument("--split", default="train")
    p.add_argument("--paintings", type=int, default=300)
    p.add_argument("--rate", type=float, default=DEFAULT_RATE, help="false-licence rate to allow")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=LICENCE_FILE)
    args = p.parse_args(argv)
    from emosem.config import DataConfig
    from emosem.data.splits import build_splits

    try:
        splits = build_splits(DataConfig(root=str(args.data)), check_images=True)
        samples = [s for s in splits.get(args.split).samples if s.has_mask]
        keys = sorted({s.key for s in samples})
        random.Random(args.seed).shuffle(keys)
        chosen = set(keys[: args.paintings])
        result = calibrate_licence(painting_items(splits.data, [s for s in samples if s.key in chosen]),
                                   args.rate, progress=sys.stderr.isatty(), total=len(chosen))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result.update(data=str(args.data), split=args.split, paintings=len(chosen), seed=args.seed)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
