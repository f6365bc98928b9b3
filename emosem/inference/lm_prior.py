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

A description can also carry a *layout* sentence (:func:`layout_sentence`: the light and
colours of the upper and lower halves, and whether the strokes swirl), the kind of structured cue
layout KEVER² reasons from ("dark, muted greens below a bright, pale sky"); its reference
descriptions then carry layout sentences of their own, so the PMI cancels what any such sentence
does to a word. Measured on the sample paintings it ranks a plausible emotion first more often
(``docs/results/issue27_priors_layout.json``), so it is the default (``kind="pmi_layout"``).

A description can further carry a *lines* sentence (:func:`lines_sentence`, ``kind="pmi_layout_lines"``):
whether the painting's edges run mostly level, upright or slanted
(:func:`~emosem.data.cues.line_directions`), in the words art theory gives those directions
(Itten, J. (1961). *Kunst der Farbe*; Arnheim, R. (1954). *Art and Visual Perception*; as
quoted and measured by Machajdik & Hanbury 2010, §3.3: "horizontal lines … communicate calmness
and relaxation, vertical lines are clear and direct and communicate dignity …, slanted lines …
are unstable and communicate dynamism"): the text knowledge of composition, not only of colour.

"something else" has no adjective: its score is the mean of the other eight. The prior is the
softmax of the scores (nats, temperature 1).

The PMI is a likelihood ratio: log p(word | d) − log p(word) = log p(d | word) − log p(d). A
softmax of it alone assumes every emotion equally likely before the painting is seen; viewers of
paintings do not choose them equally (ArtEmis: contentment 28% of annotations, anger 1.5%;
:data:`~emosem.emotions.ARTEMIS_BASE_RATES`). Adding the log base rates (``kind="pmi_layout_rates"``,
:meth:`LMPrior.prior` with ``base_rates``) makes the softmax Bayes' posterior p(emotion | d) under
ArtEmis's class prior, the usual correction of a classifier's outputs to known priors (Saerens,
M., Latinne, P., & Decaestecker, C. (2002). Adjusting the outputs of a classifier to new a priori
probabilities: a simple procedure. *Neural Computation* 14(1), 21–41).

The reference scores are computed once per model and process (:class:`LMPrior` caches them); a
painting's prior costs, per paraphrase, one pass over the description and one batched pass over the
eight adjectives' few tokens continuing its key/value cache; :func:`painting_lm_prior` caches it
per image.

The scores run in ONNX Runtime where they can (``runtime="auto"``, the default; ``torch`` or the
environment variable ``EMOSEM_PRIOR_RUNTIME=torch`` keeps torch): the base LM's decoding step of
:mod:`emosem.inference.fast_lm` is exported once beside the converted model and checked against
torch (tokens equal, scores within :data:`CHECK_TOLERANCE`); after that a new process scores with
``onnxruntime`` and ``tokenizers`` alone, without importing transformers (which imports
torchvision): the out-of-domain painting's first mask no longer waits for them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from emosem.emotions import ARTEMIS_BASE_RATES, ARTEMIS_EMOTIONS
from emosem.files import atomic_write_text
from emosem.paths import user_cache

logger = logging.getLogger(__name__)

# The adjective each emotion is scored by ("something else" has none).
EMOTION_WORDS: dict[str, str] = {
    "amusement": " amused", "awe": " awed", "contentment": " content", "excitement": " excited",
    "anger": " angry", "disgust": " disgusted", "fear": " afraid", "sadness": " sad",
}
# Several adjectives per emotion (a verbalizer ensemble: Schick, T., & Schütze, H. (2021).
# Exploiting cloze questions for few-shot text classification. *EACL 2021*, 255–269; expanded
# label words as in Hu, S., et al. (2022). Knowledgeable prompt-tuning. *ACL 2022*, 2225–2240):
# each word's PMI is its own, the emotion's score their mean, so that no single word's quirks in a
# small model decide. The first of each is :data:`EMOTION_WORDS`'s. Fixed before measuring.
EMOTION_VERBALIZERS: dict[str, tuple[str, ...]] = {
    "amusement": (" amused", " cheerful", " playful", " happy"),
    "awe": (" awed", " amazed", " humbled", " astonished"),
    "contentment": (" content", " calm", " peaceful", " relaxed"),
    "excitement": (" excited", " thrilled", " energized", " lively"),
    "anger": (" angry", " furious", " annoyed", " irritated"),
    "disgust": (" disgusted", " repulsed", " revolted", " sickened"),
    "fear": (" afraid", " scared", " anxious", " uneasy"),
    "sadness": (" sad", " melancholy", " lonely", " gloomy"),
}
STEM = " It makes me feel"
# The noisy-channel direction (:meth:`LMPrior.channel_prior`): the description is scored after
# "This painting makes me feel <adjective>." (a sentence per adjective, then the description).
CHANNEL_STEM = "This painting makes me feel{word}."
# Where the adjectives are scored: "auto" (ONNX Runtime where its check passed, else torch),
# "torch" or "ort"; the environment variable sets the default.
PRIOR_RUNTIMES = ("auto", "torch", "ort")
RUNTIME_ENV = "EMOSEM_PRIOR_RUNTIME"
CHECK_TOLERANCE = 1e-3  # nats: the largest difference of an adjective's score from torch's
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
# The lines sentence of each dominant direction (module docstring); none where no direction dominates.
LINE_SENTENCES = {
    "horizontal": "Its lines lie mostly level, calm and relaxed.",
    "vertical": "Its lines stand mostly upright, clear and dignified.",
    "oblique": "Its lines run mostly at a slant, unstable and dynamic.",
}
REFERENCE_COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
                     "black", "white", "grey")


