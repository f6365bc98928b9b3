#!/usr/bin/env python
"""Segment and explain emotion stimuli: python tools/infer.py painting.jpg --emotion awe"""

import sys

import _bootstrap  # noqa: F401

from emosem.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["infer", *sys.argv[1:]]))
