"""``EmoSEMPredictor``: SAM-style predictor over a trained EmoSEM checkpoint.

    predictor = EmoSEMPredictor.from_pretrained()          # the bundled default checkpoint
    predictor.set_image("starry_night.jpg")                # encodes once
    results = predictor.predict(["awe", "fear"])           # one batched decode + one generate
    results[0].mask, results[0].explanation, results[0].to_record()

The image embedding is computed once per image and reused for every emotion; all emotions
decode in one batched decoder call and their explanations generate in one batched call.
``set_image`` returns an :class:`ImageState`; passing it to ``predict(state=...)`` makes a call
independent of the predictor's cached image (what a multi-user server needs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emosem.config import check_mask_threshold
from emosem.data.cues import CueImage, Cues, cue_image, extract_cues
from emosem.data.image_io import load_image
from emosem.data.synthetic.motifs import motif_by_name
from emosem.data.transforms import SamTransform
from emosem.emotions import ARTEMIS_EMOTIONS, normalize_prompt_emotion
from emosem.inference.affect_prior import (
    blend_distribution,
    is_out_of_domain,
    painting_prior,
    prior_weight,
)
from emosem.inference.domain import DomainModel, load_domain, pooled_features, valid_weight
from emosem.inference.packed_linear import pack_linears, packing_supported
from emosem.inference.region import RULE_THRESHOLD, WORK_SIDE, Region, choose_region, coverage
from emosem.modeling.emosem import EmoSEM
from emosem.paths import default_checkpoint
from emosem.regions import region_is_empty

logger = logging.getLogger(__name__)

# A region's ImageNet concepts pool the encoder's concept map (stride 32: 10 × 10 cells at 320 px)
# under its mask; under two cells' worth of canvas that is one cell's guess: no concepts.
MIN_CONCEPT_CELLS = 2


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``auto`` → cuda, then mps, then cpu; an unavailable explicit device is a clear error."""
    spec = str(spec)
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} was asked for but no CUDA GPU is available; use 'cpu'")
    if spec == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but MPS is not available; use 'cpu'")
    return torch.device(spec)


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE (``counts`` as str) of a HxW bool mask."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def mask_bbox(mask: np.ndarray) -> list[int]:
    """Bounding box XYWH of a HxW bool mask ([0, 0, 0, 0] when empty)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0, 0, 0, 0]
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


@dataclass
class ImageState:
    """One encoded image: features [1, C, h, w] (see ``EmoSEM.encode``), the ImageNet concept map
    [1, 1280, ·] where the encoder has one, and the sizes to map masks back."""

    image: np.ndarray  # H x W x 3 uint8
    embedding: torch.Tensor
    input_size: tuple[int, int]
    original_size: tuple[int, int]
    encode_s: float
    concept_map: torch.Tensor | None = None
    domain_maps: list[torch.Tensor] | None = None  # frozen backbone maps (emosem.inference.domain)
    domain_score: float | None = None  # in-domain score of the whole image, None without statistics
    cue_image: CueImage | None = field(default=None, repr=False)  # see cues(); measured once

    def cues(self) -> CueImage:
        """The image side of every region's cues (:func:`~emosem.data.cues.cue_image`: the
        painting at the cues' working size, CIELAB, texture maps), measured on first use."""
        if self.cue_image is None:
            self.cue_image = cue_image(self.image)
        return self.cue_image


