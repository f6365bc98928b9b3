#!/usr/bin/env python
"""Measure the emotion priors on real paintings: python tools/measure_affect_prior.py ../shared/art"""

import sys

import _bootstrap  # noqa: F401

from emosem.evaluation.prior_report import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
