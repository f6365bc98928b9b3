"""Procedural ArtEmis-style data: painterly pictures with emotion-evoking motifs, exact masks,
and varied first-person utterances, written in exactly the real ArtEmis/COCO formats.

Each painting has a background (sky/ground landscape or abstract colour fields, with a palette per
art style), 1-4 motifs from :data:`MOTIFS` (each with a distinct shape and colour signature and
an emotion), and a brush-stroke pass that keeps every stroke inside the region it starts in, so
each motif's mask is exactly what is visible of it. 5-8 annotators per painting vote for the
emotion of one motif (bigger motifs get more votes; a few choose "something else") and write an
utterance that names the motif, its colour, position and size.

Everything is deterministic by ``seed``: painting ``i`` uses its own RNG seeded from
``(seed, i)``, so the output does not depend on the number of worker processes.

Output layout (``generate_synthetic_artemis``; the names come from :mod:`emosem.data.layout`)::

    OUT/images/{art_style}/{painting}.jpg
    OUT/artemis_dataset_release_v0.csv     art_style,painting,emotion,utterance,repetition
    OUT/stimulus_masks.json                COCO; RLE segmentations (str counts) + "motif"

The parts: ``drawing`` (colour helpers, :class:`~emosem.data.synthetic.drawing.Layer`, one draw
function per motif), ``motifs`` (the motif library), ``utterances`` (what annotators write),
``painter`` (art styles, backgrounds, brush pass, :func:`render_painting`) and ``generate``
(:func:`generate_synthetic_artemis`, :func:`make_contact_sheet`).
"""

from __future__ import annotations

from emosem.data.layout import CSV_NAME, IMAGES_DIR, MASKS_NAME
from emosem.data.synthetic.drawing import BRIGHT, Color, Layer
from emosem.data.synthetic.generate import (
    CSV_COLUMNS,
    generate_synthetic_artemis,
    make_contact_sheet,
)
from emosem.data.synthetic.motifs import MOTIFS, Motif, mentions_motif, motif_by_name
from emosem.data.synthetic.painter import (
    ART_STYLE_SPECS,
    ART_STYLES,
    ArtStyle,
    PlacedMotif,
    SyntheticPainting,
    painting_rng,
    render_painting,
)
from emosem.data.synthetic.utterances import (
    EMOTION_WORDS,
    SOMETHING_ELSE_TEMPLATES,
    UTTERANCE_TEMPLATES,
    color_name,
    make_something_else_utterance,
    make_utterance,
    size_word,
)

__all__ = [
    "CSV_NAME",
    "IMAGES_DIR",
    "MASKS_NAME",
    "BRIGHT",
    "Color",
    "Layer",
    "CSV_COLUMNS",
    "generate_synthetic_artemis",
    "make_contact_sheet",
    "MOTIFS",
    "Motif",
    "mentions_motif",
    "motif_by_name",
    "ART_STYLE_SPECS",
    "ART_STYLES",
    "ArtStyle",
    "PlacedMotif",
    "SyntheticPainting",
    "painting_rng",
    "render_painting",
    "EMOTION_WORDS",
    "SOMETHING_ELSE_TEMPLATES",
    "UTTERANCE_TEMPLATES",
    "color_name",
    "make_something_else_utterance",
    "make_utterance",
    "size_word",
]