@dataclass(frozen=True)
class Description:
    """The words a painting is described by."""

    colours: str
    light: str
    saturation: str
    warmth: str
    layout: str = ""  # an optional sentence on the halves and the strokes (:func:`layout_sentence`)
    lines: str = ""  # an optional sentence on the lines' direction (:func:`lines_sentence`)

    def texts(self) -> list[str]:
        """The description in each of :data:`TEMPLATES` (and its layout and lines sentences, if any)."""
        tail = "".join(f" {x}" for x in (self.layout, self.lines) if x)
        return [t.format(**self.__dict__) + tail for t in TEMPLATES]


def _word(value: float, table: tuple[tuple[float, str], ...]) -> str:
    return next(word for limit, word in table if value < limit)


def _join(names: list[str]) -> str:
    names = names or ["mixed colours"]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def layout_sentence(top: tuple[str, list[str]], bottom: tuple[str, list[str]], swirling: bool) -> str:
    """The sentence on a painting's halves, each (light word, colour names), and its strokes: e.g.
    "The upper half is dark, in blue and black; the lower half is bright, in yellow. The strokes
    swirl." (the structured cue layout KEVER² reasons from)."""
    halves = "; ".join(f"the {side} half is {light}, in {_join(names[:2])}"
                       for side, (light, names) in (("upper", top), ("lower", bottom)))
    return halves[0].upper() + halves[1:] + "." + (" The strokes swirl." if swirling else "")


def lines_sentence(direction: str | None) -> str:
    """The sentence on a dominant line direction (:data:`LINE_SENTENCES`), "" for none."""
    return LINE_SENTENCES[direction] if direction else ""


