"""ArtEmis CSV + COCO stimulus masks -> one :class:`StimulusSample` per (painting, emotion).

The ArtEmis CSV (``art_style, painting, emotion, utterance, repetition``; one row per annotator)
gives the explanations; an optional COCO JSON gives stimulus masks (``file_name =
"{art_style}/{painting}.jpg"``, ``category_id`` = emotion index + 1). Both are joined on
``(art_style, painting, emotion)``. A sample may carry utterances, a mask, or both.

Bad data never crashes the loader: every dropped row, annotation or painting is counted by
reason in a :class:`DataReport` (with a few examples). Only file-level problems (a missing
folder or CSV, a CSV without a required column, a masks file that is not COCO JSON) raise.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import random
import sys
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from tqdm import tqdm

from emosem.data.image_io import (
    IMAGE_EXTENSIONS,
    ImageLoadError,
    find_image,
    image_size,
    load_image,
)
from emosem.emotions import (
    ARTEMIS_EMOTIONS,
    EMOTION_TO_INDEX,
    NUM_EMOTIONS,
    UnknownEmotionError,
    parse_emotion,
)

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("art_style", "painting", "emotion", "utterance")
OPTIONAL_COLUMNS = ("repetition",)
PAINTING_EXTENSIONS = (".jpg", ".jpeg", ".png")
MAX_EXAMPLES = 3

# What each skip reason counts (shown in DataReport.summary()).
REASON_UNITS = {
    "missing_column": "columns",
    "malformed_row": "rows",
    "unknown_emotion": "rows",
    "empty_utterance": "rows",
    "duplicate_row": "rows",
    "missing_image": "paintings",
    "unreadable_image": "paintings",
    "bad_image_entry": "COCO images",
    "unknown_category": "annotations",
    "bad_annotation": "annotations",
    "empty_mask": "annotations",
    "mask_size_mismatch": "annotations",
}


class ArtEmisFormatError(ValueError):
    """A data set that cannot be read at all (e.g. a CSV without a required column).

    ``report`` holds the :class:`DataReport` gathered so far (``usable`` is False).
    """

    def __init__(self, message: str, report: DataReport | None = None) -> None:
        super().__init__(message)
        self.report = report


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


@dataclass
class DataReport:
    """What was loaded and what was skipped (by reason, with a few examples)."""

    root: str = ""
    csv_path: str | None = None
    masks_path: str | None = None
    csv_rows: int = 0
    paintings: int = 0
    samples: int = 0
    with_mask_and_text: int = 0
    mask_only: int = 0
    text_only: int = 0
    annotations: int = 0
    dropped_rows: int = 0
    dropped_annotations: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    usable: bool = False

    def skip(self, reason: str, example: str | None = None, count: int = 1) -> None:
        """Count ``count`` items skipped for ``reason`` and keep the first few examples."""
        self.skipped[reason] = self.skipped.get(reason, 0) + count
        if example is not None:
            ex = self.examples.setdefault(reason, [])
            if len(ex) < MAX_EXAMPLES:
                ex.append(example)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """A readable multi-line report."""
        lines = [f"ArtEmis data at {self.root}"]
        lines.append(f"  csv:   {self.csv_path or '(none)'}")
        lines.append(f"  masks: {self.masks_path or '(none: text only)'}")
        lines.append(
            f"  {self.csv_rows} CSV rows, {self.annotations} mask annotations, "
            f"{self.paintings} paintings, {self.samples} samples "
            f"({self.with_mask_and_text} mask+text, {self.mask_only} mask only, "
            f"{self.text_only} text only)"
        )
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.skipped:
            lines.append(f"  skipped ({self.dropped_rows} rows, {self.dropped_annotations} annotations dropped in all):")
            for reason in sorted(self.skipped, key=lambda r: (-self.skipped[r], r)):
                unit = REASON_UNITS.get(reason, "items")
                lines.append(f"    {reason}: {self.skipped[reason]} {unit}")
                for ex in self.examples.get(reason, []):
                    lines.append(f"      e.g. {ex}")
        else:
            lines.append("  nothing skipped")
        lines.append(f"  usable: {'yes' if self.usable else 'NO'}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["num_skipped"] = self.num_skipped
        return d


def encode_mask(mask: np.ndarray) -> dict:
    """``[H, W]`` bool mask -> COCO RLE ``{"size": [H, W], "counts": str}``."""
    rle = mask_util.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict) -> np.ndarray:
    """COCO RLE (compressed, ``counts`` str or bytes) -> ``[H, W]`` bool mask."""
    r = rle
    if isinstance(rle.get("counts"), list):
        h, w = rle["size"]
        r = mask_util.frPyObjects(rle, h, w)
    elif isinstance(rle.get("counts"), str):
        r = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    with warnings.catch_warnings():
        # pycocotools' decode trips a harmless numpy-2 "copy keyword" DeprecationWarning
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*copy keyword.*")
        return mask_util.decode(r).astype(bool)


def _rle_to_str(rle: dict) -> dict:
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def _split_file_name(file_name: str) -> tuple[str, str]:
    """``"Impressionism/monet_x.jpg"`` -> ``("Impressionism", "monet_x")``."""
    p = PurePosixPath(str(file_name).replace("\\", "/"))
    name = p.name
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        name = name[: -len(p.suffix)]
    parent = str(p.parent)
    return ("" if parent == "." else parent), name


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


def _category_map(cats: Any, report: DataReport) -> dict[int, str | None]:
    out: dict[int, str | None] = {}
    for c in cats if isinstance(cats, list) else []:
        if not isinstance(c, dict) or "id" not in c:
            continue
        try:
            out[int(c["id"])] = parse_emotion(str(c.get("name", "")))
        except (UnknownEmotionError, TypeError, ValueError):
            out[int(c["id"])] = None
            report.notes.append(f"COCO category {c.get('id')} {c.get('name')!r} is not an ArtEmis emotion")
    return out


def _read_masks(
    path: Path, report: DataReport
) -> tuple[dict[tuple[str, str], dict], dict[tuple[str, str], list[dict]]]:
    """Read a COCO stimulus-mask file.

    Returns ``(images, anns)``: ``images[(art_style, painting)] = {"file_name", "height", "width"}``
    and ``anns[(art_style, painting)] = [{"emotion", "rle", "motif"}, ...]`` (RLE counts as str).
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtEmisFormatError(f"The masks file {path} is not valid JSON ({e})", report) from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(
        data.get("annotations"), list
    ):
        raise ArtEmisFormatError(
            f"The masks file {path} is not COCO JSON: expected an object with 'images' and "
            "'annotations' lists",
            report,
        )
    cat_map = _category_map(data.get("categories"), report)

    images: dict[int, dict] = {}
    for im in data["images"]:
        try:
            image_id = int(im["id"])
            file_name = str(im["file_name"])
            h, w = int(im["height"]), int(im["width"])
            if h <= 0 or w <= 0:
                raise ValueError("non-positive size")
        except (KeyError, TypeError, ValueError) as e:
            report.skip("bad_image_entry", f"{str(im)[:80]} ({type(e).__name__}: {e})")
            continue
        images[image_id] = {"id": image_id, "file_name": file_name, "height": h, "width": w}

    clean_anns = []
    for ann in data["annotations"]:
        if not isinstance(ann, dict):
            report.skip("bad_annotation", f"not an object: {str(ann)[:60]}")
            continue
        try:
            image_id = int(ann["image_id"])
            cid = int(ann["category_id"])
        except (KeyError, TypeError, ValueError):
            report.skip("bad_annotation", f"annotation {ann.get('id')}: missing image_id/category_id")
            continue
        if image_id not in images:
            report.skip("bad_annotation", f"annotation {ann.get('id')}: unknown image_id {image_id}")
            continue
        if cid in cat_map:
            emotion = cat_map[cid]
        else:
            emotion = ARTEMIS_EMOTIONS[cid - 1] if 1 <= cid <= NUM_EMOTIONS else None
        if emotion is None:
            report.skip("unknown_category", f"annotation {ann.get('id')}: category_id {cid}")
            continue
        if not ann.get("segmentation"):
            report.skip("bad_annotation", f"annotation {ann.get('id')}: no segmentation")
            continue
        clean_anns.append({**ann, "image_id": image_id, "category_id": cid, "_emotion": emotion})

    coco = COCO()
    coco.dataset = {"images": list(images.values()), "annotations": clean_anns, "categories": []}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()

    out_images: dict[tuple[str, str], dict] = {}
    for im in images.values():
        out_images.setdefault(_split_file_name(im["file_name"]), im)
    anns: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for ann in clean_anns:
        im = images[ann["image_id"]]
        where = f"annotation {ann.get('id')} on {im['file_name']}"
        seg = ann["segmentation"]
        if isinstance(seg, dict) and isinstance(seg.get("size"), (list, tuple)):
            try:
                size_ok = [int(seg["size"][0]), int(seg["size"][1])] == [im["height"], im["width"]]
            except (TypeError, ValueError, IndexError):
                size_ok = False
            if not size_ok:
                report.skip(
                    "mask_size_mismatch",
                    f"{where}: RLE size {seg.get('size')} vs image {im['height']}x{im['width']}",
                )
                continue
        try:
            rle = coco.annToRLE(ann)
            area = float(mask_util.area(rle))
        except Exception as e:
            report.skip("bad_annotation", f"{where}: undecodable segmentation ({type(e).__name__}: {e})")
            continue
        if area <= 0:
            report.skip("empty_mask", where)
            continue
        motif = ann.get("motif")
        anns[_split_file_name(im["file_name"])].append(
            {"emotion": ann["_emotion"], "rle": _rle_to_str(rle), "motif": None if motif is None else str(motif)}
        )
    return out_images, anns


