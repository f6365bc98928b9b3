"""ArtEmis CSV + COCO stimulus masks -> one :class:`StimulusSample` per (painting, emotion).

The ArtEmis CSV (``art_style, painting, emotion, utterance, repetition``; one row per annotator)
gives the explanations; an optional COCO JSON gives stimulus masks (``file_name =
"{art_style}/{painting}.jpg"``, ``category_id`` = emotion index + 1). Both are joined on
``(art_style, painting, emotion)``. A sample may carry utterances, a mask, or both.

Bad data never crashes the loader: every dropped row, annotation or painting is counted by
reason in a :class:`DataReport` (with a few examples). Only file-level problems (a missing
folder or CSV, a CSV without a required column, a masks file that is not COCO JSON) raise.

The masks file is read in :mod:`emosem.data.coco_masks`, the report lives in
:mod:`emosem.data.report`, the RLE helpers in :mod:`emosem.data.rle`, the default file names in
:mod:`emosem.data.layout`.
"""

from __future__ import annotations

import csv
import logging
import random
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util
from tqdm import tqdm

from emosem.data.coco_masks import read_masks
from emosem.data.image_io import ImageLoadError, find_image, image_size, load_image
from emosem.data.layout import CSV_NAME, IMAGES_DIR, MASKS_NAME
from emosem.data.report import ArtEmisFormatError, DataReport
from emosem.data.rle import decode_rle, encode_mask, rle_as_bytes, rle_to_str
from emosem.emotions import EMOTION_TO_INDEX, NUM_EMOTIONS, UnknownEmotionError, parse_emotion

# DataReport, ArtEmisFormatError (report.py) and encode_mask, decode_rle (rle.py) are still
# importable from here.
__all__ = [
    "ArtEmisData",
    "ArtEmisFormatError",
    "DataReport",
    "StimulusSample",
    "decode_rle",
    "encode_mask",
    "load_artemis",
    "split_by_painting",
]

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("art_style", "painting", "emotion", "utterance")
OPTIONAL_COLUMNS = ("repetition",)
PAINTING_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass
class StimulusSample:
    """One (painting, emotion) pair with its references.

    ``mask_rle`` is the COCO RLE (``counts`` as str) of the union of all annotations of
    ``emotion`` on the image, or ``None``; ``utterances`` may be empty (mask-only sample).
    """

    art_style: str
    painting: str
    emotion: str
    image_path: Path
    utterances: list[str] = field(default_factory=list)
    mask_rle: dict | None = None
    height: int | None = None
    width: int | None = None

    @property
    def key(self) -> str:
        return f"{self.art_style}/{self.painting}"

    @property
    def has_mask(self) -> bool:
        return self.mask_rle is not None

    @property
    def has_text(self) -> bool:
        return len(self.utterances) > 0

    @property
    def emotion_index(self) -> int:
        return EMOTION_TO_INDEX[self.emotion]


class ArtEmisData:
    """The loaded data set: samples, the load report, and per-painting lookups.

    Attributes:
        root: the data folder.
        samples: one :class:`StimulusSample` per (painting, emotion), sorted by painting key
            then ArtEmis emotion order.
        report: the :class:`DataReport` of the load.
    """

    def __init__(
        self,
        root: Path,
        samples: list[StimulusSample],
        report: DataReport,
        counts: dict[str, np.ndarray],
        annotations: dict[str, list[dict]],
    ) -> None:
        self.root = Path(root)
        self.samples = samples
        self.report = report
        self._counts = counts
        self._annotations = annotations
        self._by_key: dict[str, dict[str, StimulusSample]] = defaultdict(dict)
        for s in samples:
            self._by_key[s.key][s.emotion] = s

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return f"ArtEmisData(root={str(self.root)!r}, paintings={len(self._by_key)}, samples={len(self.samples)})"

    def paintings(self) -> list[str]:
        """Sorted painting keys ``"{art_style}/{painting}"``."""
        return sorted(self._by_key)

    def _check_key(self, key: str) -> None:
        if key not in self._by_key:
            raise KeyError(f"Unknown painting {key!r}; keys look like 'art_style/painting'")

    def sample(self, key: str, emotion: str) -> StimulusSample | None:
        """The sample of ``(key, emotion)``, or ``None`` if there is none."""
        self._check_key(key)
        return self._by_key[key].get(parse_emotion(emotion))

    def samples_of(self, key: str) -> list[StimulusSample]:
        """All samples of one painting, in ArtEmis emotion order."""
        self._check_key(key)
        return sorted(self._by_key[key].values(), key=lambda s: s.emotion_index)

    def emotion_counts(self, key: str) -> np.ndarray:
        """``[9]`` int64: how many annotators chose each emotion for the painting."""
        self._check_key(key)
        c = self._counts.get(key)
        return np.zeros(NUM_EMOTIONS, dtype=np.int64) if c is None else c.copy()

    def emotion_distribution(self, key: str) -> np.ndarray:
        """``[9]`` float32: ``emotion_counts`` normalised to sum 1 (all zeros without rows)."""
        c = self.emotion_counts(key).astype(np.float32)
        total = c.sum()
        return c / total if total > 0 else c

    def annotations(self, key: str) -> list[dict]:
        """Every COCO annotation of the image: ``{"emotion": str, "rle": dict, "motif": str|None}``."""
        self._check_key(key)
        return [dict(a) for a in self._annotations.get(key, [])]

    def decode_mask(self, sample: StimulusSample) -> np.ndarray:
        """``[H, W]`` bool stimulus mask of ``sample``.

        Raises:
            ValueError: the sample has no mask (check ``sample.has_mask`` first).
        """
        if sample.mask_rle is None:
            raise ValueError(f"Sample {sample.key} ({sample.emotion}) has no mask")
        return decode_rle(sample.mask_rle)


