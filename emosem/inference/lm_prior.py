"""A prior over the nine ArtEmis emotions scored by a pretrained language model from a textual
description of a painting's measured colours and light (issue 27, item 1).

PACL (*Bridging Visual Affective Gap: Borrowing Textual Knowledge…*) borrows a text model's
emotional knowledge where the visual model lacks it; KEVER² reasons from a structured description
of visual cues. Here the cues are measured (:func:`describe`) and put into words, and the language
model scores each emotion's adjective after "It makes me feel".

A small model's own taste for words swamps such a score: the *naive* prior (:func:`naive_prior`:
the score after the description minus the score after the content-free "A painting.") ranked
amusement first on 18 of 20 real paintings (issue 27). :func:`lm_prior` instead

* scores each adjective after several paraphrases of the description (:data:`TEMPLATES`) and
  averages, so no one wording decides, and
* subtracts the adjective's mean score over a fixed set of *reference* descriptions
  (:func:`reference_descriptions`: every combination of the light, saturation and warmth words
  with a fixed cycle of colour names, in the same paraphrases). The difference is a pointwise
  mutual information, log p(word | this painting) − mean log p(word | any painting), which cancels
  the word's own prior (Church, K. W., & Hanks, P. (1990). Word association norms, mutual
  information, and lexicography. *Computational Linguistics* 16(1), 22–29; the same correction as
  the "domain-conditional PMI" of Holtzman, A., West, P., Shwartz, V., Choi, Y., & Zettlemoyer, L.
  (2021). Surface form competition: why the highest probability answer isn't always right.
  *EMNLP 2021*, 7038–7051).

"something else" has no adjective: its score is the mean of the other eight. The prior is the
softmax of the scores (nats, temperature 1).

The reference scores are computed once per model and process (:class:`LMPrior` caches them); a
painting's prior costs, per paraphrase, one pass over the description and one batched pass over the
eight adjectives' few tokens continuing its key/value cache; :func:`painting_lm_prior` caches it
per image.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from emosem.emotions import ARTEMIS_EMOTIONS

logger = logging.getLogger(__name__)

# The adjective each emotion is scored by ("something else" has none).
EMOTION_WORDS: dict[str, str] = {
    "amusement": " amused", "awe": " awed", "contentment": " content", "excitement": " excited",
    "anger": " angry", "disgust": " disgusted", "fear": " afraid", "sadness": " sad",
}
STEM = " It makes me feel"
NAIVE_NULL = "A painting."

TEMPLATES = (
    "A painting in {colours}. It is {light} and {saturation}, with {warmth} tones.",
    "This artwork is mostly {colours}; the picture is {light}, its colours {saturation} and {warmth}.",
    "Picture a {light}, {saturation} canvas dominated by {colours}, in {warmth} hues.",
)

# Words for the whole canvas's measured mean L*, C*ab and warmth (b* + a*/2), by fixed CIELAB
# cut points: L* 50 is mid-grey; C*ab 20 and 40 split greyish / moderate / vivid colour.
LIGHT_WORDS = ((40.0, "dark"), (60.0, "medium-toned"), (float("inf"), "bright"))
SATURATION_WORDS = ((20.0, "muted"), (40.0, "moderately colourful"), (float("inf"), "vivid"))
WARMTH_WORDS = ((0.0, "cool"), (15.0, "neutral"), (float("inf"), "warm"))
REFERENCE_COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
                     "black", "white", "grey")


@dataclass(frozen=True)
class Description:
    """The words a painting is described by."""

    colours: str
    light: str
    saturation: str
    warmth: str

    def texts(self) -> list[str]:
        """The description in each of :data:`TEMPLATES`."""
        return [t.format(**self.__dict__) for t in TEMPLATES]


def _word(value: float, table: tuple[tuple[float, str], ...]) -> str:
    return next(word for limit, word in table if value < limit)


def _join(names: list[str]) -> str:
    names = names or ["mixed colours"]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def describe(image: np.ndarray) -> Description:
    """Words for an HxWx3 uint8 RGB painting from its whole-canvas cues
    (:func:`~emosem.data.cues.extract_cues`): its named main colours, light, saturation, warmth."""
    from emosem.data.cues import extract_cues

    cues = extract_cues(image, np.ones(np.asarray(image).shape[:2], np.float32))
    return Description(_join(cues.colour_names), _word(cues.lightness, LIGHT_WORDS),
                       _word(cues.chroma, SATURATION_WORDS), _word(cues.warmth, WARMTH_WORDS))


def reference_descriptions() -> list[Description]:
    """Descriptions of "any painting": every light × saturation × warmth word, the colours a fixed
    cycle of pairs of basic colour terms (independent of any painting)."""
    combos = list(itertools.product([w for _, w in LIGHT_WORDS], [w for _, w in SATURATION_WORDS],
                                    [w for _, w in WARMTH_WORDS]))
    n = len(REFERENCE_COLOURS)
    return [Description(_join([REFERENCE_COLOURS[i % n], REFERENCE_COLOURS[(3 * i + 5) % n]]), *c)
            for i, c in enumerate(combos)]


def _softmax(scores: dict[str, float]) -> dict[str, float]:
    values = np.array([scores[e] for e in ARTEMIS_EMOTIONS])
    probs = np.exp(values - values.max())
    probs /= probs.sum()
    return dict(zip(ARTEMIS_EMOTIONS, (float(p) for p in probs)))


def _with_something_else(scores: dict[str, float]) -> dict[str, float]:
    return {**scores, "something else": float(np.mean(list(scores.values())))}


def reference_cache_path(model_path: str, texts: list[str]) -> Path:
    """Where the reference scores of a model and a set of reference texts are kept:
    ``$EMOSEM_CACHE`` (default ``~/.cache/emosem``) ``/lm_prior/<key>.json``; the key hashes the
    model folder, its weight files' sizes and times, the texts, the stem and the adjectives."""
    folder = Path(model_path)
    stats = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in folder.glob("*.safetensors")) \
        if folder.is_dir() else []
    key = hashlib.sha1(json.dumps([str(folder.resolve()) if folder.exists() else model_path, stats,
                                   texts, STEM, list(EMOTION_WORDS.values())]).encode()).hexdigest()[:16]
    root = Path(os.environ.get("EMOSEM_CACHE", Path.home() / ".cache" / "emosem"))
    return root / "lm_prior" / f"{key}.json"


