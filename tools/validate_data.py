#!/usr/bin/env python
"""Check an ArtEmis-style data folder and print what would be loaded and what would be skipped.

    python tools/validate_data.py data/synthetic [--csv FILE] [--masks FILE|none] [--image-root DIR]
                                                  [--decode] [--json report.json]

Exit status: 0 if the set is usable, 1 if not (no usable samples, a missing required column, an
unreadable CSV or masks file), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import _bootstrap  # noqa: F401,E402  (import emosem from a checkout without pip install -e .)

from emosem.data.artemis import ArtEmisFormatError, DataReport, load_artemis  # noqa: E402
from emosem.data.layout import CSV_NAME, IMAGES_DIR, MASKS_NAME  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Validate an ArtEmis-style data folder (CSV + COCO masks + images).")
    p.add_argument("data_dir", help="the data folder")
    p.add_argument("--csv", default=CSV_NAME,
                   help="CSV file, relative to DATA_DIR or absolute; 'none' for a mask-only set")
    p.add_argument("--masks", default=MASKS_NAME,
                   help="COCO masks file, relative to DATA_DIR or absolute; 'none' for text only")
    p.add_argument("--image-root", default=IMAGES_DIR, help="image folder, relative to DATA_DIR or absolute")
    p.add_argument("--decode", action="store_true",
                   help="fully decode every image (finds truncated files; slower than the header check)")
    p.add_argument("--json", metavar="OUT", help="also write the report as JSON to OUT")
    p.add_argument("-v", "--verbose", action="store_true", help="log loader details")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")

    def none_or(v: str) -> str | None:
        return None if v.lower() in ("none", "null", "") else v

    report: DataReport | None = None
    error: str | None = None
    try:
        data = load_artemis(args.data_dir, csv=none_or(args.csv), image_root=args.image_root,
                            masks=none_or(args.masks), check_images="full" if args.decode else True)
        report = data.report
    except ArtEmisFormatError as e:
        error, report = str(e), e.report
    except (FileNotFoundError, NotADirectoryError, PermissionError) as e:
        error = str(e)

    if report is not None:
        print(report.summary())
    if error:
        print(f"ERROR: {error}", file=sys.stderr)
    if args.json:
        out = report.to_dict() if report is not None else {"usable": False}
        if error:
            out["error"] = error
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    usable = report is not None and report.usable and error is None
    if not usable and not error:
        print("ERROR: no usable samples (see the skip reasons above)", file=sys.stderr)
    return 0 if usable else 1


if __name__ == "__main__":
    raise SystemExit(main())
