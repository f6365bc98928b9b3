"""Measure latency, throughput and memory of an EmoSEM checkpoint, and the speed ratios.

    python tools/benchmark.py                                   # bundled checkpoint, everything
    python tools/benchmark.py --checkpoint runs/x/best --what infer --threads 2 --out bench.json
    python tools/benchmark.py --quick                           # small and fast (smoke test)

Writes a JSON report (``--out``) and the same figures as a Markdown table next to it
(``.md``), and prints the table. What is measured and how:

* **Latency** of each stage: median, p90 and min over ``--repeats`` timed calls, after untimed
  calls (``--warmup``; at least one, the one that measures memory). ``cold_start`` runs
  ``tools/infer.py IMAGE --emotion awe --json-only`` in a fresh process: spawn → exit
  (``cold_start``), spawn → its ``results.json`` appears (``cold_start_first_result``, watched
  from here) and the ``cold_start_to_first_result_s`` it writes into its ``summary.json``
  (``cold_start_reported``; that clock starts after the command's own imports).
  ``encode`` = ``predictor.encode`` on the decoded image array (preprocessing + image encoder);
  ``decode`` = ``predictor.predict([e], explain=False)`` on the cached embedding (emotion tokens,
  mask decoder, upsampling to the original resolution); ``explain`` = prefix adapter + KV-cached
  generation of exactly ``--max-new-tokens`` tokens (``min_new_tokens`` forces the length, so
  every timed call does the same work); ``end_to_end`` = ``predictor(image_path, [e])``: read
  the file, encode, decode, explain.
* **Throughput**: images/s = 1 / end-to-end median (one emotion); explanation tokens/s =
  N / explain median; training samples/s = batch / median optimizer step (forward + backward +
  gradient clipping + AdamW step of the checkpoint's architecture, stages ``all`` and
  ``segmenter``, synthetic batches where every sample has a mask, a text and a distribution;
  a plain loop without ``accelerate`` or mixed precision).
* **Ratios**, measured in the same run with the two sides interleaved call by call (so a change
  in background load hits both): (a) nine emotions in one call vs one emotion, decode only and
  decode + explanations (target ≤ 2×; also the bare decoder without upsampling, and plain SAM's
  prompt encoder + mask decoder with as many point prompts in one call, for reference: SAM too
  runs its two-way transformer once per prompt);
  (b) explanation tokens/s vs plain ``generate`` of the same LM (LoRA merged, linears packed:
  as the predictor runs it) from ``input_ids`` of the same length as prefix + instruction, the
  same number of new tokens (target ≥ 0.9×); (c) EmoSEM mask path (encoder + emotion tokens + decoder) vs the
  checkpoint's own SAM modules with one point prompt (``prompt_encoder`` +
  ``mask_decoder(multimask_output=False)``; same weights, same size; target ≤ 1.1×).
* **Weight packing**: ``predict`` with explanations for 1 and 9 emotions with the LM's linears
  prepacked for oneDNN (as the predictor runs them, :mod:`emosem.inference.packed_linear`) and
  again with plain ``nn.Linear`` (unpacked in place, then packed back; the two sides run one
  after the other, not interleaved): the speed-up and ratio (a) without it.
* **Scaling**: against the input image size through the predictor (the model input is fixed;
  what grows is resizing in and upsampling the mask back to the original resolution); against
  the encoder input size (an ``ImageEncoderViT`` with the checkpoint's hyper-parameters built
  at each size with random weights: speed does not depend on the weights); against the number
  of emotions decoded (and explained) in one call.
* **Memory**: the process peak RSS (``ru_maxrss``, kept across the resets below), and per stage
  the rise of the RSS high-water mark during the stage's first (untimed) call above the RSS just
  before it. Before that call ``gc.collect()`` and glibc's ``malloc_trim(0)`` hand freed heap
  memory back to the OS, so the rise is the stage's own working memory rather than what earlier
  stages left in the allocator. On Linux the kernel's high-water mark (``VmHWM``) is reset for
  the call by writing ``5`` to ``/proc/self/clear_refs`` (method ``hwm``: exact). Elsewhere a
  thread samples ``psutil`` RSS every 2 ms (method ``psutil``: can miss short spikes). Weights
  loaded before the stage are not counted. On CUDA, ``torch.cuda.max_memory_allocated`` gives
  the per-stage rise (``cuda_peak_increase_mb``) and the overall peak.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
WHAT = ("infer", "train", "all")
TRAIN_STAGES = ("all", "segmenter")

# Defaults (full run) and the --quick ones.
FULL = {
    "repeats": 5, "warmup": 1, "cold_repeats": 3, "max_new_tokens": 40,
    "image_sizes": (256, 512, 1024), "encoder_sizes": (256, 512, 1024),
    "emotion_counts": (1, 3, 9), "train_batch_sizes": (4, 8),
}
QUICK = {
    "repeats": 2, "warmup": 1, "cold_repeats": 1, "max_new_tokens": 8,
    "image_sizes": (256, 512), "encoder_sizes": (256, 512),
    "emotion_counts": (1, 9), "train_batch_sizes": (4,),
}

TARGETS = {
    "nine_vs_one_decode": ("max", 2.0),
    "nine_vs_one_explain": ("max", 2.0),
    "explain_vs_plain_generate": ("min", 0.9),
    "mask_path_vs_sam": ("max", 1.1),
}

# Short labels for the Markdown table (the JSON keeps the long descriptions).
STAGE_LABELS = {
    "cold_start": "cold start: new process → exit",
    "cold_start_first_result": "cold start: new process → first result",
    "cold_start_reported": "cold start as infer reports it (after imports)",
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
    "mask_path_vs_sam": "(c) EmoSEM mask path ÷ SAM with a point prompt",
    "mask_decode_vs_sam_decode": "(c) the same without the shared encoder",
}

_UTTERANCES = (
    "The tiny boat under the towering dark wave makes me fear for the sailors on board.",
    "The swirling golden stars over the quiet village fill me with awe and wonder tonight.",
    "The soft light on the calm green meadow makes me feel content and completely at peace.",
    "The twisted face and the blood red sky make me feel an anxious and helpless sadness.",
)


# ---------------------------------------------------------------------------- statistics
def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100) of a non-empty list."""
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def summarize(times: list[float]) -> dict[str, Any]:
    """Seconds of the timed calls → median / p90 / min / mean / runs (+ the raw times)."""
    if not times:
        raise ValueError("no timed runs to summarise (use --repeats 1 or more)")
    return {
        "median_s": float(statistics.median(times)),
        "p90_s": percentile(times, 90),
        "min_s": float(min(times)),
        "mean_s": float(statistics.fmean(times)),
        "runs": len(times),
        "times_s": [round(t, 6) for t in times],
    }


