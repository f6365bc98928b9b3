#!/usr/bin/env python
"""Search a collection by its emotion stimuli: python tools/search.py build|query|evaluate|speed ..."""

import sys

import _bootstrap  # noqa: F401

from emosem.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["search", *sys.argv[1:]]))
