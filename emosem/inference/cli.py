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
import errno
import logging
import os
import shutil
import sys
import time
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emosem.emotions import ARTEMIS_EMOTIONS, normalize_prompt_emotion
from emosem.inference import LM_RUNTIMES

if TYPE_CHECKING:  # heavy (torch): imported by run() once the arguments are good
    from accelerate import PartialState

    from emosem.inference.collection import Ledger, OutputFolder

logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images (recursive)")
    p.add_argument("--emotion", "-e", action="append", default=None,
                   help="emotion to segment (repeatable): an ArtEmis emotion, free text, "
                        "'all' (the nine) or 'auto' (the top-k predicted); default: all")
    p.add_argument("--top-k", type=int, default=3, help="emotions to explain with --emotion auto")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    p.add_argument("--out", default="outputs/infer", help="output folder")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (under accelerate launch: "
                   "each process's own device)")
    p.add_argument("--threshold", type=float, default=None,
                   help="mask probability threshold in (0, 1) (default: the checkpoint's calibrated one)")
    p.add_argument("--no-explain", action="store_true", help="masks only, no language model")
    p.add_argument("--lm-runtime", choices=LM_RUNTIMES, default="auto",
                   help="what decodes the explanations: auto (default: ONNX Runtime on a CPU where its "
                        "self-check gives torch's tokens, else torch), torch, ort, or ort-int8 "
                        "(block-quantized, faster, approximate): see README")
    p.add_argument("--no-word-grounding", action="store_true",
                   help="let explanations use colour and position words that the region's measured "
                        "cues contradict (by default the decoder cannot write them; see README)")
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--batch-size", type=int, default=9, help="emotions per decode/generate call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-only", action="store_true", help="write results.json only, no pictures")
    p.add_argument("--max-side", type=int, default=2048,
                   help="longest side a painting is decoded and analysed at (pixel budget; masks, "
                        "RLE, bbox and area are still given at the original size)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="reuse an image's results already in --out when its file and the settings "
                        "are the same (default: on)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo every image, replacing results already in --out (also those of "
                        "another file or other settings, which are otherwise refused)")
    p.add_argument("--no-annotations", action="store_true",
                   help="no W3C Web Annotation page (annotations.json) per image")
    p.add_argument("--polygon-tolerance", type=float, default=1.0,
                   help="annotation polygons are simplified to this many original-image pixels")
    p.add_argument("--iiif-manifest", default=None,
                   help="a local IIIF Presentation 3 manifest whose canvases show the images: "
                        "annotations target the canvases, and OUT/manifest.json is an annotated copy")
    p.add_argument("--iiif-manifest-max-mb", type=float, default=64,
                   help="largest --iiif-manifest read, in MB (default 64)")
    p.add_argument("--quiet", action="store_true")


def _expand_emotions(values: list[str] | None) -> tuple[list[str], bool]:
    """→ (emotions, auto): the nine for ``all``, free text in Unicode NFC; a variant of one
    already given (another case or normalisation form: ``Melancholy``, NFD ``café``) is dropped.
    Raises ValueError for an empty emotion."""
    values = values or ["all"]
    out: list[str] = []
    seen: set[str] = set()
    auto = False
    for v in values:
        key = v.strip().lower() if isinstance(v, str) else v
        if key == "auto":
            auto = True
            continue
        names = ARTEMIS_EMOTIONS if key == "all" else [normalize_prompt_emotion(unicodedata.normalize("NFC", v))[0]]
        for name in names:
            if name.casefold() not in seen:
                seen.add(name.casefold())
                out.append(name)
    return out, auto


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere)."""
    try:
        start_ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _check_numbers(args: argparse.Namespace) -> str | None:
    """The first out-of-range option, as a one-line message naming the flag."""
    from emosem.config import check_mask_threshold

    if args.threshold is not None:
        try:
            check_mask_threshold(args.threshold)
        except ValueError as e:
            return f"--{e}"
    for flag, value, low in (("--batch-size", args.batch_size, 1), ("--top-k", args.top_k, 1),
                             ("--max-new-tokens", args.max_new_tokens, 1), ("--num-beams", args.num_beams, 1),
                             ("--max-side", args.max_side, 64)):
        if value < low:
            return f"{flag} must be at least {low}, got {value}"
    if not args.iiif_manifest_max_mb > 0:
        return f"--iiif-manifest-max-mb must be > 0, got {args.iiif_manifest_max_mb}"
    if not args.polygon_tolerance >= 0:
        return f"--polygon-tolerance must be >= 0 pixels, got {args.polygon_tolerance}"
    return None


def _chunks(items, n: int):
    chunk = []
    for it in items:
        chunk.append(it)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _LoadError(RuntimeError):
    """The checkpoint cannot be loaded: the run stops (exit code 2)."""


def one_line(e: BaseException) -> str:
    """An exception as one line for the summary: its type and the first line of its message."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _out_of_space(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


