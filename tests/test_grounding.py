"""Grounded decoding: explanations cannot use colour or position words the region contradicts."""

from __future__ import annotations

import re

import torch
from PIL import Image
from transformers import LogitsProcessor, LogitsProcessorList

from emosem.data.cue_words import contradicting_words
from emosem.inference.grounding import BannedWords, grounding_processor, word_token_ids


def test_banned_words_masks_each_rows_own_ids_across_beams():
    scores = torch.zeros(4, 6)  # 2 rows × 2 beams
    out = BannedWords([[1, 3], [5]], num_beams=2)(torch.zeros(4, 1, dtype=torch.long), scores)
    inf = float("-inf")
    assert out[0].tolist() == out[1].tolist() == [0, inf, 0, inf, 0, 0]
    assert out[2].tolist() == out[3].tolist() == [0, 0, 0, 0, 0, inf]


def test_single_token_spellings_of_the_smollm2_vocabulary(smollm2_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    ids = word_token_ids(tok, "red")
    assert len(ids) == 3 and {tok.decode([i]) for i in ids} == {" red", " Red", "Red"}
    region = {"area_fraction": 0.1, "centroid": [0.2, 0.1], "colours": [{"name": "dark blue"}]}
    banned = grounding_processor(tok, [region, None]).banned
    words = {tok.decode([i]).strip().lower() for i in banned[0].tolist()}
    assert {"red", "right", "bottom"} <= words and not {"blue", "left", "top"} & words
    assert len(banned[1]) == 0  # no cues, nothing banned


class _Push(LogitsProcessor):
    """Makes the given ids the decoder's first choice (a model that loves wrong colour words)."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def __call__(self, input_ids, scores):
        scores[:, self.ids] += 1e4
        return scores


def test_the_predictor_never_writes_a_contradicted_word(tiny_checkpoint, sample_paintings):
    """A decoder pushed towards every colour and position word writes them freely, and none of
    the ones the region contradicts once grounded."""
    from emosem.data.cue_words import COLOUR_WORDS, POSITION_WORDS
    from emosem.inference.predictor import EmoSEMPredictor

    predictor = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")
    predictor.set_image(Image.open(sample_paintings[0]))
    tok = predictor.model.lm.tokenizer
    pushed = sorted({i for w in (*COLOUR_WORDS, *POSITION_WORDS) for i in word_token_ids(tok, w)})
    assert pushed, "the tiny tokenizer spells some colour and position words as one token"
    emotions = ["awe", "fear", "sadness"]

    def run(grounding: bool):
        return predictor.predict(emotions, threshold=0.01, max_new_tokens=6, word_grounding=grounding,
                                 logits_processor=LogitsProcessorList([_Push(pushed)]))

    def contradicted(r) -> set[str]:
        words = set(re.findall(r"[a-z]+", (r.explanation or "").lower()))
        return words & set(contradicting_words(r.cues.record()))

    free, grounded = run(False), run(True)
    assert any(r.explanation for r in grounded)
    assert any(contradicted(r) for r in free), [r.explanation for r in free]
    assert not any(contradicted(r) for r in grounded), [r.explanation for r in grounded]
