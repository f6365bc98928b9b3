"""The benchmark driver: :class:`Benchmark` (timing groups, stages, ratios, the section order)
and :func:`run_benchmark` / :func:`write_report`, the Python entry points.

    from emosem.benchmark import BenchmarkSettings, run_benchmark, write_report
    report = run_benchmark(BenchmarkSettings(what="infer", quick=True))
    write_report(report, "outputs/benchmark.json")   # and outputs/benchmark.md
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from emosem.benchmark.inference import InferenceSections
from emosem.benchmark.memory import MEMORY_METHODS, MemoryMonitor
from emosem.benchmark.settings import BenchmarkSettings
from emosem.benchmark.timing import fmt_s, summarize
from emosem.benchmark.training import TrainingSection

logger = logging.getLogger(__name__)

__all__ = ["SCHEMA_VERSION", "TARGETS", "Benchmark", "run_benchmark", "write_report"]

SCHEMA_VERSION = 1
TARGETS = {
    "nine_vs_one_decode": ("max", 2.0),
    "nine_vs_one_explain": ("max", 2.0),
    "explain_vs_plain_generate": ("min", 0.9),
    "lm_runtime_speedup": ("min", 2.5),
    "collection_speedup": ("min", 2.0),
    "mask_path_vs_sam": ("max", 1.1),
}
#: The report's top-level keys, in order.
REPORT_ORDER = ("schema_version", "created", "emosem_commit", "machine", "settings", "stages",
                "throughput", "ratios", "scaling", "training", "errors")


class Benchmark(InferenceSections, TrainingSection):
    """Runs the sections and fills :attr:`report` (see :func:`run_benchmark` for the layout).

    ``settings``: resolved (:meth:`BenchmarkSettings.resolve`).
    """

    def __init__(self, settings: BenchmarkSettings) -> None:
        import torch

        from emosem.inference.predictor import resolve_device

        self.s = settings
        self.device = device = resolve_device(settings.device)
        self.checkpoint = Path(settings.checkpoint).resolve()
        self.image = Path(settings.image).resolve()
        self.emotion = settings.emotion
        self.n_tokens = settings.max_new_tokens
        self.memory = MemoryMonitor(settings.memory, cuda=device.type == "cuda")
        if device.type == "cuda":
            self.sync: Callable[[], None] = torch.cuda.synchronize
        elif device.type == "mps":
            self.sync = torch.mps.synchronize
        else:
            self.sync = lambda: None
        self.report: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "errors": [], "stages": {}, "throughput": {},
            "ratios": {}, "scaling": {}, "training": [],
        }

    # ------------------------------------------------------------------ helpers
    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Run a section; a failure is logged and recorded, and the benchmark goes on."""
        t0, c0 = time.perf_counter(), time.process_time()
        logger.info("benchmark: %s ...", name)
        try:
            yield
        except Exception as e:  # noqa: BLE001 - report and continue with the next section
            logger.exception("benchmark section %r failed", name)
            self.report["errors"].append({"section": name, "error": f"{type(e).__name__}: {e}"})
        finally:
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            self.report.setdefault("sections_s", {})[name] = {"wall": round(wall, 2),
                                                              "cpu": round(cpu, 2)}
            logger.info("benchmark: %s done in %.1f s (%.1f s CPU in this process)", name, wall, cpu)

    def _time_once(self, fn: Callable[[], Any]) -> float:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0

    def run_group(self, fns: dict[str, Callable[[], Any]], repeats: int | None = None,
                  warmup: int | None = None) -> dict[str, dict[str, Any]]:
        """Time several callables interleaved (A, B, A, B, ...) with a memory probe each.

        The first untimed call of each callable is the memory probe; ``warmup - 1`` more untimed
        rounds follow; then ``repeats`` timed rounds.
        """
        repeats = self.s.repeats if repeats is None else repeats
        warmup = self.s.warmup if warmup is None else warmup
        mem = {name: self.memory.probe(fn, self.sync) for name, fn in fns.items()}
        for _ in range(max(0, warmup - 1)):
            for fn in fns.values():
                fn()
        times: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(repeats):
            for name, fn in fns.items():
                times[name].append(self._time_once(fn))
        return {name: {**summarize(times[name]), "untimed_calls": max(warmup, 1), **mem[name]}
                for name in fns}

    def _stage(self, name: str, result: dict[str, Any], description: str, **extra: Any) -> None:
        self.report["stages"][name] = {"description": description, **result, **extra}
        logger.info("  %-24s median %s  p90 %s", name, fmt_s(result["median_s"]), fmt_s(result["p90_s"]))

    def _ratio(self, key: str, num: dict[str, Any], den: dict[str, Any], num_label: str,
               den_label: str, description: str, invert: bool = False) -> None:
        """ratio = num/den of medians (``invert``: den/num, for a speed ratio)."""
        a, b = num["median_s"], den["median_s"]
        value = (b / a) if invert else (a / b)
        entry: dict[str, Any] = {
            "value": round(value, 4), "description": description,
            "numerator": {"label": num_label, "median_s": a},
            "denominator": {"label": den_label, "median_s": b},
            "formula": ("denominator.median_s / numerator.median_s" if invert
                        else "numerator.median_s / denominator.median_s"),
            "target": None, "target_value": None, "meets_target": None,
        }
        if key in TARGETS:
            kind, limit = TARGETS[key]
            entry["target"] = f"{'<=' if kind == 'max' else '>='} {limit}"
            entry["target_value"] = limit
            entry["meets_target"] = bool(value <= limit if kind == "max" else value >= limit)
        self.report["ratios"][key] = entry
        logger.info("  ratio %-26s %.3f (target %s)", key, value, entry["target"])

    def _emotions(self, k: int) -> list[str]:
        from emosem.emotions import ARTEMIS_EMOTIONS, normalize_prompt_emotion

        first = normalize_prompt_emotion(self.emotion)[0]
        rest = [e for e in ARTEMIS_EMOTIONS if e != first]
        return ([first] + rest)[:k]

    # ------------------------------------------------------------------ driver
    def run(self) -> dict[str, Any]:
        what = self.s.what
        if what in ("infer", "all"):
            with self.section("cold start"):
                self.cold_start()
            loaded = False
            with self.section("load checkpoint"):
                self.load_predictor()
                loaded = True
            if loaded:
                for name, fn in (
                    ("encode/decode", self.inference_stages),
                    ("explain vs plain generate", self.explain_vs_plain),
                    ("end to end", self.end_to_end),
                    ("emotions per call", self.emotions_scaling),
                    ("weight packing", self.weight_packing),
                    ("LM runtime vs torch", self.lm_runtime),
                    ("collection run", self.collection),
                    ("mask path vs SAM", self.mask_vs_sam),
                    ("image size scaling", self.image_size_scaling),
                    ("encoder size scaling", self.encoder_size_scaling),
                ):
                    with self.section(name):
                        fn()
            self.free_predictor()
        if what in ("train", "all"):
            with self.section("training steps"):
                self.training()
        self.report["memory"] = {
            "method": self.memory.method,
            "method_note": MEMORY_METHODS[self.memory.method],
            "process_peak_rss_mb": self.memory.process_peak_rss_mb(),
            "cold_start_child_peak_rss_mb": self.report["stages"].get("cold_start", {}).get(
                "child_peak_rss_mb"),
            "cold_start_masks_child_peak_rss_mb": self.report["stages"].get(
                "cold_start_masks", {}).get("child_peak_rss_mb"),
            "cuda_max_allocated_mb": self.memory.cuda_max_allocated_mb(),
        }
        return self.report


