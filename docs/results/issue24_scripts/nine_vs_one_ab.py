"""predict(explain=False) for one emotion and for all nine on one painting, out of domain (the
region rule applies), cached embedding, median of 20 calls each; run it with PYTHONPATH set to a
checkout of each version to compare, alternating, e.g.:

    for i in 1 2; do for v in /tmp/old /work/main; do
      (cd $v && PYTHONPATH=$v /work/main/.venv/bin/python /work/main/docs/results/issue24_scripts/nine_vs_one_ab.py)
    done; done
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.inference.predictor import EmoSEMPredictor

image = sys.argv[1] if len(sys.argv) > 1 else "demo/assets/starry_night.jpg"
p = EmoSEMPredictor.from_pretrained("checkpoints/emosem-tiny", explain=False)
state = p.encode(image)


def median_ms(emotions: list[str], k: int = 20) -> float:
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        p.predict(emotions, explain=False, state=state, in_domain=0.0)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


with torch.no_grad():
    median_ms(list(ARTEMIS_EMOTIONS), 3)  # warm-up
    one, nine = median_ms(["awe"]), median_ms(list(ARTEMIS_EMOTIONS))
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                        cwd=Path.cwd()).stdout.strip()
print(f"{commit}: one {one:.1f} ms, nine {nine:.1f} ms, nine/one {nine / one:.2f}")