class _Run:
    """One process's share of an inference run (see :func:`run`)."""

    def __init__(self, args: argparse.Namespace, emotions: list[str], auto: bool, out, rank: int,
                 device: str, signature: dict, manifest) -> None:
        self.args, self.emotions, self.auto, self.out, self.rank = args, emotions, auto, out, rank
        self.device, self.signature, self.manifest = device, signature, manifest
        self.predictor = None
        self.load_s = 0.0
        self.first_result_s: float | None = None
        self.finished: list[float] = []  # perf_counter when each new image's outputs were written
        self.t_start = time.perf_counter()

    def images_per_s(self) -> float | None:
        """Steady throughput of this process: images whose outputs were written after the first,
        per second between the first and the last (model load and cold start left out); None
        under two images."""
        if len(self.finished) < 2 or self.finished[-1] <= self.finished[0]:
            return None
        return (len(self.finished) - 1) / (self.finished[-1] - self.finished[0])

    def model(self):
        """The predictor, loaded at the first image that needs it (a fully resumed run loads none)."""
        from emosem.inference.predictor import EmoSEMPredictor
        from emosem.modeling.errors import CheckpointError

        if self.predictor is None:
            t0 = time.perf_counter()
            try:
                self.predictor = EmoSEMPredictor.from_pretrained(
                    self.args.checkpoint, device=self.device, explain=not self.args.no_explain,
                    lm_runtime=self.args.lm_runtime)
            except (CheckpointError, ValueError, OSError) as e:
                raise _LoadError(str(e)) from None
            self.load_s = time.perf_counter() - t0
        return self.predictor

    def target(self, item, doc):
        from emosem.inference import annotations as anno

        if self.manifest is not None:
            canvas = anno.match_canvas(self.manifest[1], item.key)
            if canvas is not None:
                return anno.canvas_target(canvas, self.manifest[0]), None
            note = "no canvas of the IIIF manifest shows this image: annotations target the file"
        else:
            note = None
        return anno.image_target(item.path, doc["width"], doc["height"]), note

    def process(self, index: int, item, ledger) -> None:
        """Account for one input in the ledger: done (new or reused), failed or skipped."""
        from emosem.data.image_io import ImageLoadError, decode_image
        from emosem.files import file_sha256
        from emosem.inference.collection import existing_result

        args, src = self.args, str(item.path)
        if item.error:
            logger.error("%s: %s", src, item.error)
            return ledger.add(index, item.key, src, "failed", item.error)
        if item.skip:
            logger.info("skipping %s: %s", src, item.skip)
            return ledger.add(index, item.key, src, "skipped", item.skip)
        try:
            sha = file_sha256(item.path)
        except OSError as e:
            return ledger.add(index, item.key, src, "failed", f"unreadable ({e.strerror or e})")
        state = existing_result(self.out.result_dir(item.key), sha, self.signature)
        if state == "same" and args.resume and not args.overwrite:
            return ledger.add(index, item.key, src, "done", reused=True)
        if state == "foreign":
            msg = (f"{self.out.result_dir(item.key)} exists and is not a result folder of this tool; it is "
                   "left as it is (also with --overwrite): move it away or choose another --out")
            logger.error("%s: %s", src, msg)
            return ledger.add(index, item.key, src, "failed", msg)
        if state in ("other", "broken") and not args.overwrite:
            why = ("results of another file or other settings" if state == "other"
                   else "files that are not a complete EmoSEM result")
            msg = f"{self.out.result_dir(item.key)} holds {why}; pass --overwrite to replace them or choose another --out"
            logger.error("%s: %s", src, msg)
            return ledger.add(index, item.key, src, "failed", msg)
        try:
            decoded = decode_image(item.path, max_side=args.max_side)
        except ImageLoadError as e:
            logger.error("%s", e)
            return ledger.add(index, item.key, src, "failed", str(e))
        note = None
        if decoded.frames > 1:
            if decoded.format in ("GIF", "PNG", "WEBP"):
                return ledger.add(index, item.key, src, "skipped",
                                  f"animated {decoded.format} ({decoded.frames} frames): only still "
                                  "images are analysed; save the frame you want as a PNG")
            note = f"multi-page {decoded.format} ({decoded.frames} pages): page 1 analysed"
            logger.warning("%s: %s", src, note)
        self.analyse(item, decoded, sha, note)
        self.finished.append(time.perf_counter())
        ledger.add(index, item.key, src, "done", note=note)

    def analyse(self, item, decoded, sha: str, note: str | None) -> None:
        from emosem.inference import annotations as anno
        from emosem.inference.outputs import write_image_results
        from emosem.visualization.cues import no_explanation_note

        args = self.args
        predictor = self.model()
        threshold = predictor.threshold(args.threshold)  # checked by _check_numbers already
        state = predictor.encode(decoded.rgb)
        distribution = estimate = None
        wanted = list(self.emotions)
        if self.auto or predictor.model.emotion_head is not None:
            estimate = predictor.predict_emotions(state)  # the head's, toward the prior out of domain
            distribution = estimate.distribution
        if self.auto:
            wanted += [e for e in estimate.ranked()[: args.top_k] if e not in wanted]
        results, batches = [], []
        for i in range(0, len(wanted), args.batch_size):
            batches.append(wanted[i : i + args.batch_size])
            results += predictor.predict(
                batches[-1], explain=not args.no_explain, threshold=threshold,
                max_new_tokens=args.max_new_tokens, state=state, seed=args.seed,
                num_beams=args.num_beams, do_sample=args.sample, word_grounding=not args.no_word_grounding,
            )
        if self.first_result_s is None:
            self.first_result_s = process_age_s() or (time.perf_counter() - self.t_start)
        extra = {"source": str(item.path), "source_sha256": sha, "run_signature": self.signature,
                 "auto_top_k": args.top_k if self.auto else None, "mask_threshold": threshold,
                 "emotion_batches": batches, "process_index": self.rank,
                 "lm_runtime": None if args.no_explain else predictor.lm_runtime,
                 **(estimate.record() if estimate is not None else {})}
        if note:
            extra["note"] = note
        annotate = None
        if not args.no_annotations:
            def annotate(doc, masks):
                target, target_note = self.target(item, doc)
                if target_note:
                    doc["annotation_note"] = target_note
                page_id = (self.out.root / item.key / "annotations.json").resolve().as_uri()
                context = anno.IIIF_CONTEXT if target.is_canvas else anno.ANNO_CONTEXT
                return anno.annotation_page(doc, page_id, target, args.polygon_tolerance, context, masks)
        staging = self.out.staging_dir(self.rank)
        try:
            write_image_results(staging, item.key, decoded.rgb, results, distribution,
                                figures=not args.json_only, extra=extra,
                                original_size=decoded.original_size, annotate=annotate,
                                in_domain=state.domain_score)
            self.out.publish(staging, item.key)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone after the rename; left only by a failure
        for r in results:
            text = r.explanation if r.explanation is not None else (
                f"({no_explanation_note(r.cues.record())})" if r.cues is not None else "")
            logger.info("%s | %s (iou %.2f, area %d): %s", item.key, r.emotion, r.predicted_iou,
                        r.area, text)


