"""Running ``tools/infer.py`` in a subprocess the way the collection and infer tests do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "demo" / "assets"
INFER = str(REPO / "tools" / "infer.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_infer(*args, launch=(sys.executable,), timeout: int = 600) -> subprocess.CompletedProcess:
    """``tools/infer.py ARGS`` (under ``launch``, e.g. ``accelerate launch ...``) from the repository
    root, one thread, output captured."""
    return subprocess.run([*launch, INFER, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=REPO)
