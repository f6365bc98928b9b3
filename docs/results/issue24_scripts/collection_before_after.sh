#!/bin/bash
# Collection throughput (issue 24): the session-start code (3eb9fcd, a git worktree in /tmp/w/old with
# checkpoints/smollm2-135m-instruct linked in) vs this checkout, alternating, on /tmp/col6 (the three
# demo paintings twice), --emotion all with explanations and figures. Rate = (images - 1) / (run seconds
# - cold_start_to_first_result_s): the same formula for both sides (the old summary has no own rate);
# output_mb: the size of everything written.
cd /work/main
for round in 1 2; do
  for side in old new; do
    root=/work/main; [ $side = old ] && root=/tmp/w/old
    out=/tmp/w/colcmp_${side}_$round; rm -rf $out
    (cd $root && PYTHONPATH=$root /work/main/.venv/bin/python tools/infer.py /tmp/col6 --emotion all --max-new-tokens 40 --out $out --quiet >/dev/null 2>&1)
    python3 - "$side" "$out" <<'PY'
import json, os, sys
side, out = sys.argv[1:]
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
r = json.load(open(f"{out}/summary.json"))["this_run"]
n = r["processed"]
print(side, "images", n, "seconds", r["seconds"], "first", r["cold_start_to_first_result_s"],
      "rate_after_first_result", round((n - 1) / (r["seconds"] - r["cold_start_to_first_result_s"]), 4),
      "own_after_first", r.get("images_per_s_after_first"), "output_mb", round(size / 2**20, 1))
PY
  done
done
