#!/bin/sh
# A/B: a new process to exit (the benchmark's cold-start commands), old = /tmp/w/old (a git worktree of
# an earlier commit, checkpoints/smollm2-135m-instruct linked in), new = this
# checkout; alternating, with `python -c "import torch"` as the reference in each round.
# Usage: sh docs/results/issue24_scripts/cold_ab.sh [ROUNDS] [IMAGE]
rounds=${1:-4}; image=${2:-/work/main/demo/assets/starry_night.jpg}
py=/work/main/.venv/bin/python
for round in $(seq "$rounds"); do
  /usr/bin/time -f "torch  round $round import: %e s, peak %M KB" $py -c "import torch"
  for side in old new; do
    dir=/work/main; [ $side = old ] && dir=/tmp/w/old
    for mode in "--no-explain" "--max-new-tokens 40"; do
      rm -rf /tmp/ab_out
      (cd $dir && PYTHONPATH=$dir /usr/bin/time -f "$side round $round ${mode%% *}: %e s, peak %M KB" \
        $py tools/infer.py "$image" --emotion awe --json-only $mode --out /tmp/ab_out --quiet > /dev/null)
    done
  done
done 2>&1 | grep -v "^Done"
