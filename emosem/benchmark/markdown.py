"""The benchmark report as Markdown: the machine line, then one table per part (stages,
throughput, ratios, emotions per call, weight packing, image and encoder sizes, training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emosem.benchmark.timing import fmt_s
from emosem.machine import machine_line

__all__ = ["RATIO_LABELS", "STAGE_LABELS", "to_markdown"]

# Short labels for the Markdown table (the JSON keeps the long descriptions).
STAGE_LABELS = {
    "cold_start_import_torch": 'reference: new process `python -c "import torch"` → exit',
    "cold_start": "cold start: new process → exit",
    "cold_start_first_result": "cold start: new process → first result",
    "cold_start_reported": "cold start as infer reports it (after imports)",
    "cold_start_masks": "cold start, masks only (--no-explain): new process → exit",
    "cold_start_masks_first_result": "cold start, masks only: new process → first mask",
    "cold_start_masks_reported": "cold start, masks only, as infer reports it",
    "encode": "encode (preprocess + image encoder)",
    "decode": "decode, 1 emotion (+ upsampling)",
    "explain": "explain, 1 emotion",
    "plain_generate": "plain LM generate, same length",
    "end_to_end": "end to end, 1 emotion (file → mask + text)",
    "emosem_mask": "EmoSEM mask path (encoder + emotion prompt + decoder)",
    "sam_point_mask": "SAM mask path (encoder + point + decoder)",
    "emosem_decode_only": "EmoSEM emotion prompt + decoder",
    "sam_point_decode_only": "SAM point prompt + decoder",
}
RATIO_LABELS = {
    "nine_vs_one_decode": "(a) 9 emotions in one call ÷ 1, decode",
    "nine_vs_one_decoder_only": "(a) 9 ÷ 1, bare decoder (diagnostic)",
    "nine_vs_one_explain": "(a) 9 emotions in one call ÷ 1, decode + explanations",
    "nine_vs_one_with_encode": "(a) 9 ÷ 1 for a new image (encode included)",
    "nine_vs_one_sam_points": "(a) reference: plain SAM, 9 point prompts in one call ÷ 1",
    "nine_vs_one_explain_plain_linear": "(a) decode + explanations without weight packing",
    "packing_speedup_1": "weight packing: speed-up of 1 emotion with explanation",
    "packing_speedup_9": "weight packing: speed-up of 9 emotions with explanations",
    "explain_vs_plain_generate": "(b) explanation tokens/s ÷ plain generate tokens/s",
    "lm_runtime_speedup": "explanation tokens/s: the LM runtime (ONNX Runtime) ÷ torch",
    "collection_speedup": "collection images/s (--emotion all, explanations): LM runtime ÷ torch",
    "mask_path_vs_sam": "(c) EmoSEM mask path ÷ SAM with a point prompt",
    "mask_decode_vs_sam_decode": "(c) the same without the shared encoder",
}

THROUGHPUT_LABELS = {
    "images_per_s": "images/s (end to end, one emotion)",
    "tokens_per_s": "explanation tokens/s (batch 1)",
    "plain_generate_tokens_per_s": "plain generate tokens/s (same LM, batch 1)",
    "tokens_per_s_9_in_one_call": "tokens/s, 9 emotions in one call (incl. decode)",
    "tokens_per_s_lm_runtime": "explanation tokens/s through the LM runtime (batch 1)",
    "tokens_per_s_torch": "explanation tokens/s through torch (batch 1, beside it)",
}
COLLECTION_PREFIX = "collection_images_per_s_"


def _fmt_mb(entry: dict[str, Any]) -> str:
    parts = []
    if entry.get("rss_peak_increase_mb") is not None:
        parts.append(f"{entry['rss_peak_increase_mb']:.0f} MB")
    if entry.get("cuda_peak_increase_mb") is not None:
        parts.append(f"GPU {entry['cuda_peak_increase_mb']:.0f} MB")
    if entry.get("child_peak_rss_mb") is not None:
        parts.append(f"process peak {entry['child_peak_rss_mb']:.0f} MB")
    return ", ".join(parts) or "–"


def _header(report: dict[str, Any]) -> list[str]:
    m, st, mo = report.get("machine", {}), report.get("settings", {}), report.get("model", {})
    lines = [f"**Machine:** {m.get('line') or machine_line(m)}  "]
    if mo:
        lines.append(
            f"**Model:** `{Path(str(mo.get('checkpoint', '?'))).name}` — {mo.get('segmenter')} "
            f"({mo.get('image_size')} px), LM `{Path(str(mo.get('lm', '?'))).name}`, "
            f"prefix {mo.get('prefix_length')}  ")
    hw = st.get("image_hw")
    lines.append(
        f"**Run:** median of {st.get('repeats')} timed calls after {st.get('warmup')} warm-up"
        f"{', image ' + str(hw[0]) + '×' + str(hw[1]) if hw else ''}, "
        f"{st.get('max_new_tokens')} new tokens per explanation"
        f"{' (--quick)' if st.get('quick') else ''}")
    return lines + [""]


def _stages(report: dict[str, Any]) -> list[str]:
    stages = report.get("stages", {})
    if not stages:
        return []
    lines = ["| Stage | median | p90 | min | peak memory rise |", "|---|---:|---:|---:|---:|"]
    for name, e in stages.items():
        lines.append(f"| {STAGE_LABELS.get(name, name)} | {fmt_s(e.get('median_s'))} | "
                     f"{fmt_s(e.get('p90_s'))} | {fmt_s(e.get('min_s'))} | {_fmt_mb(e)} |")
    return lines + [""]


def _throughput(report: dict[str, Any]) -> list[str]:
    tp = report.get("throughput", {})
    if not tp:
        return []
    lines = ["| Throughput | value |", "|---|---:|"]
    for key, label in THROUGHPUT_LABELS.items():
        if key in tp:
            lines.append(f"| {label} | {tp[key]:.2f} |")
    for key in (k for k in tp if k.startswith(COLLECTION_PREFIX)):
        runtime = key.removeprefix(COLLECTION_PREFIX).replace("_", "-")
        lines.append(f"| collection images/s, `--emotion all` with explanations ({runtime}) | {tp[key]:.3f} |")
    for key, value in (tp.get("train_samples_per_s") or {}).items():
        stage, b = key.split("@")
        lines.append(f"| training samples/s (stage {stage}, batch {b}) | {value:.2f} |")
    return lines + [""]


def _ratios(report: dict[str, Any]) -> list[str]:
    ratios = report.get("ratios", {})
    if not ratios:
        return []
    lines = ["| Ratio | value | target | met |", "|---|---:|---:|:---:|"]
    order = list(RATIO_LABELS)
    for key, r in sorted(ratios.items(),
                         key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
        met = {True: "yes", False: "**no**", None: "–"}[r.get("meets_target")]
        lines.append(f"| {RATIO_LABELS.get(key, r.get('description', key))} | {r['value']:.2f}× | "
                     f"{r.get('target') or '–'} | {met} |")
    return lines + [""]


def _emotions(sc: dict[str, Any]) -> list[str]:
    if not sc.get("emotions"):
        return []
    lines = ["| Emotions per call | decoder only | SAM, as many point prompts | decode | "
             "decode + explain | memory rise (explain) |", "|---:|---:|---:|---:|---:|---:|"]
    for row in sc["emotions"]:
        core = row.get("decoder_only", {}).get("median_s")
        sam = row.get("sam_point_prompts", {}).get("median_s")
        lines.append(f"| {row['num_emotions']} | {fmt_s(core)} | {fmt_s(sam)} | "
                     f"{fmt_s(row['decode']['median_s'])} | "
                     f"{fmt_s(row['decode_explain']['median_s'])} | "
                     f"{_fmt_mb(row['decode_explain'])} |")
    return lines + [""]


def _packing(sc: dict[str, Any]) -> list[str]:
    wp = sc.get("weight_packing")
    if not wp:
        return []
    lines = [f"| LM weights ({wp['packed_layers']} linears) | explain, 1 emotion | "
             "explain, 9 emotions | 9 ÷ 1 |", "|---|---:|---:|---:|"]
    for label, key in (("oneDNN-prepacked (as the predictor runs torch)", "packed"),
                       ("plain nn.Linear", "plain_linear")):
        one, nine = wp[key]["explain@1"]["median_s"], wp[key]["explain@9"]["median_s"]
        lines.append(f"| {label} | {fmt_s(one)} | {fmt_s(nine)} | {nine / one:.2f}× |")
    return lines + [""]


def _sizes(sc: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if sc.get("image_size"):
        lines += ["| Input image (longest side) | encode | decode | total | memory rise (encode) |",
                  "|---:|---:|---:|---:|---:|"]
        for row in sc["image_size"]:
            lines.append(f"| {row['size']} ({row['image_hw'][0]}×{row['image_hw'][1]}) | "
                         f"{fmt_s(row['encode']['median_s'])} | "
                         f"{fmt_s(row['decode']['median_s'])} | "
                         f"{fmt_s(row['total_median_s'])} | {_fmt_mb(row['encode'])} |")
        lines.append("")
    if sc.get("encoder_input_size"):
        lines += ["| Encoder input (random weights) | tokens | encode | memory rise |",
                  "|---:|---:|---:|---:|"]
        for row in sc["encoder_input_size"]:
            lines.append(f"| {row['img_size']}² | {row['tokens']} | "
                         f"{fmt_s(row['encode']['median_s'])} | {_fmt_mb(row['encode'])} |")
        lines.append("")
    return lines


def _training(report: dict[str, Any]) -> list[str]:
    tr = report.get("training", [])
    if not tr:
        return []
    lines = ["| Training step | batch | median | samples/s | memory rise |",
             "|---|---:|---:|---:|---:|"]
    for row in tr:
        lines.append(f"| stage {row['stage']} | {row['batch_size']} | "
                     f"{fmt_s(row['step']['median_s'])} | {row['samples_per_s']:.2f} | "
                     f"{_fmt_mb(row['step'])} |")
    return lines + [""]


def _footer(report: dict[str, Any]) -> list[str]:
    lines = []
    mem = report.get("memory", {})
    if mem:
        extra = (f", GPU max allocated {mem['cuda_max_allocated_mb']:.0f} MB"
                 if mem.get("cuda_max_allocated_mb") is not None else "")
        lines.append(f"Peak RSS of the benchmark process {mem.get('process_peak_rss_mb')} MB"
                     f"{extra}; per-stage memory: {mem.get('method_note', mem.get('method'))}.")
    for err in report.get("errors", []):
        lines.append(f"\n**Failed:** {err['section']}: {err['error']}")
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (machine line, stage/throughput/ratio/scaling/training tables)."""
    sc = report.get("scaling", {})
    lines = (_header(report) + _stages(report) + _throughput(report) + _ratios(report)
             + _emotions(sc) + _packing(sc) + _sizes(sc) + _training(report) + _footer(report))
    return "\n".join(lines).rstrip() + "\n"
