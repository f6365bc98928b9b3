#!/usr/bin/env python
"""Train EmoSEM.

    python tools/train.py --config configs/tiny_cpu.yaml [--set train.max_steps=100 ...] [--resume auto]
    accelerate launch --multi_gpu --num_processes 4 tools/train.py --config configs/sam_vit_b_gpu.yaml
"""

import sys

import _bootstrap  # noqa: F401

from emosem.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
