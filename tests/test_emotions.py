"""The ArtEmis emotion vocabulary and its parsers."""

from __future__ import annotations

import pytest

from emosem.emotions import (
    ARTEMIS_EMOTIONS,
    EMOTION_TO_INDEX,
    NUM_EMOTIONS,
    UnknownEmotionError,
    emotion_color,
    emotion_index,
    is_artemis_emotion,
    normalize_prompt_emotion,
    parse_emotion,
    parse_emotions,
)


def test_vocabulary_order_and_spelling():
    assert ARTEMIS_EMOTIONS == (
        "amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness",
        "something else",
    )
    assert NUM_EMOTIONS == 9
    assert EMOTION_TO_INDEX["amusement"] == 0
    assert EMOTION_TO_INDEX["something else"] == 8
    assert all(ARTEMIS_EMOTIONS[i] == e for e, i in EMOTION_TO_INDEX.items())


@pytest.mark.parametrize(
    "label,expected",
    [
        ("awe", "awe"),
        ("AWE", "awe"),
        ("  Fear ", "fear"),
        ("Sadness", "sadness"),
        ("something_else", "something else"),
        ("Something_Else", "something else"),
        ("SOMETHING ELSE", "something else"),
        ("something-else", "something else"),
        ("something   else", "something else"),
    ],
)
def test_parse_emotion_accepts_any_case_and_underscore(label, expected):
    assert parse_emotion(label) == expected
    assert is_artemis_emotion(label)


def test_unknown_emotion_lists_valid_ones_and_suggests():
    with pytest.raises(UnknownEmotionError) as exc:
        parse_emotion("sadnes")
    msg = str(exc.value)
    assert "Did you mean 'sadness'?" in msg
    for e in ARTEMIS_EMOTIONS:
        assert e in msg
    assert isinstance(exc.value, ValueError)


def test_unknown_emotion_without_close_match_still_lists_valid_ones():
    with pytest.raises(UnknownEmotionError) as exc:
        parse_emotion("zzzzqqq")
    assert "Did you mean" not in str(exc.value)
    assert "something else" in str(exc.value)
    assert not is_artemis_emotion("zzzzqqq")


def test_emotion_index_and_parse_emotions():
    assert emotion_index("Something_else") == 8
    assert parse_emotions(["Awe", "awe", "FEAR", "something_else"]) == ["awe", "fear", "something else"]


def test_normalize_prompt_emotion_trained_and_free_text():
    assert normalize_prompt_emotion("AWE") == ("awe", True)
    assert normalize_prompt_emotion("something_else") == ("something else", True)
    assert normalize_prompt_emotion("  deep   melancholy ") == ("deep melancholy", False)


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_normalize_prompt_emotion_refuses_empty(bad):
    with pytest.raises(ValueError, match="empty"):
        normalize_prompt_emotion(bad)


def test_emotion_color():
    assert emotion_color("Fear") != emotion_color("awe")
    assert emotion_color("melancholy") == emotion_color("nostalgia")
    assert all(0 <= c <= 255 for c in emotion_color("something_else"))
