"""Grounded decoding: the language model cannot write a colour or position word that the
region's measured cues contradict (the words and the rule: :mod:`emosem.data.cue_words`).

The model reads the cues (``model.cues``) but, trained on synthetic references, often writes the
colour or place its motif usually has. Here each explanation's generation gets its own banned
words, and their single-token spellings (" red", " Red", "Red") get a score of −inf at every
step, so the decoder picks the next most likely words instead. A word whose every spelling is
several tokens (rare colour names) cannot be banned without banning its first piece, which
other words share; it is left alone and the metric still scores it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

from emosem.data.cue_words import contradicting_words

__all__ = ["BannedWords", "grounding_processor", "word_token_ids"]


class BannedWords(LogitsProcessor):
    """Per-explanation banned token ids: ``scores[row, ids] = -inf`` at every step.

    ``banned[b]`` holds the ids of batch row ``b``; under beam search the scores have
    ``B × num_beams`` rows, beam ``k`` of row ``b`` at ``b × num_beams + k`` (transformers' layout).
    """

    def __init__(self, banned: Sequence[Sequence[int]], num_beams: int = 1) -> None:
        self.banned = [torch.tensor(sorted(set(ids)), dtype=torch.long) for ids in banned]
        self.num_beams = num_beams

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        for row in range(scores.shape[0]):
            ids = self.banned[row // self.num_beams]
            if len(ids):
                scores[row, ids.to(scores.device)] = -float("inf")
        return scores


def word_token_ids(tokenizer: Any, word: str) -> list[int]:
    """Ids of the single-token spellings of ``word``: mid-sentence (" red", " Red") and
    capitalised at the start ("Red"). Spellings of several tokens are skipped (see module doc)."""
    ids = []
    for spelling in (f" {word}", f" {word.capitalize()}", word.capitalize()):
        toks = tokenizer.encode(spelling, add_special_tokens=False)
        if len(toks) == 1:
            ids.append(toks[0])
    return ids


def grounding_processor(tokenizer: Any, cues: Sequence[Mapping | None], num_beams: int = 1) -> BannedWords:
    """A :class:`BannedWords` for a batch of explanations, one cues record (or None) per row."""
    cache: dict[str, list[int]] = {}

    def ids(word: str) -> list[int]:
        if word not in cache:
            cache[word] = word_token_ids(tokenizer, word)
        return cache[word]

    return BannedWords([[i for w in contradicting_words(c or {}) for i in ids(w)] for c in cues],
                       num_beams)
