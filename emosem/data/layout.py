"""The file names of an ArtEmis-style data folder, in one place.

::

    DATA_DIR/artemis_dataset_release_v0.csv    CSV_NAME    the ArtEmis CSV (one row per annotator)
    DATA_DIR/stimulus_masks.json               MASKS_NAME  COCO stimulus masks
    DATA_DIR/images/{art_style}/{painting}.jpg IMAGES_DIR  the paintings

The loader (:func:`emosem.data.artemis.load_artemis`), the configuration defaults
(:class:`emosem.config.DataConfig`), ``tools/validate_data.py`` and the synthetic generator all
take their defaults from here.
"""

from __future__ import annotations

CSV_NAME = "artemis_dataset_release_v0.csv"
MASKS_NAME = "stimulus_masks.json"
IMAGES_DIR = "images"