def _resolve(root: Path, p: str | Path | None) -> Path | None:
    if p is None:
        return None
    p = Path(p)
    return p if p.is_absolute() else root / p


def _read_csv(
    path: Path, report: DataReport
) -> tuple[dict[tuple[str, str], list[tuple[str, str]]], list[str]]:
    """Read the ArtEmis CSV -> ``{(art_style, painting): [(emotion, utterance), ...]}``."""
    rows: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    seen: set[tuple[str, str, str, str]] = set()
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            report.skip("missing_column", f"{path} is empty (no header)", len(REQUIRED_COLUMNS))
            raise ArtEmisFormatError(
                f"The CSV {path} is empty; expected a header with columns {', '.join(REQUIRED_COLUMNS)}",
                report,
            )
        header = [h.strip().lower() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            for c in missing:
                report.skip("missing_column", c)
            raise ArtEmisFormatError(
                f"The CSV {path} lacks required column(s) {', '.join(missing)}; it has "
                f"{', '.join(header) or 'no columns'}; expected {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}",
                report,
            )
        idx = {c: header.index(c) for c in REQUIRED_COLUMNS}
        need = max(idx.values()) + 1
        it = iter(reader)
        while True:
            try:
                row = next(it)
            except StopIteration:
                break
            except csv.Error as e:  # e.g. a field over the size limit: skip that line, go on
                report.csv_rows += 1
                report.skip("malformed_row", f"line {reader.line_num}: {e}")
                continue
            line_no = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            report.csv_rows += 1
            if len(row) < need:
                report.skip("malformed_row", f"line {line_no}: {len(row)} fields, expected {len(header)}")
                continue
            art_style = row[idx["art_style"]].strip()
            painting = row[idx["painting"]].strip()
            if not art_style or not painting:
                report.skip("malformed_row", f"line {line_no}: empty art_style or painting")
                continue
            label = row[idx["emotion"]]
            try:
                emotion = parse_emotion(label)
            except UnknownEmotionError:
                report.skip("unknown_emotion", f"line {line_no} ({art_style}/{painting}): {label!r}")
                continue
            utterance = " ".join(row[idx["utterance"]].split())
            if not utterance:
                report.skip("empty_utterance", f"line {line_no} ({art_style}/{painting})")
                continue
            dup = (art_style, painting, emotion, utterance)
            if dup in seen:
                report.skip("duplicate_row", f"line {line_no} ({art_style}/{painting}, {emotion})")
                continue
            seen.add(dup)
            rows[(art_style, painting)].append((emotion, utterance))
    return rows, header


def _resolve_paths(
    root: Path, csv: str | Path | None, image_root: str | Path, masks: str | Path | None, report: DataReport
) -> tuple[Path | None, Path | None, Path]:
    """``(csv_path, masks_path, img_root)`` resolved against ``root`` and checked; fills the report's paths."""
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder {root} not found; pass the folder holding the ArtEmis CSV and images")
    csv_path = _resolve(root, csv)
    masks_path = _resolve(root, masks)
    img_root = _resolve(root, image_root)
    if img_root is None:
        raise ValueError("image_root must be a folder (relative to root or absolute), not None")
    if csv_path is not None and not csv_path.is_file():
        raise FileNotFoundError(f"ArtEmis CSV {csv_path} not found (csv=None loads masks only)")
    if masks_path is not None and not masks_path.is_file():
        report.notes.append(f"masks file {masks_path} not found: text only")
        logger.info("No masks file at %s; loading text only", masks_path)
        masks_path = None
    if csv_path is None and masks_path is None:
        raise FileNotFoundError(f"Nothing to load in {root}: neither a CSV nor a masks file")
    report.csv_path = str(csv_path) if csv_path else None
    report.masks_path = str(masks_path) if masks_path else None
    if not img_root.is_dir():
        report.notes.append(f"image folder {img_root} not found")
    return csv_path, masks_path, img_root


def _locate_image(
    img_root: Path,
    art_style: str,
    painting: str,
    coco_im: dict | None,
    pann: list[dict],
    check_images: bool | str,
    full: bool,
    report: DataReport,
    n_rows: int,
) -> tuple[Path, int | None, int | None, list[dict]] | None:
    """The painting's image ``(path, height, width, annotations kept)``; ``None``: it is dropped.

    With ``check_images`` the image must exist and be readable, and annotations whose size
    differs from the image's are dropped.
    """
    key = f"{art_style}/{painting}"
    base = img_root / art_style / painting
    path = find_image(base, PAINTING_EXTENSIONS)
    if path is None and coco_im is not None and (img_root / coco_im["file_name"]).is_file():
        path = img_root / coco_im["file_name"]
    height = width = None
    if coco_im is not None:
        height, width = coco_im["height"], coco_im["width"]
    if not check_images:
        return (Path(str(base) + ".jpg") if path is None else path), height, width, pann
    if path is None:
        report.skip("missing_image", f"{key} (looked for {base}.jpg/.jpeg/.png)")
        report.dropped_rows += n_rows
        report.dropped_annotations += len(pann)
        return None
    try:
        if full:
            arr = load_image(path)
            ih, iw = arr.shape[:2]
        else:
            ih, iw = image_size(path)
    except ImageLoadError as e:
        report.skip("unreadable_image", str(e))
        report.dropped_rows += n_rows
        report.dropped_annotations += len(pann)
        return None
    if pann and (ih, iw) != (height, width):
        report.skip(
            "mask_size_mismatch",
            f"{key}: masks are {height}x{width}, image is {ih}x{iw}",
            count=len(pann),
        )
        pann = []
    return path, ih, iw, pann


def _painting_samples(
    art_style: str,
    painting: str,
    path: Path,
    height: int | None,
    width: int | None,
    prow: list[tuple[str, str]],
    pann: list[dict],
) -> tuple[np.ndarray, list[StimulusSample]]:
    """``(emotion counts [9], one sample per emotion with utterances or masks)`` of one painting."""
    c = np.zeros(NUM_EMOTIONS, dtype=np.int64)
    utts: dict[str, list[str]] = defaultdict(list)
    for emotion, utt in prow:
        c[EMOTION_TO_INDEX[emotion]] += 1
        utts[emotion].append(utt)
    by_emotion: dict[str, list[dict]] = defaultdict(list)
    for a in pann:
        by_emotion[a["emotion"]].append(a["rle"])
    emotions = sorted(set(utts) | set(by_emotion), key=EMOTION_TO_INDEX.__getitem__)
    samples = []
    for emotion in emotions:
        rles = by_emotion.get(emotion, [])
        mask_rle = None
        if len(rles) == 1:
            mask_rle = rles[0]
        elif rles:
            mask_rle = rle_to_str(mask_util.merge([rle_as_bytes(r) for r in rles], intersect=0))
        samples.append(
            StimulusSample(
                art_style=art_style,
                painting=painting,
                emotion=emotion,
                image_path=path,
                utterances=list(utts.get(emotion, [])),
                mask_rle=mask_rle,
                height=height,
                width=width,
            )
        )
    return c, samples


def _finish_report(report: DataReport, samples: list[StimulusSample], root: Path) -> None:
    """Fill the report's totals from the skips and the samples, and log them."""
    report.dropped_rows += sum(
        report.skipped.get(r, 0) for r in ("malformed_row", "unknown_emotion", "empty_utterance", "duplicate_row")
    )
    report.dropped_annotations += sum(
        report.skipped.get(r, 0)
        for r in ("unknown_category", "bad_annotation", "empty_mask", "mask_size_mismatch")
    )
    report.paintings = len({s.key for s in samples})
    report.samples = len(samples)
    report.with_mask_and_text = sum(s.has_mask and s.has_text for s in samples)
    report.mask_only = sum(s.has_mask and not s.has_text for s in samples)
    report.text_only = sum(s.has_text and not s.has_mask for s in samples)
    report.usable = report.samples > 0
    logger.info(
        "Loaded %d samples from %d paintings in %s (%d mask+text, %d mask only, %d text only)",
        report.samples, report.paintings, root, report.with_mask_and_text, report.mask_only, report.text_only,
    )
    if report.skipped:
        logger.warning(
            "Skipped while loading %s: %s",
            root, ", ".join(f"{k}={v}" for k, v in sorted(report.skipped.items())),
        )


def load_artemis(
    root: str | Path,
    csv: str | Path | None = CSV_NAME,
    image_root: str | Path = IMAGES_DIR,
    masks: str | Path | None = MASKS_NAME,
    check_images: bool | str = True,
) -> ArtEmisData:
    """Load an ArtEmis-style data set (CSV + optional COCO stimulus masks + images).

    Args:
        root: the data folder; ``csv``, ``image_root`` and ``masks`` are relative to it (or
            absolute).
        csv: the ArtEmis CSV (default ``artemis_dataset_release_v0.csv``), or ``None`` for a
            mask-only set.
        image_root: folder (default ``images``) with ``{art_style}/{painting}.jpg``
            (``.jpeg``/``.png`` also found).
        masks: COCO JSON of stimulus masks (default ``stimulus_masks.json``); ``None`` or a
            missing file -> text only.
        check_images: ``True`` reads each image header once (missing/unreadable images, mask
            size mismatch); ``"full"`` also decodes each image fully (finds truncated files);
            ``False`` checks nothing.

    Raises:
        FileNotFoundError: ``root`` or the CSV does not exist.
        ArtEmisFormatError: the CSV lacks a required column or the masks file is not COCO JSON.
    """
    root = Path(root)
    report = DataReport(root=str(root))
    csv_path, masks_path, img_root = _resolve_paths(root, csv, image_root, masks, report)

    rows: dict[tuple[str, str], list[tuple[str, str]]] = {}
    if csv_path is not None:
        rows, _ = _read_csv(csv_path, report)
    coco_images: dict[tuple[str, str], dict] = {}
    anns: dict[tuple[str, str], list[dict]] = {}
    if masks_path is not None:
        coco_images, anns = read_masks(masks_path, report)
    report.annotations = sum(len(a) for a in anns.values())

    samples: list[StimulusSample] = []
    counts: dict[str, np.ndarray] = {}
    ann_out: dict[str, list[dict]] = {}
    full = isinstance(check_images, str) and check_images.lower() == "full"
    keys = sorted(set(rows) | set(anns))
    show = bool(check_images) and len(keys) >= 2000 and sys.stderr.isatty()
    for art_style, painting in tqdm(keys, desc="checking images", disable=not show):
        prow = rows.get((art_style, painting), [])
        found = _locate_image(img_root, art_style, painting, coco_images.get((art_style, painting)),
                              list(anns.get((art_style, painting), [])), check_images, full, report, len(prow))
        if found is None:
            continue
        path, height, width, pann = found
        c, painting_samples = _painting_samples(art_style, painting, path, height, width, prow, pann)
        if not painting_samples:
            continue
        key = f"{art_style}/{painting}"
        if prow:
            counts[key] = c
        ann_out[key] = pann
        samples.extend(painting_samples)

    _finish_report(report, samples, root)
    return ArtEmisData(root, samples, report, counts, ann_out)


def split_by_painting(
    samples: Sequence[StimulusSample],
    ratios: Sequence[float] = (0.85, 0.05, 0.10),
    seed: int = 2021,
) -> dict[str, list[StimulusSample]]:
    """Split samples into ``{"train", "val", "test"}`` by painting (no painting in two splits).

    The unique painting keys are sorted, shuffled with ``random.Random(seed)`` and cut by
    ``ratios`` (normalised). With at least 3 paintings, val and test get at least one painting
    each when their ratio is positive. Samples keep their input order within a split.
    """
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"ratios must be three non-negative numbers (train, val, test), got {list(ratios)}")
    total = float(sum(ratios))
    r_train, r_val, r_test = (r / total for r in ratios)
    keys = sorted({s.key for s in samples})
    random.Random(seed).shuffle(keys)
    n = len(keys)
    n_val = int(round(n * r_val))
    n_test = int(round(n * r_test))
    if n >= 3:
        if r_val > 0:
            n_val = max(1, n_val)
        if r_test > 0:
            n_test = max(1, n_test)
        if r_train > 0:
            while n - n_val - n_test < 1:
                if n_val >= n_test and n_val > (1 if r_val > 0 else 0):
                    n_val -= 1
                elif n_test > (1 if r_test > 0 else 0):
                    n_test -= 1
                else:
                    break
    n_val = min(n_val, n)
    n_test = min(n_test, n - n_val)
    n_train = n - n_val - n_test
    which: dict[str, str] = {}
    for k in keys[:n_train]:
        which[k] = "train"
    for k in keys[n_train : n_train + n_val]:
        which[k] = "val"
    for k in keys[n_train + n_val :]:
        which[k] = "test"
    out: dict[str, list[StimulusSample]] = {"train": [], "val": [], "test": []}
    for s in samples:
        out[which[s.key]].append(s)
    return out
