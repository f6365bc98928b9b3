#!/usr/bin/env python
"""Score a checkpoint against baselines: python tools/evaluate.py --data data/synthetic --split test"""

import sys

import _bootstrap  # noqa: F401

from emosem.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["evaluate", *sys.argv[1:]]))
