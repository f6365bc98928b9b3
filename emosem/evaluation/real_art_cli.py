"""Score a checkpoint on real paintings against a list of what each shows (``visible.json``).

    python tools/real_art_report.py ../shared/art                       # run the bundled checkpoint, then score
    python tools/real_art_report.py ../shared/art --checkpoint runs/x/best --emotion auto --top-k 3
    python tools/real_art_report.py --results outputs/my_run --visible ../shared/art/visible.json

With a paintings folder it runs ``infer`` on it (explanations for --emotion, default awe, fear,
sadness, contentment) into OUT/run, replacing what an earlier run left there, and scores that; with --results it scores an existing run of
any checkpoint (a folder of per-image ``results.json``). Writes OUT/report.json and
OUT/report.md (:mod:`emosem.evaluation.real_art`). Exit code 2 on bad arguments or input.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from emosem.evaluation.real_art import (
    DEFAULT_EMOTIONS,
    RealArtError,
    load_truth,
    report_markdown,
    report_record,
)

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paintings", nargs="?", default=None,
                   help="folder of real paintings to run the checkpoint on (holding visible.json unless --visible)")
    p.add_argument("--results", default=None, help="score this existing run folder instead of making a run")
    p.add_argument("--visible", default=None, help="the list of visible things and plausible emotions "
                   "(default: PAINTINGS/visible.json)")
    p.add_argument("--images", default=None, help="where the run's paintings are (default: each result's source)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    p.add_argument("--emotion", "-e", action="append", default=None,
                   help=f"emotion to explain (repeatable; 'auto' with --top-k); default: {', '.join(DEFAULT_EMOTIONS)}")
    p.add_argument("--top-k", type=int, default=3, help="emotions explained with --emotion auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="report folder (default: outputs/real_art/<checkpoint or run>)")
    p.add_argument("--describe", default=None,
                   help="how the scored run was made (e.g. the infer command and commit), recorded in the report")
    p.add_argument("--quiet", action="store_true")


def _make_run(args: argparse.Namespace, out: Path) -> Path:
    """Run ``infer`` on the paintings into OUT/run (JSON only) and return that folder."""
    from emosem.inference import cli as infer_cli

    parser = argparse.ArgumentParser()
    infer_cli.add_arguments(parser)
    # --overwrite: the report is of this checkpoint and code, never of an earlier run's results
    argv = [args.paintings, "--out", str(out / "run"), "--json-only", "--no-annotations", "--overwrite",
            "--device", args.device, "--top-k", str(args.top_k)]
    for e in args.emotion or DEFAULT_EMOTIONS:
        argv += ["--emotion", e]
    if args.checkpoint:
        argv += ["--checkpoint", args.checkpoint]
    code = infer_cli.run(parser.parse_args(argv))
    if code not in (0, None):
        logger.warning("infer exited with %s; scoring the paintings it finished", code)
    return out / "run"


def run(args: argparse.Namespace) -> int:
    from emosem.evaluation.oracle import thing_lexicon_name
    from emosem.evaluation.real_art import score_results
    from emosem.files import atomic_write_json, atomic_write_text
    from emosem.machine import git_commit, machine_info

    if bool(args.paintings) == bool(args.results):
        logger.error("give a paintings folder to run on, or --results RUN to score (not both)")
        return 2
    visible = args.visible or (Path(args.paintings) / "visible.json" if args.paintings else None)
    if visible is None:
        logger.error("--visible FILE is needed with --results")
        return 2
    name = Path(args.results or args.checkpoint or "bundled").resolve().name
    out = Path(args.out or Path("outputs/real_art") / name)
    try:
        truth = load_truth(Path(visible))
        out.mkdir(parents=True, exist_ok=True)
        results = Path(args.results) if args.results else _make_run(args, out)
        paintings, explained = score_results(results, truth, Path(args.images) if args.images else None)
    except RealArtError as e:
        logger.error("%s", e)
        return 2
    report = report_record(paintings, explained, command=shlex.join(sys.argv),
                           commit=git_commit(Path(__file__).resolve().parents[2]), run=str(results),
                           run_made_by=args.describe, thing_lexicon=thing_lexicon_name(),
                           machine=machine_info("cpu"))
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", report_markdown(report))
    s = report["summary"]
    logger.info("%d paintings, %d explanations: absent thing %s, colour true %s, position true %s, "
                "top-1 plausible %s, top-3 %s → %s", s["paintings"], s["explanations"],
                s["names_absent_thing"]["share"], s["colour_words_true"]["share"],
                s["position_words_true"]["share"], s["top1_plausible"]["share"], s["top3_plausible"]["share"],
                out / "report.md")
    return 0
