"""Score a checkpoint on a data split against baselines, in one run.

    python tools/evaluate.py                                   # bundled checkpoint, data/synthetic test
    python tools/evaluate.py --checkpoint runs/emosem-tiny-stage2/best --data data/synthetic
    python tools/evaluate.py --data data/heldout --split all --no-meteor --max-samples 200
    accelerate launch --multi_gpu --num_processes 4 tools/evaluate.py --checkpoint ... --data ...
    torchrun --nproc_per_node 2 tools/evaluate.py ...          # several CPU processes (gloo)

Segmentation (gIoU, cIoU, F-measure β²=0.3, MAE; correct-motif rate on the synthetic set),
explanations (BLEU-1..4, METEOR, ROUGE-L, CIDEr against all references; emotional alignment by
a text-emotion classifier trained on the train split), and the emotion head (accuracy against
the dominant annotator emotion, cross-entropy, KL) — each beside its baselines (centre prior,
emotion-agnostic model, retrieval of the most typical train utterance, majority emotion, train
prior). Writes report.json, report.md, samples.jsonl and figures to --out (default
outputs/eval/<checkpoint>-<split>). Exit code 1 if a painting could not be read (the others
are still scored) or, with --skip-failures, could not be scored; 2 on bad arguments or data.
"""

from __future__ import annotations

import argparse
import logging

from emosem.inference import LM_RUNTIMES

logger = logging.getLogger(__name__)

SPLIT_CHOICES = ("train", "val", "test", "all")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        default=None,
        help="checkpoint folder (default: the bundled checkpoints/emosem-tiny)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="ArtEmis-style data folder (default: the run's data when the checkpoint "
        "is in a run folder, else data/synthetic)",
    )
    p.add_argument(
        "--split",
        default="test",
        choices=SPLIT_CHOICES,
        help="split by painting, or 'all' for a held-out set (default: test)",
    )
    p.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="painting-split seed (default: the data config's, 2021)",
    )
    p.add_argument(
        "--fit-data",
        default=None,
        help="data whose train split fits the baselines and the emotion classifier "
        "(default: --data, or the run's data with --split all)",
    )
    p.add_argument(
        "--out", default=None, help="output folder (default: outputs/eval/<name>-<split>)"
    )
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    p.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="score a seeded random subset of N (painting, emotion) samples (--seed)",
    )
    p.add_argument("--no-explain", action="store_true", help="masks and emotion head only")
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (the slow Java part)")
    p.add_argument(
        "--no-batch",
        action="store_true",
        help="one decode/generate call per emotion instead of one per painting",
    )
    p.add_argument(
        "--classifier",
        default=None,
        help="a saved TextEmotionClassifier folder (default: train on the train split, cached)",
    )
    p.add_argument("--threshold", type=float, default=None,
                   help="mask probability threshold (default: the checkpoint's calibrated one)")
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--num-beams", type=int, default=1,
                   help="beam search width for the explanations (default 1: greedy)")
    p.add_argument("--lm-runtime", choices=LM_RUNTIMES, default="auto",
                   help="what decodes the explanations: auto (default), torch, ort or ort-int8 (see infer --help)")
    p.add_argument("--no-word-grounding", action="store_true",
                   help="let explanations use colour and position words their region's cues "
                        "contradict (default: grounded decoding, see README)")
    p.add_argument("--retrieval-k", type=int, default=5,
                   help="train paintings the nearest-neighbour retrieval baseline pools (default 5)")
    p.add_argument("--num-overlays", type=int, default=3, help="best and worst overlays to draw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=None,
                   help="where the text-emotion classifier is cached (default: $EMOSEM_CACHE_DIR, "
                   "else $XDG_CACHE_HOME/emosem, else ~/.cache/emosem); never the checkpoint")
    p.add_argument("--skip-failures", action="store_true",
                   help="a painting whose scoring raises is counted as failed and the others are "
                        "scored (default: such an error stops the evaluation; an unreadable "
                        "painting is always counted and skipped)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")


def run(args: argparse.Namespace) -> int:
    from emosem.config import ConfigError
    from emosem.data.artemis import ArtEmisFormatError
    from emosem.emotions import UnknownEmotionError
    from emosem.evaluation.evaluate import EvaluationArgumentError, evaluate, format_summary
    from emosem.modeling.errors import CheckpointError

    try:
        report = evaluate(
            checkpoint=args.checkpoint,
            data_root=args.data,
            split=args.split,
            out_dir=args.out,
            device=args.device,
            max_samples=args.max_samples,
            explain=not args.no_explain,
            meteor=not args.no_meteor,
            batch_emotions=not args.no_batch,
            classifier=args.classifier,
            seed=args.seed,
            split_seed=args.split_seed,
            fit_data=args.fit_data,
            threshold=args.threshold,
            max_new_tokens=args.max_new_tokens,
            num_beams=args.num_beams,
            lm_runtime=args.lm_runtime,
            word_grounding=not args.no_word_grounding,
            retrieval_k=args.retrieval_k,
            num_overlays=args.num_overlays,
            progress=False if args.quiet else None,
            cache_dir=args.cache_dir,
            skip_failures=args.skip_failures,
        )
    except EvaluationArgumentError as e:  # the library names the parameter; name the flag
        logger.error("--%s %s", e.name.replace("_", "-"), e.message)
        return 2
    except (CheckpointError, ArtEmisFormatError, ConfigError, UnknownEmotionError) as e:
        logger.error("%s", e)
        return 2
    except (FileNotFoundError, ValueError) as e:
        logger.error("Cannot evaluate: %s", e)
        return 2
    if not report:  # not the main process of a launched run
        return 0
    print(format_summary(report))
    print(
        f"Done: {report['n_samples']} samples on {report['n_paintings']} paintings in "
        f"{report['seconds']:.1f} s; report in {report['out']}"
    )
    if report["n_failed"]:
        print(f"{report['n_failed']} painting(s) failed:")
        for f in report["failed"]:
            print(f"  {f['painting']} ({f.get('kind', 'unreadable')}): {f['reason']}")
        return 1
    return 0
