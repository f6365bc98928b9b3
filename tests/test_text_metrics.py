"""Captioning metrics through pycocoevalcap: hand-computed BLEU, ordering, METEOR and Java."""

from __future__ import annotations

import math
import shutil

import pytest

from emosem.evaluation import text_metrics
from emosem.evaluation.text_metrics import (
    METRIC_KEYS,
    CaptionScorer,
    caption_scores,
    simple_tokenize,
)

HAS_JAVA = shutil.which("java") is not None

REFS = {
    "wave": ["The tiny boat under the towering dark wave makes me fear for the sailors."],
    "field": ["The calm golden field under a soft sky makes me feel peaceful."],
    "clown": ["The clown with a red nose and a silly grin makes me laugh."],
}
POOR = {
    "wave": "A red nose.",
    "field": "The sailors laugh.",
    "clown": "Dark sky.",
}


def test_bleu_hand_computed():
    # candidate "the cat sat on the mat" vs reference "the cat is on the mat" (both 6 tokens):
    # clipped unigram matches: the x2, cat, on, mat = 5 of 6; bigram matches: "the cat",
    # "on the", "the mat" = 3 of 5; brevity penalty 1 (equal lengths).
    cands = {"1": "The cat sat on the mat."}
    refs = {"1": ["The cat is on the mat."]}
    for tok in ("auto", "simple"):
        res = caption_scores(cands, refs, meteor=False, tokenizer=tok)
        assert res["BLEU-1"] == pytest.approx(5 / 6, rel=1e-6)
        assert res["BLEU-2"] == pytest.approx(math.sqrt(5 / 6 * 3 / 5), rel=1e-6)
        assert res["tokenizer"] == ("ptb" if tok == "auto" and HAS_JAVA else "simple")
        assert res["n"] == 1 and res["n_empty"] == 0
        assert res["METEOR"] is None and "meteor=False" in res["skipped"]["METEOR"]
    # Brevity penalty: candidate "the cat" (2 tokens) vs a 6-token reference:
    # p1 = 2/2, BP = exp(1 - 6/2) = exp(-2).
    res = caption_scores({"1": "the cat"}, refs, meteor=False)
    assert res["BLEU-1"] == pytest.approx(math.exp(-2), rel=1e-6)


def test_identical_and_ordering():
    perfect = {k: v[0] for k, v in REFS.items()}
    good = caption_scores(perfect, REFS, meteor=False, per_sample=True)
    bad = caption_scores(POOR, REFS, meteor=False, per_sample=True)
    for n in range(1, 5):
        assert good[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-6)
    assert good["ROUGE-L"] == pytest.approx(1.0)
    for key in METRIC_KEYS:
        assert key in good
    for key in ("BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr"):
        assert good[key] > bad[key], key
        assert isinstance(good[key], float)
    assert good["CIDEr"] > 1.0
    assert set(good["per_sample"]) == set(REFS)
    assert good["per_sample"]["wave"]["ROUGE-L"] == pytest.approx(1.0)


