#!/bin/bash
# Masks-only collection (issue 24): session-start code (955b46c, a git worktree in /tmp/w/old with
# checkpoints/smollm2-135m-instruct linked in) vs this checkout, alternating, on /tmp/w/colm (the 15
# sample paintings of ../shared/art + the first 45 synthetic paintings by path), `--emotion all
# --no-explain --json-only`. Rate = (images - 1) / (run seconds - cold_start_to_first_result_s).
# Then: every results.json equal between the two sides but for timing fields.
cd /work/main
mkdir -p /tmp/w/colm && cp ../shared/art/*.jpg /tmp/w/colm/ && \
  find data/synthetic/images -name "*.jpg" | sort | head -45 | while read f; do cp "$f" /tmp/w/colm/; done
for round in 1 2; do
  for side in old new; do
    root=/work/main; [ $side = old ] && root=/tmp/w/old
    out=/tmp/w/colm_${side}_$round; rm -rf $out
    (cd $root && PYTHONPATH=$root /work/main/.venv/bin/python tools/infer.py /tmp/w/colm --emotion all \
       --no-explain --json-only --out $out --quiet >/dev/null 2>&1)
    python3 - "$side" "$out" <<'PY'
import json, sys
side, out = sys.argv[1:]
r = json.load(open(f"{out}/summary.json"))["this_run"]
n = r["processed"]
print(side, "images", n, "seconds", r["seconds"], "first", r["cold_start_to_first_result_s"],
      "rate_after_first_result", round((n - 1) / (r["seconds"] - r["cold_start_to_first_result_s"]), 3))
PY
  done
done
python3 - <<'PY'
import glob, json
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items()
                if not any(t in k for t in ("timing", "seconds", "_s", "created", "time"))}
    return [strip(v) for v in o] if isinstance(o, list) else o
old = sorted(glob.glob("/tmp/w/colm_old_2/*/results.json"))
same = sum(strip(json.load(open(f))) == strip(json.load(open(f.replace("colm_old_2", "colm_new_2")))) for f in old)
print("results.json equal but for timings:", same, "of", len(old))
PY
