#!/usr/bin/env python
"""Check a checkpoint on real paintings: python tools/real_art_report.py ../shared/art"""

import sys

import _bootstrap  # noqa: F401

from emosem.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["real-art", *sys.argv[1:]]))
