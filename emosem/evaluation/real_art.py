"""The real-art report: what a run of the toolkit says about real paintings, checked against each
painting's list of visible things and plausible emotions (``visible.json``, as in
``../shared/art/``) and against the pixels, by the independent oracle
(:mod:`emosem.evaluation.oracle`).

It reads a run's outputs (each image's ``results.json``, written by ``tools/infer.py`` or a
collection run), so it scores any checkpoint's run; :mod:`emosem.evaluation.real_art_cli` can
also make the run first. Per explanation: the things it names that the painting does not show,
its colour and position words by the oracle, the words the decoder should have kept out by its
own cues (a leak count), words no dictionary knows (a decoder steering round banned words),
the region's share of the canvas and its connected parts. Per
painting: the top emotion of ``emotion_distribution`` and whether it, or one of the top three,
is among the plausible ones; the in-domain score where the results carry one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emosem.data.cue_words import COLOUR_WORDS, POSITION_WORDS, leaked_words
from emosem.evaluation.oracle import check_explanation, non_words, present_things

__all__ = [
    "DEFAULT_EMOTIONS", "MAX_PARTS", "MIN_REGION_SHARE", "ExplanationRow", "PaintingRow",
    "PaintingTruth", "RealArtError", "load_truth", "report_markdown", "score_results", "summarize",
]

DEFAULT_EMOTIONS = ("awe", "fear", "sadness", "contentment")
# A region a viewer can point at: at least this share of the canvas, in at most this many parts.
MIN_REGION_SHARE, MAX_PARTS = 0.02, 3


class RealArtError(ValueError):
    """Bad input to the report (a missing or malformed list, a folder without results)."""


@dataclass(frozen=True)
class PaintingTruth:
    """What a painting shows and the emotions a typical viewer would plausibly name."""

    visible: frozenset[str]
    plausible: frozenset[str]


@dataclass
class ExplanationRow:
    """One explained region, checked."""

    image: str
    emotion: str
    explanation: str
    area_share: float
    parts: int
    absent_things: list[str]
    colours: dict[str, bool]
    positions: dict[str, bool]
    leaks: list[str]
    non_words: list[str] = field(default_factory=list)

    @property
    def pointable(self) -> bool:
        return self.area_share >= MIN_REGION_SHARE and 1 <= self.parts <= MAX_PARTS


@dataclass
class PaintingRow:
    """One painting's emotion ranking, checked."""

    image: str
    ranking: list[str]
    plausible: list[str]
    in_domain: float | None = None
    regions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def top1_plausible(self) -> bool:
        return bool(self.ranking) and self.ranking[0] in self.plausible

    @property
    def top3_plausible(self) -> bool:
        return bool(set(self.ranking[:3]) & set(self.plausible))


def load_truth(path: Path) -> dict[str, PaintingTruth]:
    """Read a ``visible.json``-like list: ``{file name: {"visible": [...],
    "plausible_emotions": [...]}}``."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise RealArtError(f"cannot read the list of visible things {path}: {e}") from None
    if not isinstance(raw, dict):
        raise RealArtError(f"{path}: expected an object of file name → {{visible, plausible_emotions}}")
    out = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("visible"), list):
            raise RealArtError(f"{path}: {name!r} has no 'visible' list")
        out[name] = PaintingTruth(frozenset(w.lower() for w in entry["visible"]),
                                  frozenset(e.lower() for e in entry.get("plausible_emotions", [])))
    return out


def connected_parts(mask: np.ndarray) -> int:
    """Number of 8-connected parts of a mask [H, W] bool."""
    import cv2

    n, _ = cv2.connectedComponents(np.asarray(mask, dtype=np.uint8), connectivity=8)
    return int(n) - 1


def _in_domain(value: Any) -> float | None:
    """A results record's ``in_domain`` (a number or ``{"score": ...}``), or None."""
    if isinstance(value, Mapping):
        value = value.get("score")
    return float(value) if isinstance(value, (int, float)) else None


def _results_files(run: Path) -> list[Path]:
    files = sorted(p for p in Path(run).rglob("results.json") if ".emosem" not in p.parts)
    if not files:
        raise RealArtError(f"{run} holds no results.json; run tools/infer.py on the paintings first "
                           "(or give the paintings folder to make the run)")
    return files


def _painting_image(record: Mapping, images: Path | None) -> np.ndarray:
    from emosem.data.image_io import load_image

    src = Path(images) / record["image"] if images else Path(record["source"])
    return load_image(src, max_pixels=None)


def score_results(run: Path, truth: Mapping[str, PaintingTruth], images: Path | None = None
                  ) -> tuple[list[PaintingRow], list[ExplanationRow]]:
    """Check every painting of a run folder that the list knows (``images``: where the paintings
    are, default each result's recorded ``source``)."""
    from emosem.data.rle import decode_rle

    paintings, explained = [], []
    for path in _results_files(run):
        record = json.loads(path.read_text(encoding="utf-8"))
        name = Path(record["image"]).name
        if name not in truth:
            continue
        known = truth[name]
        dist = record.get("emotion_distribution") or {}
        row = PaintingRow(name, sorted(dist, key=dist.get, reverse=True), sorted(known.plausible),
                          _in_domain(record.get("in_domain", record.get("in_domain_score"))))
        image = None
        present = present_things(known.visible)
        for res in record.get("results", []):
            mask = decode_rle(res["segmentation"]).astype(bool)
            share, parts = float(mask.mean()), connected_parts(mask)
            row.regions.append({"emotion": res["emotion"], "area_share": share, "parts": parts,
                                "in_domain": _in_domain(res.get("in_domain"))})
            text = res.get("explanation")
            if not text:
                continue
            image = _painting_image(record, images) if image is None else image
            v = check_explanation(text, image, mask, present)
            explained.append(ExplanationRow(name, res["emotion"], text, share, parts, v.absent_things,
                                            v.colours, v.positions, leaked_words(text, res.get("cues") or {}),
                                            non_words(text)))
        paintings.append(row)
    if not paintings:
        raise RealArtError(f"none of the paintings in {run} is in the list of visible things")
    return paintings, explained


