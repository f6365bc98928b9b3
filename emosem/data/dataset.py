"""Torch dataset over :class:`StimulusSample` items, and a collate that skips bad items.

A sample that cannot be loaded (image vanished or corrupt) comes back as ``None`` with a logged
warning; :func:`collate_samples` drops those and reports how many in ``num_skipped``, so
training goes on past a bad row.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from emosem.data.artemis import ArtEmisData, StimulusSample
from emosem.data.cues import Cues, extract_cues
from emosem.data.image_io import DEFAULT_MAX_PIXELS, ImageLoadError, load_image
from emosem.data.synthetic.motifs import mentions_motif, motif_by_name
from emosem.data.synthetic.utterances import SWAP_NOUNS, describe_utterance
from emosem.data.transforms import SamTransform
from emosem.emotions import EMOTION_TO_INDEX, NUM_EMOTIONS

logger = logging.getLogger(__name__)


class StimulusDataset(Dataset):
    """Items for training/evaluation: SAM-ready image, stimulus mask, one reference utterance.

    ``__getitem__(i)`` returns a dict (``S`` = ``image_size``):

    * ``image`` ``[3, S, S]`` float32 (SAM-normalised, zero-padded), ``input_size`` and
      ``original_size`` LongTensor ``[2]`` (h, w);
    * ``mask`` ``[S, S]`` float32 in {0, 1} (zeros when ``has_mask`` is False);
    * ``emotion`` str, ``emotion_index`` int;
    * ``utterance`` str (one reference, picked deterministically from ``(i, epoch, seed)``; ""
      when ``has_text`` is False) and ``utterances`` list[str];
    * ``emotion_dist`` ``[9]`` float32 (the painting's annotator distribution, zeros when
      ``has_dist`` is False);
    * ``key`` str, ``index`` int.

    or ``None`` when the image cannot be loaded (a warning is logged).
    """

    def __init__(
        self,
        samples: Sequence[StimulusSample],
        data: ArtEmisData,
        image_size: int = 256,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        seed: int = 0,
    ) -> None:
        self.samples = list(samples)
        self.data = data
        self.image_size = int(image_size)
        self.max_pixels = max_pixels
        self.seed = int(seed)
        self.epoch = 0
        # Region cues of the ground-truth mask ("cues": emosem.data.cues.Cues or None) for
        # models that read them (model.cues); off by default, they cost ~10 ms a sample.
        self.with_cues = False
        # Object slot targets (see object_target): shares of appearance / swapped-noun samples.
        self.appearance_share = 0.0
        self.object_swap_share = 0.0
        self.transform = SamTransform(self.image_size)

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Choose which reference utterance each item returns in this epoch."""
        self.epoch = int(epoch)

    def pick_utterance(self, index: int) -> str:
        """The reference utterance item ``index`` returns in the current epoch ("" if none)."""
        utts = self.samples[index].utterances
        if not utts:
            return ""
        if len(utts) == 1:
            return utts[0]
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        return utts[rng.randrange(len(utts))]

    def motif_of(self, index: int) -> str | None:
        """The synthetic motif that sample ``index``'s stimulus shows (its COCO annotation's
        ``motif``; the one its references name when several share the emotion), or None."""
        s = self.samples[index]
        names = [a["motif"] for a in self.data.annotations(s.key)
                 if a.get("motif") and a["emotion"] == s.emotion]
        if len(names) > 1 and s.utterances:
            named = [n for n in names if any(mentions_motif(u, n) for u in s.utterances)]
            names = named or names
        return names[0] if names else None

    def object_target(self, index: int, cues: Cues, utterance: str) -> tuple[Cues, str, str]:
        """(cues with their object slot, reference, mode) for the language stage.

        A sample whose stimulus is a known motif draws a mode from ``(seed, epoch, index)``:
        "appearance" (share ``appearance_share``): slot none, a reference that describes the
        region by its measured look (:func:`describe_utterance`); "swap" (``object_swap_share``):
        a plain noun in the slot (source "given") that the reference uses; otherwise "motif": the
        motif in the slot (source "motif") and the annotators' reference. A sample with no known
        motif gets slot none and keeps its reference ("unknown")."""
        motif = self.motif_of(index)
        if motif is None or not utterance:
            return cues.with_object(None), utterance, "unknown"
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}:object")
        draw = rng.random()
        if draw >= self.appearance_share + self.object_swap_share:
            obj = {"word": motif_by_name(motif).noun, "source": "motif", "score": 1.0}
            return cues.with_object(obj), utterance, "motif"
        g = np.random.default_rng(rng.randrange(2**32))
        where = cues.extent or cues.place
        if draw < self.appearance_share:
            return cues.with_object(None), describe_utterance(g, self.samples[index].emotion, cues.appearance, where), "appearance"
        noun = SWAP_NOUNS[int(g.integers(len(SWAP_NOUNS)))]
        text = describe_utterance(g, self.samples[index].emotion, cues.appearance, where, noun=noun)
        return cues.with_object({"word": noun, "source": "given", "score": 1.0}), text, "swap"

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        s = self.samples[index]
        try:
            image = load_image(s.image_path, max_pixels=self.max_pixels)
        except ImageLoadError as e:
            logger.warning("Skipping sample %d (%s, %s): %s", index, s.key, s.emotion, e)
            return None
        except Exception as e:  # never let one bad file kill a training epoch
            logger.warning("Skipping sample %d (%s, %s): unexpected %s: %s", index, s.key, s.emotion, type(e).__name__, e)
            return None
        h, w = image.shape[:2]
        x, input_size = self.transform.apply_image(image)

        has_mask = False
        cues = None
        mask = torch.zeros(self.image_size, self.image_size, dtype=torch.float32)
        if s.has_mask:
            try:
                m = self.data.decode_mask(s)
                if m.shape != (h, w):
                    logger.warning(
                        "Ignoring the mask of sample %d (%s, %s): mask %s vs image %s",
                        index, s.key, s.emotion, m.shape, (h, w),
                    )
                else:
                    mask = self.transform.apply_mask(m)
                    has_mask = True
                    if self.with_cues:
                        cues = extract_cues(image, m)
            except Exception as e:
                logger.warning("Ignoring undecodable mask of sample %d (%s): %s", index, s.key, e)

        try:
            dist = self.data.emotion_distribution(s.key)
        except KeyError:
            dist = np.zeros(NUM_EMOTIONS, dtype=np.float32)
        has_dist = bool(dist.sum() > 0)
        utterance = self.pick_utterance(index)
        if cues is not None:
            cues, utterance, _ = self.object_target(index, cues, utterance)
        return {
            "image": x,
            "mask": mask,
            "has_mask": has_mask,
            "emotion": s.emotion,
            "emotion_index": EMOTION_TO_INDEX[s.emotion],
            "utterance": utterance,
            "utterances": list(s.utterances),
            "has_text": s.has_text,
            "emotion_dist": torch.from_numpy(np.asarray(dist, dtype=np.float32).copy()),
            "has_dist": has_dist,
            "input_size": torch.tensor(input_size, dtype=torch.long),
            "original_size": torch.tensor((h, w), dtype=torch.long),
            "key": s.key,
            "index": int(index),
            **({"cues": cues} if self.with_cues else {}),
        }


def collate_samples(batch: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Collate dataset items, dropping ``None`` (failed) ones.

    Tensors are stacked (``[B, ...]``), bools become a bool tensor ``[B]``, ints a LongTensor
    ``[B]``, floats a float32 tensor ``[B]``; strings and lists stay Python lists. Adds
    ``num_skipped`` (dropped items) and ``batch_size``. If every item failed, returns only
    ``{"num_skipped": n, "batch_size": 0}``.
    """
    items = [b for b in batch if b is not None]
    num_skipped = len(batch) - len(items)
    if not items:
        return {"num_skipped": num_skipped, "batch_size": 0}
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        first = values[0]
        if isinstance(first, torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(first, bool):
            out[key] = torch.tensor(values, dtype=torch.bool)
        elif isinstance(first, int):
            out[key] = torch.tensor(values, dtype=torch.long)
        elif isinstance(first, float):
            out[key] = torch.tensor(values, dtype=torch.float32)
        else:
            out[key] = values
    out["num_skipped"] = num_skipped
    out["batch_size"] = len(items)
    return out
