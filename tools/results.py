#!/usr/bin/env python
"""Keep the README's numbers traceable: python tools/results.py record NAME | docs [--check] | list"""

import _bootstrap  # noqa: F401

from emosem.results.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
