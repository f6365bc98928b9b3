"""The JSON files of an evaluation: ``report.json`` (NaN as ``null``), ``samples.jsonl`` (one line
per sample) and ``paintings.jsonl`` (one line per painting of the alignment protocol)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from emosem.evaluation.rows import SampleRow

__all__ = ["jsonable", "write_jsonl", "write_report_json", "write_samples"]


def jsonable(x: Any) -> Any:
    """``x`` with numpy scalars as Python numbers, non-finite floats as ``None``, paths as str."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    return x


def write_jsonl(path: Path, records: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(jsonable(rec)) + "\n")
    return path


def write_samples(path: Path, rows: list[SampleRow]) -> Path:
    """``samples.jsonl``: :meth:`SampleRow.to_record` of every row."""
    return write_jsonl(path, [r.to_record() for r in rows])


def write_report_json(path: Path, report: dict) -> Path:
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return path