@dataclass
class StimulusResult:
    """The stimulus of one emotion in one image, at the image's original resolution."""

    emotion: str
    trained: bool  # one of the nine ArtEmis emotions
    mask: np.ndarray  # H x W bool
    soft_mask: np.ndarray  # H x W float32 in [0, 1]
    predicted_iou: float
    explanation: str | None  # None: explanations off, or an empty region (nothing to explain)
    timing: dict[str, float] = field(default_factory=dict)
    cues: Cues | None = None  # what the region shows, measured (emosem.data.cues)
    in_domain: float | None = None  # the region's in-domain score (emosem.inference.domain)
    region: Region | None = None  # how the mask was chosen (emosem.inference.region)

    @property
    def concepts(self) -> list[dict]:
        """The region's top ImageNet concepts [{"name", "score"}] ([] without a concept head)."""
        return self.cues.concepts if self.cues is not None else []

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def empty(self) -> bool:
        """No region to show or explain (:func:`emosem.regions.region_is_empty`)."""
        return region_is_empty(self.area, self.cues)

    @property
    def bbox(self) -> list[int]:
        return mask_bbox(self.mask)

    def to_record(self) -> dict[str, Any]:
        """SAM's record keys plus ours (JSON-serialisable)."""
        return {
            "emotion": self.emotion,
            "trained_emotion": self.trained,
            "segmentation": mask_to_rle(self.mask),
            "bbox": self.bbox,
            "area": self.area,
            "empty": self.empty,
            "predicted_iou": round(float(self.predicted_iou), 4),
            "confidence": round(float(self.confidence), 4),
            "explanation": self.explanation,
            "concepts": self.concepts,
            "in_domain": self.in_domain,
            "cues": self.cues.record() if self.cues is not None else None,
            "region": self.region.record() if self.region is not None else None,
            "timing_s": {k: round(v, 4) for k, v in self.timing.items()},
        }

    @property
    def confidence(self) -> float:
        """Mean soft-mask probability inside the mask times the clipped predicted IoU."""
        inside = float(self.soft_mask[self.mask].mean()) if self.area else 0.0
        return inside * float(np.clip(self.predicted_iou, 0.0, 1.0))


@dataclass
class EmotionEstimate:
    """A painting's emotion distribution and what it is made of (see
    :func:`~emosem.inference.affect_prior.blend_distribution`): the visual head's, the colour
    prior's, the prior's weight and the in-domain score it came from (None: no score)."""

    distribution: dict[str, float]
    head: dict[str, float]
    prior: dict[str, float] | None  # None: not computed, its weight being 0 (in domain)
    prior_weight: float
    in_domain: float | None

    def ranked(self) -> list[str]:
        """The emotions, most probable first."""
        return sorted(self.distribution, key=self.distribution.get, reverse=True)

    def record(self) -> dict[str, Any]:
        """The ``results.json`` keys: ``emotion_distribution`` (the blend), its parts and weight."""
        def rounded(d: dict[str, float]) -> dict[str, float]:
            return {k: round(float(v), 4) for k, v in d.items()}

        return {"emotion_distribution": rounded(self.distribution),
                "emotion_distribution_head": rounded(self.head),
                "emotion_distribution_prior": rounded(self.prior) if self.prior is not None else None,
                "prior_weight": round(self.prior_weight, 4), "in_domain_score": self.in_domain}


