"""The independent faithfulness oracle: pixel colour terms, mask positions and things, checked on
drawn images and masks with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from emosem.data.synthetic.motifs import motif_by_name
from emosem.evaluation.oracle import (
    TERMS,
    check_explanation,
    colour_shares,
    motif_things,
    pixel_terms,
    position_true,
    present_things,
)

CANONICAL = {"red": (200, 30, 30), "orange": (240, 140, 20), "yellow": (230, 210, 40), "green": (40, 160, 60),
             "blue": (40, 80, 200), "purple": (120, 50, 160), "pink": (240, 160, 190), "brown": (110, 70, 30),
             "black": (10, 10, 10), "white": (245, 245, 240), "grey": (128, 128, 128)}


def test_pixel_terms_of_canonical_colours():
    rgb = np.array([list(CANONICAL.values())], dtype=np.uint8)
    assert [TERMS[i] for i in pixel_terms(rgb)[0]] == list(CANONICAL)
    # a muted night sky is still blue; a very dark red is black
    assert [TERMS[i] for i in pixel_terms(np.array([[50, 60, 80], [30, 5, 5]], dtype=np.uint8))] == ["blue", "black"]


def _two_colour_image(red_rows: int) -> np.ndarray:
    """100 × 100: the first ``red_rows`` rows red, the rest blue."""
    img = np.empty((100, 100, 3), dtype=np.uint8)
    img[:] = CANONICAL["blue"]
    img[:red_rows] = CANONICAL["red"]
    return img


@pytest.mark.parametrize("red_rows, red_true", [(5, False), (15, True)])
def test_a_colour_word_is_true_when_it_covers_a_tenth_of_the_region(red_rows, red_true):
    img, mask = _two_colour_image(red_rows), np.ones((100, 100), dtype=bool)
    assert colour_shares(img, mask)["red"] == pytest.approx(red_rows / 100)
    v = check_explanation("The crimson and BLUE (teal) sky", img, mask, present_things(["sky"]))
    assert v.colours == {"crimson": red_true, "blue": True, "teal": True}
    assert check_explanation("a green field", img, mask, []).colours == {"green": False}


def test_positions_come_from_the_masks_mass():
    mask = np.zeros((90, 90), dtype=bool)
    mask[5:25, 2:28] = True  # upper left block
    assert position_true("upper left", mask) and position_true("at the top", mask)
    assert position_true("on the left", mask) and not position_true("on the right", mask)
    assert not position_true("in the center", mask) and not position_true("at the bottom", mask)
    # a long band along the bottom with a small blob at the top: its mass is at the bottom
    band = np.zeros((90, 90), dtype=bool)
    band[70:88, :] = True
    band[2:6, 40:44] = True
    assert position_true("at the bottom", band) and not position_true("at the top", band)
    assert not position_true("at the top", np.zeros((9, 9), dtype=bool))


def test_things_against_a_visible_list_with_synonyms():
    present = present_things(["ship", "waves", "sky"])
    v = check_explanation("The tiny Boat on the breaking wave under a cottage and the sun",
                          np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), bool), present)
    assert v.things == {"boat": True, "wave": True, "cottage": False, "sun": False}
    assert v.absent_things == ["cottage", "sun"]


def test_synthetic_ground_truth_motif_colour_position_and_noun():
    """On a drawn motif, the generator's truth: its mask, its pixels and its vocabulary."""
    canvas = 128
    rgb, mask, colour = motif_by_name("sun").render(np.random.default_rng(0), canvas, 64, 32, 40)
    truth = motif_things("sun")
    good = check_explanation("the golden sun at the top", rgb, mask, truth)
    assert good.colours == {"golden": True} and good.positions == {"at the top": True}
    assert good.things == {"sun": True}
    bad = check_explanation("the blue wave at the bottom", rgb, mask, truth)
    assert bad.colours == {"blue": False} and bad.positions == {"at the bottom": False}
    assert bad.absent_things == ["wave"]


def test_oracle_scores_of_hand_made_rows():
    from emosem.evaluation.rows import SampleRow
    from emosem.evaluation.sections.explanations import oracle_scores

    def row(oracle):
        return SampleRow(key="k", emotion="fear", image="x.png", has_mask=True, has_text=True,
                         predicted_iou=0.5, explanation="text", oracle=oracle)

    rows = [row({"colours": {"blue": True, "red": False}, "positions": {"at the top": True}, "things": {"wave": True}}),
            row({"colours": {}, "positions": {}, "things": {"cottage": False}}), row(None)]
    assert oracle_scores(rows) == {"colour": 0.5, "colour_words": 2, "position": 1.0, "position_phrases": 1,
                                   "names_absent_thing": 0.5, "n": 2}


def test_thing_words_from_wordnet_and_the_built_in_list(monkeypatch, tmp_path):
    """With WordNet's database any concrete noun is a thing (its most frequent sense), words
    that describe what is measured are not, nor are nouns in a simile; without it, the built-in
    list."""
    from emosem.evaluation import oracle

    img, mask = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), bool)
    text = "The dark willow and the monster's eyes in a bright spot, like a beacon of hope."
    if oracle._wordnet() is None:
        pytest.skip("WordNet's database is not installed (make wordnet)")
    assert oracle.thing_lexicon_name().startswith("WordNet")
    assert check_explanation(text, img, mask, present_things(["tree"])).things == {
        "willow": False, "monster": False, "eyes": False}
    assert check_explanation(text, img, mask, present_things(["willow", "eye"])).absent_things == ["monster"]
    assert oracle.non_words("Something in the heavy raceruboutrainer of the café makes me sad, doesn't it?") == [
        "raceruboutrainer"]
    oracle._wordnet.cache_clear()
    monkeypatch.setenv("WORDNET_DIR", str(tmp_path))
    try:
        assert oracle.thing_lexicon_name() == "built-in list only"
        assert check_explanation(text, img, mask, []).things == {"eyes": False}
        assert oracle.non_words("the raceruboutrainer") == []
    finally:
        oracle._wordnet.cache_clear()
