"""The ``emosem`` command: ``emosem train|infer|evaluate|benchmark|real-art|search ...``.

Each subcommand lives with its stage (``emosem.<stage>.cli`` with ``add_arguments`` and ``run``);
``tools/*.py`` call :func:`main` with their subcommand name.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

COMMANDS = {
    "train": ("emosem.training.cli", "Train a model (Accelerate: 1 CPU to many GPUs)."),
    "infer": ("emosem.inference.cli", "Segment and explain emotion stimuli in paintings."),
    "evaluate": ("emosem.evaluation.cli", "Score a checkpoint on a data split against baselines."),
    "benchmark": ("emosem.benchmark.cli", "Measure latency, throughput and memory."),
    "real-art": ("emosem.evaluation.real_art_cli", "Check a checkpoint's explanations and emotions on real paintings."),
    "search": ("emosem.retrieval.cli", "Index a collection's stimulus regions and search them."),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="emosem", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    if argv and argv[0] in COMMANDS:  # import only the stage that runs
        names = [argv[0]]
    else:
        names = list(COMMANDS)
    modules = {}
    for name in names:
        mod_name, help_text = COMMANDS[name]
        mod = importlib.import_module(mod_name)
        modules[name] = mod
        description = getattr(mod, "DESCRIPTION", mod.__doc__)
        p = sub.add_parser(name, help=help_text, description=description)
        mod.add_arguments(p)
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(level=logging.INFO if not quiet else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if quiet:  # the libraries' loading bars and deprecation notices too (a first run builds graphs)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        return int(modules[args.command].run(args) or 0)
    finally:
        _leave_process_group()


def _leave_process_group() -> None:
    """In a launched run, leave the process group together, then exit: a process that exited
    while rank 0 still merged results or wrote its report sometimes aborted in gloo's teardown
    ("terminate called without an active exception", exit code -6)."""
    dist = sys.modules.get("torch.distributed")  # never imports torch for a usage error
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