class EmoSEMPredictor:
    """Cached-embedding predictor (``set_image`` once, ``predict`` many times)."""

    def __init__(self, model: EmoSEM, device: str | torch.device = "cpu", max_side: int = 4096,
                 merge_lora: bool = True, pack_weights: bool = True,
                 lm_runtime: str = "auto", domain: DomainModel | None = None,
                 lm_key: str | None = None, lm_reload: Callable[[], torch.nn.Module] | None = None) -> None:
        self.device = resolve_device(device)
        # the checkpoint's in-domain statistics (None: no scores); they pool the frozen backbone's
        # maps, which only a pretrained encoder has
        self.domain = domain if hasattr(model.sam.image_encoder, "features_and_maps") else None
        self.max_side = max_side  # larger images are downscaled (with a warning) before encoding
        self.model = model.to(self.device).eval()
        # Inference only: LoRA folded into the LM weights and its modules dropped (see
        # ExplanationLM.merge_lora), then the LM weights prepacked for oneDNN (CPU float32; see
        # packed_linear). Either makes the model unsaveable: pass False for a model to save.
        self.packed_layers = 0
        self.lm_runtime = None  # what decodes the explanations (see _fast_decoding); None: no LM
        self.transform = SamTransform(model.image_size)
        self.lock = threading.RLock()
        self._state: ImageState | None = None
        self._motif_tags: dict[str, list[int]] | None = None  # motif → its words' tag indices
        if model.lm is None:  # masks only (from_pretrained(explain=False))
            return
        if model.tag_head is not None:  # object tags enter a prefix only where a motif is licensed
            from emosem.data.cue_words import OBJECT_NOUNS

            model.set_object_vocabulary(OBJECT_NOUNS)
        # Greedy decoding through ONNX Runtime where it gives the same tokens (fast_lm; its graph
        # keeps the LoRA factored, as the unmerged model computes it, so the base weights keep
        # their 4-bit grid), or on a CPU the LM's float32 weights, LoRA merged, prepacked for
        # oneDNN. Not both: ONNX Runtime holds its own copy of the weights, and a packed one for
        # the rare beam or sampling call would be a third (the bundled checkpoint: 2410 → 1783 MB
        # RSS once loaded).
        lm_dtype = model.lm.dtype
        self.lm_runtime = self._fast_decoding(lm_runtime, lm_dtype, lm_key)
        if merge_lora:
            self.model.lm.merge_lora(unload=True)
        if pack_weights and self.lm_runtime == "torch" and packing_supported(self.device, lm_dtype):
            self.packed_layers = pack_linears(self.model.lm.model)
        # ONNX Runtime decodes from its own copy of the weights: torch's are freed, and loaded
        # again (``lm_reload``: the merged LM as loaded here) by the first beam or sampling call
        self.released_mb = 0.0
        if self.lm_runtime != "torch" and lm_reload is not None and not model.lm.released:
            def reload() -> torch.nn.Module:
                lm = lm_reload()
                return lm.merge_and_unload() if merge_lora and hasattr(lm, "merge_and_unload") else lm
            self.released_mb = self.model.lm.release_weights(reload) / 2**20

    def _fast_decoding(self, runtime: str, lm_dtype: torch.dtype, key: str | None = None) -> str:
        """Set up the explanation LM's runtime (:data:`~emosem.inference.fast_lm.RUNTIMES`) and
        return the one in use. "auto": ONNX Runtime float32 on a CPU float32 Llama-type LM where
        ``onnxruntime`` is installed and the self-check gives torch's tokens, else torch (logged);
        "ort" / "ort-int8" ask for it (a warning when it cannot run, then torch); "torch": torch.
        ``key`` names the merged LM weights (:func:`~emosem.inference.fast_lm.checkpoint_key`)."""
        from emosem.inference.fast_lm import RUNTIMES, fast_decoder

        if runtime not in ("auto", *RUNTIMES):
            raise ValueError(f"lm_runtime must be one of auto, {', '.join(RUNTIMES)}; got {runtime!r}")
        if runtime == "torch":
            return "torch"
        want = "ort" if runtime == "auto" else runtime
        ready = self.model.lm.fast_decoder  # set where the LM was made from its cached graph
        if ready is not None and ready.runtime == want and self.device.type == "cpu":
            return want
        if self.device.type != "cpu" or lm_dtype != torch.float32:
            decoder, problem = None, f"it runs a float32 LM on a CPU (here {self.device.type}, {lm_dtype})"
        else:
            decoder, problem = fast_decoder(self.model.lm.model, want, key=key)
        if decoder is None:
            (logger.info if runtime == "auto" else logger.warning)(
                "explanations decode with torch, not %s: %s", want, problem)
            return "torch"
        self.model.lm.fast_decoder = decoder
        return want

    @classmethod
    def from_pretrained(
        cls, checkpoint: str | Path | None = None, device: str = "auto", merge_lora: bool = True,
        pack_weights: bool = True, lm_runtime: str = "auto", explain: bool = True,
        **kwargs: Any,
    ) -> EmoSEMPredictor:
        """Load a checkpoint folder (default: the bundled one, :func:`default_checkpoint`).
        ``explain=False``: masks, cues and emotion distributions only; the language model is
        not loaded (a fraction of the start-up time and memory)."""
        ckpt = Path(checkpoint) if checkpoint else default_checkpoint()
        dev = resolve_device(device)
        # a CPU whose explanations decode in ONNX Runtime, on a graph exported and checked by
        # an earlier load: the torch LM is not built (nor transformers imported) at all
        factory = None
        if explain and merge_lora and lm_runtime in ("auto", "ort") and dev.type == "cpu":
            from emosem.inference.fast_lm import cached_explanation_lm

            factory = lambda config: cached_explanation_lm(ckpt, config)  # noqa: E731
        model = EmoSEM.from_pretrained(ckpt, device=dev, load_lm=explain, lm_factory=factory, **kwargs)
        lm_key = lm_reload = None
        adapter = ckpt / "lm_adapter"
        if model.lm is not None and model.lm.model is not None and adapter.is_dir():
            from emosem.inference.fast_lm import checkpoint_key

            lm_dir = getattr(model.lm.model.config, "_name_or_path", None)
            lm_key = checkpoint_key(adapter, lm_dir) if lm_dir and Path(lm_dir).is_dir() else None
        if model.lm is not None:
            from emosem.modeling.pretrained import load_checkpoint_lm

            config = model.config
            lm_reload = lambda: load_checkpoint_lm(ckpt, config.lm, config.dtype)[0].to(dev)  # noqa: E731
        return cls(model, dev, merge_lora=merge_lora, pack_weights=pack_weights, lm_runtime=lm_runtime,
                   domain=load_domain(ckpt), lm_key=lm_key, lm_reload=lm_reload)

    def threshold(self, value: float | None = None) -> float:
        """The mask probability threshold to use: ``value``, checked to lie in (0, 1), or the
        checkpoint's calibrated ``model.mask_threshold`` for None."""
        if value is None:
            return float(self.model.config.mask_threshold)
        return check_mask_threshold(value)

    @property
    def can_explain(self) -> bool:
        return self.model.lm is not None

    # ------------------------------------------------------------------ image
    @torch.no_grad()
    def encode(self, image: str | Path | np.ndarray | Any) -> ImageState:
        """Load (path, PIL or array) and encode an image → :class:`ImageState`."""
        rgb = load_image(image, max_side=self.max_side)
        t0 = time.perf_counter()
        tensor, input_size = self.transform.apply_image(rgb)
        if self.domain is None:
            emb, concept_map = self.model.encode_with_concepts(tensor[None].to(self.device))
            return ImageState(rgb, emb, tuple(input_size), rgb.shape[:2], time.perf_counter() - t0,
                              concept_map)
        emb, concept_map, maps = self.model.sam.image_encoder.features_and_maps(tensor[None].to(self.device))
        weight = valid_weight(input_size, self.transform.image_size).to(self.device)
        score = self.domain.image_score(pooled_features(maps, weight).cpu())
        return ImageState(rgb, emb, tuple(input_size), rgb.shape[:2], time.perf_counter() - t0,
                          concept_map, maps, score)

    @property
    def domain_score(self) -> float | None:
        """The current image's in-domain score in [0, 1]: the share of held-out training paintings
        farther from the training statistics (:mod:`emosem.inference.domain`), computed in
        :meth:`set_image`; None without an image or without statistics in the checkpoint."""
        with self.lock:
            return None if self._state is None else self._state.domain_score

    def set_image(self, image: str | Path | np.ndarray | Any) -> ImageState:
        """Encode an image and cache it for later :meth:`predict` calls."""
        state = self.encode(image)
        with self.lock:
            self._state = state
        return state

    def reset_image(self) -> None:
        with self.lock:
            self._state = None

    def _current(self, state: ImageState | None) -> ImageState:
        if state is not None:
            return state
        with self.lock:
            if self._state is None:
                raise RuntimeError("No image set: call set_image(image) before predict()")
            return self._state

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def predict_distribution(self, state: ImageState | None = None) -> dict[str, float]:
        """The nine-way ArtEmis emotion distribution the painting evokes (emotion head)."""
        st = self._current(state)
        if self.model.emotion_head is None:
            raise RuntimeError("This checkpoint has no emotion head (model.emotion_head=false)")
        probs = self.model.emotion_logits(st.embedding).softmax(-1)[0].float().cpu().tolist()
        return dict(zip(ARTEMIS_EMOTIONS, probs))

    def in_domain_score(self, state: ImageState | None = None) -> float | None:
        """The painting's in-domain score in [0, 1] (None: none computed; taken as in domain)."""
        score = getattr(state, "domain_score", None) if state is not None else None
        return score if score is not None else getattr(self, "domain_score", None)

    def _in_domain(self, state: ImageState | None, in_domain: float | None | str) -> float | None:
        return self.in_domain_score(state) if in_domain == "auto" else in_domain

    @torch.no_grad()
    def predict_emotions(self, state: ImageState | None = None,
                         in_domain: float | None | str = "auto") -> EmotionEstimate:
        """The painting's emotion distribution: the emotion head's where the painting is in domain,
        moving toward the colour prior (:mod:`emosem.inference.affect_prior`) as its in-domain
        score falls. ``in_domain``: the score, or "auto" for :meth:`in_domain_score`."""
        st = self._current(state)
        head = self.predict_distribution(st)
        score = self._in_domain(st, in_domain)
        if prior_weight(score) == 0:  # in domain: the head's alone; the prior (an LM pass) is not needed
            return EmotionEstimate(dict(head), head, None, 0.0, score)
        prior = painting_prior(st.image)
        blended, weight = blend_distribution(head, prior, score)
        return EmotionEstimate(blended, head, prior, weight, score)

    @torch.no_grad()
    def predict(
        self,
        emotions: list[str] | str,
        explain: bool = True,
        threshold: float | None = None,
        max_new_tokens: int = 40,
        state: ImageState | None = None,
        seed: int | None = None,
        with_cues: bool = True,
        word_grounding: bool = True,
        in_domain: float | None | str = "auto",
        **gen: Any,
    ) -> list[StimulusResult]:
        """Segment (and explain) each emotion for the current image.

        emotions: ArtEmis labels or free-text words; ``threshold`` is on the mask probability
        (``None``: the checkpoint's ``model.mask_threshold``, see :mod:`emosem.evaluation.calibrate`).
        ``gen`` goes to generation (``num_beams``, ``do_sample``, ``temperature``, ``top_p``).
        ``with_cues``: measure each region's cues (place, size, colours, light, concepts; about
        10 ms an emotion); a model trained with ``model.cues`` reads them, so they are always
        measured when it explains. ``word_grounding``: the explanations cannot use a colour or
        position word the region's cues contradict (:mod:`emosem.inference.grounding`; the cues
        are measured for it even with ``with_cues=False``).
        ``in_domain``: the painting's in-domain score ("auto": :meth:`in_domain_score`); out of
        domain, a mask that is not pointable is chosen by :func:`~emosem.inference.region.choose_region`.
        """
        st = self._current(state)
        threshold = self.threshold(threshold)
        if isinstance(emotions, str):
            emotions = [emotions]
        parsed = [normalize_prompt_emotion(e) for e in emotions]
        if not parsed:
            raise ValueError("No emotion given")
        names = [p[0] for p in parsed]
        n = len(names)
        if explain and not self.can_explain:
            raise ValueError("This predictor was loaded without its language model "
                             "(explain=False): it gives masks only; predict(..., explain=False)")
        if seed is not None:
            torch.manual_seed(seed)
        t0 = time.perf_counter()
        logits, iou, mask_token, tokens = self.model.segment(st.embedding, names)  # one image, n emotions
        emb = self.model.gather(st.embedding, None, n)
        full = self.transform.postprocess_masks(logits, st.input_size, st.original_size)[:, 0]
        # In place: a fresh [n, H, W] buffer per step costs more in page faults than the maths.
        soft = full.float().sigmoid_().cpu().numpy()  # [n, H, W] float32
        outside = is_out_of_domain(self._in_domain(st, in_domain))
        # out of domain, the region rule works on the logits brought to its working size directly
        work = self._work_maps(logits, st.input_size) if outside else [None] * n
        regions = [choose_region(s, threshold, outside, work=w) for s, w in zip(soft, work)]
        masks = np.stack([r.mask for r in regions])
        t_decode = time.perf_counter() - t0
        t1 = time.perf_counter()
        # a model that reads cues needs them, and grounded decoding bans the words they contradict
        with_cues = with_cues or (explain and (self.model.config.cues or word_grounding))
        low = self._low_masks(regions, logits, threshold, st.input_size)
        cues = self.region_cues(st, masks, low) if with_cues else [None] * n
        in_domain_regions = self.region_domain(st, low)
        t_cues = time.perf_counter() - t1
        texts: list[str | None] = [None] * n
        t_explain = 0.0
        # an empty region has nothing to explain: no text rather than one about nothing (nor
        # about a speck of a few pixels that the cues, measured at the working size, do not see)
        rows = [i for i in range(n) if not region_is_empty(int(masks[i].sum()), cues[i])
                ] if explain else []
        if rows:
            t1 = time.perf_counter()
            idx = torch.tensor(rows, device=logits.device)
            # the tag head's logits [rows, T], read by the object slots and by the LM's prefix
            t_logits = None if self.model.tag_head is None else self.model.tag_logits(
                emb[idx], logits[idx].sigmoid(), mask_token[idx], tokens[idx])
            if cues[rows[0]] is not None:  # what each region may be called, and on what evidence
                slots = self.object_slots(st, masks[rows], t_logits, self._in_domain(st, in_domain))
                for i, slot in zip(rows, slots):
                    cues[i] = cues[i].with_object(slot)
            if word_grounding:
                gen = self._grounded(gen, [cues[i].record() if cues[i] else None for i in rows])
            version = self.model.config.cue_version
            said = self.model.explain(emb[idx], logits[idx], mask_token[idx], tokens[idx],
                                      [names[i] for i in rows],
                                      cues=[cues[i].phrase(version) if cues[i] else "" for i in rows],
                                      objects=[cues[i].object if cues[i] else None for i in rows],
                                      tag_logits=t_logits, max_new_tokens=max_new_tokens, **gen)
            for i, text in zip(rows, said):
                texts[i] = text
            t_explain = time.perf_counter() - t1
        timing = {"encode": st.encode_s, "decode": t_decode / n, "cues": t_cues / n,
                  "explain": t_explain / n}
        return [
            StimulusResult(
                emotion=names[i], trained=parsed[i][1], mask=masks[i],
                soft_mask=soft[i], predicted_iou=float(iou[i]),
                explanation=texts[i], timing=dict(timing), cues=cues[i], region=regions[i],
                in_domain=in_domain_regions[i],
            )
            for i in range(n)
        ]

    @torch.no_grad()
    def object_slots(self, st: ImageState, masks: np.ndarray, tag_logits: torch.Tensor | None,
                     in_domain: float | None) -> list[dict | None]:
        """What each region (masks [n, H, W] bool; ``tag_logits`` [n, T], the tag head's output
        for the same rows, None without a tag head) may be named, with its evidence (the cues'
        object slot):

        * a motif of the trained vocabulary (``source: "motif"``) when the painting is in domain
          (:func:`~emosem.inference.domain.is_in_domain`; no score counts as in domain) and the
          tag head gives one of the motif's words at least ``model.motif_min_prob`` (calibrated
          on validation data by :func:`~emosem.evaluation.calibrate.motif_licence_sweep`);
        * otherwise a licensed ImageNet concept in a plain word (``source: "imagenet"``,
          :func:`~emosem.inference.concepts.licensed_concepts`: crops at full resolution, a
          threshold calibrated on the synthetic regions);
        * otherwise None: nothing licenses a name, and the explanation describes the region by what
          is measured.
        """
        from emosem.inference import concepts
        from emosem.inference.domain import is_in_domain

        slots: list[dict | None] = [None] * len(masks)
        if is_in_domain(in_domain) is not False and tag_logits is not None:
            for i, (name, p) in enumerate(self.motif_evidence(tag_logits.sigmoid())):
                if p >= self.model.config.motif_min_prob:
                    slots[i] = {"word": motif_by_name(name).noun, "source": "motif", "score": round(p, 4)}
        todo = [i for i, s in enumerate(slots) if s is None]
        if todo and concepts.licence_threshold() is not None:
            backbone = getattr(self.model.sam.image_encoder, "backbone", None)  # its ImageNet head
            found = concepts.licensed_concepts(st.image, [masks[i] for i in todo], classifier=backbone)
            for i, c in zip(todo, found):
                if c is not None:
                    slots[i] = {"word": c["word"], "source": "imagenet", "score": c["score"],
                                "concept": c["concept"]}
        return slots

    def motif_evidence(self, probs: torch.Tensor) -> list[tuple[str, float]]:
        """Per row of tag probabilities [n, T]: the motif whose words the tag head is surest of,
        and that probability (the best of its words' tags)."""
        if self._motif_tags is None:
            from emosem.data.cue_words import MOTIF_WORDS

            texts = self.model.tag_texts()
            self._motif_tags = {name: [j for j, t in enumerate(texts) if t in words]
                                for name, words in MOTIF_WORDS.items()}
        best = []
        for row in probs.float().cpu():
            scored = [(name, float(row[idx].max())) for name, idx in self._motif_tags.items() if idx]
            best.append(max(scored, key=lambda x: x[1]) if scored else ("", 0.0))
        return best

    def _grounded(self, gen: dict[str, Any], records: list[dict | None]) -> dict[str, Any]:
        """``gen`` with a :class:`~emosem.inference.grounding.BannedWords` processor added (a
        list of processors: :meth:`ExplanationLM.generate` makes it transformers' kind where
        ``generate`` runs)."""
        from emosem.inference.grounding import grounding_processor

        ban = grounding_processor(self.model.lm.tokenizer, records)
        return {**gen, "logits_processor": [*gen.get("logits_processor", []), ban]}

    def _work_frame(self, input_size: tuple[int, int]) -> tuple[int, int, int]:
        """(canvas side, rows, cols) of the padded canvas scaled so that the painting inside it
        (``input_size``) is at most :data:`~emosem.inference.region.WORK_SIDE` on its longer side."""
        scale = min(1.0, WORK_SIDE / max(input_size))
        return (round(self.transform.image_size * scale), max(1, round(input_size[0] * scale)),
                max(1, round(input_size[1] * scale)))

    def _work_maps(self, logits: torch.Tensor, input_size: tuple[int, int]) -> np.ndarray:
        """Probabilities [n, rows, cols] of the painting at the region rule's working size: the
        logits [n, 1, h, w] upsampled once to the scaled canvas (:meth:`_work_frame`) and cropped,
        as :meth:`SamTransform.postprocess_masks` does at full size, without the full-size detour."""
        side, rows, cols = self._work_frame(input_size)
        up = torch.nn.functional.interpolate(logits.float(), (side, side), mode="bilinear", align_corners=False)
        return up[:, 0, :rows, :cols].sigmoid().cpu().numpy()

    def _low_masks(self, regions: list[Region], logits: torch.Tensor, threshold: float,
                   input_size: tuple[int, int]) -> torch.Tensor:
        """[n, 1, h, w] bool masks at the decoder's resolution (``logits`` [n, 1, h, w]): the
        thresholded probabilities, or for a region chosen by another rule its working-size mask
        (:attr:`Region.work_mask`) placed on the scaled canvas and area-averaged to the decoder's
        grid (≥ 0.5), or else its full-size mask mapped back the same way."""
        low = logits.float().sigmoid() > threshold
        side, _, _ = self._work_frame(input_size)
        for i, r in enumerate(regions):
            if r.rule == RULE_THRESHOLD:
                continue
            if r.work_mask is not None and max(r.work_mask.shape) <= side:
                canvas = torch.zeros(1, 1, side, side)
                rows, cols = r.work_mask.shape
                canvas[0, 0, :rows, :cols] = torch.from_numpy(r.work_mask.astype(np.float32))
            else:
                canvas = self.transform.apply_mask(r.mask)[None, None]
            low[i] = torch.nn.functional.interpolate(canvas.to(low.device), size=low.shape[-2:], mode="area")[0] >= 0.5
        return low

    def region_domain(self, st: ImageState, low: torch.Tensor) -> list[float | None]:
        """In-domain score of each region (masks ``low`` [n, 1, h, w] bool on the model's padded
        canvas), None for an empty one or without statistics."""
        if self.domain is None or st.domain_maps is None:
            return [None] * low.shape[0]
        maps = [m.expand(low.shape[0], -1, -1, -1) for m in st.domain_maps]
        scores = self.domain.region_scores(pooled_features(maps, low.float()).cpu())
        return [s if bool(m.any()) else None for s, m in zip(scores, low)]

    def region_cues(self, st: ImageState, masks: np.ndarray, low: torch.Tensor) -> list[Cues]:
        """Measured cues of each region as shown (masks [n, H, W] bool at the original size),
        with the encoder's concepts pooled under the same masks at low resolution ``low``
        [n, 1, 4h, 4w] bool (none for a region smaller than :data:`MIN_CONCEPT_CELLS` cells of
        the concept map)."""
        cmap = None if st.concept_map is None else st.concept_map.expand(len(masks), -1, -1, -1)
        words = self.model.concept_words(cmap, low.float())
        min_area = 0.0 if cmap is None else MIN_CONCEPT_CELLS / (cmap.shape[-2] * cmap.shape[-1])
        prepared = st.cues()  # the image's share of the work, once for all regions
        return [extract_cues(st.image, m, prepared=prepared).with_concepts(
                    w if coverage(m) >= min_area else []) for m, w in zip(masks, words)]

    def __call__(self, image: Any, emotions: list[str] | str, **kwargs: Any) -> list[StimulusResult]:
        """Stateless one-shot: encode ``image`` and predict, without touching the cache."""
        return self.predict(emotions, state=self.encode(image), **kwargs)
