#!/usr/bin/env python
"""Calibrate the licence thresholds of ImageNet concept words on synthetic paintings' regions.

    python tools/calibrate_concepts.py --data data/synthetic --paintings 600 \
        --check data/synthetic_eval

The synthetic paintings show none of the things in ``emosem/inference/concept_words.json``, so
any word licensed on one of their stimulus regions is false: each word's threshold is the highest
score it reached on the training split's regions, and at least the ``--floor-quantile`` of their
best scores (see ``emosem.inference.concepts``). ``--check`` measures the false-licence rate that
leaves on another synthetic set's regions. Writes ``emosem/inference/concept_licence.json``
(``--out`` elsewhere).
"""

import argparse
import json
import random
import sys
from pathlib import Path

import _bootstrap  # noqa: F401

from emosem.inference.concepts import (
    DEFAULT_FLOOR_QUANTILE,
    LICENCE_FILE,
    calibrate_licence,
    false_licence_rate,
    thresholds_tensor,
    word_score_matrix,
)
from emosem.inference.domain import painting_items


def region_scores(data_root: Path, split: str, paintings: int | None, seed: int):
    """Word scores [R, W] of the stimulus regions of up to ``paintings`` paintings (shuffled)."""
    from emosem.config import DataConfig
    from emosem.data.splits import build_splits

    splits = build_splits(DataConfig(root=str(data_root)), check_images=True)
    samples = splits.data.samples if split == "all" else splits.get(split).samples
    samples = [s for s in samples if s.has_mask]
    keys = sorted({s.key for s in samples})
    random.Random(seed).shuffle(keys)
    chosen = set(keys[:paintings] if paintings else keys)
    items = painting_items(splits.data, [s for s in samples if s.key in chosen])
    return word_score_matrix(items, progress=sys.stderr.isatty(), total=len(chosen)), len(chosen)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/synthetic"))
    p.add_argument("--split", default="train")
    p.add_argument("--paintings", type=int, default=600)
    p.add_argument("--floor-quantile", type=float, default=DEFAULT_FLOOR_QUANTILE)
    p.add_argument("--check", type=Path, default=None, metavar="DATA",
                   help="a held-out synthetic set: its regions' false-licence rate (all its paintings)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=LICENCE_FILE)
    args = p.parse_args(argv)
    try:
        scores, n = region_scores(args.data, args.split, args.paintings, args.seed)
        result = calibrate_licence(scores, args.floor_quantile)
        result.update(data=str(args.data), split=args.split, paintings=n, seed=args.seed)
        if args.check is not None:
            held, m = region_scores(args.check, "all", None, args.seed)
            rate = false_licence_rate(held, thresholds_tensor(result))
            result["check"] = {"data": str(args.check), "paintings": m, "regions": int(held.shape[0]),
                               "false_licence_rate": round(rate, 4)}
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "word_thresholds"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
