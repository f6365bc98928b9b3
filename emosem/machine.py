"""What a report says about the machine it was made on (one definition for every report).

    machine_info("cpu")  # {"cpu_model", "logical_cores", ..., "python_version", "platform", ...}

Used by ``emosem evaluate`` (``report.json["machine"]``, plus ``num_processes``) and ``emosem
benchmark`` (``bench.json["machine"]``, plus ``threads_requested``, ``load_average_end`` and
``line``). Stdlib only at import time; torch and psutil are imported when called.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["DEVICES", "check_device", "cpu_model", "git_commit", "load_average", "machine_info",
           "machine_line"]

DEVICES = ("auto", "cpu", "cuda", "mps")


def check_device(device: Any) -> None:
    """Raise ``ValueError`` unless ``device`` is ``auto``, ``cpu``, ``cuda[:N]`` with a CUDA GPU
    present, or ``mps`` where MPS is available. The message names no command-line flag."""
    import torch

    spec = str(device)
    kind, _, index = spec.partition(":")
    if kind not in DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {spec!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} was asked for but no CUDA GPU is available; "
                         "use 'cpu' or 'auto'")
    mps = getattr(torch.backends, "mps", None)
    if kind == "mps" and not (mps and mps.is_available()):
        raise ValueError("device 'mps' was asked for but MPS is not available; use 'cpu' or 'auto'")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else what :mod:`platform` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def git_commit(root: Path) -> str | None:
    """The short commit hash of the checkout at ``root`` (``None`` outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def machine_info(device: Any) -> dict[str, Any]:
    """CPU, cores, torch threads and version, device (and GPU), Python, platform, memory, load."""
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
        "load_average_start": load_average(),
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
    """One line for a report's header: ``CPU · N logical cores · torch … · device … · Python …``."""
    parts = [m.get("cpu_model", "?"), f"{m.get('logical_cores')} logical cores",
             f"torch {m.get('torch_version')} ({m.get('torch_threads')} threads)",
             f"device {m.get('device')}" + (f" = {m['gpu']}" if m.get("gpu") else ""),
             f"Python {m.get('python_version')}"]
    load = m.get("load_average_start")
    if load:
        end = m.get("load_average_end")
        parts.append(f"load avg {load[0]}" + (f" → {end[0]}" if end else ""))
    return " · ".join(parts)
