"""Building an index of stimulus regions, streamed and resumable.

Two sources, one painting at a time, each written in one transaction (:mod:`.store`):

* :func:`iter_run_paintings` — a collection run's output folder (``OUT/``): each image folder's
  ``results.json`` is read back (defensively: unknown keys are ignored, a record without a mask
  or an empty region is skipped), masks are decoded from the records' COCO RLE, and the source
  painting is encoded once by the frozen image encoder; the mask decoder and the language model
  are not run.
* :func:`iter_image_paintings` — paintings directly: the predictor segments the given emotions
  (or the painting's top-k, ``auto``) without explanations, and the same image embedding is pooled.

A painting already stored with the same source SHA-256 is skipped (resume); a failed painting is
logged and reported at the end, the build goes on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emosem.inference.collection import STATE_DIR, iter_inputs
from emosem.regions import record_is_empty
from emosem.retrieval.duplicates import DUPLICATE_THRESHOLD, assign_groups
from emosem.retrieval.embed import EmbeddingSpec, embed_regions, embed_whole
from emosem.retrieval.store import DB_NAME, PaintingRow, RegionRow, RegionStore

logger = logging.getLogger(__name__)


@dataclass
class Job:
    """One painting to index: its key, source file and, for a run's output, its records."""

    key: str
    source: Path | None
    sha256: str | None = None
    records: list[dict[str, Any]] | None = None  # from results.json; None: segment the painting
    in_domain: float | None = None
    folder: Path | None = None  # the result folder (mask files are named relative to the run)
    error: str | None = None


@dataclass
class BuildReport:
    """What a build did: paintings added, reused (already stored), failed (key, reason); regions added."""

    added: int = 0
    reused: int = 0
    regions: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    groups: int = 0

    @property
    def regions_per_s(self) -> float:
        return self.regions / self.seconds if self.seconds > 0 else 0.0

    def record(self) -> dict[str, Any]:
        return {"added": self.added, "reused": self.reused, "regions": self.regions,
                "failed": [{"painting": k, "reason": r} for k, r in self.failed],
                "seconds": round(self.seconds, 3), "regions_per_s": round(self.regions_per_s, 2),
                "duplicate_groups": self.groups}


def _in_domain(doc: dict[str, Any]) -> float | None:
    """The painting's in-domain score from a ``results.json`` (a number, or a dict with ``score``)."""
    for key in ("in_domain_score", "in_domain"):
        v = doc.get(key)
        if isinstance(v, dict):
            v = v.get("score")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v):
            return float(v)
    return None


def _resolve_source(doc: dict[str, Any], key: str, run: Path, image_root: Path | None) -> Path | None:
    """The painting file of a result: ``image_root/key``, else the recorded source as written, or
    relative to the run folder's parent."""
    cands = []
    if image_root is not None:
        cands.append(Path(image_root) / key)
    src = doc.get("source")
    if isinstance(src, str) and src:
        cands += [Path(src), run.parent / src, run / src]
    return next((c for c in cands if c.is_file()), None)


def iter_run_paintings(run: Path, image_root: Path | None = None) -> Iterator[Job]:
    """Every image folder of a collection run ``run`` (sorted walk; the run's state folder and
    hidden folders are left out), as :class:`Job` s with their records."""
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"{run} is not a folder; give a collection run's output folder (--from OUT)")
    for dirpath, dirnames, filenames in os.walk(run):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != STATE_DIR)
        if "results.json" not in filenames:
            continue
        folder = Path(dirpath)
        key = folder.relative_to(run).as_posix()
        try:
            doc = json.loads((folder / "results.json").read_text(encoding="utf-8"))
            records = [r for r in doc["results"] if isinstance(r, dict)]
        except (OSError, ValueError, KeyError, TypeError) as e:
            yield Job(key, None, folder=folder, error=f"unreadable results.json ({type(e).__name__}: {e})")
            continue
        source = _resolve_source(doc, key, run, image_root)
        sha = doc.get("source_sha256") if isinstance(doc.get("source_sha256"), str) else None
        err = None if source else (f"source painting not found ({doc.get('source')!r}); "
                                   "give the inputs' folder with --image-root")
        yield Job(key, source, sha, records, _in_domain(doc), folder, err)


