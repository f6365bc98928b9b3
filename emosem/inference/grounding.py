"""Grounded decoding: the language model cannot write a colour, position or object word that the
region's measured cues contradict (the words and the rule: :mod:`emosem.data.cue_words`).

The model reads the cues (``model.cues``) but, trained on synthetic references, often writes the
colour, place or motif its emotion usually has. Here each explanation's generation gets its own
banned words, and a token is given a score of −inf at a step when appending it would make the
generated text contain a banned word as a whole word, the way the metric's matcher splits text
(:func:`emosem.data.cue_words.words`): whatever the tokens, so " red", " RED", "(red", the
"red" of " blood-red", and the last piece of a word spelled in several tokens (" cr" + "imson")
are all caught, while "covered" (" cove" + "red") is not. It is the logic of transformers'
``NoBadWordsLogitsProcessor`` applied to the decoded text instead of to fixed token sequences,
which could not list every tokenization of every word.

A word is caught when the text's trailing run of word characters equals it at the end of a
token (so "reddish" and "Redmond" are blocked at their "red", as a single " red" token was) or
when a token closes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from emosem.data.cue_words import contradicting_words
from emosem.files import atomic_write_text
from emosem.paths import user_cache

__all__ = ["BannedWords", "VocabularyWords", "grounding_processor", "vocabulary_words"]

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
_TAIL = re.compile(r"\w*$")
# Tokens looked back to find the word the text ends in (a longer run is no checkable word).
_LOOKBACK = 16
TEXTS_FORMAT = 1  # bump when decode_token_texts changes what it gives


@dataclass(frozen=True)
class VocabularyWords:
    """Where words sit in each token's text, lower case, for a tokenizer of ``size`` ids.

    ``texts[i]`` is token ``i``'s text as it reads after other text (its leading space kept);
    ``leads`` maps a word-character run that starts a token (it joins the word the text ends
    in) to the ids with it; ``inner`` maps a run that starts after a non-word character inside
    a token to the ids with it. Special tokens are in neither.
    """

    texts: tuple[str, ...]
    leads: Mapping[str, tuple[int, ...]]
    inner: Mapping[str, tuple[int, ...]]
    size: int

    def ids_for(self, word: str, tail: str) -> list[int]:
        """Ids that would complete ``word`` after a text ending in the word run ``tail``."""
        out = list(self.inner.get(word, ())) if word else []
        if len(word) > len(tail) and word.startswith(tail):
            out += self.leads.get(word[len(tail):], ())
        return out

    def tail(self, ids: Sequence[int]) -> str:
        """The run of word characters a text of token ids ends in, lower case."""
        text = "".join(self.texts[i] if 0 <= i < len(self.texts) else " " for i in ids[-_LOOKBACK:])
        return _TAIL.search(text).group(0).lower()


def token_texts(tokenizer: Any) -> list[str]:
    """Each token's text as it reads after other text (:func:`decode_token_texts`), kept in the
    user cache (:func:`~emosem.paths.user_cache` ``token_texts/<key>.json``, keyed by the fast
    tokenizer's whole serialisation) so that only the first process on a tokenizer decodes
    its ~49k ids (a second of every explaining start)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow tokenizer: nothing cheap to key it by
        return decode_token_texts(tokenizer)
    key = hashlib.sha1(f"{TEXTS_FORMAT}:{len(tokenizer)}:{backend.to_str()}".encode()).hexdigest()[:16]
    path = user_cache("token_texts", f"{key}.json")
    try:
        texts = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(texts, list) and len(texts) == len(tokenizer):
            return texts
    except (OSError, ValueError):
        pass
    texts = decode_token_texts(tokenizer)
    try:
        atomic_write_text(path, json.dumps(texts))
    except OSError as e:
        logger.info("token texts not kept in %s: %s", path, e)
    return texts


def decode_token_texts(tokenizer: Any) -> list[str]:
    """Each token's text as it reads after other text: decoded after an anchor token and with
    the anchor's text removed (SentencePiece tokenizers drop a lone token's leading space)."""
    anchor = tokenizer.encode("a", add_special_tokens=False)[-1]
    n = len(tokenizer)
    head = tokenizer.decode([anchor], clean_up_tokenization_spaces=False)
    pairs = tokenizer.batch_decode([[anchor, i] for i in range(n)], clean_up_tokenization_spaces=False)
    alone = tokenizer.batch_decode([[i] for i in range(n)], clean_up_tokenization_spaces=False)
    return [p[len(head):] if p.startswith(head) else a for p, a in zip(pairs, alone)]


@lru_cache(maxsize=4)
def vocabulary_words(tokenizer: Any) -> VocabularyWords:
    """The :class:`VocabularyWords` of a tokenizer (built once per tokenizer, ~1 s for 49k ids)."""
    texts = token_texts(tokenizer)
    special = set(getattr(tokenizer, "all_special_ids", []))
    leads: dict[str, list[int]] = defaultdict(list)
    inner: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(texts):
        if i in special:
            continue
        for m in _WORD.finditer(text):
            (leads if m.start() == 0 else inner)[m.group(0).lower()].append(i)
    return VocabularyWords(tuple(texts), {k: tuple(v) for k, v in leads.items()},
                           {k: tuple(v) for k, v in inner.items()}, len(texts))


class BannedWords:
    """Per-explanation banned words: a token that would write one gets ``-inf`` (a logits
    processor, ``(input_ids, scores) → scores``, for ``generate`` or a fast decoder; it does not
    subclass transformers' ``LogitsProcessor``, whose import costs a second of a cold start).

    ``banned[b]`` holds the lower-case words of explanation ``b``. ``generate`` expands each
    explanation into consecutive score rows (``num_beams`` beams, or ``num_return_sequences``
    samples); the expansion is read from the scores' shape (rows = explanations × expansion)
    and checked. Only the text generated after the first call's ``input_ids`` is checked, so
    one processor serves one ``generate`` call.
    """

    def __init__(self, vocab: VocabularyWords, banned: Sequence[Collection[str]]) -> None:
        self.vocab = vocab
        self.banned = [frozenset(w.lower() for w in words) for words in banned]
        self.start: int | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """``input_ids`` [R, T], ``scores`` [R, V] with R = len(banned) × expansion."""
        rows, n = scores.shape[0], len(self.banned)
        if n == 0 or rows % n:
            raise ValueError(f"BannedWords holds {n} explanations' words but generate scores "
                             f"{rows} rows; build one processor per generate call with one entry per input row")
        if self.start is None:
            self.start = input_ids.shape[1]
        expansion = rows // n
        for row in range(rows):
            words = self.banned[row // expansion]
            if not words:
                continue
            tail = self.vocab.tail(input_ids[row, self.start:].tolist())
            ids = sorted({i for w in words for i in self.vocab.ids_for(w, tail) if i < scores.shape[1]})
            if ids:
                scores[row, torch.tensor(ids, device=scores.device)] = -float("inf")
        return scores


def grounding_processor(tokenizer: Any, cues: Sequence[Mapping | None]) -> BannedWords:
    """A :class:`BannedWords` for a batch of explanations, one cues record (or None) per row:
    each row bans its region's :func:`~emosem.data.cue_words.contradicting_words`."""
    return BannedWords(vocabulary_words(tokenizer), [contradicting_words(c or {}) for c in cues])
