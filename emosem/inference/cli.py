"""Segment and explain the emotion stimuli of paintings.

    python tools/infer.py starry_night.jpg --emotion awe
    python tools/infer.py paintings/ --emotion all --out results/
    python tools/infer.py painting.jpg --emotion auto --top-k 3
    python tools/infer.py painting.jpg --emotion melancholy      # free text, outside the trained set

Writes per image a folder with mask/overlay/heat-map/panel PNGs and ``results.json`` (COCO RLE,
bbox XYWH, area, predicted IoU, explanation, timing), a grid for several emotions, and an
``index.html`` gallery of everything. A bad file is reported and skipped; the exit code is 1
if any image failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from emosem.emotions import ARTEMIS_EMOTIONS, normalize_prompt_emotion

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("--emotion", "-e", action="append", default=None,
                   help="emotion to segment (repeatable): an ArtEmis emotion, free text, "
                        "'all' (the nine) or 'auto' (the top-k predicted); default: all")
    p.add_argument("--top-k", type=int, default=3, help="emotions to explain with --emotion auto")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    p.add_argument("--out", default="outputs/infer", help="output folder")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    p.add_argument("--threshold", type=float, default=None,
                   help="mask probability threshold (default: the checkpoint's calibrated one)")
    p.add_argument("--no-explain", action="store_true", help="masks only, no language model")
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--batch-size", type=int, default=9, help="emotions per decode/generate call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-only", action="store_true", help="write results.json only, no pictures")
    p.add_argument("--quiet", action="store_true")


def _expand_emotions(values: list[str] | None) -> tuple[list[str], bool]:
    """→ (emotions, auto). Raises ValueError for an empty emotion."""
    values = values or ["all"]
    out: list[str] = []
    auto = False
    for v in values:
        key = v.strip().lower() if isinstance(v, str) else v
        if key == "all":
            out.extend(e for e in ARTEMIS_EMOTIONS if e not in out)
        elif key == "auto":
            auto = True
        else:
            name, _ = normalize_prompt_emotion(v)
            if name not in out:
                out.append(name)
    return out, auto


def collect_images(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files as given, folders expanded to their image files (sorted); missing paths fail."""
    from emosem.data.image_io import IMAGE_EXTENSIONS

    files: list[Path] = []
    failed: list[tuple[str, str]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                failed.append((item, "folder holds no images"))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            failed.append((item, "no such file"))
    return files, failed


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere)."""
    try:
        start_ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from emosem.data.image_io import ImageLoadError
    from emosem.inference.outputs import write_image_results
    from emosem.inference.predictor import EmoSEMPredictor
    from emosem.modeling.segmenter import CheckpointError
    from emosem.visualization.gallery import write_gallery

    t_start = time.perf_counter()
    try:
        emotions, auto = _expand_emotions(args.emotion)
    except ValueError as e:
        logger.error("%s", e)
        return 2
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        logger.error("--threshold is a mask probability: between 0 and 1, got %s", args.threshold)
        return 2
    files, failed = collect_images(args.inputs)
    for name, why in failed:
        logger.error("%s: %s", name, why)
    try:
        predictor = EmoSEMPredictor.from_pretrained(args.checkpoint, device=args.device)
    except (CheckpointError, ValueError, OSError) as e:
        logger.error("Cannot load the checkpoint: %s", e)
        return 2
    t_loaded = time.perf_counter()
    threshold = predictor.model.config.mask_threshold if args.threshold is None else args.threshold
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    gen = {"num_beams": args.num_beams, "do_sample": args.sample}
    entries, summaries = [], []
    first_result_s = None
    stems: dict[str, int] = {}
    for path in tqdm(files, desc="paintings", disable=args.quiet or not sys.stderr.isatty()):
        stem = path.stem
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:
            stem = f"{stem}_{stems[stem]}"
        try:
            state = predictor.encode(path)
        except ImageLoadError as e:
            logger.error("%s", e)
            failed.append((str(path), str(e)))
            entries.append({"image": path.name, "error": str(e)})
            continue
        distribution = None
        wanted = list(emotions)
        if auto or predictor.model.emotion_head is not None:
            distribution = predictor.predict_distribution(state)
        if auto:
            ranked = sorted(distribution, key=distribution.get, reverse=True)
            wanted += [e for e in ranked[: args.top_k] if e not in wanted]
        results = []
        for i in range(0, len(wanted), max(1, args.batch_size)):
            results += predictor.predict(
                wanted[i : i + args.batch_size], explain=not args.no_explain,
                threshold=threshold, max_new_tokens=args.max_new_tokens, state=state,
                seed=args.seed, **gen,
            )
        if first_result_s is None:
            first_result_s = process_age_s() or (time.perf_counter() - t_start)
        doc, image_entries = write_image_results(
            out_root / stem, path.name, state.image, results, distribution,
            figures=not args.json_only, extra={"source": str(path), "auto_top_k": args.top_k if auto else None,
                   "mask_threshold": threshold},
        )
        entries.extend(image_entries)
        summaries.append({"image": str(path), "out": str(out_root / stem),
                          "emotions": [r.emotion for r in results]})
        for r in results:
            logger.info("%s | %s (iou %.2f, area %d): %s", path.name, r.emotion, r.predicted_iou,
                        r.area, r.explanation if r.explanation is not None else "")
    if not args.json_only and (entries or failed):
        write_gallery(out_root / "index.html", entries)
    total = time.perf_counter() - t_start
    summary = {
        "images_done": len(summaries), "images_failed": len(failed),
        "failed": [{"image": n, "reason": w} for n, w in failed],
        "seconds": round(total, 2), "model_load_s": round(t_loaded - t_start, 2),
        # from process start (interpreter and imports included) to the first image's results
        "cold_start_to_first_result_s": round(first_result_s, 2) if first_result_s else None,
        "out": str(out_root),
    }
    (out_root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Done: {len(summaries)} image(s) in {total:.1f} s, {len(failed)} failed; results in {out_root}")
    if failed:
        print("Failed:")
        for n, w in failed:
            print(f"  {n}: {w}")
        return 1
    return 0
