"""Grounded decoding: explanations cannot use colour, position or object words the region
contradicts, whatever the spelling, the tokenization or the decoding strategy."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import AutoTokenizer, LogitsProcessor, LogitsProcessorList

from emosem.data.cue_words import (
    COLOUR_WORDS,
    OBJECT_NOUNS,
    POSITION_WORDS,
    contradicting_words,
    leaked_words,
    words,
)
from emosem.inference.grounding import BannedWords, grounding_processor, vocabulary_words

# A dark blue region in the upper left that licenses no object.
REGION = {"area_fraction": 0.1, "centroid": [0.2, 0.1], "colours": [{"name": "dark blue"}], "object": None}
CHECKABLE = {*COLOUR_WORDS, *POSITION_WORDS, *OBJECT_NOUNS}


@pytest.fixture(scope="module", params=["smollm2", "tiny"])
def tokenizer(request):
    """SmolLM2's real tokenizer (49k ids) and the tests' tiny byte-level BPE."""
    folder = request.getfixturevalue("smollm2_dir" if request.param == "smollm2" else "tiny_llama_dir")
    return AutoTokenizer.from_pretrained(folder)


def test_object_nouns_are_banned_unless_the_slot_licenses_them():
    assert {"wave", "waves", "sea", "cottage", "cottages", "tree", "mourner", "lilies", "lily"} <= OBJECT_NOUNS
    assert {"wave", "cottage", "pond"} <= set(contradicting_words(REGION))
    wave = set(contradicting_words({**REGION, "object": {"word": "wave", "source": "motif", "score": 0.9}}))
    assert not {"wave", "waves", "sea", "surf"} & wave and {"cottage", "tree"} <= wave
    ship = set(contradicting_words({**REGION, "object": {"word": "tree", "source": "imagenet", "score": 0.7}}))
    assert not {"tree", "trees"} & ship and {"branches", "wave"} <= ship
    legacy = {k: v for k, v in REGION.items() if k != "object"}  # cues from before the slot
    assert "wave" in contradicting_words(legacy)
    assert leaked_words("The Waves (blood-RED) at the upper left, blue", REGION) == ["waves", "red"]


def test_expansion_is_read_from_the_scores_shape(tiny_llama_dir):
    """Rows are explanations × expansion, whether beams or num_return_sequences; a mismatch is an
    error, not another row's words."""
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    vocab = vocabulary_words(tok)
    red = [i for i in vocab.leads["red"] if vocab.texts[i].lower() == "red"]
    ban = BannedWords(vocab, [["red"], []])
    out = ban(torch.zeros(6, 0, dtype=torch.long), torch.zeros(6, vocab.size))  # 2 × 3 samples
    assert red and torch.isinf(out[:3, red]).all() and not torch.isinf(out[3:]).any()
    with pytest.raises(ValueError, match="2 explanations' words but generate scores 5 rows"):
        BannedWords(vocab, [["red"], []])(torch.zeros(5, 0, dtype=torch.long), torch.zeros(5, vocab.size))


def test_no_checkable_token_survives_in_any_context(tokenizer):
    """Every vocabulary token whose text holds a checkable word, pushed to the top after contexts
    that join or split words ("(", " blood-", a word's first pieces), is never written when its
    word is banned; a word spelled in several tokens loses its last piece."""
    vocab = vocabulary_words(tokenizer)
    banned = contradicting_words(REGION)
    pushed = [i for i, t in enumerate(vocab.texts) if set(words(t)) & CHECKABLE
              and i not in tokenizer.all_special_ids]
    assert len(pushed) > 20
    contexts = ["", " the", " blood-", " (", " sky", "-"]
    for ctx in contexts:
        ids = tokenizer.encode(ctx, add_special_tokens=False)
        prompt = torch.tensor([ids] * len(pushed), dtype=torch.long).reshape(len(pushed), len(ids))
        scores = torch.zeros(len(pushed), vocab.size)
        scores[torch.arange(len(pushed)), pushed] = 1e4
        ban = BannedWords(vocab, [banned] * len(pushed))
        ban.start = 0  # the context is generated text
        chosen = ban(prompt, scores).argmax(-1).tolist()
        written = [ctx + vocab.texts[i] for i in chosen]
        assert not [t for t in written if leaked_words(t, REGION)], ctx
    # every banned word in every spelling: the token that would finish it is banned
    for word in banned:
        for form in (f" {word}", f" {word.upper()}", f" {word.capitalize()}", f"-{word}", f"({word}"):
            ids = tokenizer.encode(" the" + form, add_special_tokens=False)
            ban = BannedWords(vocab, [banned])
            ban.start = 0
            out = ban(torch.tensor([ids[:-1]]), torch.zeros(1, vocab.size))
            assert torch.isinf(out[0, ids[-1]]), (form, [vocab.texts[i] for i in ids])


def test_allowed_words_and_words_that_merely_contain_a_banned_one_stay(smollm2_dir):
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    vocab = vocabulary_words(tok)
    ban = grounding_processor(tok, [REGION])
    ban.start = 0
    for text in (" the dark blue", " the upper left", " covered", " bored", " the sky"):
        ids = tok.encode(text, add_special_tokens=False)
        out = ban(torch.tensor([ids[:-1]]), torch.zeros(1, vocab.size))
        assert not torch.isinf(out[0, ids[-1]]), text


