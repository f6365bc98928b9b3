#!/bin/bash
# interleaved cold starts: import torch | before (HEAD before issue-24 part 1) | after; wall and peak RSS
PY=/work/main/.venv/bin/python
IMG=/work/main/demo/assets/starry_night.jpg
for i in 1 2 3 4; do
  /usr/bin/time -f "torch_only %e s %M KB" nice -n 15 env OMP_NUM_THREADS=1 $PY -c "import torch" 2>&1 | tail -1
  for wt in wt_before wt_p1; do
    rm -rf /tmp/cold_$wt
    (cd /tmp/$wt && /usr/bin/time -f "$wt %e s %M KB" nice -n 15 env OMP_NUM_THREADS=1 PYTHONPATH=/tmp/$wt $PY tools/infer.py $IMG --emotion awe --no-explain --out /tmp/cold_$wt --quiet --no-resume 2>&1 | tail -1)
  done
done
