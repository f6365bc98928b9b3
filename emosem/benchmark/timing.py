"""Timing statistics of a benchmark stage and how they are printed."""

from __future__ import annotations

import statistics
from typing import Any

__all__ = ["fmt_s", "percentile", "summarize"]


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


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"