def load_artemis(
    root: str | Path,
    csv: str | Path | None = "artemis_dataset_release_v0.csv",
    image_root: str | Path = "images",
    masks: str | Path | None = "stimulus_masks.json",
    check_images: bool | str = True,
) -> ArtEmisData:
    """Load an ArtEmis-style data set (CSV + optional COCO stimulus masks + images).

    Args:
        root: the data folder; ``csv``, ``image_root`` and ``masks`` are relative to it (or
            absolute).
        csv: the ArtEmis CSV, or ``None`` for a mask-only set.
        image_root: folder with ``{art_style}/{painting}.jpg`` (``.jpeg``/``.png`` also found).
        masks: COCO JSON of stimulus masks; ``None`` or a missing file -> text only.
        check_images: ``True`` reads each image header once (missing/unreadable images, mask
            size mismatch); ``"full"`` also decodes each image fully (finds truncated files);
            ``False`` checks nothing.

    Raises:
        FileNotFoundError: ``root`` or the CSV does not exist.
        ArtEmisFormatError: the CSV lacks a required column or the masks file is not COCO JSON.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder {root} not found; pass the folder holding the ArtEmis CSV and images")
    csv_path = _resolve(root, csv)
    masks_path = _resolve(root, masks)
    img_root = _resolve(root, image_root)
    if img_root is None:
        raise ValueError("image_root must be a folder (relative to root or absolute), not None")
    report = DataReport(root=str(root))
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

    rows: dict[tuple[str, str], list[tuple[str, str]]] = {}
    if csv_path is not None:
        rows, _ = _read_csv(csv_path, report)
    coco_images: dict[tuple[str, str], dict] = {}
    anns: dict[tuple[str, str], list[dict]] = {}
    if masks_path is not None:
        coco_images, anns = _read_masks(masks_path, report)
    report.annotations = sum(len(a) for a in anns.values())

    samples: list[StimulusSample] = []
    counts: dict[str, np.ndarray] = {}
    ann_out: dict[str, list[dict]] = {}
    full = isinstance(check_images, str) and check_images.lower() == "full"
    keys = sorted(set(rows) | set(anns))
    show = bool(check_images) and len(keys) >= 2000 and sys.stderr.isatty()
    for art_style, painting in tqdm(keys, desc="checking images", disable=not show):
        key = f"{art_style}/{painting}"
        prow = rows.get((art_style, painting), [])
        pann = list(anns.get((art_style, painting), []))
        base = img_root / art_style / painting
        path = find_image(base, PAINTING_EXTENSIONS)
        coco_im = coco_images.get((art_style, painting))
        if path is None and coco_im is not None and (img_root / coco_im["file_name"]).is_file():
            path = img_root / coco_im["file_name"]
        height = width = None
        if coco_im is not None:
            height, width = coco_im["height"], coco_im["width"]
        if check_images:
            if path is None:
                report.skip("missing_image", f"{key} (looked for {base}.jpg/.jpeg/.png)")
                report.dropped_rows += len(prow)
                report.dropped_annotations += len(pann)
                continue
            try:
                if full:
                    arr = load_image(path)
                    ih, iw = arr.shape[:2]
                else:
                    ih, iw = image_size(path)
            except ImageLoadError as e:
                report.skip("unreadable_image", str(e))
                report.dropped_rows += len(prow)
                report.dropped_annotations += len(pann)
                continue
            if pann and (ih, iw) != (height, width):
                report.skip(
                    "mask_size_mismatch",
                    f"{key}: masks are {height}x{width}, image is {ih}x{iw}",
                    count=len(pann),
                )
                pann = []
            height, width = ih, iw
        elif path is None:
            path = Path(str(base) + ".jpg")

        c = np.zeros(NUM_EMOTIONS, dtype=np.int64)
        utts: dict[str, list[str]] = defaultdict(list)
        for emotion, utt in prow:
            c[EMOTION_TO_INDEX[emotion]] += 1
            utts[emotion].append(utt)
        by_emotion: dict[str, list[dict]] = defaultdict(list)
        for a in pann:
            by_emotion[a["emotion"]].append(a["rle"])
        emotions = sorted(set(utts) | set(by_emotion), key=EMOTION_TO_INDEX.__getitem__)
        if not emotions:
            continue
        if prow:
            counts[key] = c
        ann_out[key] = pann
        for emotion in emotions:
            rles = by_emotion.get(emotion, [])
            mask_rle = None
            if len(rles) == 1:
                mask_rle = rles[0]
            elif rles:
                mask_rle = _rle_to_str(mask_util.merge([_as_bytes(r) for r in rles], intersect=0))
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
    return ArtEmisData(root, samples, report, counts, ann_out)


def _as_bytes(rle: dict) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


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
