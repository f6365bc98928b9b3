"""Search a collection by its emotion stimuli: ``emosem search build|query|evaluate|speed``.

    emosem search build --from OUT --index INDEX            # index a collection run's regions
    emosem search build --images ../shared/art --index INDEX --emotion auto --top-k 3
    emosem search query --index INDEX --like-region 12                     # regions like this one
    emosem search query --index INDEX --like storm.jpg --emotion fear      # a painting + emotion
    emosem search query --index INDEX --emotion awe --colour blue --place top --out RESULTS
    emosem search evaluate --data data/synthetic_eval                      # quality vs baselines
    emosem search speed --sizes 1000 10000 100000                          # build/query speed, memory

A build is resumable (run it again: stored paintings are skipped) and never re-runs the mask
decoder on a collection run. A query writes RESULTS/results.html (overlays embedded) and
RESULTS/results.csv, and logs the ranked hits. Exit code 2 on bad arguments or input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="index a collection run's regions, or paintings directly")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="run", default=None, help="a collection run's output folder (OUT)")
    src.add_argument("--images", nargs="+", default=None, help="paintings (files or folders) to segment and index")
    b.add_argument("--index", required=True, help="the index folder (created; resumed when it exists)")
    b.add_argument("--image-root", default=None, help="where OUT's paintings are (default: each result's source)")
    b.add_argument("--emotion", "-e", action="append", default=None,
                   help="with --images: emotions to segment (repeatable; default auto = the top --top-k)")
    b.add_argument("--top-k", type=int, default=3)
    b.add_argument("--features", default=None,
                   help="pooled features: concepts, sam or both (default: embed.DEFAULT_SPEC's, both)")
    b.add_argument("--emotion-weight", type=float, default=None,
                   help="weight of the emotion one-hot in the vector (default: DEFAULT_SPEC's, 1)")
    b.add_argument("--cue-weight", type=float, default=None,
                   help="weight of the measured cue numbers in the vector (default: DEFAULT_SPEC's, 0.5)")
    b.add_argument("--duplicate-threshold", type=float, default=None,
                   help="whole-painting cosine similarity from which paintings are near-duplicates")
    b.add_argument("--overwrite", action="store_true", help="rebuild an index made with other settings")
    b.add_argument("--limit", type=int, default=None, help="stop after this many new paintings")
    _common(b)

    q = sub.add_parser("query", help="search an index")
    q.add_argument("--index", required=True)
    q.add_argument("--like-region", type=int, default=None, help="a stored region's id: regions like it")
    q.add_argument("--like", default=None, help="a painting: regions like its --emotion region")
    q.add_argument("--emotion", "-e", default=None, help="only regions of this emotion")
    q.add_argument("--colour", "--color", action="append", default=[], help="colour term (repeatable: any)")
    q.add_argument("--place", action="append", default=[], help="place word: top, bottom, left, right, center…")
    q.add_argument("--size", action="append", default=[], help="small, medium, large or 'very large'")
    q.add_argument("--light", action="append", default=[], help="light word: bright, dark, vivid, muted, warmer…")
    q.add_argument("--min-area", type=float, default=None)
    q.add_argument("--max-area", type=float, default=None)
    q.add_argument("--min-confidence", type=float, default=None)
    q.add_argument("--min-in-domain", type=float, default=None)
    q.add_argument("-k", "--k", type=int, default=10)
    q.add_argument("--per-group", type=int, default=1, help="results per near-duplicate group (0: all)")
    q.add_argument("--include-same", action="store_true", help="keep the example's own painting group")
    q.add_argument("--mode", default="exact", help="exact or hnsw (approximate)")
    q.add_argument("--out", default=None, help="write results.html and results.csv here")
    _common(q)

    e = sub.add_parser("evaluate", help="retrieval quality on a synthetic set against baselines")
    e.add_argument("--data", default="data/synthetic_eval")
    e.add_argument("--seed", type=int, default=777)
    e.add_argument("--out", default="outputs/search_eval.json")
    _common(e)

    s = sub.add_parser("speed", help="build and query speed and memory at several sizes")
    s.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    s.add_argument("--dim", type=int, default=1552, help="vector width (the default embedding: 1280+256+9+7)")
    s.add_argument("--queries", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--modes", nargs="+", default=["exact", "hnsw"], choices=["exact", "hnsw"])
    s.add_argument("--out", default="outputs/search_speed.json")
    s.add_argument("--end-to-end", action="store_true",
                   help="also time whole queries (SQL filters, vector search, metadata) on a synthetic index per size")
    s.add_argument("--quiet", action="store_true")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")


def _predictor(args: argparse.Namespace):
    from emosem.inference.predictor import EmoSEMPredictor

    return EmoSEMPredictor.from_pretrained(args.checkpoint, device=args.device, explain=False)


def run(args: argparse.Namespace) -> int:
    from emosem.retrieval.store import RegionIndexError

    try:
        return {"build": _build, "query": _query, "evaluate": _evaluate, "speed": _speed}[args.action](args)
    except (RegionIndexError, ValueError, FileNotFoundError) as e:
        logger.error("%s", e)
        return 2


def _build(args: argparse.Namespace) -> int:
    from emosem.retrieval.build import (
        build_index,
        build_sharded,
        iter_image_paintings,
        iter_run_paintings,
    )
    from emosem.retrieval.duplicates import DUPLICATE_THRESHOLD
    from emosem.retrieval.embed import DEFAULT_SPEC
    from emosem.retrieval.store import RegionStore

    given = {"features": args.features, "emotion_weight": args.emotion_weight, "cue_weight": args.cue_weight}
    spec = dataclasses.replace(DEFAULT_SPEC, **{k: v for k, v in given.items() if v is not None})
    emotions = None if not args.emotion or args.emotion == ["auto"] else args.emotion
    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    from accelerate import PartialState

    dist = PartialState(cpu=args.device == "cpu")
    if dist.num_processes > 1 and args.limit is not None:
        raise ValueError("--limit is for one process; under accelerate launch every painting is indexed")
    if not dist.is_main_process:
        logging.getLogger().setLevel(logging.WARNING)
    if dist.num_processes > 1 and args.device == "auto":
        args.device = str(dist.device)
    predictor = _predictor(args)
    settings = {"embedding": spec.record(), "checkpoint": str(args.checkpoint or "bundled"),
                "source": "run" if args.run else "images",
                "emotions": emotions, "top_k": None if args.run or emotions else args.top_k}
    jobs = iter_run_paintings(Path(args.run), Path(args.image_root) if args.image_root else None) \
        if args.run else iter_image_paintings(args.images)
    threshold = args.duplicate_threshold or DUPLICATE_THRESHOLD
    if dist.num_processes > 1:  # each process its share, merged by process 0 (build_sharded)
        report = build_sharded(Path(args.index), settings, jobs, predictor, spec, dist, emotions, args.top_k,
                               threshold, args.overwrite)
        if report is None:
            return 0
    store = RegionStore(Path(args.index), create=True)
    try:
        if dist.num_processes == 1:
            store.check_settings(settings, overwrite=args.overwrite)
            report = build_index(store, jobs, predictor, spec, emotions, args.top_k, threshold, args.limit)
        paintings, regions = store.counts()
    finally:
        store.close()
    logger.info("index %s: %d paintings, %d regions (added %d paintings / %d regions in %.1f s, %.1f regions/s; "
                "reused %d; %d near-duplicate groups)", args.index, paintings, regions, report.added,
                report.regions, report.seconds, report.regions_per_s, report.reused, report.groups)
    for key, reason in report.failed:
        logger.warning("failed: %s: %s", key, reason)
    return 1 if report.failed else 0


def _query(args: argparse.Namespace) -> int:
    from emosem.retrieval.page import write_csv, write_page
    from emosem.retrieval.search import CueFilter, Query, RegionIndex

    if args.like and not args.emotion:
        raise ValueError("--like PAINTING needs --emotion: the region of which emotion to search with")
    if args.like and args.like_region is not None:
        raise ValueError("give --like PAINTING or --like-region ID, not both")
    filters = CueFilter(args.colour, args.place, args.size, args.light, args.min_area, args.max_area,
                        args.min_confidence, args.min_in_domain)
    index = RegionIndex.open(args.index, args.mode)
    try:
        vector = None
        if args.like:
            vector, _ = index.embed_example(_predictor(args), args.like, args.emotion)
        q = Query(like_region=args.like_region, vector=vector, emotion=args.emotion, filters=filters,
                  k=args.k, per_group=args.per_group, include_same=args.include_same)
        hits = index.search(q)
    finally:
        index.close()
    what = _describe(args)
    for h in hits:
        r = h.region
        logger.info("%2d. %.3f  region %d  %s  %s  %s", h.rank, h.score, r["id"], r["painting"], r["emotion"],
                    r["cue_text"] or "")
    if args.out:
        out = Path(args.out)
        write_page(out / "results.html", hits, "Emotion stimulus search", what)
        write_csv(out / "results.csv", hits)
        logger.info("%d results → %s", len(hits), out / "results.html")
    return 0


def _describe(args: argparse.Namespace) -> str:
    parts = []
    if args.like_region is not None:
        parts.append(f"regions like region {args.like_region}")
    if args.like:
        parts.append(f"regions like the {args.emotion} region of {args.like}")
    if args.emotion:
        parts.append(f"emotion {args.emotion}")
    for name in ("colour", "place", "size", "light"):
        if getattr(args, name):
            parts.append(f"{name}: {' or '.join(getattr(args, name))}")
    return "; ".join(parts) or "all regions by confidence"


def _evaluate(args: argparse.Namespace) -> int:
    from emosem.files import atomic_write_json
    from emosem.retrieval.evaluate import DEFAULT_SPECS, embed_truth, method_scores

    truth = embed_truth(Path(args.data), _predictor(args))
    rows = method_scores(truth, DEFAULT_SPECS, seed=args.seed)
    atomic_write_json(Path(args.out), {"data": args.data, "seed": args.seed, "queries": rows[0].queries,
                                       "methods": [r.__dict__ for r in rows]})
    logger.info("→ %s", args.out)
    return 0


def _speed(args: argparse.Namespace) -> int:
    from emosem.files import atomic_write_json
    from emosem.retrieval.speed import measure_queries, measure_sizes

    rows = measure_sizes(args.sizes, args.dim, args.queries, args.seed, tuple(args.modes))
    report = {"dim": args.dim, "queries": args.queries, "modes": args.modes,
              "threads": os.environ.get("OMP_NUM_THREADS"), "rows": rows}
    if args.end_to_end:
        report["end_to_end"] = [measure_queries(n, args.dim, min(args.queries, n), mode, args.seed)
                                for n in args.sizes for mode in args.modes]
    atomic_write_json(Path(args.out), report)
    logger.info("%s", json.dumps(report))
    return 0
