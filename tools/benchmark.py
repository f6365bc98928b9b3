#!/usr/bin/env python
"""Measure latency, throughput, memory and the speed ratios: python tools/benchmark.py --quick"""

import sys

import _bootstrap  # noqa: F401

from emosem.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["benchmark", *sys.argv[1:]]))