# ---------------------------------------------------------------------------- memory
def _ru_maxrss_kb(who: str = "self") -> int:
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0
    usage = resource.getrusage(resource.RUSAGE_SELF if who == "self" else resource.RUSAGE_CHILDREN)
    # Linux reports kB, macOS bytes.
    return int(usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss)


def _proc_status_kb(*keys: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in keys:
                    out[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


_LIBC: Any = None


def malloc_trim() -> None:
    """Give the C heap's free memory back to the OS (glibc), so RSS is what is really in use."""
    global _LIBC
    if not sys.platform.startswith("linux"):
        return
    try:
        if _LIBC is None:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        _LIBC = False


MEMORY_METHODS = {
    "hwm": "rise of the kernel's RSS high-water mark (VmHWM, reset through /proc/self/clear_refs) "
           "during the stage's first call, above the RSS just before it (after gc + malloc_trim)",
    "psutil": "rise of the peak of psutil RSS samples (every 2 ms, a side thread) during the "
              "stage's first call, above the RSS just before it (after gc + malloc_trim); may "
              "miss short spikes",
    "none": "not measured per stage (no /proc/self/clear_refs and no psutil)",
}


class MemoryMonitor:
    """Per-call peak-memory probe; keeps the process peak across high-water-mark resets.

    ``method``: ``auto`` (``hwm`` where possible, else ``psutil``, else ``none``), ``hwm``,
    ``psutil`` or ``none``.
    """

    def __init__(self, method: str = "auto", cuda: bool = False) -> None:
        self.cuda = cuda
        self._peak_kb = 0
        self._cuda_peak = 0
        self.method = self._choose(method)

    def _note_peak(self) -> None:
        hwm = _proc_status_kb("VmHWM").get("VmHWM", 0)
        self._peak_kb = max(self._peak_kb, hwm, _ru_maxrss_kb())

    def _reset_hwm(self) -> bool:
        self._note_peak()  # the reset also lowers ru_maxrss: keep the process peak first
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return False
        return True

    def _choose(self, method: str) -> str:
        if method not in ("auto", "hwm", "psutil", "none"):
            raise ValueError(f"Unknown memory method {method!r}; valid: auto, hwm, psutil, none")
        if method in ("auto", "hwm"):
            if self._reset_hwm():
                st = _proc_status_kb("VmHWM", "VmRSS")
                if "VmHWM" in st and "VmRSS" in st and st["VmHWM"] - st["VmRSS"] < 4096:
                    return "hwm"
            if method == "hwm":
                logger.warning("VmHWM cannot be reset here; measuring memory with psutil instead")
        if method in ("auto", "hwm", "psutil"):
            try:
                import psutil  # noqa: F401

                return "psutil"
            except ImportError:
                logger.warning("psutil is not installed: per-stage memory is not measured")
        return "none"

    def probe(self, fn: Callable[[], Any], sync: Callable[[], None]) -> dict[str, float]:
        """Run ``fn`` once and return its peak-memory rise in MB (RSS, and CUDA if used)."""
        out: dict[str, float] = {}
        gc.collect()
        malloc_trim()
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self._cuda_peak = max(self._cuda_peak, torch.cuda.max_memory_allocated())
            torch.cuda.reset_peak_memory_stats()
            cuda_base = torch.cuda.memory_allocated()
        if self.method == "hwm":
            self._reset_hwm()
            base = _proc_status_kb("VmRSS").get("VmRSS", 0)
            fn()
            sync()
            peak = _proc_status_kb("VmHWM").get("VmHWM", 0)
            self._peak_kb = max(self._peak_kb, peak)
            out["rss_peak_increase_mb"] = round(max(0, peak - base) / 1024, 2)
        elif self.method == "psutil":
            import psutil

            proc = psutil.Process()
            base = proc.memory_info().rss
            peak = [base]
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.002):
                    peak[0] = max(peak[0], proc.memory_info().rss)

            thread = threading.Thread(target=sample, daemon=True)
            thread.start()
            try:
                fn()
                sync()
            finally:
                stop.set()
                thread.join()
            peak[0] = max(peak[0], proc.memory_info().rss)
            out["rss_peak_increase_mb"] = round(max(0, peak[0] - base) / 2**20, 2)
        else:
            fn()
            sync()
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            top = torch.cuda.max_memory_allocated()
            self._cuda_peak = max(self._cuda_peak, top)
            out["cuda_peak_increase_mb"] = round((top - cuda_base) / 2**20, 2)
        return out

    def process_peak_rss_mb(self) -> float:
        self._note_peak()
        return round(self._peak_kb / 1024, 1)

    def cuda_max_allocated_mb(self) -> float | None:
        if not self.cuda:
            return None
        import torch

        return round(max(self._cuda_peak, torch.cuda.max_memory_allocated()) / 2**20, 1)


# ---------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def machine_info(device: Any) -> dict[str, Any]:
    """The machine line: CPU, cores, torch threads and version, device, Python."""
    import torch

    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": None,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "torch_version": torch.__version__,
        "device": str(device),
        "gpu": None,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "memory_total_gb": None,
        "load_average_start": _load_average(),
    }
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["memory_total_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    if getattr(device, "type", str(device)) == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
        info["cuda_version"] = torch.version.cuda
    return info


def machine_line(m: dict[str, Any]) -> str:
    parts = [m.get("cpu_model", "?"), f"{m.get('logical_cores')} logical cores",
             f"torch {m.get('torch_version')} ({m.get('torch_threads')} threads)",
             f"device {m.get('device')}" + (f" = {m['gpu']}" if m.get("gpu") else ""),
             f"Python {m.get('python_version')}"]
    load = m.get("load_average_start")
    if load:
        end = m.get("load_average_end")
        parts.append(f"load avg {load[0]}" + (f" → {end[0]}" if end else ""))
    return " · ".join(parts)


# ---------------------------------------------------------------------------- CLI
def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the method notes readable
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    p.add_argument("--what", choices=WHAT, default="all",
                   help="inference stages + ratios + scaling, training steps, or both (default)")
    p.add_argument("--image", default=None,
                   help="painting to run on (default: demo/assets/starry_night.jpg)")
    p.add_argument("--emotion", default="awe", help="the emotion of the one-emotion stages")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per stage (default 5; quick 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 1)")
    p.add_argument("--cold-repeats", type=int, default=None,
                   help="fresh-process cold starts to time (default 3, after one untimed; quick 1; "
                        "0 skips them)")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="tokens per explanation, forced (default 40; quick 8)")
    p.add_argument("--image-sizes", type=_int_list, default=None,
                   help="input image sides for the predictor scaling (default 256,512,1024)")
    p.add_argument("--encoder-sizes", type=_int_list, default=None,
                   help="encoder input sides, random weights (default 256,512,1024)")
    p.add_argument("--emotion-counts", type=_int_list, default=None,
                   help="emotions per call for the scaling, 1..9 (default 1,3,9; 1 and 9 always)")
    p.add_argument("--train-batch-sizes", type=_int_list, default=None,
                   help="training batch sizes (default 4,8)")
    p.add_argument("--out", default="outputs/benchmark.json",
                   help="JSON report (the Markdown table goes next to it as .md)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: torch's own choice); also "
                        "OMP_NUM_THREADS of the cold-start processes")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--memory", default="auto", choices=("auto", "hwm", "psutil", "none"),
                   help="per-stage memory method (see the module docs)")
    p.add_argument("--quick", action="store_true",
                   help="small and fast: 2 repeats, 1 warm-up, 8 tokens, fewer scaling points")
    p.add_argument("--quiet", action="store_true")


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """CLI values, with the full or --quick defaults where not given."""
    base = QUICK if args.quick else FULL
    s = {k: getattr(args, k, None) for k in base}
    s = {k: (base[k] if v is None else v) for k, v in s.items()}
    for key in ("repeats", "max_new_tokens"):
        if s[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be at least 1, got {s[key]}")
    for key in ("warmup", "cold_repeats"):
        if s[key] < 0:
            raise ValueError(f"--{key.replace('_', '-')} must be 0 or more, got {s[key]}")
    counts = set(s["emotion_counts"]) | {1, 9}
    if max(counts) > 9:
        raise ValueError("--emotion-counts go up to 9 (the ArtEmis emotions)")
    s["emotion_counts"] = tuple(sorted(counts))
    for key in ("image_sizes", "encoder_sizes", "train_batch_sizes"):
        s[key] = tuple(s[key])
    return s


def default_image() -> Path | None:
    from emosem.modeling.lm_weights import repo_root

    assets = repo_root() / "demo" / "assets"
    preferred = assets / "starry_night.jpg"
    if preferred.is_file():
        return preferred
    found = sorted(assets.glob("*.jpg")) if assets.is_dir() else []
    return found[0] if found else None


# ---------------------------------------------------------------------------- the benchmark
class Benchmark:
    """Runs the sections and fills :attr:`report` (see :func:`run` for the JSON layout)."""

    def __init__(self, args: argparse.Namespace, settings: dict[str, Any], device: Any,
                 checkpoint: Path, image: Path) -> None:
        import torch

        self.args = args
        self.s = settings
        self.device = device
        self.checkpoint = checkpoint
        self.image = image
        self.emotion = args.emotion
        self.n_tokens = settings["max_new_tokens"]
        self.memory = MemoryMonitor(args.memory, cuda=device.type == "cuda")
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
        repeats = self.s["repeats"] if repeats is None else repeats
        warmup = self.s["warmup"] if warmup is None else warmup
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

    # ------------------------------------------------------------------ cold start
    def cold_start(self) -> None:
        """``tools/infer.py`` in fresh processes: spawn → first result on disk → exit."""
        from emosem.modeling.lm_weights import repo_root

        runs = self.s["cold_repeats"]
        if runs == 0:
            logger.info("cold start skipped (--cold-repeats 0)")
            return
        warm = 0 if self.args.quick else 1  # one untimed run fills the OS file cache
        infer = repo_root() / "tools" / "infer.py"
        base = [sys.executable, str(infer)] if infer.is_file() else [sys.executable, "-m", "emosem.cli", "infer"]
        env = dict(os.environ)
        if self.args.threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.args.threads)
        times: dict[str, list[float]] = {"exit": [], "first": [], "reported": []}
        for i in range(warm + runs):
            with tempfile.TemporaryDirectory(prefix="emosem-bench-") as tmp:
                out = Path(tmp) / "out"
                first_file = out / self.image.stem / "results.json"
                cmd = base + [str(self.image), "--emotion", self.emotion, "--out", str(out),
                              "--json-only", "--checkpoint", str(self.checkpoint), "--device",
                              self.device.type, "--max-new-tokens", str(self.n_tokens), "--quiet"]
                with open(Path(tmp) / "log.txt", "w+") as log:
                    t0 = time.perf_counter()
                    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
                    first = None
                    while proc.poll() is None:  # watch for the first result file (5 ms steps)
                        if first is None and first_file.exists():
                            first = time.perf_counter() - t0
                        time.sleep(0.005)
                    wall = time.perf_counter() - t0
                    if proc.returncode != 0:
                        log.seek(0)
                        tail = log.read().strip().splitlines()[-3:]
                        raise RuntimeError(
                            f"tools/infer.py exited with {proc.returncode}: {' | '.join(tail)}")
                summary = json.loads((out / "summary.json").read_text())
            if i < warm:
                continue
            times["exit"].append(wall)
            times["first"].append(first if first is not None else wall)
            if summary.get("cold_start_to_first_result_s"):
                times["reported"].append(float(summary["cold_start_to_first_result_s"]))
        command = (f"python tools/infer.py IMAGE --emotion {self.emotion} --json-only "
                   f"--max-new-tokens {self.n_tokens}")
        self._stage("cold_start", {**summarize(times["exit"]), "untimed_calls": warm},
                    f"fresh process `{command}`: spawn → exit (interpreter, imports, checkpoint "
                    "load, first result, writing JSON, teardown)",
                    child_peak_rss_mb=round(_ru_maxrss_kb("children") / 1024, 1), command=command,
                    threads_env=self.args.threads)
        self._stage("cold_start_first_result", {**summarize(times["first"]), "untimed_calls": warm},
                    "the same processes, spawn → their results.json appears (seen from here, 5 ms "
                    "polling): what a user waits for")
        if times["reported"]:
            self._stage("cold_start_reported", {**summarize(times["reported"]), "untimed_calls": warm},
                        "the same processes' own cold_start_to_first_result_s (summary.json); its "
                        "clock starts inside the infer command, after its module imports")

    # ------------------------------------------------------------------ inference
    def load_predictor(self) -> None:
        from emosem.data.image_io import load_image
        from emosem.inference.predictor import EmoSEMPredictor

        t0 = time.perf_counter()
        self.predictor = EmoSEMPredictor.from_pretrained(self.checkpoint, device=str(self.device))
        load_s = time.perf_counter() - t0
        model = self.predictor.model
        self.rgb = load_image(self.image)
        count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
        lora = _adapter_params(self.checkpoint)
        self.report["model"] = {
            "checkpoint": str(self.checkpoint),
            "segmenter": model.config.segmenter,
            "image_size": model.image_size,
            "lm": model.config.lm,
            "lm_dtype": model.config.dtype,
            "prefix_length": model.prefix_tokens,
            "lora_merged": model.lm.merged,
            "params_m": {
                "sam": round(count(model.sam) / 1e6, 3),
                "lm_base": round(count(model.lm.model) / 1e6, 3),  # LoRA merged in
                "lora": round(lora / 1e6, 4),
                "projector_adapter_head": round(
                    sum(count(m) for m in (model.projector, model.adapter, model.emotion_head,
                                           model.tag_head) if m is not None) / 1e6, 3),
            },
            "load_s": round(load_s, 3),
        }
        self.report["settings"]["image_hw"] = list(self.rgb.shape[:2])
        self.gen = {"max_new_tokens": self.n_tokens, "min_new_tokens": self.n_tokens}
        self.state: Any = None  # the cached embedding, made after the encode stage's memory probe

    def _state(self) -> Any:
        if self.state is None:
            self.state = self.predictor.encode(self.rgb)
        return self.state

    def inference_stages(self) -> None:
        p, e = self.predictor, self.emotion
        r = self.run_group({"encode": lambda: p.encode(self.rgb)})
        self._stage("encode", r["encode"], "predictor.encode(image array): SAM preprocessing "
                    "(resize, normalise, pad) + image encoder")
        state = self._state()
        r = self.run_group({"decode": lambda: p.predict([e], explain=False, state=state)})
        self._stage("decode", r["decode"], "predictor.predict([emotion], explain=False) on the "
                    "cached embedding: emotion tokens + mask decoder + upsampling to the image size")

    def explain_vs_plain(self) -> None:
        """Stage ``explain`` and ratio (b): explanation tokens/s vs plain generate, same LM."""
        import torch

        model = self.predictor.model
        lm = model.lm
        n = self.n_tokens
        with torch.no_grad():
            emb = self._state().embedding
            tokens = model.emotion_tokens([self.emotion])
            logits, _, mask_token = model.decode(emb, tokens)
        instr = lm._ids([lm.instruction.format(e=self.emotion)])[0]
        length = model.prefix_tokens + len(instr)
        cycle = (instr * (length // max(1, len(instr)) + 1))[:length] if instr else [0] * length
        ids = torch.tensor([cycle], dtype=torch.long, device=self.device)
        attn = torch.ones_like(ids)
        tok = lm.tokenizer

        def explain() -> Any:
            with torch.no_grad():
                return model.explain(emb, logits, mask_token, tokens, [self.emotion], **self.gen)

        def plain() -> Any:
            with torch.no_grad():
                return lm.model.generate(
                    input_ids=ids, attention_mask=attn, max_new_tokens=n, min_new_tokens=n,
                    do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None,
                    pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, use_cache=True)

        # Check once, outside the timing, that both sides generate exactly n tokens.
        shapes: list[tuple[int, ...]] = []
        original = lm.model.generate

        def spy(*a: Any, **k: Any) -> Any:
            out = original(*a, **k)
            shapes.append(tuple(out.shape))
            return out

        lm.model.generate = spy
        try:
            explain()
        finally:
            del lm.model.generate
        explain_tokens = shapes[0][1] if shapes else None  # inputs_embeds: only new tokens come back
        plain_tokens = int(plain().shape[1]) - length
        if explain_tokens != n or plain_tokens != n:
            logger.warning("token counts differ from %d: explanation %s, plain %s", n,
                           explain_tokens, plain_tokens)

        r = self.run_group({"explain": explain, "plain_generate": plain})
        self._stage("explain", r["explain"], f"model.explain for one emotion: prefix adapter + "
                    f"KV-cached generation of exactly {n} new tokens (batch 1)", new_tokens=explain_tokens)
        self.report["stages"]["plain_generate"] = {
            "description": f"the same LM's generate(input_ids) with a {length}-token "
                           f"prompt (= prefix {model.prefix_tokens} + instruction "
                           f"{len(instr)}), exactly {n} new tokens", **r["plain_generate"],
            "prompt_tokens": length, "new_tokens": plain_tokens,
        }
        tp = self.report["throughput"]
        tp["tokens_per_s"] = round(n / r["explain"]["median_s"], 2)
        tp["plain_generate_tokens_per_s"] = round(n / r["plain_generate"]["median_s"], 2)
        self._ratio("explain_vs_plain_generate", r["explain"], r["plain_generate"],
                    "explanation (prefix adapter + generate from embeddings)",
                    "plain generate from input_ids", "explanation tokens/s ÷ plain generate "
                    "tokens/s (same LM + LoRA, same prompt length, same new tokens)", invert=True)

    def end_to_end(self) -> None:
        p = self.predictor
        r = self.run_group({"end_to_end": lambda: p(self.image, [self.emotion], **self.gen)})
        self._stage("end_to_end", r["end_to_end"], "predictor(image path, [emotion]): read + "
                    f"encode + decode + explain ({self.n_tokens} tokens)")
        self.report["throughput"]["images_per_s"] = round(1.0 / r["end_to_end"]["median_s"], 3)

    def emotions_scaling(self) -> None:
        """Latency/memory vs emotions per call; ratio (a) nine vs one."""
        import torch

        p, model, state = self.predictor, self.predictor.model, self._state()

        def core(ems: list[str]) -> Any:
            with torch.no_grad():
                k = len(ems)
                return model.decode(state.embedding.expand(k, -1, -1, -1), model.emotion_tokens(ems))

        sam_points = self._sam_point_decoder(state.embedding)
        fns: dict[str, Callable[[], Any]] = {}
        for k in self.s["emotion_counts"]:
            ems = self._emotions(k)
            fns[f"core@{k}"] = lambda ems=ems: core(ems)
            fns[f"sam@{k}"] = lambda k=k: sam_points(k)
            fns[f"decode@{k}"] = lambda ems=ems: p.predict(ems, explain=False, state=state)
            fns[f"explain@{k}"] = lambda ems=ems: p.predict(ems, explain=True, state=state, **self.gen)
        r = self.run_group(fns)
        rows = []
        for k in self.s["emotion_counts"]:
            c, d, x = r[f"core@{k}"], r[f"decode@{k}"], r[f"explain@{k}"]
            rows.append({"num_emotions": k, "decoder_only": c, "decode": d, "decode_explain": x,
                         "sam_point_prompts": r[f"sam@{k}"],
                         "decode_per_emotion_s": d["median_s"] / k,
                         "decode_explain_per_emotion_s": x["median_s"] / k})
        self.report["scaling"]["emotions"] = rows
        one, nine = rows[0], rows[-1]
        self._ratio("nine_vs_one_decode", nine["decode"], one["decode"], "9 emotions, one call",
                    "1 emotion", "predict(9 emotions, explain=False) ÷ predict(1 emotion), "
                    "cached embedding")
        self._ratio("nine_vs_one_decoder_only", nine["decoder_only"], one["decoder_only"],
                    "9 emotions, one call", "1 emotion", "model.emotion_tokens + model.decode only "
                    "(no upsampling to the image size, no result objects)")
        self._ratio("nine_vs_one_sam_points", nine["sam_point_prompts"], one["sam_point_prompts"],
                    "SAM, 9 point prompts in one call", "1 point prompt", "reference for the "
                    "decoder: plain SAM's prompt encoder + mask decoder (same modules) also runs "
                    "its two-way transformer once per prompt")
        self._ratio("nine_vs_one_explain", nine["decode_explain"], one["decode_explain"],
                    "9 emotions, one call", "1 emotion", "predict(9 emotions) ÷ predict(1 "
                    f"emotion) with explanations ({self.n_tokens} tokens each), cached embedding")
        enc = self.report["stages"].get("encode")
        if enc:
            self._ratio(
                "nine_vs_one_with_encode",
                {"median_s": enc["median_s"] + nine["decode_explain"]["median_s"]},
                {"median_s": enc["median_s"] + one["decode_explain"]["median_s"]},
                "encode + 9 emotions", "encode + 1 emotion",
                "a whole new image: encode + predict with explanations (sum of medians)")
        self.report["throughput"]["tokens_per_s_9_in_one_call"] = round(
            9 * self.n_tokens / nine["decode_explain"]["median_s"], 2)

    def weight_packing(self) -> None:
        """Explanations with the LM's oneDNN-prepacked linears (as the predictor runs) vs plain ones."""
        from emosem.inference.packed_linear import pack_linears, unpack_linears

        p = self.predictor
        if not p.packed_layers:
            logger.info("  the predictor runs without packed weights here: nothing to compare")
            return
        state = self._state()
        calls = {f"explain@{k}": (lambda ems=self._emotions(k): p.predict(ems, state=state, **self.gen))
                 for k in (1, 9)}
        packed = self.run_group(calls)
        lm = p.model.lm.model
        unpack_linears(lm)
        try:
            plain = self.run_group(calls)
        finally:
            pack_linears(lm)
        self.report["scaling"]["weight_packing"] = {
            "packed_layers": p.packed_layers, "packed": packed, "plain_linear": plain,
            "note": "the two sides run one after the other, not interleaved",
        }
        for k in (1, 9):
            self._ratio(f"packing_speedup_{k}", packed[f"explain@{k}"], plain[f"explain@{k}"],
                        f"packed, {k} emotion(s)", "plain nn.Linear", f"predict({k} emotion(s)) "
                        "with explanations: speed-up from prepacking the LM weights", invert=True)
        self._ratio("nine_vs_one_explain_plain_linear", plain["explain@9"], plain["explain@1"],
                    "9 emotions, one call", "1 emotion", "ratio (a) with explanations, as it is "
                    "without weight packing")

    def _sam_point_decoder(self, embedding: Any) -> Callable[..., Any]:
        """``fn(k, emb=embedding)``: the checkpoint's SAM prompt encoder + mask decoder with k
        one-point prompts in one call (SAM's batched prompts; points spread over the image)."""
        import torch

        sam, size = self.predictor.model.sam, self.predictor.model.image_size
        xy = [(.5, .5), (.2, .2), (.8, .2), (.2, .8), (.8, .8), (.35, .35), (.65, .35), (.35, .65),
              (.65, .65)]  # the centre first: the one-point prompt of ratio (c)
        points = torch.tensor(xy, device=self.device)[:, None] * size  # [9, 1, 2] (x, y)
        labels = torch.ones(9, 1, dtype=torch.int64, device=self.device)

        def fn(k: int, emb: Any = embedding) -> Any:
            with torch.no_grad():
                sparse, dense = sam.prompt_encoder(points=(points[:k], labels[:k]), boxes=None,
                                                   masks=None)
                return sam.mask_decoder(image_embeddings=emb,
                                        image_pe=sam.prompt_encoder.get_dense_pe(),
                                        sparse_prompt_embeddings=sparse,
                                        dense_prompt_embeddings=dense, multimask_output=False)

        return fn

    def mask_vs_sam(self) -> None:
        """Ratio (c): EmoSEM mask path vs the same SAM modules with one point prompt."""
        import torch

        model = self.predictor.model
        sam = model.sam
        tensor, _ = self.predictor.transform.apply_image(self.rgb)
        x = tensor[None].to(self.device)
        emb = self._state().embedding

        def emosem_decode(e: Any) -> Any:
            return model.decode(e, model.emotion_tokens([self.emotion]))

        sam_points = self._sam_point_decoder(emb)

        def sam_decode(e: Any) -> Any:
            return sam_points(1, e)

        def nograd(fn: Callable[[], Any]) -> Callable[[], Any]:
            def wrapped() -> Any:
                with torch.no_grad():
                    return fn()
            return wrapped

        # ~0.1 s calls, and the ratio has a target near 1: four times the repeats, for a stable median.
        r = self.run_group(repeats=4 * self.s["repeats"], fns={
            "emosem_mask": nograd(lambda: emosem_decode(model.encode(x))),
            "sam_point_mask": nograd(lambda: sam_decode(sam.image_encoder(x))),
            "emosem_decode_only": nograd(lambda: emosem_decode(emb)),
            "sam_point_decode_only": nograd(lambda: sam_decode(emb)),
        })
        for name, text in (
            ("emosem_mask", "EmoSEM mask path on a preprocessed image tensor: encoder + emotion "
                            "tokens (template, LM embedding table, projector) + FiLM + decoder"),
            ("sam_point_mask", "plain SAM, the checkpoint's own modules: image_encoder + "
                               "prompt_encoder(one point) + mask_decoder(multimask_output=False)"),
            ("emosem_decode_only", "EmoSEM emotion tokens + decoder on a cached embedding"),
            ("sam_point_decode_only", "SAM prompt_encoder(one point) + mask_decoder on a cached "
                                      "embedding"),
        ):
            self.report["stages"][name] = {"description": text, **r[name]}
        self._ratio("mask_path_vs_sam", r["emosem_mask"], r["sam_point_mask"], "EmoSEM mask path",
                    "plain SAM with a point prompt", "EmoSEM (encoder + emotion tokens + decoder) "
                    "÷ SAM (encoder + point prompt + decoder), same SAM modules and input")
        self._ratio("mask_decode_vs_sam_decode", r["emosem_decode_only"], r["sam_point_decode_only"],
                    "EmoSEM emotion tokens + decoder", "SAM point prompt + decoder",
                    "the same without the (shared) image encoder")

    def image_size_scaling(self) -> None:
        """Input image size through the predictor (the model input size stays fixed)."""
        import cv2

        p = self.predictor
        h0, w0 = self.rgb.shape[:2]
        fns: dict[str, Callable[[], Any]] = {}
        shapes = {}
        for size in self.s["image_sizes"]:
            scale = size / max(h0, w0)
            hw = (max(1, round(h0 * scale)), max(1, round(w0 * scale)))
            img = cv2.resize(self.rgb, (hw[1], hw[0]), interpolation=cv2.INTER_AREA
                             if scale < 1 else cv2.INTER_LINEAR)
            state = p.encode(img)
            shapes[size] = hw
            fns[f"encode@{size}"] = lambda img=img: p.encode(img)
            fns[f"decode@{size}"] = lambda st=state: p.predict([self.emotion], explain=False, state=st)
        r = self.run_group(fns)
        self.report["scaling"]["image_size"] = [
            {"size": size, "image_hw": list(shapes[size]), "encode": r[f"encode@{size}"],
             "decode": r[f"decode@{size}"],
             "total_median_s": r[f"encode@{size}"]["median_s"] + r[f"decode@{size}"]["median_s"]}
            for size in self.s["image_sizes"]
        ]

    def encoder_size_scaling(self) -> None:
        """ImageEncoderViT with the checkpoint's hyper-parameters at other input sizes."""
        import torch

        hp = encoder_hparams(self.predictor.model.sam.image_encoder)
        rows = []
        for size in self.s["encoder_sizes"]:
            if size % hp["patch_size"]:
                raise ValueError(f"encoder size {size} is not a multiple of the patch size {hp['patch_size']}")
            torch.manual_seed(0)
            enc = build_encoder(hp, size).to(self.device).eval()
            x = torch.randn(1, 3, size, size, device=self.device)

            def fwd(enc: Any = enc, x: Any = x) -> Any:
                with torch.no_grad():
                    return enc(x)

            r = self.run_group({"encode": fwd})["encode"]
            rows.append({"img_size": size, "tokens": (size // hp["patch_size"]) ** 2, "encode": r})
            logger.info("  encoder @%d: median %s", size, fmt_s(r["median_s"]))
            del enc, x, fwd
            gc.collect()
        self.report["scaling"]["encoder_input_size"] = rows
        self.report["scaling"]["encoder_hparams"] = {k: (list(v) if isinstance(v, tuple) else v)
                                                     for k, v in hp.items()}

    def free_predictor(self) -> None:
        for name in ("predictor", "state"):
            if hasattr(self, name):
                delattr(self, name)
        gc.collect()
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ training
    def training(self) -> None:
        import torch

        from emosem.config import LossConfig, TrainConfig
        from emosem.modeling.emosem import EmoSEM

        t0 = time.perf_counter()
        model = EmoSEM.from_pretrained(self.checkpoint, device=self.device, trainable=True)
        model.train()
        logger.info("  trainable model loaded in %.1f s", time.perf_counter() - t0)
        self.report.setdefault("model", {
            "checkpoint": str(self.checkpoint), "segmenter": model.config.segmenter,
            "image_size": model.image_size, "lm": model.config.lm, "lm_dtype": model.config.dtype,
            "prefix_length": model.prefix_tokens})
        tcfg, lcfg = TrainConfig(), LossConfig()
        size = model.image_size
        rows = []
        for stage in TRAIN_STAGES:
            model.set_stage(stage)
            for b in self.s["train_batch_sizes"]:
                batch = synthetic_batch(b, size)
                opt = torch.optim.AdamW(model.param_groups(tcfg), weight_decay=tcfg.weight_decay)
                params = [p for g in opt.param_groups for p in g["params"]]

                def step(batch: dict[str, Any] = batch, opt: Any = opt, params: list = params,
                         model: Any = model) -> float:
                    model.zero_grad(set_to_none=True)
                    out = model(batch, lcfg, max_text_tokens=tcfg.max_text_tokens)
                    out.loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, tcfg.max_grad_norm)
                    opt.step()
                    return float(out.loss.detach())

                r = self.run_group({"step": step})["step"]
                rows.append({
                    "stage": stage, "batch_size": b, "step": r,
                    "samples_per_s": round(b / r["median_s"], 3),
                    "trainable_params_m": round(sum(p.numel() for p in params) / 1e6, 3),
                })
                logger.info("  train %s @%d: step %s, %.2f samples/s", stage, b,
                            fmt_s(r["median_s"]), b / r["median_s"])
                del opt, params, step
                model.zero_grad(set_to_none=True)
        self.report["training"] = rows
        self.report["throughput"]["train_samples_per_s"] = {
            f"{row['stage']}@{row['batch_size']}": row["samples_per_s"] for row in rows}
        del model

    # ------------------------------------------------------------------ driver
    def run(self) -> dict[str, Any]:
        what = self.args.what
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
            "cuda_max_allocated_mb": self.memory.cuda_max_allocated_mb(),
        }
        return self.report


# ---------------------------------------------------------------------------- model pieces
def _adapter_params(checkpoint: Path) -> int:
    """Parameters in the checkpoint's saved LoRA adapter (0 without one)."""
    from safetensors import safe_open

    path = checkpoint / "lm_adapter" / "adapter_model.safetensors"
    if not path.is_file():
        return 0
    with safe_open(str(path), "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def encoder_hparams(encoder: Any) -> dict[str, Any]:
    """The constructor arguments of a ``segment_anything`` ``ImageEncoderViT`` (bar img_size)."""
    proj = encoder.patch_embed.proj
    blocks = list(encoder.blocks)
    b0 = blocks[0]
    dim = proj.out_channels
    return {
        "patch_size": int(proj.kernel_size[0]),
        "in_chans": int(proj.in_channels),
        "embed_dim": int(dim),
        "depth": len(blocks),
        "num_heads": int(b0.attn.num_heads),
        "mlp_ratio": b0.mlp.lin1.out_features / dim,
        "out_chans": int(encoder.neck[0].out_channels),
        "qkv_bias": b0.attn.qkv.bias is not None,
        "use_abs_pos": encoder.pos_embed is not None,
        "use_rel_pos": bool(b0.attn.use_rel_pos),
        "window_size": max(int(b.window_size) for b in blocks),
        "global_attn_indexes": tuple(i for i, b in enumerate(blocks) if b.window_size == 0),
        "norm_eps": float(b0.norm1.eps),
        "original_img_size": int(encoder.img_size),
    }


def build_encoder(hp: dict[str, Any], img_size: int) -> Any:
    """A randomly initialised ``ImageEncoderViT`` with ``hp`` (from :func:`encoder_hparams`)."""
    from functools import partial

    from segment_anything.modeling import ImageEncoderViT
    from torch import nn

    kwargs = {k: v for k, v in hp.items() if k not in ("norm_eps", "original_img_size")}
    return ImageEncoderViT(img_size=img_size, norm_layer=partial(nn.LayerNorm, eps=hp["norm_eps"]),
                           **kwargs)


def synthetic_batch(b: int, size: int) -> dict[str, Any]:
    """A collated training batch of ``b`` samples with a mask, a text and a distribution each."""
    import torch

    from emosem.emotions import ARTEMIS_EMOTIONS

    g = torch.Generator().manual_seed(b)
    return {
        "image": torch.randn(b, 3, size, size, generator=g),
        "mask": (torch.rand(b, size, size, generator=g) > 0.7).float(),
        "has_mask": [True] * b,
        "emotion": [ARTEMIS_EMOTIONS[i % len(ARTEMIS_EMOTIONS)] for i in range(b)],
        "utterance": [_UTTERANCES[i % len(_UTTERANCES)] for i in range(b)],
        "has_text": [True] * b,
        "emotion_dist": torch.softmax(torch.randn(b, len(ARTEMIS_EMOTIONS), generator=g), -1),
        "has_dist": [True] * b,
    }


# ---------------------------------------------------------------------------- Markdown
def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _fmt_mb(entry: dict[str, Any]) -> str:
    parts = []
    if entry.get("rss_peak_increase_mb") is not None:
        parts.append(f"{entry['rss_peak_increase_mb']:.0f} MB")
    if entry.get("cuda_peak_increase_mb") is not None:
        parts.append(f"GPU {entry['cuda_peak_increase_mb']:.0f} MB")
    if entry.get("child_peak_rss_mb") is not None:
        parts.append(f"process peak {entry['child_peak_rss_mb']:.0f} MB")
    return ", ".join(parts) or "–"


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (machine line, stage/throughput/ratio/scaling/training tables)."""
    lines: list[str] = []
    m = report.get("machine", {})
    st = report.get("settings", {})
    mo = report.get("model", {})
    lines.append(f"**Machine:** {m.get('line') or machine_line(m)}  ")
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
    lines.append("")

    stages = report.get("stages", {})
    if stages:
        lines += ["| Stage | median | p90 | min | peak memory rise |", "|---|---:|---:|---:|---:|"]
        for name, e in stages.items():
            lines.append(f"| {STAGE_LABELS.get(name, name)} | {fmt_s(e.get('median_s'))} | {fmt_s(e.get('p90_s'))} | "
                         f"{fmt_s(e.get('min_s'))} | {_fmt_mb(e)} |")
        lines.append("")

    tp = report.get("throughput", {})
    if tp:
        lines += ["| Throughput | value |", "|---|---:|"]
        labels = {
            "images_per_s": "images/s (end to end, one emotion)",
            "tokens_per_s": "explanation tokens/s (batch 1)",
            "plain_generate_tokens_per_s": "plain generate tokens/s (same LM, batch 1)",
            "tokens_per_s_9_in_one_call": "tokens/s, 9 emotions in one call (incl. decode)",
        }
        for key, label in labels.items():
            if key in tp:
                lines.append(f"| {label} | {tp[key]:.2f} |")
        for key, value in (tp.get("train_samples_per_s") or {}).items():
            stage, b = key.split("@")
            lines.append(f"| training samples/s (stage {stage}, batch {b}) | {value:.2f} |")
        lines.append("")

    ratios = report.get("ratios", {})
    if ratios:
        lines += ["| Ratio | value | target | met |", "|---|---:|---:|:---:|"]
        order = list(RATIO_LABELS)
        for key, r in sorted(ratios.items(),
                             key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
            met = {True: "yes", False: "**no**", None: "–"}[r.get("meets_target")]
            lines.append(f"| {RATIO_LABELS.get(key, r.get('description', key))} | {r['value']:.2f}× | "
                         f"{r.get('target') or '–'} | {met} |")
        lines.append("")

    sc = report.get("scaling", {})
    if sc.get("emotions"):
        lines += ["| Emotions per call | decoder only | SAM, as many point prompts | decode | "
                  "decode + explain | memory rise (explain) |", "|---:|---:|---:|---:|---:|---:|"]
        for row in sc["emotions"]:
            core = row.get("decoder_only", {}).get("median_s")
            sam = row.get("sam_point_prompts", {}).get("median_s")
            lines.append(f"| {row['num_emotions']} | {fmt_s(core)} | {fmt_s(sam)} | "
                         f"{fmt_s(row['decode']['median_s'])} | "
                         f"{fmt_s(row['decode_explain']['median_s'])} | {_fmt_mb(row['decode_explain'])} |")
        lines.append("")
    wp = sc.get("weight_packing")
    if wp:
        lines += [f"| LM weights ({wp['packed_layers']} linears) | explain, 1 emotion | "
                  "explain, 9 emotions | 9 ÷ 1 |", "|---|---:|---:|---:|"]
        for label, key in (("oneDNN-prepacked (as the predictor runs)", "packed"),
                           ("plain nn.Linear", "plain_linear")):
            one, nine = wp[key]["explain@1"]["median_s"], wp[key]["explain@9"]["median_s"]
            lines.append(f"| {label} | {fmt_s(one)} | {fmt_s(nine)} | {nine / one:.2f}× |")
        lines.append("")
    if sc.get("image_size"):
        lines += ["| Input image (longest side) | encode | decode | total | memory rise (encode) |",
                  "|---:|---:|---:|---:|---:|"]
        for row in sc["image_size"]:
            lines.append(f"| {row['size']} ({row['image_hw'][0]}×{row['image_hw'][1]}) | "
                         f"{fmt_s(row['encode']['median_s'])} | {fmt_s(row['decode']['median_s'])} | "
                         f"{fmt_s(row['total_median_s'])} | {_fmt_mb(row['encode'])} |")
        lines.append("")
    if sc.get("encoder_input_size"):
        lines += ["| Encoder input (random weights) | tokens | encode | memory rise |",
                  "|---:|---:|---:|---:|"]
        for row in sc["encoder_input_size"]:
            lines.append(f"| {row['img_size']}² | {row['tokens']} | {fmt_s(row['encode']['median_s'])} | "
                         f"{_fmt_mb(row['encode'])} |")
        lines.append("")

    tr = report.get("training", [])
    if tr:
        lines += ["| Training step | batch | median | samples/s | memory rise |",
                  "|---|---:|---:|---:|---:|"]
        for row in tr:
            lines.append(f"| stage {row['stage']} | {row['batch_size']} | {fmt_s(row['step']['median_s'])} | "
                         f"{row['samples_per_s']:.2f} | {_fmt_mb(row['step'])} |")
        lines.append("")

    mem = report.get("memory", {})
    if mem:
        extra = (f", GPU max allocated {mem['cuda_max_allocated_mb']:.0f} MB"
                 if mem.get("cuda_max_allocated_mb") is not None else "")
        lines.append(f"Peak RSS of the benchmark process {mem.get('process_peak_rss_mb')} MB{extra}; "
                     f"per-stage memory: {mem.get('method_note', mem.get('method'))}.")
    for err in report.get("errors", []):
        lines.append(f"\n**Failed:** {err['section']}: {err['error']}")
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------- entry point
def run(args: argparse.Namespace) -> int:
    """``emosem benchmark``: measure, print the table, write JSON (and .md). Exit 1 on a failure.

    JSON layout: ``schema_version``, ``created``, ``machine`` (with ``line``), ``settings``,
    ``model``, ``stages`` (name → median_s, p90_s, min_s, mean_s, runs, times_s, untimed_calls,
    rss_peak_increase_mb[, cuda_peak_increase_mb], description), ``throughput``, ``ratios``
    (key → value, target, meets_target, numerator, denominator, description), ``scaling``
    (``emotions``, ``image_size``, ``encoder_input_size``, ``encoder_hparams``), ``training``
    (rows: stage, batch_size, step stats, samples_per_s), ``memory``, ``errors``.
    """
    import torch

    from emosem.inference.predictor import default_checkpoint, resolve_device

    try:
        settings = resolve_settings(args)
        device = resolve_device(args.device)
    except ValueError as e:
        logger.error("%s", e)
        return 2
    checkpoint = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    if not (checkpoint / "config.json").is_file():
        logger.error("No EmoSEM checkpoint at %s: pass --checkpoint DIR (a folder with config.json "
                     "and model.safetensors, e.g. a training run's best/)", checkpoint)
        return 2
    if args.image:
        image = Path(args.image)
        if not image.is_file():
            logger.error("--image %s: no such file", image)
            return 2
    else:
        image = default_image()
        if image is None:
            logger.error("No default painting in demo/assets/; pass --image PATH")
            return 2
    if args.threads is not None:
        if args.threads < 1:
            logger.error("--threads must be at least 1, got %d", args.threads)
            return 2
        torch.set_num_threads(args.threads)

    from emosem.modeling.lm_weights import repo_root

    bench = Benchmark(args, settings, device, checkpoint.resolve(), image.resolve())
    machine = machine_info(device)
    machine["threads_requested"] = args.threads
    if machine["load_average_start"] and machine["load_average_start"][0] > 0.5 * (machine["logical_cores"] or 1):
        logger.warning("The machine is busy (load average %.1f on %s cores): these timings are "
                       "contended, not representative", machine["load_average_start"][0],
                       machine["logical_cores"])
    bench.report.update({
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "emosem_commit": _git_commit(repo_root()),
        "machine": machine,
        "settings": {
            "what": args.what, "quick": bool(args.quick), "checkpoint": str(checkpoint),
            "image": str(image), "emotion": args.emotion, "memory_method": None,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
            "interleaved": True,
        },
    })
    # Put the settings in a stable order for the readers of the JSON.
    bench.report = {k: bench.report[k] for k in (
        "schema_version", "created", "emosem_commit", "machine", "settings", "stages",
        "throughput", "ratios", "scaling", "training", "errors")}
    t0 = time.perf_counter()
    report = bench.run()
    report["settings"]["memory_method"] = bench.memory.method
    report["machine"]["load_average_end"] = _load_average()
    report["machine"]["line"] = machine_line(report["machine"])
    report["total_s"] = round(time.perf_counter() - t0, 1)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    md = to_markdown(report)
    out.with_suffix(".md").write_text(md)
    print(md)
    print(f"Saved {out} and {out.with_suffix('.md')} ({report['total_s']} s)")
    if report["errors"]:
        print(f"{len(report['errors'])} section(s) failed: "
              + "; ".join(e["section"] for e in report["errors"]))
        return 1
    return 0
