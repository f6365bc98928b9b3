"""What loading an ArtEmis-style data set kept and skipped: :class:`DataReport`, and
:class:`ArtEmisFormatError` for a set that cannot be read at all."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_EXAMPLES = 3

# What each skip reason counts (shown in DataReport.summary()).
REASON_UNITS = {
    "missing_column": "columns",
    "malformed_row": "rows",
    "unknown_emotion": "rows",
    "empty_utterance": "rows",
    "duplicate_row": "rows",
    "missing_image": "paintings",
    "unreadable_image": "paintings",
    "bad_image_entry": "COCO images",
    "unknown_category": "annotations",
    "bad_annotation": "annotations",
    "empty_mask": "annotations",
    "mask_size_mismatch": "annotations",
}


class ArtEmisFormatError(ValueError):
    """A data set that cannot be read at all (e.g. a CSV without a required column).

    ``report`` holds the :class:`DataReport` gathered so far (``usable`` is False).
    """

    def __init__(self, message: str, report: DataReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class DataReport:
    """What was loaded and what was skipped (by reason, with a few examples)."""

    root: str = ""
    csv_path: str | None = None
    masks_path: str | None = None
    csv_rows: int = 0
    paintings: int = 0
    samples: int = 0
    with_mask_and_text: int = 0
    mask_only: int = 0
    text_only: int = 0
    annotations: int = 0
    dropped_rows: int = 0
    dropped_annotations: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    usable: bool = False

    def skip(self, reason: str, example: str | None = None, count: int = 1) -> None:
        """Count ``count`` items skipped for ``reason`` and keep the first few examples."""
        self.skipped[reason] = self.skipped.get(reason, 0) + count
        if example is not None:
            ex = self.examples.setdefault(reason, [])
            if len(ex) < MAX_EXAMPLES:
                ex.append(example)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """A readable multi-line report."""
        lines = [f"ArtEmis data at {self.root}"]
        lines.append(f"  csv:   {self.csv_path or '(none)'}")
        lines.append(f"  masks: {self.masks_path or '(none: text only)'}")
        lines.append(
            f"  {self.csv_rows} CSV rows, {self.annotations} mask annotations, "
            f"{self.paintings} paintings, {self.samples} samples "
            f"({self.with_mask_and_text} mask+text, {self.mask_only} mask only, "
            f"{self.text_only} text only)"
        )
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.skipped:
            lines.append(f"  skipped ({self.dropped_rows} rows, {self.dropped_annotations} annotations dropped in all):")
            for reason in sorted(self.skipped, key=lambda r: (-self.skipped[r], r)):
                unit = REASON_UNITS.get(reason, "items")
                lines.append(f"    {reason}: {self.skipped[reason]} {unit}")
                for ex in self.examples.get(reason, []):
                    lines.append(f"      e.g. {ex}")
        else:
            lines.append("  nothing skipped")
        lines.append(f"  usable: {'yes' if self.usable else 'NO'}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["num_skipped"] = self.num_skipped
        return d
