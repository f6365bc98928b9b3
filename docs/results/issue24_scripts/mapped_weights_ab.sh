#!/bin/sh
# A/B: new process to exit, masks only and with one explanation, old = /tmp/old (inline-weight
# optimized copies), new = /work/main working tree (mapped weights), alternating.
for round in 1 2 3; do
  for side in old new; do
    if [ $side = old ]; then dir=/tmp/old; cache=/tmp/old_cache; else dir=/work/main; cache=$HOME/.cache/emosem; fi
    for mode in "--no-explain" ""; do
      rm -rf /tmp/ab_out
      (cd $dir && EMOSEM_CACHE=$cache PYTHONPATH=$dir /usr/bin/time -f "$side round $round ${mode:-explain}: %e s, peak %M KB" \
        /work/main/.venv/bin/python tools/infer.py demo/assets/starry_night.jpg --emotion awe $mode --out /tmp/ab_out --quiet > /dev/null)
    done
  done
done
