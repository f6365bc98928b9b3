"""The emotion-prior candidates of issue 27, item 1: colour clusters, the BCP-37 rated valence,
the language-model PMI prior (on a scripted scorer with known word preferences) and the
product of experts."""

from __future__ import annotations

import numpy as np
import pytest

from emosem.data.cues import cue_image, dominant_line_direction, line_directions
from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.inference.affect_prior import (
    BCP37,
    PRIOR_METHODS,
    chip_valence,
    cluster_mixture_prior,
    colour_clusters,
    geometric_blend,
    painting_prior,
)
from emosem.inference.lm_prior import (
    EMOTION_WORDS,
    LINE_SENTENCES,
    NAIVE_NULL,
    Description,
    LMPrior,
    describe,
    reference_descriptions,
)


def _painted(rgb: tuple[int, int, int], h: int = 60, w: int = 80) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[...] = rgb
    return img


DARK_COLD_MUTED = (38, 44, 58)
BRIGHT_WARM_SATURATED = (250, 170, 40)


def test_colour_clusters_find_two_colours_and_their_shares():
    img = _painted(DARK_COLD_MUTED)
    img[:, 60:] = BRIGHT_WARM_SATURATED  # a quarter of the canvas
    clusters = colour_clusters(img)
    assert len(clusters) == 2
    assert clusters[0].share == pytest.approx(0.75) and clusters[1].share == pytest.approx(0.25)
    assert clusters[0].lab[0] < 30 < 70 < clusters[1].lab[0]  # dark first, bright second


def test_chip_valence_follows_the_rated_chips():
    lab = {row[0]: np.array(row[1:4]) for row in BCP37}
    # saturated yellow was rated happiest, the greys among the saddest (Schloss et al. 2020)
    assert chip_valence(lab["SY"]) > 1.0 > 0 > -1.0 > chip_valence(lab["A1"])
    assert chip_valence(lab["SO"]) > chip_valence(lab["DO"])


@pytest.mark.parametrize("hue", [False, True])
def test_cluster_priors_rank_dark_cold_muted_sad_and_bright_warm_saturated_amused(hue):
    dark = cluster_mixture_prior(colour_clusters(_painted(DARK_COLD_MUTED)), hue=hue)
    bright = cluster_mixture_prior(colour_clusters(_painted(BRIGHT_WARM_SATURATED)), hue=hue)
    for prior in (dark, bright):
        assert set(prior) == set(ARTEMIS_EMOTIONS) and sum(prior.values()) == pytest.approx(1.0)
    assert dark["sadness"] > dark["amusement"] and dark["fear"] > dark["amusement"]
    assert bright["amusement"] > bright["sadness"] and bright["amusement"] > bright["fear"]


def test_painting_prior_names_its_methods():
    assert {"vm_synthetic", "vm_chips", "lm_naive", "lm_pmi"} <= set(PRIOR_METHODS)
    with pytest.raises(ValueError, match="unknown prior method"):
        painting_prior(_painted(DARK_COLD_MUTED), "nope")


def test_geometric_blend_of_equal_experts_is_the_expert():
    p = dict(zip(ARTEMIS_EMOTIONS, np.arange(1, 10) / 45.0))
    assert geometric_blend([p, p]) == pytest.approx(p)
    q = geometric_blend([p, dict(zip(ARTEMIS_EMOTIONS, np.ones(9) / 9))])
    assert sum(q.values()) == pytest.approx(1.0) and max(q, key=q.get) == ARTEMIS_EMOTIONS[-1]


def test_describe_puts_measured_light_saturation_and_warmth_into_words():
    d = describe(_painted(DARK_COLD_MUTED))
    assert (d.light, d.saturation, d.warmth) == ("dark", "muted", "cool")
    b = describe(_painted(BRIGHT_WARM_SATURATED))
    assert (b.light, b.saturation, b.warmth) == ("bright", "vivid", "warm")
    assert all(d.colours in text for text in d.texts())


def test_describe_with_layout_names_each_half_by_its_own_light_and_colours():
    img = _painted(DARK_COLD_MUTED)
    img[30:] = BRIGHT_WARM_SATURATED  # the lower half
    d = describe(img, layout=True)
    assert d.layout.startswith("The upper half is dark, in ") and "the lower half is bright, in " in d.layout
    assert "swirl" not in d.layout  # flat paint has no strokes
    assert all(text.endswith(d.layout) for text in d.texts())
    assert describe(img).layout == "" and not describe(img).texts()[0].endswith(d.layout)


def test_layout_references_keep_the_combinations_and_add_varied_layouts():
    plain, laid = reference_descriptions(), reference_descriptions(layout=True)
    assert [(r.light, r.saturation, r.warmth, r.colours) for r in laid] == \
        [(r.light, r.saturation, r.warmth, r.colours) for r in plain]
    assert all(r.layout.startswith("The upper half is ") for r in laid)
    assert len({r.layout for r in laid}) > 9 and sum("swirl" in r.layout for r in laid) == 13


