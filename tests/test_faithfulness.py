"""The faithfulness rule, computed by hand."""

from __future__ import annotations

from emosem.data.cue_words import colour_terms, contradicting_words, position_phrases
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


def test_contradicting_words_are_exactly_the_ones_the_metric_fails():
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