def describe(image: np.ndarray, layout: bool = False, lines: bool = False) -> Description:
    """Words for an HxWx3 uint8 RGB painting from its whole-canvas cues
    (:func:`~emosem.data.cues.extract_cues`): its named main colours, light, saturation, warmth;
    with ``layout`` also the light and colours of its upper and lower halves and whether its
    strokes swirl (:func:`layout_sentence`); with ``lines`` the direction its lines mostly run
    (:func:`lines_sentence`)."""
    from emosem.data.cues import cue_image, dominant_line_direction, extract_cues, line_directions

    image = np.asarray(image)
    prepared = cue_image(image)  # the image side, measured once for the canvas and its halves
    cues = extract_cues(image, np.ones(image.shape[:2], np.float32), prepared=prepared)
    text = ""
    if layout:
        halves = []
        for rows in (slice(0, image.shape[0] // 2), slice(image.shape[0] // 2, None)):
            mask = np.zeros(image.shape[:2], np.float32)
            mask[rows] = 1.0
            half = extract_cues(image, mask, prepared=prepared)
            halves.append((_word(half.lightness, LIGHT_WORDS), half.colour_names))
        text = layout_sentence(*halves, swirling="swirling strokes" in cues.shape_words)
    said = lines_sentence(dominant_line_direction(line_directions(prepared.texture))) if lines else ""
    return Description(_join(cues.colour_names), _word(cues.lightness, LIGHT_WORDS),
                       _word(cues.chroma, SATURATION_WORDS), _word(cues.warmth, WARMTH_WORDS), text, said)


def reference_descriptions(layout: bool = False, lines: bool = False) -> list[Description]:
    """Descriptions of "any painting": every light × saturation × warmth word, the colours a fixed
    cycle of pairs of basic colour terms (independent of any painting); with ``layout`` each also
    gets a layout sentence whose halves' light words and colours and whose swirl follow fixed
    cycles of their own; with ``lines`` a lines sentence cycling through none and each direction."""
    directions = (None, *LINE_SENTENCES)
    lights = [w for _, w in LIGHT_WORDS]
    combos = list(itertools.product(lights, [w for _, w in SATURATION_WORDS], [w for _, w in WARMTH_WORDS]))
    n = len(REFERENCE_COLOURS)

    def colours(i: int) -> list[str]:
        return [REFERENCE_COLOURS[i % n], REFERENCE_COLOURS[(3 * i + 5) % n]]

    return [Description(_join(colours(i)), *c,
                        layout_sentence((lights[(i // len(lights)) % len(lights)], colours(i + 1)),
                                        (lights[i % len(lights)], colours(i + 2)), i % 2 == 1) if layout else "",
                        lines_sentence(directions[i % len(directions)]) if lines else "")
            for i, c in enumerate(combos)]


def _softmax(scores: dict[str, float]) -> dict[str, float]:
    values = np.array([scores[e] for e in ARTEMIS_EMOTIONS])
    probs = np.exp(values - values.max())
    probs /= probs.sum()
    return dict(zip(ARTEMIS_EMOTIONS, (float(p) for p in probs)))


def _with_something_else(scores: dict[str, float]) -> dict[str, float]:
    return {**scores, "something else": float(np.mean(list(scores.values())))}


def reference_cache_path(model_path: str, texts: list[str], words: list[str] | None = None,
                         runtime: str = "torch") -> Path:
    """Where the reference scores of a model and a set of reference texts are kept:
    ``$EMOSEM_CACHE`` (default ``~/.cache/emosem``) ``/lm_prior/<key>.json``; the key hashes the
    model folder, its weight files' sizes and times, the texts, the stem and the adjectives (and
    the runtime that scored them, where it is not torch)."""
    folder = Path(model_path)
    stats = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in folder.glob("*.safetensors")) \
        if folder.is_dir() else []
    keyed = [str(folder.resolve()) if folder.exists() else model_path, stats, texts, STEM,
             words or list(EMOTION_WORDS.values())] + ([runtime] if runtime != "torch" else [])
    key = hashlib.sha1(json.dumps(keyed).encode()).hexdigest()[:16]
    return user_cache("lm_prior", f"{key}.json")


def _read_json(path: Path) -> dict:
    """A JSON object from ``path``; {} where it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class LMPrior:
    """Scores emotion adjectives with a causal language model (a Hugging Face folder or id).

    The model loads on first use; reference scores are computed once and kept.
    """

    def __init__(self, model_path: str | Path | None = None,
                 verbalizers: dict[str, tuple[str, ...]] | None = None, layout: bool = False,
                 runtime: str | None = None, lines: bool = False) -> None:
        self.model_path = model_path
        self.runtime = runtime or os.environ.get(RUNTIME_ENV, "auto")
        if self.runtime not in PRIOR_RUNTIMES:
            raise ValueError(f"runtime must be one of {PRIOR_RUNTIMES}, got {self.runtime!r}")
        self.layout = layout  # whether descriptions carry the layout sentence (describe(layout=True))
        self.lines = lines  # and the lines sentence (describe(lines=True))
        # emotion → its adjectives; default one each (EMOTION_WORDS)
        self.verbalizers = verbalizers or {e: (w,) for e, w in EMOTION_WORDS.items()}
        self.words = [w for ws in self.verbalizers.values() for w in ws]

    @cached_property
    def _lm(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = self.resolved_path
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        logger.info("emotion prior language model: %s", path)
        return tokenizer, model

    @cached_property
    def _fast(self):
        """(the base LM's step in ONNX Runtime, its ``tokenizers`` tokenizer) where the step was
        exported and passed :meth:`_fast_check` (recorded beside the graph), else None. The
        first run on a model exports and checks it through torch (and transformers) once; later
        processes score without importing transformers (seconds of a cold start)."""
        if self.runtime == "torch":
            return None
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            from emosem.inference.fast_lm import FORMAT, FastDecoder
        except ImportError as e:
            return self._no_fast(f"{e}")
        folder = Path(self.resolved_path)
        if not (folder / "config.json").is_file() or not (folder / "tokenizer.json").is_file():
            return self._no_fast(f"{folder} is not a converted model folder with tokenizer.json")
        stamp = {"onnxruntime": ort.__version__, "format": FORMAT, "tolerance": CHECK_TOLERANCE}
        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            decoder = FastDecoder.open_base(folder)
            saved = _read_json(decoder.path.with_name("prior.check.json")) if decoder else {}
            if decoder is None or {k: saved.get(k) for k in stamp} != stamp:
                _, model = self._lm  # once per model: export and check through torch
                decoder = decoder or FastDecoder.export_base(model, folder)
                saved = {**stamp, "problem": self._fast_check(decoder, tokenizer)}
                atomic_write_text(decoder.path.with_name("prior.check.json"), json.dumps(saved))  # read by other processes
        except Exception as e:  # a failed export or session leaves the torch path
            return self._no_fast(f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
        if saved.get("problem"):
            return self._no_fast(f"the self-check failed: {saved['problem']}")
        self.__dict__.pop("_lm", None)  # the torch model, if the check loaded it, is not needed
        return decoder, tokenizer

    def _no_fast(self, why: str) -> None:
        (logger.warning if self.runtime == "ort" else logger.info)(
            "emotion prior scored through torch, not ONNX Runtime: %s", why)
        return None

    def _fast_check(self, fast, tokenizer) -> str | None:
        """None where ``fast`` (the base LM's step) and ``tokenizer`` give torch's tokens (fixed
        texts and every adjective of :data:`EMOTION_VERBALIZERS`: the record serves every word
        list) and adjective scores within :data:`CHECK_TOLERANCE` nats; else what differs."""
        texts = [NAIVE_NULL, TEMPLATES[0].format(colours="dark blue and yellow", light="dark",
                                                 saturation="muted", warmth="cool")]
        hf, _ = self._lm
        adjectives = [w for ws in EMOTION_VERBALIZERS.values() for w in ws]
        for text in [t + STEM for t in texts] + adjectives:
            ours, theirs = tokenizer.encode(text, add_special_tokens=False).ids, hf(text, add_special_tokens=False).input_ids
            if ours != theirs:
                return f"tokens of {text!r} differ ({ours[:8]} vs {theirs[:8]})"
        diff = float(np.abs(self._fast_scores(fast, tokenizer, texts) - self._torch_scores(texts)).max())
        return None if diff <= CHECK_TOLERANCE else f"scores differ by up to {diff:.2g} nats"

    @property
    def scoring_runtime(self) -> str:
        """"ort" where :meth:`word_scores` runs in ONNX Runtime (:attr:`_fast`), else "torch"."""
        return "torch" if self._fast is None else "ort"

    def word_scores(self, contexts: list[str]) -> np.ndarray:
        """[len(contexts), len(self.words)] summed log-probabilities of each adjective (one per
        emotion by default, :data:`EMOTION_WORDS`) after ``context + STEM``.

        Each context is run once; its key/value cache is repeated for the adjectives, which
        continue it in one batch. In ONNX Runtime where that passed its check (:attr:`_fast`),
        else in torch.
        """
        if self._fast is not None:
            return self._fast_scores(*self._fast, contexts)
        return self._torch_scores(contexts)

    def _fast_scores(self, fast, tokenizer, contexts: list[str]) -> np.ndarray:
        """:meth:`word_scores` through the base LM's exported step (:mod:`emosem.inference.fast_lm`)."""
        word_ids = [tokenizer.encode(w, add_special_tokens=False).ids for w in self.words]
        return np.stack([fast.continuation_scores(tokenizer.encode(c + STEM, add_special_tokens=False).ids, word_ids)
                         for c in contexts])

    def _torch_scores(self, contexts: list[str]) -> np.ndarray:
        """:meth:`word_scores` in torch: the continuations right-padded (the padding comes after
        every scored token)."""
        import torch

        tokenizer, model = self._lm
        word_ids = [tokenizer(w, add_special_tokens=False).input_ids for w in self.words]
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
        """[len(self.words)] mean adjective score over :func:`reference_descriptions` in every
        template; kept on disk (:func:`reference_cache_path`) so that only the first run on a
        model and a word list pays for it."""
        texts = self._reference_texts()
        return self._kept_scores(reference_cache_path(self.resolved_path, texts, self.words, self.scoring_runtime),
                                 lambda: self.word_scores(texts).mean(0))

    def _reference_texts(self) -> list[str]:
        """Every :func:`reference_descriptions` (of this scorer's kind) in every template."""
        return [t for d in reference_descriptions(self.layout, self.lines) for t in d.texts()]

    def _kept_scores(self, path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Scores read from ``path`` (:func:`reference_cache_path`), or ``compute()``-d and kept there."""
        if path.is_file():
            try:
                return np.asarray(json.loads(path.read_text(encoding="utf-8"))["scores"], dtype=np.float64)
            except (OSError, ValueError, KeyError) as e:
                logger.warning("ignoring an unreadable reference-score cache %s: %s", path, e)
        scores = compute()
        try:
            atomic_write_text(path, json.dumps({"model": self.resolved_path, "scores": scores.tolist()}))
        except OSError as e:
            logger.warning("cannot keep the reference scores in %s: %s", path, e)
        return scores

    @cached_property
    def resolved_path(self) -> str:
        from emosem.modeling.lm_weights.resolve import resolve_lm_path
        from emosem.paths import DEFAULT_LM_NAME

        return resolve_lm_path(self.model_path or DEFAULT_LM_NAME)

    def prior(self, description: Description, base_rates: dict[str, float] | None = None) -> dict[str, float]:
        """The PMI prior (module docstring) of a described painting; with ``base_rates`` (an
        emotion's share before the painting is seen, e.g. ARTEMIS_BASE_RATES) their logs are added
        to the scores: the posterior under that class prior."""
        pmi = self.word_scores(description.texts()).mean(0) - self.reference_scores
        scores = _with_something_else(self._per_emotion(pmi))
        if base_rates is not None:
            scores = {e: v + float(np.log(base_rates[e])) for e, v in scores.items()}
        return _softmax(scores)

    def _per_emotion(self, word_values: np.ndarray) -> dict[str, float]:
        """Per-word values [len(self.words)] → per emotion, the mean over its adjectives."""
        out, start = {}, 0
        for emotion, ws in self.verbalizers.items():
            out[emotion] = float(np.mean(word_values[start:start + len(ws)]))
            start += len(ws)
        return out

    def channel_scores(self, contexts: list[str]) -> np.ndarray:
        """[len(self.words), len(contexts)] summed log-probabilities of each context's tokens
        after :data:`CHANNEL_STEM` with each adjective (torch: every position's logits are
        read, which the exported step does not give). The context's tokens are the same after
        every adjective, so their scores compare."""
        import torch

        tokenizer, model = self._lm
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        heads = [tokenizer(CHANNEL_STEM.format(word=w), add_special_tokens=False).input_ids for w in self.words]
        tails = [tokenizer(" " + c, add_special_tokens=False).input_ids for c in contexts]
        out = np.empty((len(heads), len(tails)))
        with torch.inference_mode():
            for i, head in enumerate(heads):
                width = len(head) + max(len(t) for t in tails)
                ids = torch.full((len(tails), width), pad, dtype=torch.long)
                mask = torch.zeros((len(tails), width), dtype=torch.long)
                for j, tail in enumerate(tails):
                    row = head + tail
                    ids[j, :len(row)] = torch.tensor(row)
                    mask[j, :len(row)] = 1
                logp = model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)
                for j, tail in enumerate(tails):
                    at = torch.arange(len(head) - 1, len(head) + len(tail) - 1)  # positions predicting the tail
                    out[i, j] = float(logp[j, at, torch.tensor(tail)].sum())
        return out

    @cached_property
    def channel_reference_scores(self) -> np.ndarray:
        """[len(self.words)] each adjective's mean :meth:`channel_scores` over
        :func:`reference_descriptions` in every template, kept on disk as :attr:`reference_scores`."""
        texts = self._reference_texts()
        return self._kept_scores(reference_cache_path(self.resolved_path, texts, self.words, "torch-channel"),
                                 lambda: self.channel_scores(texts).mean(1))

    def channel_prior(self, description: Description, reference: bool = True) -> dict[str, float]:
        """The noisy-channel prior: how likely the painting's description is after each emotion's
        sentence, log p(description | emotion), averaged over the paraphrases; the softmax over
        emotions is Bayes' posterior under equal priors (Min, S., Lewis, M., Hajishirzi, H., &
        Zettlemoyer, L. (2022). Noisy channel language model prompting for few-shot text
        classification. *ACL 2022*, 5316–5330: scoring the input given the label is less swayed
        by a small model's taste for label words than scoring the label given the input). With
        ``reference``, each emotion's mean score over :func:`reference_descriptions` is
        subtracted: what an emotion's sentence does to the likelihood of any description, the
        channel form of :meth:`prior`'s correction."""
        scores = self.channel_scores(description.texts()).mean(1)
        if reference:
            scores = scores - self.channel_reference_scores
        return _softmax(_with_something_else(self._per_emotion(scores)))

    def naive_prior(self, description: Description) -> dict[str, float]:
        """The issue's baseline: the score after the first paraphrase minus the score after
        :data:`NAIVE_NULL`."""
        scores = self.word_scores([description.texts()[0], NAIVE_NULL])
        return _softmax(_with_something_else(self._per_emotion(scores[0] - scores[1])))


# ---------------------------------------------------------------------- per painting, cached
@lru_cache(maxsize=4)
def shared_scorer(ensemble: bool = False, layout: bool = False, lines: bool = False) -> LMPrior:
    """One scorer on the default language model per process, word list and description kind (its
    reference scores with it): one adjective per emotion, or (``ensemble``)
    :data:`EMOTION_VERBALIZERS`; descriptions with the layout (and lines) sentence or without."""
    return LMPrior(verbalizers=EMOTION_VERBALIZERS if ensemble else None, layout=layout, lines=lines)


def _image_key(image: np.ndarray) -> str:
    image = np.ascontiguousarray(image)
    return hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()


@lru_cache(maxsize=64)
def _cached_prior(key: str, kind: str, description: Description) -> tuple[tuple[str, float], ...]:
    scorer = shared_scorer(ensemble=kind == "pmi_words", layout="layout" in kind,
                           lines=kind == "pmi_layout_lines")
    if kind == "naive":
        dist = scorer.naive_prior(description)
    elif kind.startswith("channel"):
        dist = scorer.channel_prior(description, reference=kind.endswith("_ref"))
    else:
        dist = scorer.prior(description, ARTEMIS_BASE_RATES if kind.endswith("_rates") else None)
    return tuple(dist.items())


LM_PRIOR_KINDS = ("pmi", "pmi_words", "pmi_layout", "pmi_layout_rates", "pmi_layout_lines", "naive",
                  "channel_layout", "channel_layout_ref")


def painting_lm_prior(image: np.ndarray, kind: str = "pmi") -> dict[str, float]:
    """The language-model prior of an HxWx3 uint8 RGB painting, cached per image content: ``kind``
    "pmi" (:meth:`LMPrior.prior`, one adjective per emotion), "pmi_words" (the same over
    :data:`EMOTION_VERBALIZERS`), "pmi_layout" (descriptions with the layout sentence),
    "pmi_layout_rates" (the same with ArtEmis's base rates: the posterior), "pmi_layout_lines"
    (descriptions with the layout and the lines sentences) or "naive" (:meth:`LMPrior.naive_prior`)."""
    if kind not in LM_PRIOR_KINDS:
        raise ValueError(f"kind must be one of {LM_PRIOR_KINDS}, got {kind!r}")
    description = describe(image, layout="layout" in kind, lines=kind == "pmi_layout_lines")
    return dict(_cached_prior(_image_key(image), kind, description))
