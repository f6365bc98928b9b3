"""Make ``import emosem`` work when a tool runs from a checkout without ``pip install -e .``."""

import sys
from pathlib import Path

try:
    import emosem  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
