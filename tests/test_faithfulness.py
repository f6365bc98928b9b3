"""The faithfulness rule, computed by hand."""

from __future__ import annotations

from emosem.data.cue_words import (
    COLOUR_WORDS,
    POSITION_WORDS,
    POSITIONS,
    colour_terms,
    contradicting_words,
    position_phrases,
)
from emosem.data.cues import BASIC_TERMS
from emosem.evaluation.faithfulness import colour_agrees, faithfulness, position_agrees

# a region in the upper left (centroid x 0.2, y 0.1 → cell (0, 0)), dark blue and grey
UPPER_LEFT = {"centroid": [0.2, 0.1], "area_fraction": 0.05,
              "colours": [{"name": "dark blue", "share": 0.6}, {"name": "grey", "share": 0.3}]}
# a region in the centre (cell (1, 1)), yellow
CENTRE = {"centroid": [0.5, 0.45], "area_fraction": 0.1,
          "colours": [{"name": "pale yellow", "share": 0.9}]}


def test_words_found():
    assert colour_terms("The dark gray sea and a golden sun") == {"grey", "yellow"}
    assert colour_terms("a stormy night") == set()
    assert position_phrases("the boat in the upper left, near the top") == ["upper left", "near the top"]


def test_agreement_by_hand():
    assert colour_agrees("the dark blue wave", UPPER_LEFT) is True
    assert colour_agrees("the blue and gray sky", UPPER_LEFT) is True
    assert colour_agrees("the red sun", UPPER_LEFT) is False
    assert colour_agrees("the blue wave and the yellow moon", UPPER_LEFT) is False  # one wrong
    assert colour_agrees("a lonely figure", UPPER_LEFT) is None
    assert position_agrees("the wave in the upper left", UPPER_LEFT) is True
    assert position_agrees("the wave at the top", UPPER_LEFT) is True  # row 0
    assert position_agrees("the wave on the left side", UPPER_LEFT) is True  # column 0
    assert position_agrees("the wave in the center", UPPER_LEFT) is False
    assert position_agrees("the sun in the middle", CENTRE) is True
    assert position_agrees("the sun at the bottom", CENTRE) is False
    assert position_agrees("the sun", CENTRE) is None


def test_shares_count_only_scored_explanations():
    pairs = [
        ("the dark blue wave in the upper left", UPPER_LEFT),  # colour ✓ position ✓
        ("the red wave on the right", UPPER_LEFT),             # colour ✗ position ✗
        ("the yellow sun", CENTRE),                            # colour ✓, no position
        ("it makes me calm", CENTRE),                          # neither
        ("the blue sky at the top", {"centroid": [0.5, 0.5], "area_fraction": 0.0}),  # empty
    ]
    scores = faithfulness(pairs)
    assert scores == {"colour": 2 / 3, "colour_scored": 3, "position": 1 / 2, "position_scored": 2}
    assert faithfulness([])["colour"] is None


def test_section_scores_every_method_against_the_models_region():
    """The explanations section checks the model's and a baseline's texts against the same
    measured region, overall and per emotion."""
    from emosem.evaluation.rows import SampleRow
    from emosem.evaluation.sections.explanations import faithfulness_scores

    def row(emotion, cues):
        return SampleRow(key="k", emotion=emotion, image="x.png", has_mask=True, has_text=True,
                         predicted_iou=0.5, explanation="", cues=cues)

    rows = [row("fear", UPPER_LEFT), row("awe", CENTRE)]
    model = faithfulness_scores(rows, ["the dark blue wave at the top", "the yellow sun"])
    baseline = faithfulness_scores(rows, ["the red wave at the bottom", "the yellow sun"])
    assert (model["colour"], model["position"]) == (1.0, 1.0)
    assert (baseline["colour"], baseline["position"]) == (0.5, 0.0)
    assert baseline["per_emotion"]["fear"]["colour"] == 0.0
    assert baseline["per_emotion"]["awe"]["colour"] == 1.0


def test_contradicting_words_by_hand_on_two_regions():
    """Grounded decoding bans what the metric would count as false, and nothing it accepts."""
    banned = set(contradicting_words(UPPER_LEFT))
    assert {"red", "yellow", "gold"} <= banned and not {"blue", "grey", "gray", "navy"} & banned
    assert {"right", "bottom", "lower", "center", "middle"} <= banned
    assert not {"left", "upper", "top"} & banned
    for word in ("blue", "grey", "red", "yellow"):
        assert colour_agrees(f"the dark {word} cloud", UPPER_LEFT) is (word not in banned)
    for phrase in ("upper left", "at the top", "on the left", "on the right", "in the center"):
        words_ok = not set(phrase.split()) & banned
        assert position_agrees(f"the cloud {phrase}", UPPER_LEFT) is words_ok, phrase
    assert set(contradicting_words(CENTRE)) >= {"left", "right", "top", "bottom", "blue"}
    assert not {"center", "middle", "yellow"} & set(contradicting_words(CENTRE))
    assert contradicting_words({**CENTRE, "area_fraction": 0.0}) == []


def _region(row: int, col: int, terms: tuple[str, ...]) -> dict:
    """A region whose centroid is in the middle of cell (row, col), of the given colours."""
    return {"centroid": [(col + 0.5) / 3, (row + 0.5) / 3], "area_fraction": 0.05,
            "colours": [{"name": f"dark {t}", "share": 0.5} for t in terms]}


def test_contradicting_words_are_exactly_the_ones_the_metric_fails_everywhere():
    """Every cell of the 3x3 grid, every basic colour alone and in a pair, every colour word and
    every position phrase the metric knows: a word is banned exactly when the metric would count
    a text using it false (the hand-made test above samples a few words on two regions)."""
    pairs = [(t,) for t in BASIC_TERMS] + list(zip(BASIC_TERMS, BASIC_TERMS[1:]))
    checked = 0
    for row in range(3):
        for col in range(3):
            for terms in pairs:
                cues = _region(row, col, terms)
                banned = set(contradicting_words(cues))
                for word in COLOUR_WORDS:
                    assert (word in banned) is (colour_agrees(f"the {word} cloud", cues) is False), \
                        (word, terms)
                for phrase in POSITIONS:
                    uses_banned = bool(set(phrase.split()) & set(POSITION_WORDS) & banned)
                    assert position_agrees(f"the cloud {phrase}", cues) is not uses_banned, \
                        (phrase, row, col)
                checked += 1
    assert checked == 9 * (2 * len(BASIC_TERMS) - 1)
