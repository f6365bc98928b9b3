"""A/B of ONNX Runtime's spinning after Run() (fast_lm.STOP_SPINNING), alternating processes:
torch's decoder right after an ONNX Runtime explanation, and the explanation itself.

    python docs/results/issue24_scripts/spinning_stop_ab.py [ROUNDS]

Each process: the bundled checkpoint on the demo's Starry Night, 7 rounds of [explanation (20
tokens, one emotion), model.segment for 1 and 9 emotions, predict(explain=False) for 1 and 9],
medians in ms. "spin" = ONNX Runtime's default (threads spin on after Run() returns), "stop" =
session.force_spinning_stop.
"""

import statistics
import subprocess
import sys
import time


def child(mode: str) -> None:
    import torch

    import emosem.inference.fast_lm as fast_lm
    from emosem.emotions import ARTEMIS_EMOTIONS
    from emosem.inference.predictor import EmoSEMPredictor

    fast_lm.STOP_SPINNING = mode == "stop"
    p = EmoSEMPredictor.from_pretrained(None)
    st = p.encode("demo/assets/starry_night.jpg")
    one, nine = ["awe"], list(ARTEMIS_EMOTIONS)
    calls = {"explain(1)": lambda: p.predict(one, explain=True, state=st, max_new_tokens=20),
             "segment(1)": lambda: p.model.segment(st.embedding, one),
             "segment(9)": lambda: p.model.segment(st.embedding, nine),
             "predict(1)": lambda: p.predict(one, explain=False, state=st),
             "predict(9)": lambda: p.predict(nine, explain=False, state=st)}
    times = {k: [] for k in calls}
    with torch.no_grad():
        p.predict(one, explain=True, state=st, max_new_tokens=10)
        for _ in range(7):
            for k, f in calls.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    print(mode, p.lm_runtime, "  ".join(f"{k} {statistics.median(v) * 1e3:.1f}" for k, v in times.items()), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("spin", "stop"):
        child(sys.argv[1])
    else:
        for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
            for mode in ("spin", "stop"):
                subprocess.run([sys.executable, __file__, mode], check=True, stderr=subprocess.DEVNULL)
