"""Train EmoSEM from a YAML config (``--set a.b=value`` overrides, ``--resume auto``)."""

from __future__ import annotations

import argparse
import json
import logging

from emosem.config import ConfigError, load_config

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (configs/*.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.max_steps=100 (repeatable)")
    p.add_argument("--output-dir", help="run folder (same as --set train.output_dir=...)")
    p.add_argument("--resume", default=None,
                   help="'auto' continues the latest checkpoint in the run folder, or a checkpoint path")
    p.add_argument("--cpu", action="store_true", help="force the CPU even where a GPU exists")


def run(args: argparse.Namespace) -> int:
    from emosem.training.checkpointing import ResumeError
    from emosem.training.trainer import TrainingAborted, train

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"train.output_dir={args.output_dir}")
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as e:
        logger.error("%s", e)
        return 2
    try:
        summary = train(cfg, resume=args.resume, cpu=args.cpu)
    except TrainingAborted as e:
        logger.error("Training stopped: %s", e)
        return 3
    except ResumeError as e:
        logger.error("%s", e)
        return 2
    logger.info("Done: %s", json.dumps(summary))
    return 0
