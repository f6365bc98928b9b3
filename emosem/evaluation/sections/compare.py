"""Model-versus-baseline comparison rows, shared by every report section."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["beats", "compare", "finite", "rate"]


def finite(x: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def rate(values: Sequence[bool]) -> float | None:
    """The share of true values (``None`` for none)."""
    return float(np.mean(values)) if values else None


def compare(model: dict, base: dict, metrics: Sequence[tuple[str, bool]]) -> dict:
    """``{metric: {model, baseline, difference, higher_is_better, model_better}}`` for each
    ``(metric, higher_is_better)`` that both sides report as a finite number."""
    out = {}
    for name, higher in metrics:
        m, b = model.get(name), base.get(name)
        if not (finite(m) and finite(b)):
            continue
        out[name] = {
            "model": m,
            "baseline": b,
            "difference": m - b,
            "higher_is_better": higher,
            "model_better": bool(m > b) if higher else bool(m < b),
        }
    return out


def beats(comparison: dict) -> bool | None:
    """Whether the model is better on every compared metric (``None``: nothing compared)."""
    return all(v["model_better"] for v in comparison.values()) if comparison else None