def _share(flags: Iterable[bool]) -> dict[str, float | int | None]:
    flags = list(flags)
    return {"share": sum(flags) / len(flags) if flags else None, "n": len(flags)}


def _leak_kind(word: str) -> str:
    return "colour" if word in COLOUR_WORDS else "position" if word in POSITION_WORDS else "object"


def summarize(paintings: list[PaintingRow], explained: list[ExplanationRow]) -> dict[str, Any]:
    """The report's figures (shares with their counts)."""
    colours = [ok for r in explained for ok in r.colours.values()]
    positions = [ok for r in explained for ok in r.positions.values()]
    scores = [p.in_domain for p in paintings if p.in_domain is not None]
    shares = sorted(r["area_share"] for p in paintings for r in p.regions)
    return {
        "paintings": len(paintings),
        "explanations": len(explained),
        "names_absent_thing": _share(bool(r.absent_things) for r in explained),
        "colour_words_true": _share(colours),
        "position_words_true": _share(positions),
        "explanations_with_leaks": _share(bool(r.leaks) for r in explained),
        "leaked_words": {kind: sum(1 for r in explained for w in r.leaks if _leak_kind(w) == kind)
                         for kind in ("colour", "position", "object")},
        "explanations_with_non_words": _share(bool(r.non_words) for r in explained),
        "pointable_regions": _share(r.pointable for r in explained),
        "region_share_median": float(np.median(shares)) if shares else None,
        "explained_region_parts_median": float(np.median([r.parts for r in explained])) if explained else None,
        "top1_plausible": _share(p.top1_plausible for p in paintings),
        "top3_plausible": _share(p.top3_plausible for p in paintings),
        "in_domain_mean": float(np.mean(scores)) if scores else None,
    }


def report_record(paintings: list[PaintingRow], explained: list[ExplanationRow], **meta: Any) -> dict:
    """The JSON report: ``meta`` (command, commit, machine…), ``summary``, and the rows."""
    return {**meta, "summary": summarize(paintings, explained),
            "paintings": [{**asdict(p), "top1_plausible": p.top1_plausible, "top3_plausible": p.top3_plausible}
                          for p in paintings],
            "explanations": [{**asdict(r), "pointable": r.pointable} for r in explained]}


def _fmt(x: Any) -> str:
    if isinstance(x, dict) and "share" in x:
        return "—" if x["share"] is None else f"{x['share']:.2f} (n={x['n']})"
    if isinstance(x, dict):
        return ", ".join(f"{k} {v}" for k, v in x.items())
    if isinstance(x, float):
        return f"{x:.3f}"
    return "—" if x is None else str(x)


def report_markdown(report: Mapping[str, Any]) -> str:
    """The markdown report: the figures, then each painting and its explanations."""
    s = report["summary"]
    lines = ["# Real-art report", ""]
    from emosem.machine import machine_line

    for key in ("command", "commit", "run", "run_made_by", "machine", "thing_lexicon"):
        value = report.get(key)
        if value:
            lines.append(f"- {key}: `{machine_line(value) if isinstance(value, dict) else value}`")
    lines += ["", "| measure | value |", "| --- | --- |"]
    labels = {
        "names_absent_thing": "explanations naming a thing the painting does not show",
        "colour_words_true": "colour words true (independent pixel check, ≥ 10% of the region)",
        "position_words_true": "position phrases true (independent mask check)",
        "explanations_with_leaks": "explanations with a word their own cues contradict (decoder leak count)",
        "explanations_with_non_words": "explanations with a word no dictionary knows (WordNet)",
        "pointable_regions": f"explained regions ≥ {MIN_REGION_SHARE:.0%} of the canvas in ≤ {MAX_PARTS} parts",
        "top1_plausible": "top emotion plausible", "top3_plausible": "a top-3 emotion plausible",
    }
    for key, value in s.items():
        lines.append(f"| {labels.get(key, key.replace('_', ' '))} | {_fmt(value)} |")
    lines += ["", "| painting | top 3 | plausible | in domain |", "| --- | --- | --- | --- |"]
    for p in report["paintings"]:
        lines.append(f"| {p['image']} | {', '.join(p['ranking'][:3])} | {', '.join(p['plausible'])} | "
                     f"{_fmt(p['in_domain'])} |")
    lines += ["", "| painting | emotion | explanation | absent | colours | positions | region |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["explanations"]:
        verdict = lambda d: ", ".join(f"{k} {'✓' if ok else '✗'}" for k, ok in d.items())  # noqa: E731
        lines.append(f"| {r['image']} | {r['emotion']} | {r['explanation'].replace('|', '/')} | "
                     f"{', '.join(r['absent_things'])} | {verdict(r['colours'])} | {verdict(r['positions'])} | "
                     f"{r['area_share']:.1%}, {r['parts']} parts |")
    return "\n".join(lines) + "\n"
