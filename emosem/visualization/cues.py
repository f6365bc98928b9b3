"""The "what the region shows" lines of a stimulus, shared by the panel figure, the HTML gallery
and the web demo (no plotting imports)."""

from __future__ import annotations

from collections.abc import Mapping

from emosem.regions import cues_see_region

__all__ = ["CUES_TITLE", "cue_lines"]

CUES_TITLE = "what the region shows"


def cue_lines(cues: Mapping | None) -> list[str]:
    """The "what the region shows" lines of a ``cues`` record (``emosem.data.cues.Cues.record``):
    place and size, colour shares, light, shape and texture, the licensed object (older records:
    the pooled concepts); [] for no record or an empty region. The
    panel, the HTML gallery and the web demo all show these."""
    if not cues_see_region(cues):
        return []
    lines = [f"{cues.get('extent') or cues['place']}, {cues['size']} "
             f"({100 * cues['area_fraction']:.0f}% of the canvas)"]
    if cues.get("colours"):
        lines.append("colours: " + ", ".join(f"{c['name']} {100 * c['share']:.0f}%"
                                             for c in cues["colours"]))
    if cues.get("light_words"):
        lines.append("light: " + ", ".join(cues["light_words"]))
    if cues.get("shape_words"):
        lines.append("shape: " + ", ".join(cues["shape_words"]))
    if "object" in cues:  # the name the evidence licenses, and which evidence (Cues.object)
        lines.append(object_line(cues["object"]))
    elif cues.get("concepts"):  # records made before the object slot
        lines.append("shows: " + ", ".join(f"{c['name']} {c['score']:.2f}" for c in cues["concepts"]))
    return lines


def object_line(obj: Mapping | None) -> str:
    """ "object: ship (ImageNet schooner, 0.77)", "object: wave (trained motif, 0.62)", or
    "object: none licensed" (the region is described by what is measured)."""
    if not obj:
        return "object: none licensed"
    source = {"motif": "trained motif", "imagenet": "ImageNet"}.get(obj.get("source"), obj.get("source"))
    what = f"{source} {obj['concept']}" if obj.get("concept") else source
    return f"object: {obj['word']} ({what}, {obj.get('score', 0):.2f})"


NO_REGION_NOTE = "no region found, so nothing to explain"


def no_explanation_note(cues: Mapping | None) -> str:
    """What to show where a result has no explanation: why, when its cues say the region is
    empty (the predictor explains no empty region), else that there is none."""
    return NO_REGION_NOTE if cues and not cues_see_region(cues) else "no explanation"
