#!/bin/sh
# The pinned CPU build of torch (.venv) against the CUDA build the earlier pins installed
# (CUDA_VENV, e.g. a venv made from requirements.txt at d5f1430): environment size on disk,
# and wall time and peak resident memory of a new process that only imports torch, alternating.
# Usage: CUDA_VENV=/path/to/venv sh docs/results/issue24_scripts/torch_build.sh
set -e
: "${CUDA_VENV:?set CUDA_VENV to a venv with the CUDA build}"
for v in .venv "$CUDA_VENV"; do
  echo "$v: $("$v/bin/python" -c 'import torch; print(torch.__version__)') $(du -sh "$v" | cut -f1) on disk"
done
for round in 1 2 3; do
  for v in .venv "$CUDA_VENV"; do
    /usr/bin/time -f "$v round $round: import torch %e s, peak %M KB" "$v/bin/python" -c "import torch"
  done
done