def test_empty_candidates_and_bad_keys():
    cands = {"wave": "", "field": "   ", "clown": REFS["clown"][0]}
    res = caption_scores(cands, REFS, meteor=False, per_sample=True)
    assert res["n_empty"] == 2 and res["n"] == 3
    assert res["per_sample"]["wave"]["ROUGE-L"] == 0.0
    assert res["per_sample"]["wave"]["CIDEr"] == 0.0
    assert res["per_sample"]["clown"]["ROUGE-L"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no references"):
        caption_scores({"missing": "a boat"}, REFS, meteor=False)
    with pytest.raises(ValueError, match="only empty references"):
        caption_scores({"x": "a boat"}, {"x": ["", " "]}, meteor=False)
    with pytest.raises(ValueError, match="at least one"):
        caption_scores({}, REFS, meteor=False)


def test_simple_tokenizer_matches_ptb_conventions():
    assert simple_tokenize("The wave -- it's HUGE, don't you think?") == (
        "the wave it 's huge do n't you think"
    )
    assert simple_tokenize("  ") == ""
    if HAS_JAVA:
        from emosem.evaluation.text_metrics import _ptb_tokenize

        text = "The wave -- it's HUGE, don't you think?"
        assert _ptb_tokenize([text, "", "a\u2028line"]) == [simple_tokenize(text), "", "a line"]


@pytest.mark.skipif(not HAS_JAVA, reason="PTBTokenizer needs Java")
def test_ptb_on_read_only_install(monkeypatch):
    # pycocoevalcap writes its temp file next to the jar; a read-only site-packages raises
    # PermissionError, and the same command then runs with the temp file in /tmp.
    from pycocoevalcap.tokenizer import ptbtokenizer

    from emosem.evaluation.text_metrics import _ptb_tokenize

    def read_only(self, captions):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(ptbtokenizer.PTBTokenizer, "tokenize", read_only)
    assert _ptb_tokenize(["Don't panic, it's a wave!", ""]) == ["do n't panic it 's a wave", ""]


def test_without_java_meteor_is_skipped_not_silent(monkeypatch):
    monkeypatch.setattr(text_metrics, "java_path", lambda: None)
    res = caption_scores({"1": "the cat sat on the mat"}, {"1": ["the cat is on the mat"]})
    assert res["METEOR"] is None
    assert "java" in res["skipped"]["METEOR"]
    assert res["tokenizer"] == "simple" and "PTBTokenizer" in res["skipped"]
    assert res["BLEU-1"] == pytest.approx(5 / 6, rel=1e-6)
    with pytest.raises(RuntimeError, match="PTB"):
        caption_scores({"1": "a"}, {"1": ["a"]}, meteor=False, tokenizer="ptb")


@pytest.mark.skipif(not HAS_JAVA, reason="METEOR needs Java")
def test_meteor_jar_failure_is_reported_and_reaped(monkeypatch):
    import pycocoevalcap.meteor.meteor as meteor_mod

    started = []
    orig_init = meteor_mod.Meteor.__init__

    def spy(self):
        orig_init(self)
        started.append(self.meteor_p)

    monkeypatch.setattr(meteor_mod.Meteor, "__init__", spy)
    monkeypatch.setattr(meteor_mod, "METEOR_JAR", "no-such-meteor.jar")
    cands, refs = {"1": "the cat sat on the mat"}, {"1": ["the cat is on the mat"]}
    res = caption_scores(cands, refs)
    assert res["METEOR"] is None and "METEOR jar failed" in res["skipped"]["METEOR"]
    assert res["BLEU-1"] == pytest.approx(5 / 6, rel=1e-6)
    # caption_scores closed its Java process; a second call starts (and closes) a new one.
    res2 = caption_scores(cands, refs)
    for r in (res, res2):  # the jar's own error message is passed on
        assert "no-such-meteor.jar" in r["skipped"]["METEOR"]
    assert len(started) == 2 and all(p.poll() is not None for p in started)


@pytest.mark.skipif(not HAS_JAVA, reason="METEOR needs Java")
def test_meteor_scorer_reused_then_closed():
    perfect = {k: v[0] for k, v in REFS.items()}
    with CaptionScorer() as scorer:
        good = scorer.score(perfect, REFS)
        proc = scorer.meteor_process
        bad = scorer.score(POOR, REFS)
        assert scorer.meteor_process is proc  # one JVM for both calls
        assert good["METEOR"] > bad["METEOR"] >= 0.0
        # "the cat sat on the mat" vs "the cat is on the mat": the METEOR 1.5 jar gives 0.4373
        # (same value as calling pycocoevalcap's Meteor directly on the raw strings).
        res = scorer.score({"1": "The cat sat on the mat."}, {"1": ["The cat is on the mat."]})
        assert res["METEOR"] == pytest.approx(0.4373, abs=1e-3)
        assert scorer.meteor_process is proc
    assert proc.poll() is not None and scorer.meteor_process is None
