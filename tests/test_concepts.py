"""Licensed ImageNet concepts (emosem.inference.concepts): the word map, the crops, the calibration
and the licence on a drawn field and a real painting's ship."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emosem.inference import concepts
from emosem.inference.concepts import (
    calibrate_licence,
    crop_boxes,
    false_licence_rate,
    licensed_concept,
    licensed_concepts,
    thresholds_tensor,
    word_map,
)


def test_the_word_map_gathers_imagenet_classes_under_plain_words():
    from emosem.modeling.image_encoders import imagenet_names

    wm = word_map()
    names = imagenet_names()
    assert wm.matrix.shape == (1000, len(wm.words))
    assert float(wm.matrix.sum(1).max()) == 1.0  # no class under two words
    ship = wm.words.index("ship")
    assert wm.matrix[names.index("schooner"), ship] == 1 and wm.matrix[names.index("wreck"), ship] == 1
    for unmapped in ("cliff", "book jacket", "comic book", "envelope", "jellyfish"):
        assert wm.matrix[names.index(unmapped)].sum() == 0, unmapped
    probs = torch.zeros(1, 1000)
    probs[0, names.index("schooner")] = 0.25
    probs[0, names.index("yawl")] = 0.25
    assert float(wm.scores(probs)[0, ship]) == 0.5  # a word's score sums its classes


def test_crops_are_the_bounding_square_with_context_and_the_quarters_the_region_fills():
    mask = np.zeros((100, 200), bool)
    mask[40:60, 20:60] = True  # 20 x 40 region
    boxes = crop_boxes(mask)
    assert boxes[0] == (26, 74, 16, 64)  # side 40 * 1.2 = 48 around the centre (50, 40)
    for y0, y1, x0, x1 in boxes[1:]:
        assert y1 - y0 == x1 - x0 == 24 and mask[y0:y1, x0:x1].mean() >= concepts.MIN_CROP_COVERAGE
    assert crop_boxes(np.zeros((10, 10), bool)) == []
    edge = np.zeros((50, 50), bool)
    edge[:, 45:] = True  # a tall strip at the edge: the square is shifted into the image
    y0, y1, x0, x1 = crop_boxes(edge)[0]
    assert 0 <= y0 < y1 <= 50 and 0 <= x0 < x1 <= 50


def test_calibration_raises_each_word_to_its_peak_on_the_synthetic_regions():
    n = len(word_map().words)
    scores = torch.full((100, n), 0.01)
    scores[:, 0] = torch.linspace(0.0, 0.5, 100)  # the best scores: word 0's
    scores[7, 1] = 0.9  # one synthetic region looks very much like word 1
    licence = calibrate_licence(scores, floor_quantile=0.9)
    floor = float(torch.quantile(scores.max(1).values, 0.9))
    assert licence["floor"] == pytest.approx(floor, abs=1e-4)
    words = word_map().words
    assert set(licence["word_thresholds"]) == {words[0], words[1]}
    t = thresholds_tensor(licence)
    assert t[1] > 0.9 and t[0] > 0.5 and t[2] == pytest.approx(floor, abs=1e-4)
    assert false_licence_rate(scores, t) == 0.0  # none of the calibration regions is licensed
    with pytest.raises(ValueError, match="20 or more"):
        calibrate_licence(scores[:5])


def test_the_bundled_calibration_is_there():
    assert concepts.LICENCE_FILE.is_file(), "run tools/calibrate_concepts.py"
    assert concepts.licence_threshold().shape == (len(word_map().words),)


def test_a_flat_colour_field_and_an_empty_region_license_nothing():
    field = np.zeros((300, 400, 3), np.uint8)
    field[:] = (40, 90, 160)
    full = np.ones((300, 400), bool)
    assert licensed_concept(field, full) is None
    assert licensed_concepts(field, [np.zeros((300, 400), bool), full]) == [None, None]


@pytest.mark.slow
def test_the_shipwrecks_sailing_boat_is_a_ship_and_its_sea_nothing(sample_paintings):
    from emosem.data.image_io import load_image

    path = next((p for p in sample_paintings if p.name == "shipwreck.jpg"), None)
    if path is None:
        pytest.skip("demo/assets/shipwreck.jpg is missing")
    rgb = load_image(path)
    h, w = rgb.shape[:2]
    sail = np.zeros((h, w), bool)  # the yellow-sailed boat right of centre (fractions of the canvas)
    sail[int(0.27 * h):int(0.59 * h), int(0.59 * w):int(0.9 * w)] = True
    sea = np.zeros((h, w), bool)
    sea[int(0.7 * h):, :] = True
    found = licensed_concepts(rgb, [sail, sea])
    assert found[0] is not None and found[0]["word"] == "ship", found
    assert found[0]["concept"] in {"schooner", "yawl", "wreck", "pirate", "catamaran", "trimaran"}
    assert found[1] is None  # the stormy sea is no thing: nothing licensed