def run(args: argparse.Namespace) -> int:
    """The infer command: check, claim ``--out``, process every input (split between the
    launched processes), then merge the outputs on rank 0. Returns the exit code."""
    t_start = time.perf_counter()
    try:
        emotions, auto = _expand_emotions(args.emotion)
    except ValueError as e:
        logger.error("%s", e)
        return 2
    problem = _check_numbers(args)
    if problem:
        logger.error("%s", problem)
        return 2
    # heavy imports (torch through accelerate) only once the arguments are known to be good
    from accelerate import PartialState

    from emosem.inference.collection import Ledger, OutputFolder, run_signature
    from emosem.paths import default_checkpoint

    dist = PartialState(cpu=args.device == "cpu")
    if not dist.is_main_process:
        logging.getLogger().setLevel(logging.WARNING)  # rank-0-only output; errors still show
    device = str(dist.device) if dist.num_processes > 1 and args.device == "auto" else args.device
    out = OutputFolder(Path(args.out))
    try:
        error, run_id, manifest = _claim_output(args, out, dist)
        if error:
            if dist.is_main_process:
                logger.error("%s", error)
            return 1
        signature = run_signature(args, str(Path(args.checkpoint or default_checkpoint()).resolve()), emotions, auto)
        worker = _Run(args, emotions, auto, out, dist.process_index, device, signature, manifest)
        ledger = Ledger(out.ledger_path(run_id, dist.process_index))
        code = _process_inputs(args, out, dist, worker, ledger)
        if code or not dist.is_main_process:
            return code
        return _finish_run(args, out, ledger, worker, dist.num_processes, manifest, t_start)
    finally:
        out.unlock()  # on every exit path


