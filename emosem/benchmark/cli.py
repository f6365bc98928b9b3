"""``emosem benchmark`` / ``tools/benchmark.py``: flags → :class:`BenchmarkSettings`, run, print
the table, write the JSON and Markdown; a bad setting is reported with its flag's name."""

from __future__ import annotations

import argparse
import logging

import emosem.benchmark as _package
from emosem.benchmark.settings import MEMORY_CHOICES, WHAT

logger = logging.getLogger(__name__)

#: The command's help text: the package's documentation of what is measured and how.
DESCRIPTION = _package.__doc__


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the method notes readable
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    p.add_argument("--what", choices=WHAT, default="all",
                   help="inference stages + ratios + scaling, training steps, or both (default)")
    p.add_argument("--image", default=None,
                   help="painting to run on (default: demo/assets/starry_night.jpg)")
    p.add_argument("--emotion", default="awe", help="the emotion of the one-emotion stages")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per stage (default 5; quick 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 1)")
    p.add_argument("--cold-repeats", type=int, default=None,
                   help="fresh-process cold starts to time (default 3, after one untimed; quick 1; "
                        "0 skips them)")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="tokens per explanation, forced (default 40; quick 8)")
    p.add_argument("--image-sizes", type=_int_list, default=None,
                   help="input image sides for the predictor scaling (default 256,512,1024)")
    p.add_argument("--encoder-sizes", type=_int_list, default=None,
                   help="encoder input sides, random weights (default 256,512,1024)")
    p.add_argument("--emotion-counts", type=_int_list, default=None,
                   help="emotions per call for the scaling, 1..9 (default 1,3,9; 1 and 9 always)")
    p.add_argument("--train-batch-sizes", type=_int_list, default=None,
                   help="training batch sizes (default 4,8)")
    p.add_argument("--collection-images", type=int, default=None,
                   help="paintings in the collection run, --emotion all with explanations per LM "
                        "runtime (default 4; quick 2; 0 skips it)")
    p.add_argument("--out", default="outputs/benchmark.json",
                   help="JSON report (the Markdown table goes next to it as .md)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: torch's own choice); also "
                        "OMP_NUM_THREADS of the cold-start processes")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--memory", default="auto", choices=MEMORY_CHOICES,
                   help="per-stage memory method (see the module docs)")
    p.add_argument("--quick", action="store_true",
                   help="small and fast: 2 repeats, 1 warm-up, 8 tokens, fewer scaling points")
    p.add_argument("--quiet", action="store_true")


def settings_from_args(args: argparse.Namespace) -> _package.BenchmarkSettings:
    fields = ("checkpoint", "what", "image", "emotion", "quick", "repeats", "warmup",
              "cold_repeats", "max_new_tokens", "image_sizes", "encoder_sizes", "emotion_counts",
              "train_batch_sizes", "collection_images", "threads", "device", "memory")
    return _package.BenchmarkSettings(**{f: getattr(args, f) for f in fields})


def run(args: argparse.Namespace) -> int:
    """Measure, print the table, write JSON (and .md). Exit 1 on a failed section, 2 on a bad
    setting."""
    settings = settings_from_args(args)
    try:
        settings = settings.resolve()
    except _package.BenchmarkSettingError as e:
        logger.error("--%s %s", e.name.replace("_", "-"), e.message)
        return 2
    report = _package.run_benchmark(settings)
    out, md_path = _package.write_report(report, args.out)
    print(md_path.read_text())
    print(f"Saved {out} and {md_path} ({report['total_s']} s)")
    if report["errors"]:
        print(f"{len(report['errors'])} section(s) failed: "
              + "; ".join(e["section"] for e in report["errors"]))
        return 1
    return 0