def _machine(settings: BenchmarkSettings, device: Any) -> dict[str, Any]:
    from emosem.machine import machine_info

    machine = machine_info(device)
    machine["threads_requested"] = settings.threads
    load = machine["load_average_start"]
    if load and load[0] > 0.5 * (machine["logical_cores"] or 1):
        logger.warning("The machine is busy (load average %.1f on %s cores): these timings are "
                       "contended, not representative", load[0], machine["logical_cores"])
    return machine


def run_benchmark(settings: BenchmarkSettings) -> dict[str, Any]:
    """Measure what ``settings`` asks for; the report (nothing is written).

    Report layout: ``schema_version``, ``created``, ``emosem_commit``, ``machine`` (with
    ``line``), ``settings``, ``model``, ``stages`` (name → median_s, p90_s, min_s, mean_s, runs,
    times_s, untimed_calls, rss_peak_increase_mb[, cuda_peak_increase_mb], description),
    ``throughput``, ``ratios`` (key → value, target, meets_target, numerator, denominator,
    description), ``scaling`` (``emotions``, ``image_size``, ``encoder_input_size``,
    ``encoder_hparams``), ``training`` (rows: stage, batch_size, step stats, samples_per_s),
    ``memory``, ``errors``, ``total_s``. A section that fails is listed in ``errors``; the
    others still run. Raises :class:`~emosem.benchmark.settings.BenchmarkSettingError` for a
    bad setting.
    """
    import torch

    from emosem.machine import git_commit, load_average, machine_line
    from emosem.paths import repo_root

    s = settings.resolve()
    if s.threads is not None:
        torch.set_num_threads(s.threads)
    bench = Benchmark(s)
    bench.report.update({
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "emosem_commit": git_commit(repo_root()),
        "machine": _machine(s, bench.device),
        "settings": {
            "what": s.what, "quick": bool(s.quick), "checkpoint": str(s.checkpoint),
            "image": str(s.image), "emotion": s.emotion, "memory_method": None,
            **s.measured(), "interleaved": True,
        },
    })
    bench.report = {k: bench.report[k] for k in REPORT_ORDER}
    t0 = time.perf_counter()
    report = bench.run()
    report["settings"]["memory_method"] = bench.memory.method
    report["machine"]["load_average_end"] = load_average()
    report["machine"]["line"] = machine_line(report["machine"])
    report["total_s"] = round(time.perf_counter() - t0, 1)
    return report


def write_report(report: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``out`` (JSON) and the Markdown table next to it (``.md``); both paths."""
    from emosem.benchmark.markdown import to_markdown

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    md = out.with_suffix(".md")
    md.write_text(to_markdown(report))
    return out, md