def _claim_output(args: argparse.Namespace, out: OutputFolder, dist: PartialState) -> tuple[str | None, str, Any]:
    """Everything that can refuse the run, before the model loads: ``--out`` not among the
    inputs, the IIIF manifest readable, then ``--out`` writable and locked (rank 0; nothing is
    written before the first two pass). Returns (error or None, run id, manifest)."""
    import uuid

    from accelerate.utils import broadcast_object_list

    from emosem.inference.annotations import ManifestError, load_manifest
    from emosem.inference.collection import OutputFolderError, check_inputs_against_out

    error, run_id, manifest = None, uuid.uuid4().hex[:12], None
    try:
        check_inputs_against_out(args.inputs, out.root)
        if args.iiif_manifest:
            manifest = load_manifest(args.iiif_manifest, max_bytes=int(args.iiif_manifest_max_mb * 2**20))
        if dist.is_main_process:
            out.check_writable()
            out.lock()
            out.clean_tmp()
    except (OutputFolderError, ManifestError) as e:
        error = str(e)
    if dist.num_processes > 1:
        error, run_id = broadcast_object_list([error, run_id])
    return error, run_id, manifest


def _process_inputs(args: argparse.Namespace, out: OutputFolder, dist: PartialState, worker: _Run,
                    ledger: Ledger) -> int:
    """Each process's share of the inputs, in chunks of 32; 1 when the checkpoint cannot be
    loaded (on any rank: rank 0's failure stops everyone), else 0."""
    from accelerate.utils import broadcast_object_list
    from tqdm.auto import tqdm

    from emosem.inference.collection import iter_inputs

    main_proc, world = dist.is_main_process, dist.num_processes
    total = sum(1 for _ in iter_inputs(args.inputs, exclude=out.root)) if main_proc else 0
    bar = tqdm(total=-(-total // world), unit="img", desc="paintings" if world == 1 else f"paintings (rank 0 of {world})",
               disable=not main_proc or args.quiet or not sys.stderr.isatty())
    code, stopped = 0, None
    try:
        for chunk in _chunks(enumerate(iter_inputs(args.inputs, exclude=out.root)), 32):
            with dist.split_between_processes(chunk) as mine:
                for index, item in mine:
                    if stopped:
                        _account(ledger, index, item, f"not processed: {stopped}")
                    elif _process_one(worker, index, item, ledger):
                        stopped = (f"the run stopped: no space left on device under {out.root}; free "
                                   "space and run the same command again (finished images are reused)")
                        logger.error("%s", stopped[0].upper() + stopped[1:])
                    bar.update(1)
    except _LoadError as e:  # a damaged checkpoint is a failed run (1), not a usage error (2)
        logger.error("Cannot load the checkpoint: %s", e)
        code = 1
    finally:
        ledger.close()
        bar.close()
    if world > 1:
        dist.wait_for_everyone()
        [code] = broadcast_object_list([code])
    return code


def _account(ledger: Ledger, index: int, item, reason: str) -> None:
    """A failed input's ledger line, if the disk still takes it."""
    try:
        ledger.add(index, item.key, str(item.path), "failed", reason)
    except OSError:
        pass


def _process_one(worker: _Run, index: int, item, ledger: Ledger) -> bool:
    """One input; whatever goes wrong with it is its failure (one line in the log and the
    ledger) and the run goes on. Returns True when the disk is full, which stops the run."""
    try:
        worker.process(index, item, ledger)
        return False
    except _LoadError:
        raise
    except Exception as e:  # noqa: BLE001  (one image's error is that image's failure)
        full = _out_of_space(e)
        reason = "no space left on device" if full else one_line(e)
        logger.error("%s: %s", item.path, reason)
        logger.debug("%s", item.path, exc_info=True)
        _account(ledger, index, item, reason)
        return full


def _finish_run(args: argparse.Namespace, out: OutputFolder, ledger: Ledger, worker: _Run, world: int,
                manifest: Any, t_start: float) -> int:
    """Rank 0: merge the ledgers into summary.json, results.csv, the gallery and the manifest,
    and print the accounting. Returns 1 if an image failed, else 0."""

    from emosem.inference.collection import read_ledgers
    from emosem.inference.merge import write_run_outputs

    rows = read_ledgers(ledger.path.parent)
    total_s = time.perf_counter() - t_start
    this_run = {
        "processes": world,
        "processed": sum(1 for r in rows if r["status"] == "done" and not r.get("reused")),
        "reused": sum(1 for r in rows if r.get("reused")),
        "seconds": round(total_s, 2), "model_load_s": round(worker.load_s, 2),
        # from process start (interpreter and imports included) to the first image's results
        "cold_start_to_first_result_s": round(worker.first_result_s, 2) if worker.first_result_s else None,
        # rank 0's steady rate after its first image (None under two new images)
        "images_per_s_after_first": round(rate, 4) if (rate := worker.images_per_s()) else None,
        "out": str(out.root),
    }
    try:
        summary = write_run_outputs(out.root, rows, this_run, gallery=not args.json_only, manifest=manifest)
    except OSError as e:
        why = "no space left on device" if _out_of_space(e) else one_line(e)
        logger.error("Cannot write summary.json, results.csv and the gallery in %s (%s); run the same "
                     "command again (finished images are reused)", out.root, why)
        return 1
    shutil.rmtree(ledger.path.parent, ignore_errors=True)
    n_done, n_failed = summary["images_done"], summary["images_failed"]
    print(f"Done: {n_done} image(s) in {total_s:.1f} s ({this_run['reused']} reused from an earlier "
          f"run), {n_failed} failed, {summary['images_skipped']} skipped; results in {out.root}")
    for kind in ("failed", "skipped"):
        if summary[kind]:
            print(f"{kind.capitalize()}:")
            for f in summary[kind]:
                print(f"  {f.get('source', f['image'])}: {f['reason']}")
    return 1 if n_failed else 0
