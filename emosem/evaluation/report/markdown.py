"""``report.md`` (:func:`markdown_report`) and the terminal summary (:func:`format_summary`),
both made from the report dict alone, one function per section."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from emosem.evaluation.sections.explanations import CAPTION_KEYS, TEXT_BASELINES
from emosem.evaluation.sections.segmentation import MASK_BASELINES

__all__ = ["format_summary", "markdown_report"]

ALIGNMENT_NOTE = (
    "Emotional alignment, ArtEmis protocol: one explanation per painting "
    "({n} paintings, {n_dominant} with a dominant emotion), the "
    "model grounded on its emotion head's top emotion, the baselines told no emotion "
    "(retrieval: the consensus of the nearest train paintings' utterances of any "
    "emotion; typical utterance: the medoid of all train utterances). The text-emotion "
    "classifier labels each; `accuracy_dominant` is against the dominant annotator "
    "emotion, `cross_entropy` and `kl` against the annotator distribution. "
    "`accuracy_asked`: the share of the (painting, emotion) explanations labelled with "
    "the asked emotion (a retrieved utterance of that emotion scores 1 by construction, "
    "so it is not compared)."
)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _has_explanations(ex: dict | None) -> bool:
    return bool(ex and (ex.get("n") or (ex.get("emotional_alignment") or {}).get("n")))


def _header(report: dict) -> list[str]:
    d = report["data"]
    return [
        f"# EmoSEM evaluation — `{Path(report['checkpoint']).name}` on {report['split']}",
        "",
        f"- checkpoint: `{report['checkpoint']}`",
        f"- data: `{d['root']}` (split `{report['split']}`, ratios {d['split_ratios']}, "
        f"seed {d['split_seed']}; {d['source']})",
        f"- {report['n_samples']} samples on {report['n_paintings']} paintings; "
        f"{report['n_failed']} painting(s) failed",
        f"- baselines and classifier fitted on the train split of `{report['fit']['data']}`"
        + (" (**overlaps the evaluated samples**)" if report["fit"]["overlaps_evaluated"] else ""),
        f"- {report['seconds']:.1f} s on {report['machine']['device']} "
        f"({report['machine']['num_processes']} process(es)); "
        f"{report['settings'].get('decoding', 'greedy')} decoding, seed {report['settings']['seed']}",
        "",
    ]


def _segmentation_md(report: dict) -> list[str]:
    seg, bl = report.get("segmentation"), report["baselines"]
    if not seg:
        return []
    L = ["## Segmentation", ""]
    names = ["model"] + [n for n in MASK_BASELINES if n in bl]
    secs = [seg] + [bl[n]["segmentation"] for n in names[1:]]
    rows = [[metric] + [s["overall"][metric] for s in secs]
            for metric in ("gIoU", "cIoU", "F_beta", "MAE")]
    rows.append(["correct motif"] + [s["correct_motif_rate"] for s in secs])
    rows.append(
        ["correct motif (≥2 emotions)"] + [s["correct_motif_rate_multi_emotion"] for s in secs]
    )
    rows.append(["n"] + [s["overall"]["n"] for s in secs])
    L += _table(["metric", *names], rows)
    L += ["F_beta: β² = 0.3 on the binary mask; MAE on the soft map (lower is better).", ""]
    L += ["### Per emotion (gIoU / cIoU)", ""]
    per_rows = []
    for e, m in seg["per_emotion"].items():
        row = [e, m["n"], m["gIoU"], m["cIoU"]]
        for n in names[1:]:
            row.append((bl[n]["segmentation"]["per_emotion"].get(e) or {}).get("gIoU"))
        per_rows.append(row)
    L += _table(["emotion", "n", "gIoU", "cIoU", *[f"{n} gIoU" for n in names[1:]]], per_rows)
    L += ["![per-emotion IoU](per_emotion_iou.png)", "", "![IoU histogram](iou_hist.png)", ""]
    return L


def _text_baseline_scores(report: dict) -> list[dict]:
    bl = report["baselines"]
    return [(bl.get(n) or {}).get("explanations") or {} for n in TEXT_BASELINES]


def _per_emotion_captions_md(ex: dict, bls: list[dict]) -> list[str]:
    pe = ex.get("per_emotion") or {}
    if not pe:
        return []
    L = ["### Per emotion (mean sentence-level METEOR / CIDEr)", ""]
    short = [n.split("_")[0] for n in TEXT_BASELINES]
    per_rows = []
    for e, m in pe.items():
        others = [((b.get("per_emotion") or {}).get(e) or {}) for b in bls]
        per_rows.append([e, m["n"], m["METEOR"], *[o.get("METEOR") for o in others],
                         m["CIDEr"], *[o.get("CIDEr") for o in others]])
    L += _table(["emotion", "n", "METEOR", *[f"{n} METEOR" for n in short],
                 "CIDEr", *[f"{n} CIDEr" for n in short]], per_rows)
    return L


def _explanations_md(report: dict) -> list[str]:
    ex = report.get("explanations")
    if not _has_explanations(ex):
        return []
    L = ["## Explanations", ""]
    bls = _text_baseline_scores(report)
    rows = [[k, ex.get(k), *[b.get(k) for b in bls]] for k in CAPTION_KEYS]
    rows.append(["names the motif", ex.get("names_motif_rate"),
                 *[b.get("names_motif_rate") for b in bls]])
    als = [ex.get("emotional_alignment") or {}] + [b.get("emotional_alignment") or {}
                                                    for b in bls]
    for k in ("accuracy_dominant", "accuracy_asked", "cross_entropy", "kl"):
        rows.append([f"alignment {k}", *[a.get(k) for a in als]])
    fas = [ex.get("faithfulness") or {}] + [b.get("faithfulness") or {} for b in bls]
    for k in ("colour", "position"):
        rows.append([f"leak check: {k} words agree with the cues the decoder read", *[f.get(k) for f in fas]])
    oracle = ex.get("faithfulness_oracle") or {}
    for k, label in (("colour", "colour words true (independent oracle, ground truth)"),
                     ("position", "position phrases true (independent oracle, ground truth)"),
                     ("names_absent_thing", "names a thing that is not the motif (oracle)")):
        rows.append([label, oracle.get(k), *[None for _ in bls]])
    L += _table(["metric", "model", *[f"{n.replace('_', ' ')} baseline" for n in TEXT_BASELINES]],
                rows)
    al = ex.get("emotional_alignment") or {}
    L += [
        f"Tokenizer: {ex.get('tokenizer')}; {ex.get('n')} explanations scored against all "
        "references of their (painting, emotion).",
        "",
        ALIGNMENT_NOTE.format(n=al.get("n"), n_dominant=al.get("n_dominant")),
        "",
    ]
    if al.get("skipped"):
        L.append(f"- skipped emotional alignment: {al['skipped']}")
    for comp, why in (ex.get("skipped") or {}).items():
        L.append(f"- skipped {comp}: {why}")
    L.append("")
    return L + _per_emotion_captions_md(ex, bls)


def _recognition_rows(er: dict) -> list[tuple[str, list[Any]]]:
    """(label, [model, majority emotion, train prior]) rows of the emotion head."""
    maj, pri = er.get("majority_baseline") or {}, er.get("prior_baseline") or {}
    return [
        ("accuracy (dominant)",
         [er["accuracy_dominant"], maj.get("accuracy_dominant"), pri.get("accuracy_dominant")]),
        ("cross-entropy", [er["cross_entropy"], None, pri.get("cross_entropy")]),
        ("KL", [er["kl"], None, pri.get("kl")]),
    ]


def _recognition_md(report: dict) -> list[str]:
    er = report.get("emotion_recognition")
    if not er:
        return []
    L = ["## Emotion recognition (emotion head)", ""]
    rows = [[label, *values] for label, values in _recognition_rows(er)]
    rows.append(["paintings (with a dominant emotion)", f"{er['n']} ({er['n_dominant']})",
                 None, None])
    L += _table(["metric", "model", "majority emotion", "train prior"], rows)
    maj = er.get("majority_baseline") or {}
    if maj:
        L += [f"Majority emotion of the train paintings: {maj['emotion']}.", ""]
    return L


def _baselines_md(report: dict) -> list[str]:
    bl = report["baselines"]
    entries = {k: v for k, v in bl.items() if k != "beats_baselines"}
    rows = [[name, metric, c["model"], c["baseline"], c["difference"], c["model_better"]]
            for name, entry in entries.items() for metric, c in entry["comparison"].items()]
    L = ["## Against the baselines", ""]
    L += _table(
        ["baseline", "metric", "model", "baseline", "model − baseline", "model better"], rows
    )
    L += [
        "Beats (better on every compared metric; lower is better for cross-entropy and KL): "
        + ", ".join(f"{k}: {_fmt(v)}" for k, v in bl["beats_baselines"].items()),
        "",
    ]
    L += [f"- **{name}**: {entry['description']}" for name, entry in entries.items()]
    return L + [""]


def _overlays_md(report: dict) -> list[str]:
    overlays = [f for f in report.get("files", []) if f.startswith(("best_", "worst_"))]
    if not overlays:
        return []
    L = ["## Best and worst samples", "", "White contour: ground truth; colour: prediction.", ""]
    return L + [f"![{f}]({f})" for f in overlays] + [""]


def _failed_md(report: dict) -> list[str]:
    if not report["failed"]:
        return []
    return ["## Failed paintings", ""] + [
        f"- {f['painting']}: {f['reason']}" for f in report["failed"]
    ]


MARKDOWN_SECTIONS: tuple[Callable[[dict], list[str]], ...] = (
    _header, _segmentation_md, _explanations_md, _recognition_md, _baselines_md, _overlays_md,
    _failed_md,
)


def markdown_report(report: dict) -> str:
    """A readable Markdown summary of a report (what ``report.md`` holds)."""
    lines = [line for section in MARKDOWN_SECTIONS for line in section(report)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- terminal summary


def _block(title: str, names: Sequence[str], rows: list[tuple[str, list[Any]]]) -> list[str]:
    lines = [f"{title:<30}" + "".join(f"{n:>18}" for n in names)]
    for label, vals in rows:
        lines.append(f"  {label:<28}" + "".join(f"{_fmt(v):>18}" for v in vals))
    return lines


def _segmentation_summary(report: dict) -> list[str]:
    seg, bl = report.get("segmentation"), report.get("baselines", {})
    if not seg:
        return []
    secs = [seg] + [(bl.get(n) or {}).get("segmentation") or {}
                    for n in ("centre_prior", "emotion_agnostic")]
    rows = [(m, [(s.get("overall") or {}).get(m) for s in secs])
            for m in ("gIoU", "cIoU", "F_beta", "MAE")]
    if seg.get("correct_motif_rate") is not None:
        rows.append(("correct motif", [s.get("correct_motif_rate") for s in secs]))
        rows.append(("correct motif (≥2 emotions)",
                     [s.get("correct_motif_rate_multi_emotion") for s in secs]))
    return _block(f"segmentation (n={seg['overall']['n']})",
                  ["model", "centre prior", "emotion-agnostic"], rows)


def _explanations_summary(report: dict) -> list[str]:
    ex = report.get("explanations")
    if not _has_explanations(ex):
        return []
    bl = report.get("baselines", {})
    secs = [ex] + [(bl.get(n) or {}).get("explanations") or {} for n in TEXT_BASELINES]
    rows = [(k, [s.get(k) for s in secs]) for k in CAPTION_KEYS]
    if ex.get("names_motif_rate") is not None:
        rows.append(("names the motif", [s.get("names_motif_rate") for s in secs]))
    als = [s.get("emotional_alignment") or {} for s in secs]
    rows.append(("alignment acc. (dominant)", [a.get("accuracy_dominant") for a in als]))
    rows.append(("alignment cross-entropy", [a.get("cross_entropy") for a in als]))
    fas = [s.get("faithfulness") or {} for s in secs]
    rows.append(("colour leak check", [f.get("colour") for f in fas]))
    rows.append(("position leak check", [f.get("position") for f in fas]))
    oracles = [s.get("faithfulness_oracle") or {} for s in secs]
    rows.append(("colour true (oracle)", [o.get("colour") for o in oracles]))
    rows.append(("position true (oracle)", [o.get("position") for o in oracles]))
    return _block(f"explanations (n={ex.get('n')})",
                  ["model", "retrieval (NN)", "typical utt."], rows)


def _recognition_summary(report: dict) -> list[str]:
    er = report.get("emotion_recognition")
    if not er:
        return []
    return _block(f"emotion head (n={er['n']})", ["model", "majority", "train prior"],
                  _recognition_rows(er)[:2])


def format_summary(report: dict) -> str:
    """A short plain-text table for the terminal: the model beside its baselines."""
    lines = (_segmentation_summary(report) + _explanations_summary(report)
             + _recognition_summary(report))
    beats = report.get("baselines", {}).get("beats_baselines", {})
    lines.append("beats baselines: " + ", ".join(f"{k}={_fmt(v)}" for k, v in beats.items()))
    return "\n".join(lines)
