#!/bin/bash
# Interleaved cold starts on one machine: import torch | before (f8c78c3, a worktree in /tmp/old
# with the converted LM linked in) | after (this checkout). Wall time to exit and peak RSS of each
# new process (/usr/bin/time), --json-only; the first run of each is a warm-up (file cache).
# Output of the run at a3ddd78: docs/results/issue24_cold_explain_before_after.txt
run(){ # tree mode label
  rm -rf /tmp/oab; cd $1
  extra=""; [ "$2" = masks ] && extra="--no-explain"
  PYTHONPATH=$1 /usr/bin/time -f "$3 $2 %e s %M KB" /work/main/.venv/bin/python tools/infer.py \
    /work/main/demo/assets/starry_night.jpg --emotion awe --out /tmp/oab --json-only --quiet $extra 2>&1 | tail -1
}
run /tmp/old explain old; run /work/main explain new   # warm-up (file cache)
for i in 1 2 3; do
  /usr/bin/time -f "torch import %e s %M KB" /work/main/.venv/bin/python -c "import torch"
  run /tmp/old explain old; run /work/main explain new
  run /tmp/old masks old; run /work/main masks new
done