def _stripes(direction: str, h: int = 120, w: int = 160) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    phase = {"horizontal": y, "vertical": x, "oblique": x + y}[direction] / 3.0
    grey = ((np.sin(phase) * 0.5 + 0.5) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


@pytest.mark.parametrize("direction", ["horizontal", "vertical", "oblique"])
def test_line_directions_read_the_way_stripes_run(direction):
    shares = line_directions(cue_image(_stripes(direction)).texture)
    assert shares[direction] > 0.95 and sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert dominant_line_direction(shares) == direction
    # under a weight map, only the weighted part counts: the lower half's vertical stripes
    img = _stripes("horizontal")
    img[60:] = _stripes("vertical")[60:]
    prepared = cue_image(img)
    lower = np.zeros(prepared.lab.shape[:2], np.float32)
    lower[lower.shape[0] // 2 + 4:] = 1.0
    assert dominant_line_direction(line_directions(prepared.texture, lower)) == "vertical"


def test_edges_in_every_direction_or_none_have_no_dominant_line():
    assert line_directions(cue_image(_painted(DARK_COLD_MUTED)).texture) == \
        {"horizontal": 0.25, "vertical": 0.25, "oblique": 0.5}  # flat paint: no edges
    assert dominant_line_direction({"horizontal": 0.28, "vertical": 0.27, "oblique": 0.45}) is None


def test_describe_with_lines_adds_the_sentence_and_references_cycle_it():
    d = describe(_stripes("oblique"), layout=True, lines=True)
    assert d.lines == LINE_SENTENCES["oblique"] and all(t.endswith(d.layout + " " + d.lines) for t in d.texts())
    assert describe(_painted(DARK_COLD_MUTED), lines=True).lines == ""  # no line dominates flat paint
    refs = reference_descriptions(layout=True, lines=True)
    assert {r.lines for r in refs} == {"", *LINE_SENTENCES.values()}
    assert [r.layout for r in refs] == [r.layout for r in reference_descriptions(layout=True)]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Reference scores of scripted scorers go to a temporary cache, never the user's."""
    monkeypatch.setenv("EMOSEM_CACHE", str(tmp_path / "cache"))


class ScriptedScorer(LMPrior):
    """A 'language model' whose taste for ' amused' grows after any description of colours (+2 nats
    over the content-free null, the trap of the issue's naive prior) and that reads darkness:
    ' sad' and ' afraid' gain 1 nat after a description saying 'dark'."""

    def __init__(self, model_dir: str = "scripted-lm") -> None:
        super().__init__(model_dir)
        self.resolved_path = model_dir  # no model to resolve
        self.calls = 0

    def word_scores(self, contexts: list[str]) -> np.ndarray:
        self.calls += len(contexts)
        words = list(EMOTION_WORDS.values())
        out = np.zeros((len(contexts), len(words)))
        for i, text in enumerate(contexts):
            out[i, words.index(" amused")] += 4.0 if text == NAIVE_NULL else 6.0
            if "dark" in text:
                out[i, words.index(" sad")] += 1.0
                out[i, words.index(" afraid")] += 1.0
        return out


def test_pmi_prior_cancels_the_word_prior_that_swamps_the_naive_one():
    scorer = ScriptedScorer()
    dark = Description("black and dark blue", "dark", "muted", "cool")
    naive = scorer.naive_prior(dark)
    pmi = scorer.prior(dark)
    assert max(naive, key=naive.get) == "amusement"  # the word's own prior wins
    assert pmi["sadness"] > pmi["amusement"] and pmi["fear"] > pmi["amusement"]
    assert sum(pmi.values()) == pytest.approx(1.0)
    bright = scorer.prior(Description("yellow and orange", "bright", "vivid", "warm"))
    assert bright["sadness"] < bright["amusement"]


def test_base_rates_make_the_pmi_prior_bayes_posterior():
    """softmax(PMI + log rate): uniform rates change nothing; ArtEmis's rates multiply each
    emotion's PMI prior by its rate (renormalised), so a tie between two emotions goes to the one
    viewers choose more often."""
    from emosem.emotions import ARTEMIS_BASE_RATES, ARTEMIS_EMOTION_COUNTS

    assert sum(ARTEMIS_EMOTION_COUNTS.values()) == 454_684  # the release's annotations
    assert sum(ARTEMIS_BASE_RATES.values()) == pytest.approx(1.0)
    scorer = ScriptedScorer()
    dark = Description("black and dark blue", "dark", "muted", "cool")
    plain = scorer.prior(dark)
    uniform = scorer.prior(dark, {e: 1 / 9 for e in plain})
    assert uniform == pytest.approx(plain)
    posterior = scorer.prior(dark, ARTEMIS_BASE_RATES)
    want = {e: plain[e] * ARTEMIS_BASE_RATES[e] for e in plain}
    total = sum(want.values())
    assert posterior == pytest.approx({e: v / total for e, v in want.items()})
    assert plain["sadness"] == pytest.approx(plain["fear"])  # the scripted LM reads both alike
    assert posterior["sadness"] > posterior["fear"]  # 10.8% of ArtEmis's annotations against 9.1%


def test_reference_descriptions_cover_every_word_combination():
    refs = reference_descriptions()
    assert len(refs) == 27 and len({(r.light, r.saturation, r.warmth) for r in refs}) == 27


def test_reference_scores_are_kept_on_disk_per_model(tmp_path):
    first = ScriptedScorer(str(tmp_path / "lm-a"))
    scores = first.reference_scores
    assert first.calls == 27 * 3
    again = ScriptedScorer(str(tmp_path / "lm-a"))
    assert again.reference_scores == pytest.approx(scores) and again.calls == 0  # read back
    other = ScriptedScorer(str(tmp_path / "lm-b"))
    assert len(other.reference_scores) == len(EMOTION_WORDS)
    assert other.calls == 27 * 3  # another model: its own scores
    laid = ScriptedScorer(str(tmp_path / "lm-a"))
    laid.layout = True
    assert len(laid.reference_scores) == len(EMOTION_WORDS) and laid.calls == 27 * 3  # other texts


def test_without_the_language_model_the_default_prior_falls_back_to_colour(monkeypatch, caplog):
    import emosem.inference.lm_prior as lm_prior
    from emosem.inference.affect_prior import DEFAULT_METHOD, FALLBACK_METHOD, LM_METHODS
    from emosem.modeling.errors import LMWeightsNotFoundError

    def missing(image, kind="pmi"):
        raise LMWeightsNotFoundError("the default language model is not prepared")

    monkeypatch.setattr(lm_prior, "painting_lm_prior", missing)
    img = _painted(DARK_COLD_MUTED)
    assert DEFAULT_METHOD in LM_METHODS
    with caplog.at_level("WARNING"):
        prior = painting_prior(img)
    assert prior == pytest.approx(PRIOR_METHODS[FALLBACK_METHOD](img))
    with pytest.raises(LMWeightsNotFoundError):  # asked for the language model by name
        lm_prior.painting_lm_prior(img)


def _lm_prepared() -> bool:
    from emosem.modeling.lm_weights.resolve import is_hf_model_dir
    from emosem.paths import DEFAULT_LM_DIR

    return is_hf_model_dir(DEFAULT_LM_DIR)


@pytest.mark.skipif(not _lm_prepared(), reason="SmolLM2 is not prepared (tools/prepare_weights.py)")
@pytest.mark.parametrize("method", ["lm_pmi", "lm_pmi_layout", "lm_pmi_layout_rates"])
def test_lm_pmi_prior_reads_dark_cold_muted_and_bright_warm_saturated(monkeypatch, tmp_path, method):
    monkeypatch.delenv("EMOSEM_CACHE")  # the real model's reference scores: the user's cache
    dark = painting_prior(_painted(DARK_COLD_MUTED), method)
    bright = painting_prior(_painted(BRIGHT_WARM_SATURATED), method)
    assert dark["sadness"] > dark["amusement"] and dark["fear"] > dark["amusement"]
    assert bright["amusement"] > bright["sadness"] and bright["excitement"] > bright["fear"]


def test_channel_scores_are_each_descriptions_own_likelihood_after_each_sentence(tiny_llama_dir):
    """The batched, right-padded channel scores equal each sequence scored alone (a real tiny
    Llama): the summed log-probabilities of the description's tokens after the emotion's sentence;
    the channel prior is their softmax (with "something else" the mean of the other eight)."""
    import torch

    from emosem.inference.lm_prior import CHANNEL_STEM

    scorer = LMPrior(str(tiny_llama_dir), runtime="torch")
    texts = ["A painting in blue.", "This artwork is mostly dark red and black; the picture is dark."]
    got = scorer.channel_scores(texts)
    assert got.shape == (len(EMOTION_WORDS), len(texts))
    tokenizer, model = scorer._lm
    for i, word in enumerate(EMOTION_WORDS.values()):
        head = tokenizer(CHANNEL_STEM.format(word=word), add_special_tokens=False).input_ids
        for j, text in enumerate(texts):
            tail = tokenizer(" " + text, add_special_tokens=False).input_ids
            with torch.no_grad():
                logp = model(input_ids=torch.tensor([head + tail])).logits[0].log_softmax(-1)
            want = sum(float(logp[len(head) + k - 1, t]) for k, t in enumerate(tail))
            assert got[i, j] == pytest.approx(want, abs=1e-4)
    description = Description("blue", "dark", "muted", "cool")
    scores = dict(zip(EMOTION_WORDS, scorer.channel_scores(description.texts()).mean(1)))
    scores["something else"] = float(np.mean(list(scores.values())))
    raw = scorer.channel_prior(description, reference=False)
    top = max(scores.values())
    z = sum(np.exp(v - top) for v in scores.values())
    assert raw == pytest.approx({e: float(np.exp(scores[e] - top) / z) for e in ARTEMIS_EMOTIONS})