class LMPrior:
    """Scores emotion adjectives with a causal language model (a Hugging Face folder or id).

    The model loads on first use; reference scores are computed once and kept.
    """

    def __init__(self, model_path: str | Path | None = None) -> None:
        self.model_path = model_path

    @cached_property
    def _lm(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = self.resolved_path
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        logger.info("emotion prior language model: %s", path)
        return tokenizer, model

    def word_scores(self, contexts: list[str]) -> np.ndarray:
        """[len(contexts), 8] summed log-probabilities of each :data:`EMOTION_WORDS` adjective
        after ``context + STEM``.

        Each context is run once; its key/value cache is repeated for the eight adjectives, which
        continue it in one batch (right-padded: the padding comes after every scored token).
        """
        import torch

        tokenizer, model = self._lm
        word_ids = [tokenizer(w, add_special_tokens=False).input_ids for w in EMOTION_WORDS.values()]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        width = max(len(ids) for ids in word_ids)
        cont = torch.full((len(word_ids), width), pad, dtype=torch.long)
        cont_mask = torch.zeros((len(word_ids), width), dtype=torch.long)
        for i, ids in enumerate(word_ids):
            cont[i, :len(ids)] = torch.tensor(ids)
            cont_mask[i, :len(ids)] = 1
        out = np.empty((len(contexts), len(word_ids)))
        with torch.inference_mode():
            for c, context in enumerate(contexts):
                prefix = torch.tensor([tokenizer(context + STEM, add_special_tokens=False).input_ids])
                first = model(input_ids=prefix, use_cache=True)
                first_logp = first.logits[0, -1].float().log_softmax(-1)
                cache = first.cache
                cache.batch_repeat_interleave(len(word_ids))
                mask = torch.cat([torch.ones((len(word_ids), prefix.shape[1]), dtype=torch.long), cont_mask], 1)
                logp = model(input_ids=cont, attention_mask=mask, cache=cache).logits.float().log_softmax(-1)
                for i, ids in enumerate(word_ids):
                    out[c, i] = float(first_logp[ids[0]]) + sum(float(logp[i, j - 1, ids[j]])
                                                              for j in range(1, len(ids)))
        return out

    @cached_property
    def reference_scores(self) -> np.ndarray:
        """[8] mean adjective score over :func:`reference_descriptions` in every template; kept on
        disk (:func:`reference_cache_path`) so that only the first run on a model pays for it."""
        texts = [t for d in reference_descriptions() for t in d.texts()]
        path = reference_cache_path(self.resolved_path, texts)
        if path.is_file():
            try:
                return np.asarray(json.loads(path.read_text(encoding="utf-8"))["scores"], dtype=np.float64)
            except (OSError, ValueError, KeyError) as e:
                logger.warning("ignoring an unreadable reference-score cache %s: %s", path, e)
        scores = self.word_scores(texts).mean(0)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"model": self.resolved_path, "scores": scores.tolist()}), encoding="utf-8")
            tmp.replace(path)
        except OSError as e:
            logger.warning("cannot keep the reference scores in %s: %s", path, e)
        return scores

    @cached_property
    def resolved_path(self) -> str:
        from emosem.modeling.lm_weights.resolve import resolve_lm_path
        from emosem.paths import DEFAULT_LM_NAME

        return resolve_lm_path(self.model_path or DEFAULT_LM_NAME)

    def prior(self, description: Description) -> dict[str, float]:
        """The PMI prior (module docstring) of a described painting."""
        pmi = self.word_scores(description.texts()).mean(0) - self.reference_scores
        return _softmax(_with_something_else(dict(zip(EMOTION_WORDS, (float(v) for v in pmi)))))

    def naive_prior(self, description: Description) -> dict[str, float]:
        """The issue's baseline: the score after the first paraphrase minus the score after
        :data:`NAIVE_NULL`."""
        scores = self.word_scores([description.texts()[0], NAIVE_NULL])
        diff = scores[0] - scores[1]
        return _softmax(_with_something_else(dict(zip(EMOTION_WORDS, (float(v) for v in diff)))))


# ---------------------------------------------------------------------- per painting, cached
@lru_cache(maxsize=1)
def shared_scorer() -> LMPrior:
    """One scorer on the default language model per process (its reference scores with it)."""
    return LMPrior()


def _image_key(image: np.ndarray) -> str:
    image = np.ascontiguousarray(image)
    return hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()


@lru_cache(maxsize=64)
def _cached_prior(key: str, kind: str, description: Description) -> tuple[tuple[str, float], ...]:
    scorer = shared_scorer()
    dist = scorer.prior(description) if kind == "pmi" else scorer.naive_prior(description)
    return tuple(dist.items())


def painting_lm_prior(image: np.ndarray, kind: str = "pmi") -> dict[str, float]:
    """The language-model prior of an HxWx3 uint8 RGB painting: ``kind`` "pmi" (:meth:`LMPrior.prior`)
    or "naive" (:meth:`LMPrior.naive_prior`), cached per image content."""
    if kind not in ("pmi", "naive"):
        raise ValueError(f"kind must be 'pmi' or 'naive', got {kind!r}")
    return dict(_cached_prior(_image_key(image), kind, describe(image)))