class _Push(LogitsProcessor):
    """Makes the given ids the decoder's first choice (a model that loves checkable words)."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def __call__(self, input_ids, scores):
        scores[:, self.ids] += 1e4 * torch.rand(len(self.ids), generator=torch.Generator().manual_seed(
            input_ids.shape[1]))
        return scores


def test_beam_search_generate_keeps_each_rows_own_ban(tiny_llama_dir):
    """Inside a real beam-search ``generate`` with several returned sequences per input, each
    input's beams avoid its own banned words (and only those)."""
    from transformers import AutoModelForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    vocab = vocabulary_words(tok)
    pushed = [i for i, t in enumerate(vocab.texts) if set(words(t)) & CHECKABLE and i not in tok.all_special_ids]
    right = {"area_fraction": 0.1, "centroid": [0.9, 0.5], "colours": [{"name": "red"}], "object": None}
    ids = torch.tensor([tok.encode("I feel", add_special_tokens=False)] * 2)

    def run(processors: list[LogitsProcessor]) -> list[str]:
        torch.manual_seed(0)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, num_beams=3,
                             num_return_sequences=2, do_sample=False, pad_token_id=tok.pad_token_id,
                             logits_processor=LogitsProcessorList(processors))
        return tok.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)

    free = run([_Push(pushed)])
    assert any(leaked_words(t, REGION) for t in free[:2]), free
    grounded = run([_Push(pushed), grounding_processor(tok, [REGION, right])])
    assert len(grounded) == 4
    assert not [t for t in grounded[:2] if leaked_words(t, REGION)], grounded
    assert not [t for t in grounded[2:] if leaked_words(t, right)], grounded


def test_the_predictor_never_writes_a_contradicted_word(tiny_checkpoint, sample_paintings):
    """A decoder pushed towards every checkable word writes them freely, and none of the ones
    the region contradicts once grounded."""
    from emosem.inference.predictor import EmoSEMPredictor

    predictor = EmoSEMPredictor.from_pretrained(tiny_checkpoint, device="cpu")
    predictor.set_image(Image.open(sample_paintings[0]))
    tok = predictor.model.lm.tokenizer
    vocab = vocabulary_words(tok)
    pushed = [i for i, t in enumerate(vocab.texts) if set(words(t)) & CHECKABLE and i not in tok.all_special_ids]
    emotions = ["awe", "fear", "sadness"]

    def run(grounding: bool):
        return predictor.predict(emotions, threshold=0.01, max_new_tokens=6, word_grounding=grounding,
                                 logits_processor=LogitsProcessorList([_Push(pushed)]))

    free, grounded = run(False), run(True)
    assert any(r.explanation for r in grounded)
    assert any(leaked_words(r.explanation or "", r.cues.record()) for r in free), [r.explanation for r in free]
    assert not any(leaked_words(r.explanation or "", r.cues.record()) for r in grounded), \
        [r.explanation for r in grounded]


@pytest.mark.slow
def test_the_bundled_checkpoint_names_no_unlicensed_object_on_a_real_painting(sample_paintings, smollm2_dir):
    """End to end with the bundled checkpoint, whose language model was trained to name the
    synthetic motifs: on a real painting no explanation uses an object noun of that vocabulary
    that its region's object slot does not license, nor any other word its cues contradict."""
    from emosem.data.cue_words import licensed_object, licensed_words, object_words
    from emosem.inference.predictor import EmoSEMPredictor

    predictor = EmoSEMPredictor.from_pretrained(device="cpu")
    predictor.set_image(next(p for p in sample_paintings if p.stem == "shipwreck"))
    explained = [r for r in predictor.predict(["awe", "fear", "sadness", "contentment"], max_new_tokens=30)
                 if r.explanation]
    assert explained
    for r in explained:
        cues = r.cues.record()
        assert not object_words(r.explanation) - licensed_words(licensed_object(cues)), (r.explanation, cues)
        assert not leaked_words(r.explanation, cues), r.explanation


def test_token_texts_are_kept_per_tokenizer_and_read_back(tokenizer, tmp_path, monkeypatch):
    """The first call decodes every id and keeps the texts in the user cache; a later one (a new
    process) reads them back without decoding, the same list; another tokenizer has its own."""
    from emosem.inference import grounding

    monkeypatch.setenv("EMOSEM_CACHE", str(tmp_path))
    texts = grounding.token_texts(tokenizer)
    assert texts == grounding.decode_token_texts(tokenizer) and len(texts) == len(tokenizer)
    (kept,) = (tmp_path / "token_texts").glob("*.json")

    def no_decoding(_):
        raise AssertionError("decoded again")

    monkeypatch.setattr(grounding, "decode_token_texts", no_decoding)
    assert grounding.token_texts(tokenizer) == texts
    kept.write_text("[1, 2")  # unreadable: decoded again (here: refused)
    with pytest.raises(AssertionError, match="decoded again"):
        grounding.token_texts(tokenizer)
