"""Per-call peak-memory probes (RSS high-water mark or psutil sampling; CUDA allocations).

See :mod:`emosem.benchmark` for what is measured and how.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["MEMORY_METHODS", "MemoryMonitor", "malloc_trim", "ru_maxrss_kb", "wait_with_peak"]


def ru_maxrss_kb(who: str = "self") -> int:
    try:
        import resource
    except ImportError:  # not on POSIX
        return 0
    usage = resource.getrusage(resource.RUSAGE_SELF if who == "self" else resource.RUSAGE_CHILDREN)
    # Linux reports kB, macOS bytes.
    return int(usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss)


def wait_with_peak(proc: Any, poll: Callable[[], None] | None = None, step_s: float = 0.005) -> float:
    """Wait for the child ``proc`` (a ``subprocess.Popen``), calling ``poll`` every ``step_s``
    while it runs, and return *its own* peak RSS in MB: the largest ``VmHWM`` of
    ``/proc/<pid>/status`` read meanwhile (the high-water mark of the program it runs; what a
    last ≤ ``step_s`` before exit adds is missed). Not ``getrusage``: a child's ``ru_maxrss`` starts
    from the spawning process's own size (the pages it shares until ``exec``), so the benchmark's
    children would all read at least the benchmark's size. 0.0 where ``/proc`` is missing."""
    status = Path(f"/proc/{proc.pid}/status")
    peak_kb = 0
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
                    break
        except (OSError, ValueError, IndexError):  # not Linux, or the process just ended
            pass
        if poll is not None:
            poll()
        time.sleep(step_s)
    return peak_kb / 1024


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
        self._peak_kb = max(self._peak_kb, hwm, ru_maxrss_kb())

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

