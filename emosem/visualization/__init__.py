"""Pictures of EmoSEM results: mask overlays, heat maps, analyst figures and an HTML gallery.

* :mod:`~emosem.visualization.overlay` — pixel arrays: :func:`overlay_mask`,
  :func:`heatmap_overlay`, :func:`mask_to_png`, :func:`save_image`.
* :mod:`~emosem.visualization.figures` — matplotlib figures (Agg, no pyplot):
  :func:`panel_figure`, :func:`grid_figure`, :func:`distribution_figure`.
* :mod:`~emosem.visualization.gallery` — :func:`write_gallery`, self-contained HTML pages.
"""

from emosem.visualization.gallery import write_gallery
from emosem.visualization.overlay import (
    default_contour_thickness,
    heatmap_overlay,
    load_image,
    mask_to_png,
    overlay_mask,
    save_image,
    to_rgb_uint8,
)

_FIGURES = ("close_figure", "distribution_figure", "grid_figure", "panel_figure", "plot_distribution")


def __getattr__(name: str):
    """The figure functions, imported on first use: matplotlib's import is 0.4 s of a cold start
    that writes no figure (``tools/infer.py --json-only``)."""
    if name in _FIGURES:
        from emosem.visualization import figures

        return getattr(figures, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "close_figure",
    "default_contour_thickness",
    "distribution_figure",
    "grid_figure",
    "heatmap_overlay",
    "load_image",
    "mask_to_png",
    "overlay_mask",
    "panel_figure",
    "plot_distribution",
    "save_image",
    "to_rgb_uint8",
    "write_gallery",
]
