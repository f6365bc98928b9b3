"""The fastText-style text-to-emotion classifier and the emotional-alignment metric."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from emosem.emotions import ARTEMIS_EMOTIONS, EMOTION_TO_INDEX, NUM_EMOTIONS
from emosem.evaluation.emotion_classifier import TextEmotionClassifier, emotional_alignment

CUES = {
    "amusement": ["funny", "silly", "goofy", "laughing", "playful"],
    "awe": ["majestic", "towering", "vast", "sublime", "grand"],
    "contentment": ["calm", "peaceful", "serene", "gentle", "cozy"],
    "excitement": ["vibrant", "thrilling", "energetic", "dynamic", "lively"],
    "anger": ["furious", "cruel", "unfair", "violent", "brutal"],
    "disgust": ["rotting", "filthy", "slimy", "repulsive", "grotesque"],
    "fear": ["dark", "scary", "looming", "menacing", "threatening"],
    "sadness": ["lonely", "grieving", "mourning", "tearful", "sorrowful"],
    "something else": ["strange", "curious", "odd", "puzzling", "abstract"],
}
FEELINGS = {
    "amusement": "amused", "awe": "in awe", "contentment": "content", "excitement": "excited",
    "anger": "angry", "disgust": "disgusted", "fear": "afraid", "sadness": "sad",
    "something else": "unsure",
}  # fmt: skip
NOUNS = ["wave", "tree", "woman", "sky", "boat", "house", "figure", "dog", "mountain", "river"]
TEMPLATES = [
    "the {cue} {noun} makes me feel {feeling}",
    "i see a {noun} that looks {cue}",
    "this {noun} is so {cue} and the colors are {cue2}",
    "the {noun} near the {noun2} seems {cue}",
    "a {cue} {noun}",
]


def make_corpus(n: int, seed: int, noise: float = 0.15) -> tuple[list[str], list[int]]:
    """Template utterances whose cue words predict the emotion; ``noise`` of the labels are
    replaced by a random emotion (annotators disagree)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        e = rng.randrange(NUM_EMOTIONS)
        name = ARTEMIS_EMOTIONS[e]
        t = rng.choice(TEMPLATES).format(
            cue=rng.choice(CUES[name]),
            cue2=rng.choice(CUES[name]),
            noun=rng.choice(NOUNS),
            noun2=rng.choice(NOUNS),
            feeling=FEELINGS[name],
        )
        texts.append(t)
        labels.append(rng.randrange(NUM_EMOTIONS) if rng.random() < noise else e)
    return texts, labels


@pytest.fixture(scope="module")
def corpus():
    train = make_corpus(1500, seed=1)
    test = make_corpus(400, seed=2, noise=0.0)
    return train, test


@pytest.fixture(scope="module")
def model(corpus):
    (texts, labels), _ = corpus
    return TextEmotionClassifier.fit(texts, labels, epochs=8, seed=0)


def test_learns_the_cue_words(model, corpus):
    _, (texts, labels) = corpus
    probs = model.predict_proba(texts)
    assert probs.shape == (len(texts), NUM_EMOTIONS) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    acc = float(np.mean(probs.argmax(axis=1) == np.array(labels)))
    assert acc > 0.9, acc  # chance is 1/9
    assert model.predict(["the dark wave makes me afraid"]) == ["fear"]
    assert model.predict(["a lonely woman by the grave, so sad"]) == ["sadness"]
    # a text with no known n-gram falls back to the learned prior instead of failing
    assert model.predict_proba(["zzz qqq", ""]).shape == (2, NUM_EMOTIONS)


def test_save_load_round_trip(model, corpus, tmp_path):
    _, (texts, _) = corpus
    folder = model.save(tmp_path / "clf")
    assert sorted(p.name for p in folder.iterdir()) == [
        "emotion_classifier.json",
        "emotion_classifier.safetensors",
    ]
    cfg = json.loads((folder / "emotion_classifier.json").read_text())
    assert cfg["labels"] == list(ARTEMIS_EMOTIONS) and cfg["vocab"] == model.vocab
    loaded = TextEmotionClassifier.load(folder)
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert loaded.predict(texts[:5]) == model.predict(texts[:5])
    with pytest.raises(FileNotFoundError, match="save"):
        TextEmotionClassifier.load(tmp_path / "nowhere")


def test_deterministic_by_seed(corpus):
    (texts, labels), (test_texts, _) = corpus
    texts, labels = texts[:400], labels[:400]
    rng_state = torch.get_rng_state()
    threads = torch.get_num_threads()
    a = TextEmotionClassifier.fit(texts, labels, epochs=3, seed=7)
    b = TextEmotionClassifier.fit(texts, labels, epochs=3, seed=7)
    c = TextEmotionClassifier.fit(texts, labels, epochs=3, seed=8)
    pa, pb, pc = (m.predict_proba(test_texts) for m in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(pa, pc)
    # fit leaves the caller's RNG stream and thread count alone
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.get_num_threads() == threads


def test_soft_targets_and_hidden_layer(corpus):
    (texts, labels), (test_texts, test_labels) = corpus
    # annotator distributions: 3 votes for the label, 1 for a neighbour
    dists = np.zeros((len(labels), NUM_EMOTIONS))
    dists[np.arange(len(labels)), labels] = 3
    dists[np.arange(len(labels)), (np.array(labels) + 1) % NUM_EMOTIONS] += 1
    m = TextEmotionClassifier.fit(texts, dists, epochs=6, seed=0, hidden=32)
    acc = np.mean(m.predict_proba(test_texts).argmax(1) == np.array(test_labels))
    assert acc > 0.9, acc
    names = [ARTEMIS_EMOTIONS[i] for i in labels[:50]]
    assert TextEmotionClassifier.fit(texts[:50], names, epochs=1, min_count=1).vocab
    with pytest.raises(ValueError, match="targets"):
        TextEmotionClassifier.fit(texts[:5], labels[:4])


def test_emotional_alignment(model, corpus):
    _, (texts, labels) = corpus
    res = emotional_alignment(model, texts, labels)  # asked-for emotions -> one-hot
    assert res["n"] == len(texts) and res["n_dominant"] == len(texts)
    assert res["accuracy_dominant"] > 0.9
    # annotator counts; the second row has no dominant emotion (2-2 tie)
    fear, awe = EMOTION_TO_INDEX["fear"], EMOTION_TO_INDEX["awe"]
    counts = np.zeros((2, NUM_EMOTIONS))
    counts[0, fear] = 4
    counts[0, awe] = 1
    counts[1, fear] = counts[1, awe] = 2
    two = ["the dark wave is menacing", "a towering dark mountain"]
    res = emotional_alignment(model, two, counts)
    assert res["n_dominant"] == 1 and res["accuracy_dominant"] == 1.0
    p = model.predict_proba(two)
    t = counts / counts.sum(1, keepdims=True)
    expected_ce = float(np.mean(-(t * np.log(np.clip(p, 1e-8, None))).sum(1)))
    assert res["cross_entropy"] == pytest.approx(expected_ce, rel=1e-5)
