#!/usr/bin/env python
"""Generate the synthetic ArtEmis-style data set (images, CSV, COCO stimulus masks).

    python tools/make_synthetic_artemis.py --out data/synthetic --paintings 1000 --size 256 --seed 0
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time

import _bootstrap  # noqa: F401,E402  (import emosem from a checkout without pip install -e .)

from emosem.data.synthetic import generate_synthetic_artemis, make_contact_sheet  # noqa: E402

logger = logging.getLogger("make_synthetic_artemis")


def _peak_rss_mb(who: int) -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    v = resource.getrusage(who).ru_maxrss
    return v / (1024 * 1024) if sys.platform == "darwin" else v / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--out", required=True, help="output folder (created; existing files are overwritten)")
    p.add_argument("--paintings", type=int, default=1000, help="number of paintings (default 1000)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed -> identical files)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default min(2, CPU count)); the output does not depend on it")
    p.add_argument("--quality", type=int, default=92, help="JPEG quality (default 92)")
    p.add_argument("--contact-sheet", metavar="PNG",
                   help="also save a preview of 12 paintings with their masks outlined")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.paintings < 1:
        p.error("--paintings must be at least 1")
    if args.size < 64:
        p.error("--size must be at least 64")
    workers = args.workers if args.workers is not None else min(2, os.cpu_count() or 1)
    t0 = time.perf_counter()
    summary = generate_synthetic_artemis(args.out, args.paintings, size=args.size, seed=args.seed,
                                         workers=workers, jpeg_quality=args.quality)
    dt = time.perf_counter() - t0
    logger.info(
        "Done: %d paintings, %d CSV rows, %d masks in %s | %.1f s wall (%.1f ms/painting, %d workers; "
        "%.1f CPU-s in workers) | peak memory: main %.0f MB, largest worker %.0f MB",
        summary["paintings"], summary["rows"], summary["annotations"], summary["out"], dt,
        1000 * dt / summary["paintings"], summary["workers"], summary["cpu_seconds"],
        _peak_rss_mb(resource.RUSAGE_SELF), summary["peak_worker_rss_mb"],
    )
    if args.contact_sheet:
        logger.info("Contact sheet: %s", make_contact_sheet(args.out, args.contact_sheet))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