def iter_image_paintings(inputs: list[str]) -> Iterator[Job]:
    """Every image of ``inputs`` (files and folders, as the collection run walks them)."""
    for item in iter_inputs(inputs):
        if item.skip:
            continue
        yield Job(item.key, item.path, error=item.error)


def _decode_rle(seg: Any) -> np.ndarray | None:
    from pycocotools import mask as mask_utils

    if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
        return None
    counts = seg["counts"]
    rle = {"size": list(seg["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    if isinstance(counts, list):
        h, w = seg["size"]
        rle = mask_utils.frPyObjects(rle, h, w)
    return mask_utils.decode(rle).astype(bool)


def _usable(rec: dict[str, Any]) -> bool:
    """A record with an emotion and a mask that is not empty (:func:`record_is_empty`)."""
    if not isinstance(rec.get("emotion"), str) or not isinstance(rec.get("segmentation"), dict):
        return False
    try:
        return not record_is_empty(rec)
    except (TypeError, ValueError):
        return False


def painting_row(job: Job, predictor: Any, spec: EmbeddingSpec, emotions: list[str] | None,
                 top_k: int) -> PaintingRow:
    """Encode ``job``'s painting once and pool the region vectors (see the module docstring)."""
    from emosem.files import file_sha256

    sha = job.sha256 or file_sha256(job.source)
    state = predictor.encode(job.source)
    H, W = state.original_size
    if job.records is not None:
        recs = [r for r in job.records if _usable(r)]
        masks, kept = [], []
        for r in recs:
            m = _decode_rle(r["segmentation"])
            if m is not None and m.any():
                masks.append(m)
                kept.append(r)
        size = tuple(masks[0].shape) if masks else (H, W)
        in_domain = job.in_domain
    else:
        names = emotions or predictor.predict_emotions(state).ranked()[:top_k]
        results = predictor.predict(names, explain=False, state=state)
        kept = [r.to_record() for r in results if not r.empty]
        masks = [r.mask for r in results if not r.empty]
        size = (H, W)
        in_domain = predictor.in_domain_score(state)
    cues = [r.get("cues") if isinstance(r.get("cues"), dict) else None for r in kept]
    vecs = embed_regions(state, predictor.transform, masks, [r["emotion"] for r in kept], cues, spec)
    regions = []
    for r, v, c in zip(kept, vecs, cues):
        files = r.get("files") if isinstance(r.get("files"), dict) else {}
        mask_file = f"{job.key}/{files['mask']}" if job.records is not None and "mask" in files else None
        bbox = r.get("bbox") if isinstance(r.get("bbox"), list) else None
        regions.append(RegionRow(
            emotion=r["emotion"], vector=v, trained=bool(r.get("trained_emotion", True)),
            confidence=r.get("confidence"), predicted_iou=r.get("predicted_iou"), cues=c, bbox=bbox,
            mask_file=mask_file, segmentation=r.get("segmentation"),
            explanation=r.get("explanation") if isinstance(r.get("explanation"), str) else None))
    return PaintingRow(job.key, str(job.source), sha, int(size[0]), int(size[1]),
                       embed_whole(state, predictor.transform, spec.features), in_domain, regions)


def build_index(store: RegionStore, jobs: Iterator[Job], predictor: Any, spec: EmbeddingSpec,
                emotions: list[str] | None = None, top_k: int = 3,
                duplicate_threshold: float | None = DUPLICATE_THRESHOLD, limit: int | None = None,
                also_stored: tuple[RegionStore, ...] = ()) -> BuildReport:
    """Index every job not already stored (same key and SHA-256 in ``store`` or one of
    ``also_stored``), one transaction per painting, then group near-duplicate paintings (not with
    ``duplicate_threshold`` None: a shard leaves that to the merge). ``limit``: stop after that many
    new paintings."""
    from tqdm import tqdm

    from emosem.files import file_sha256

    report = BuildReport()
    t0 = time.perf_counter()
    for job in tqdm(jobs, desc="index", unit="painting", disable=None):
        if job.error:
            report.failed.append((job.key, job.error))
            logger.warning("%s: %s", job.key, job.error)
            continue
        try:
            stored = [s.stored_sha(job.key) for s in (store, *also_stored)]
            if any(x is not None for x in stored) and (job.sha256 or file_sha256(job.source)) in stored:
                report.reused += 1
                continue
            if limit is not None and report.added >= limit:
                break
            report.regions += store.put(painting_row(job, predictor, spec, emotions, top_k))
            report.added += 1
        except Exception as e:  # one bad painting never stops the build
            report.failed.append((job.key, f"{type(e).__name__}: {e}"))
            logger.warning("%s: %s: %s", job.key, type(e).__name__, e)
    report.seconds = time.perf_counter() - t0
    if duplicate_threshold is not None:
        report.groups = assign_groups(store, duplicate_threshold)
    return report


SHARDS_DIR = ".shards"  # INDEX/.shards/<rank>/: each launched process's paintings until the merge


def build_sharded(folder: Path, settings: dict[str, Any], jobs: Iterator[Job], predictor: Any,
                  spec: EmbeddingSpec, dist: Any, emotions: list[str] | None = None, top_k: int = 3,
                  duplicate_threshold: float = DUPLICATE_THRESHOLD, overwrite: bool = False) -> BuildReport | None:
    """The build under ``accelerate launch`` (``dist``: an :class:`accelerate.PartialState`).

    Job i goes to process i mod N, which stores its paintings in a shard index of its own
    (``INDEX/.shards/<rank>/``; a painting already in the index or in the shard is reused, so a
    killed launch resumes). Once all are done, process 0 copies the shards' paintings into the
    index in the jobs' order, one transaction each (the same rows, ids and vectors as a
    one-process build), deletes the shards and groups near-duplicates. Returns the summed report
    on process 0, None on the others."""
    import shutil

    from accelerate.utils import gather_object

    rank, world = dist.process_index, dist.num_processes
    if dist.is_main_process:
        main = RegionStore(folder, create=True)
        main.check_settings(settings, overwrite=overwrite)
        main.close()
    dist.wait_for_everyone()
    main = RegionStore(folder)
    shard = RegionStore(Path(folder) / SHARDS_DIR / str(rank), create=True)
    shard.check_settings(settings, overwrite=True)  # a shard of other settings is stale: emptied
    order: list[str] = []

    def mine() -> Iterator[Job]:
        for i, job in enumerate(jobs):
            order.append(job.key)
            if i % world == rank:
                yield job

    try:
        report = build_index(shard, mine(), predictor, spec, emotions, top_k, None, also_stored=(main,))
    finally:
        shard.close()
        main.close()
    reports = gather_object([report])
    dist.wait_for_everyone()
    if not dist.is_main_process:
        return None
    shards = sorted((Path(folder) / SHARDS_DIR).iterdir())
    main = RegionStore(folder)
    try:
        for key in order:
            for s in shards:
                if main.copy_painting(s / DB_NAME, key):
                    break
        total = BuildReport(sum(r.added for r in reports), sum(r.reused for r in reports),
                            sum(r.regions for r in reports), [f for r in reports for f in r.failed],
                            max(r.seconds for r in reports))
        total.groups = assign_groups(main, duplicate_threshold)
    finally:
        main.close()
    shutil.rmtree(Path(folder) / SHARDS_DIR)
    return total
