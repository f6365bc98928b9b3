"""When is a stimulus region empty? One rule for every part that asks (the predictor, the
W3C annotations, the faithfulness metric, the panels' cue lines, grounded decoding).

A region is empty when its mask has no pixel, or when its cues were measured (:mod:`emosem.data.cues`, at
the working size, with ``area_fraction`` rounded to 4 decimals) and they see no part of the
canvas: a speck of a few full-size pixels. An empty region gets no explanation, no annotation
and "no region found" in its panel. The predictor stores the answer in each record
(``record["empty"]``); :func:`record_is_empty` reads it back (and decides for older records).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["cues_see_region", "record_is_empty", "region_is_empty"]


def cues_see_region(cues: Mapping | Any | None) -> bool:
    """Whether a cues record (or :class:`~emosem.data.cues.Cues`) covers part of the canvas."""
    if cues is None:
        return False
    fraction = cues.get("area_fraction") if isinstance(cues, Mapping) else cues.area_fraction
    return bool(fraction)


def region_is_empty(area: int, cues: Mapping | Any | None) -> bool:
    """The rule: no pixel (``area`` of the full-size mask), or measured cues that see nothing
    (``cues`` None: not measured, so only the pixels count)."""
    return int(area) == 0 or (cues is not None and not cues_see_region(cues))


def record_is_empty(record: Mapping) -> bool:
    """A ``results.json`` record's ``empty`` (written by the predictor), else the rule applied
    to its ``area`` and ``cues`` (records written before the key existed)."""
    if "empty" in record:
        return bool(record["empty"])
    return region_is_empty(record.get("area") or 0, record.get("cues"))
